// The benchmark's measurement processes still run against this build: a change to the addon's
// calls or to the public API that breaks one fails here, not months later in `npm run bench`.
// Short counts, unpinned; the figures themselves are not checked (speed is the bench's job).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

function measure(script: string, params: Record<string, unknown>, nodeArgs: string[] = []): Record<string, number> {
  const r = spawnSync(process.execPath, [...nodeArgs, path.join(root, 'bench', script), 'driver', JSON.stringify({ childCpu: -1, ...params })], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const last = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(last) as Record<string, number>;
}

describe('bench peers', () => {
  it('the Node-API floor measures round trips with and without a descriptor', () => {
    expect(measure('peer-napi.mjs', { case: 'rtt', warmup: 200, count: 2000 }).us).toBeGreaterThan(0);
    expect(measure('peer-napi.mjs', { case: 'fd', warmup: 200, count: 2000 }).rtps).toBeGreaterThan(0);
  });

  it('the library measures blocking round trips with and without a descriptor', () => {
    expect(measure('library.mjs', { case: 'rtt-sync', warmup: 200, count: 2000 }, ['--expose-gc']).us).toBeGreaterThan(0);
    expect(measure('library.mjs', { case: 'fd-sync', warmup: 200, count: 2000 }, ['--expose-gc']).rtps).toBeGreaterThan(0);
  });
});
