// examples/rpc runs as documented (needs `npm run build:ts`: inside the repository
// 'electron-ipc-channel' resolves to dist/ through Node's package self-reference) and prints what
// each step promises: a pool of two helpers answering, progress, cancellation by timeout, a
// killed helper replaced, a remote error's code without its stack.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

describe('examples/rpc', () => {
  it('runs to "finished: OK" with every step as promised', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'examples', 'rpc', 'main.mjs')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toContain('pool members answering: 2');
    expect(out).toMatch(/progress 25, 50, 75, 100/);
    expect(out).toContain('cancelled: TIMEOUT');
    expect(out).toMatch(/after the crash: answering; exits: signal SIGKILL, restart: true/);
    expect(out).toContain('remote error: BAD_ROUNDS (rounds must be an integer >= 4)');
    expect(out).not.toMatch(/at .*hasher\.mjs/);
    expect(out).toContain('rpc example finished: OK');
  }, 70_000);
});
