// Issue 11, class 13: a worker blocked in recvSync()/selectSync() can be terminated.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

describe('blocking receives in workers', () => {
  it('worker.terminate() ends a worker blocked in recvSync() or selectSync() without a timeout', async () => {
    const r = await runVictim<Record<string, { code: unknown; ms: number }>>('recvsync-worker', { timeoutMs: 20_000 });
    expectContained(r);
    for (const k of ['recvSync', 'selectSync']) {
      expect(r.result[k]!.code, k).toBe(1); // terminate() resolves with exit code 1
      expect(r.result[k]!.ms, k).toBeLessThan(1000);
    }
  });
});
