import { describe, expect, it } from 'vitest';
import { armDeadline, checkTimeout } from '../src/shared/deadline.js';
import { IpcError } from '../src/shared/errors.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Arms a deadline and records every call of `expire`. */
function record(options: Parameters<typeof armDeadline>[0]): { calls: unknown[]; disarm: () => void } {
  const calls: unknown[] = [];
  const disarm = armDeadline(options, (reason) => calls.push(reason));
  return { calls, disarm };
}

describe('armDeadline', () => {
  it('expires once with IpcError TIMEOUT and the given message when the timer fires', async () => {
    let built = 0;
    const { calls } = record({ timeout: 5, timeoutMessage: () => `late ${++built}` });
    expect(calls).toEqual([]);
    await sleep(30);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeInstanceOf(IpcError);
    expect(calls[0]).toMatchObject({ code: 'TIMEOUT', message: 'late 1' });
    expect(built).toBe(1);
  });

  it('expires with the signal reason on abort, and removes the timer', async () => {
    const ac = new AbortController();
    const { calls } = record({ timeout: 20, signal: ac.signal, timeoutMessage: 'late' });
    const reason = new Error('stop');
    ac.abort(reason);
    ac.abort(new Error('again'));
    await sleep(40);
    expect(calls).toEqual([reason]);
  });

  it('expires at once, before it returns, when the signal has already aborted', () => {
    const ac = new AbortController();
    ac.abort('gone');
    const { calls, disarm } = record({ timeout: 5, signal: ac.signal, timeoutMessage: 'late' });
    expect(calls).toEqual(['gone']);
    disarm();
  });

  it('disarm clears the timer and removes the abort listener; it is idempotent', async () => {
    const ac = new AbortController();
    const removed: string[] = [];
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.removeEventListener = ((type: string, l: EventListener) => {
      removed.push(type);
      remove(type, l);
    }) as typeof ac.signal.removeEventListener;
    const { calls, disarm } = record({ timeout: 5, signal: ac.signal, timeoutMessage: 'late' });
    disarm();
    disarm();
    expect(removed).toEqual(['abort']);
    ac.abort();
    await sleep(30);
    expect(calls).toEqual([]);
  });

  it('arms nothing without a timeout or a signal', () => {
    const { calls, disarm } = record({ timeoutMessage: 'late' });
    disarm();
    expect(calls).toEqual([]);
  });

  it('ref: false does not keep the event loop alive (the timer is unref-ed)', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const disarm = armDeadline({ timeout: 60_000, timeoutMessage: 'late', ref: false }, () => {});
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
    disarm();
    const disarm2 = armDeadline({ timeout: 60_000, timeoutMessage: 'late' }, () => {});
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before + 1);
    disarm2();
  });
});

describe('checkTimeout', () => {
  it('accepts undefined and non-negative finite numbers, refuses the rest with RangeError', () => {
    expect(checkTimeout(undefined)).toBeUndefined();
    expect(checkTimeout(0)).toBe(0);
    expect(checkTimeout(1.5)).toBe(1.5);
    for (const bad of [-1, NaN, Infinity, '5', null]) expect(() => checkTimeout(bad, 'wait')).toThrow(RangeError);
    expect(() => checkTimeout(-1, 'wait')).toThrow('wait must be a non-negative finite number of milliseconds, got -1');
  });
});
