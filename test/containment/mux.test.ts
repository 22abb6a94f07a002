// Containment of multiplexed channels (issue 15 §3): a hostile peer process writes raw frames
// under an IpcMux (test/fixtures/containment/mux-hostile-peer.mjs). The victim must not crash,
// block or leak descriptors; forged ids and bad frames are typed errors on the connection, a
// flood fails only its own channel, and channel creation stops at maxChannels.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface Result {
  errors: Record<string, number>;
  okGot: string[];
  flood: string;
  channelsAtEnd: number;
  queued: number;
  rootTaken: number;
  secretGot: unknown;
  held: { bytes: number; handles: number; fds: number };
}

describe('IpcMux against a hostile peer', () => {
  it('forged and unknown ids, forged control frames: MALFORMED on the connection, the channels go on', async () => {
    const r = await runVictim('mux-hostile', { args: ['forge'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    // 3 forged or unknown data frames, 2 DROPs, 1 RCLOSED, 1 receiver with the victim's id.
    expect(res.errors.MALFORMED).toBe(7);
    expect(res.okGot).toEqual(['start', 'after-forge', 'done']);
    expect(res.secretGot).toBeNull();
  });

  it('malformed frames and references: typed errors, nothing placed outside the value', async () => {
    const r = await runVictim('mux-hostile', { args: ['malformed'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    // 10 bad frames, 9 bad references or lists, 1 frame over maxMessageBytes (TOO_LARGE).
    expect(res.errors.MALFORMED).toBe(19);
    expect(res.errors.TOO_LARGE).toBe(1);
    expect(res.okGot).toEqual(['start', 'after-malformed', 'done']);
    expect(({} as Record<string, unknown>).close).toBeUndefined();
  });

  it('unbounded channel creation stops at maxChannels with TOO_LARGE', async () => {
    const r = await runVictim('mux-hostile', { args: ['create'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    expect(res.errors.TOO_LARGE).toBeGreaterThan(0);
    expect(res.channelsAtEnd).toBeLessThanOrEqual(1000);
    expect(res.okGot).toEqual(['start', 'after-create', 'done']);
  });

  it('a flood on one logical channel fails that channel alone; another keeps delivering', async () => {
    const r = await runVictim('mux-hostile', { args: ['flood'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    expect(res.flood).toBe('TOO_LARGE');
    expect(res.okGot).toEqual(['start', 'during-flood-0', 'during-flood-10000', 'during-flood-20000', 'during-flood-30000', 'during-flood-40000', 'after-flood', 'done']);
    expect(res.queued).toBeLessThanOrEqual(200);
  });

  it('big messages on one logical channel stop at the connection\'s maxQueuedBytes (the count limits alone would hold them all)', async () => {
    const r = await runVictim('mux-hostile', { args: ['bytes'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    // 60 messages of 60 KiB (3.5 MiB) against a 1 MiB budget: the flooded channel fails alone.
    expect(res.flood).toBe('TOO_LARGE');
    expect(res.errors.TOO_LARGE).toBe(1);
    expect(res.okGot).toEqual(['start', 'after-bytes', 'done']);
    expect(res.held.bytes).toBeLessThanOrEqual(1024 * 1024);
  });

  it('messages full of descriptors stop at maxQueuedHandles; every descriptor of the dropped queue is closed', async () => {
    const r = await runVictim('mux-hostile', { args: ['handles'], timeoutMs: 60_000 });
    expectContained(r);
    const res = r.result as Result;
    // 60 messages of 20 descriptors (1,200) against a budget of 200.
    expect(res.flood).toBe('TOO_LARGE');
    expect(res.errors.TOO_LARGE).toBe(1);
    expect(res.okGot).toEqual(['start', 'after-handles', 'done']);
    expect(res.held.handles).toBeLessThanOrEqual(200);
    expect(res.held.fds).toBeLessThan(r.fdBefore + 250);
  });
});
