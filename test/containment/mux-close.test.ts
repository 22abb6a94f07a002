// IpcMux.close() after the peer ended the connection releases the connection's descriptors
// (test/fixtures/containment/mux-close.mjs; found under Wine by test/windows/mux.test.mjs).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

describe('IpcMux closed after its peer left', () => {
  it('closes the plain ends: descriptor count back to baseline', async () => {
    const r = await runVictim('mux-close', { timeoutMs: 30_000 });
    expectContained(r);
    expect(r.result).toEqual({ got: 'hello', end: 'DISCONNECTED', open: false });
  });
});
