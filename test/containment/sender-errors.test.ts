// Issue 11, class 1: errors of the library's own deferred writes never reach the event loop.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

describe('deferred write errors', () => {
  it('a peer refusing descriptors (SO_PASSRIGHTS 0) fails the sender with EPERM, not the process', async () => {
    const r = await runVictim<Record<string, any>>('sender-passrights');
    expectContained(r);
    if (r.result.skipped) {
      console.log(`skipped: this kernel has no SO_PASSRIGHTS (${r.result.skipped})`);
      return;
    }
    expect(r.result.flush.code).toBe('OS');
    expect(r.result.flush.errno).toBe(1);
    expect(r.result.flush.message).toMatch(/EPERM/);
    // What was written and what was dropped is said: messages 1-3 were batched into one packet, which failed whole.
    expect(r.result.flush.message).toMatch(/0 queued message\(s\) had been written, 3 were dropped/);
    expect(r.result.next.code).toBe('OS');
    expect(r.result.next.message).toBe(r.result.flush.message);
    expect(r.result.immediate.code).toBe('OS');
    expect(r.result.immediate.message).toMatch(/EPERM/);
  });
});
