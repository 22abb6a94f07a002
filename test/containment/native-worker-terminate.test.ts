// Item 12 of issue 11: worker.terminate() at any moment of a worker that uses channels.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

describe('containment: terminating a worker that uses channels', () => {
  it('survives 30 workers terminated 0-80 ms after they start', async () => {
    const r = await runVictim<{ exits: number }>('native-worker-terminate', { args: ['30'], timeoutMs: 60_000 });
    expectContained(r);
    expect(r.result.exits).toBe(30);
  }, 70_000);
});
