// The containment harness can fail: it sees a blocked loop, a leaked descriptor and a crash.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

describe('containment harness', () => {
  it('passes a well-behaved scenario', async () => {
    const r = await runVictim('smoke');
    expectContained(r);
    expect(r.result).toEqual({ a: 1 });
    expect(r.beats).toBeGreaterThan(0);
  });
  it('sees a blocked event loop', async () => {
    const r = await runVictim('smoke', { args: ['block'] });
    expect(r.maxGapMs).toBeGreaterThanOrEqual(1000);
  });
  it('sees descriptors left open', async () => {
    const r = await runVictim('smoke', { args: ['leak'] });
    expect(r.fdAfter).toBeGreaterThan(r.fdBefore);
  });
  it('sees a crash', async () => {
    await expect(runVictim('smoke', { args: ['crash'] })).rejects.toThrow(/crashed or gave no report/);
  });
});
