// The receive path keeps no reference to a message once it is delivered: a received value
// dropped without close() is released by the garbage-collection safety net.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('what recv() delivered', () => {
  it('is not kept alive by the receive path once the program drops it', { skip: process.platform !== 'linux' }, () => {
    const script = fileURLToPath(new URL('./fixtures/receiver/retention.mjs', import.meta.url));
    const r = spawnSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    const { base, held, after } = JSON.parse(r.stdout) as { base: number; held: number; after: number };
    expect(held).toBeGreaterThan(base); // the received sender's descriptor was open
    expect(after).toBe(base);
  });
});
