// Issue 11, item 16: one-shot server directories of dead owners are swept by later servers. The
// temp dir is shared with other users: a hostile neighbour plants entries named exactly like stale
// server directories (same owner tag, dead pids). The sweep must stay bounded and never block,
// never throw into the app, never follow a symlink and never remove another user's entry.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface Result {
  planted: number;
  foreign: boolean;
  missingPlanted: string[];
  removedNotGenuine: string[];
  genuineLeft: string[];
  precious: string;
  first: string;
}

describe('containment: the sweep of stale one-shot server directories', () => {
  it("entries planted by a neighbour cannot make it block, throw, follow links or remove others' entries", async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'eipc-sweep-hostile-'));
    chmodSync(base, 0o1777); // like /tmp: anyone may create, only owners may remove
    const precious = mkdtempSync(path.join(tmpdir(), 'eipc-sweep-precious-'));
    writeFileSync(path.join(precious, 's'), 'keep me');
    try {
      const r = await runVictim<Result>('server-sweep', { args: [base, precious], env: { TMPDIR: base }, timeoutMs: 60_000 });
      expectContained(r);
      expect(r.result.planted).toBe(4000);
      expect(r.result.foreign).toBe(process.getuid!() === 0);
      expect(r.result.missingPlanted).toEqual([]);
      expect(r.result.removedNotGenuine).toEqual([]);
      // Look-alikes do not use up the sweep's budget: the victim's own leftovers were still found.
      expect(r.result.genuineLeft).toEqual([]);
      expect(r.result.precious).toBe('keep me');
      expect(r.result.first).toBe('hi');
    } finally {
      rmSync(base, { recursive: true, force: true });
      rmSync(precious, { recursive: true, force: true });
    }
  });
});
