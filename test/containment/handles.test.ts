// Issue 11, classes 8 and 9: every handle the receiver decoded and the application did not get is
// closed at once; a received receiver cannot accept more than the channel it came through.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface Result {
  stripped: { keys: string[]; fdDelta: number };
  inherited: string;
  configured: { bytes: number; after: string };
}

describe('handles a peer sends', () => {
  for (const mode of ['sync', 'async']) {
    it(`handles in keys a schema strips are closed at once, not at GC (${mode} schema); a received receiver has the carrier's limits until configure()`, async () => {
      // No --expose-gc: the victim's GC cannot run on request, so only closing releases them.
      const r = await runVictim<Result>('handles', { args: [mode], nodeArgs: [] });
      expectContained(r);
      expect(r.result.stripped.keys).toEqual(['op']);
      expect(r.result.stripped.fdDelta).toBe(0);
      expect(r.result.inherited).toBe('TOO_LARGE');
      expect(r.result.configured).toEqual({ bytes: 64 * 1024, after: 'go' });
    });
  }
});
