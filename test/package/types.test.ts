/**
 * Item "published .d.ts imports electron" of issue 14: a Node-only TypeScript user, without
 * electron installed, compiles code that imports the main, shared and preload entries with
 * `--strict` and without `skipLibCheck`, from an ESM file and from a CommonJS file (each module
 * format must get types of its own format, else TS1479: package.json's exports give `.d.cts` to
 * `require`).
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, packAndInstall } from './pack.js';
import type { Installed } from './pack.js';

const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

const ESM_SOURCE = `
import { channel, IpcSender, isIpcError, findHandle, exposeToWindow, spawnHelper } from 'electron-ipc-channel';
import type { IpcErrorCode, WindowBridge } from 'electron-ipc-channel';
import { IpcError, encodeMessage, DEFAULT_LIMITS } from 'electron-ipc-channel/shared';
import { getBridge, exposeIpcChannels } from 'electron-ipc-channel/preload';

export async function demo(): Promise<number> {
  const [tx, rx] = channel<{ n: number; reply?: IpcSender<string> }>();
  tx.send({ n: 1 });
  const got: { n: number } = await rx.recv();
  const code: IpcErrorCode = 'CLOSED';
  const e: unknown = new IpcError(code, 'x');
  if (isIpcError(e, 'CLOSED')) console.log(e.code, findHandle({ tx }));
  const m = encodeMessage({ a: 1 });
  const bridge: WindowBridge<string> | undefined = undefined;
  void [exposeToWindow, spawnHelper, getBridge, exposeIpcChannels, m, bridge, DEFAULT_LIMITS.maxMessageBytes];
  return got.n;
}
`;

const CJS_SOURCE = `
import { channel, isIpcError } from 'electron-ipc-channel';
import { IpcError } from 'electron-ipc-channel/shared';
import { getBridge } from 'electron-ipc-channel/preload';

export function demo(): boolean {
  const [tx] = channel<string>();
  tx.close();
  void getBridge;
  return isIpcError(new IpcError('CLOSED', 'closed'));
}
`;

let pkg: Installed;

beforeAll(() => {
  pkg = packAndInstall({ type: 'module' });
  pkg.link('@types/node');
  pkg.write('src/esm.ts', ESM_SOURCE);
  pkg.write('src/cjs.cts', CJS_SOURCE);
}, 60_000);

afterAll(() => pkg?.remove());

function tsc(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [TSC, ...args], { cwd: pkg.app, encoding: 'utf8', timeout: 85_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('types of the packed package, without electron installed', () => {
  it('electron cannot be resolved from the project (the precondition)', () => {
    expect(() => createRequire(path.join(pkg.app, 'x.js')).resolve('electron')).toThrow();
    expect(() => createRequire(path.join(pkg.app, 'x.js')).resolve('electron-ipc-channel')).not.toThrow();
  });

  it('compiles an ESM file and a CommonJS file with --strict, module node16, no skipLibCheck, no DOM lib', () => {
    // node16 (not nodenext) so that a CommonJS file given ESM types fails (TS1479) as it would
    // for a Node 20 user; nodenext lets a .cts file require ESM. `--lib ES2022`: a Node-only
    // project has no DOM types, so the .d.ts must not need them.
    const r = tsc([
      ...['--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'ES2022', '--lib', 'ES2022', '--types', 'node', '--module', 'node16'],
      ...['src/esm.ts', 'src/cjs.cts'],
    ]);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  }, 90_000);
});
