/**
 * The example app (examples/electron-app) without Electron: its main logic and helpers as real
 * processes, main serving the App protocol with serveToWindow (a fake `electron`, as in
 * test/bridge-rpc.test.ts), and the page's rendererRpc over the preload's BridgeClient on real
 * worker_threads MessagePorts. The e2e/ scenarios: open a file, see progress and results, errors
 * with a code, crash and recover, helper pids distinct from main. Needs `npx tsup` (helpers load
 * dist/main/index.js).
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setElectronForTesting } from '../src/main/bridge.js';
import { serveToWindow, type WindowRpcServer } from '../src/main/rpc/window.js';
import { BRIDGE_OPEN_CHANNEL, BridgeClient, rendererRpc, type RendererPortLike } from '../src/preload/index.js';
import { installFakeElectron } from './helpers.js';

const appDir = fileURLToPath(new URL('../examples/electron-app/', import.meta.url));
const T = { timeout: 60_000 };

/** A webContents with one document whose preload exposes `window.inspector`. */
class FakeWebContents extends EventEmitter {
  readonly id = 1;
  readonly mainFrame = { processId: 4, routingId: 1 };
  client: BridgeClient<unknown, unknown> | undefined;
  getURL = () => 'file:///index.html';
  isLoadingMainFrame = () => false;
  isDestroyed = () => false;
  postMessage(_channel: string, _message: unknown, transfer: MessagePort[]) {
    this.client?.attach(transfer[0] as unknown as RendererPortLike);
  }
  load(ipcMain: EventEmitter) {
    this.client = new BridgeClient('window.inspector');
    ipcMain.emit(BRIDGE_OPEN_CHANNEL, { sender: this, senderFrame: { ...this.mainFrame } }, 'inspector');
    (globalThis as Record<string, unknown>).inspector = this.client.api();
  }
}

describe('file inspector, headless', () => {
  const ports: MessagePort[] = [];
  let dir: string;
  let small: string;
  let big: string;
  let inspector: any;
  let server: WindowRpcServer<any>;
  let page: any; // rendererRpc(App, 'inspector')
  const events: Array<{ name: string; [k: string]: any }> = [];
  const mainErrors: Error[] = [];
  const pageErrors: Error[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'eic-headless-'));
    small = path.join(dir, 'small.txt');
    writeFileSync(small, 'one fish two fish\nred fish blue fish\n');
    big = path.join(dir, 'big.txt');
    writeFileSync(big, 'lorem ipsum dolor sit amet\n'.repeat(300_000));

    const ipcMain = installFakeElectron(ports);

    // What main.mjs does, with the example's own modules.
    const { Inspector, appHandlers } = await import(path.join(appDir, 'inspector.mjs'));
    const { App } = await import(path.join(appDir, 'protocol.mjs'));
    inspector = new Inspector({ onEvent: (name: string, payload: object) => server.emit(name as never, payload as never) });
    const wc = new FakeWebContents();
    server = serveToWindow(App, wc as never, appHandlers(inspector), { name: 'inspector', onError: (e) => mainErrors.push(e) });
    wc.load(ipcMain);
    // What renderer.js does.
    page = rendererRpc(App, 'inspector', { timeout: 30_000, onError: (e) => pageErrors.push(e) });
    page.on('helper', (e: object) => events.push({ name: 'helper', ...e }));
    page.on('crash', (e: object) => events.push({ name: 'crash', ...e }));
    await page.call('status'); // after the subscriptions: main has them before the helpers start
    await inspector.start();
  }, 30_000);

  afterAll(async () => {
    page?.close();
    server?.close();
    await inspector?.close();
    setElectronForTesting(undefined);
    delete (globalThis as Record<string, unknown>).inspector;
    for (const p of ports) p.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs main and the two helpers as distinct processes, locked down when the kernel can; the page hears them start', T, async () => {
    const s = await page.call('status');
    expect(s.main).toBe(process.pid);
    expect(new Set([s.main, s.parser, s.indexer]).size).toBe(3);
    if (s.lockdown.parser.enforced) expect(s.probe).toMatch(/EACCES/);
    expect(events.filter((e) => e.name === 'helper').map((e) => [e.role, e.pid])).toEqual([
      ['indexer', s.indexer],
      ['parser', s.parser],
    ]);
  });

  it('a call from the page reaches the helpers and comes back with the result, with progress on the way', T, async () => {
    const progress: any[] = [];
    const r = await page.call('inspect', { path: small }, { onProgress: (p: any) => progress.push(p) });
    expect(r).toMatchObject({ name: 'small.txt', bytes: 37, lines: 2, words: 8, chunks: 1 });
    expect(r.top[0]).toEqual(['fish', 4]);
    expect(progress).toEqual([{ chunks: 1, bytes: 37, words: 8 }]);
  });

  it('errors reach the page with a code: bad input is refused in main, a missing file is ENOENT', T, async () => {
    const bad = await page.call('inspect', { path: 42 }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'RpcError', code: 'INVALID', remote: true });
    expect(bad.issues[0]).toMatchObject({ path: ['path'], message: /expected a path/ });
    const missing = await page.call('inspect', { path: path.join(dir, 'nope.txt') }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'RpcError', code: 'ENOENT', remote: true });
    // A message that is not an App call is refused too, and the server keeps serving.
    const errors: unknown[] = [];
    const raw = (globalThis as any).inspector;
    const off = raw.onError((r: unknown) => errors.push(r));
    raw.send({ op: 'exec', cmd: 'rm -rf /' });
    await expect(page.call('status')).resolves.toMatchObject({ main: process.pid });
    expect(errors).toHaveLength(1);
    expect(pageErrors.map((e) => e.message)).toEqual([expect.stringMatching(/main rejected a message.*unknown frame type/)]);
    expect(mainErrors.length).toBeGreaterThan(0);
    off?.();
  });

  it('crashes the parser mid-file; the supervisor respawns it and the call still completes', T, async () => {
    const before = (await page.call('status')).parser;
    let crashed = false;
    const r = await page.call('inspect', { path: big }, {
      onProgress: () => {
        if (!crashed) void page.call('crash');
        crashed = true;
      },
    });
    expect(r).toMatchObject({ name: 'big.txt', lines: 300_000, words: 1_500_000 });
    const crash = events.find((e) => e.name === 'crash');
    expect(crash).toMatchObject({ role: 'parser', pid: before, how: 'killed by SIGKILL' });
    const now = await page.call('status');
    expect(now.parser).not.toBe(before);
    expect(events.filter((e) => e.name === 'helper').at(-1)).toMatchObject({ role: 'parser', pid: now.parser });
    expect(new Set([now.main, now.parser, now.indexer]).size).toBe(3);
    // The new parser serves further calls.
    await expect(page.call('inspect', { path: small })).resolves.toMatchObject({ words: 8 });
  });
});

describe('npm run demo (examples/electron-app/headless.mjs)', () => {
  it('prints pids, results, errors with codes, the crash and the recovery, and exits 0', T, async () => {
    const child = spawn(process.execPath, [path.join(appDir, 'headless.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    const code = await new Promise((r) => child.once('exit', r));
    clearTimeout(timer);
    expect(out).toMatch(/pids: main \d+, parser \d+, indexer \d+/);
    expect(out).toMatch(/result README\.md: \d+ bytes/);
    expect(out).toMatch(/RpcError ENOENT/);
    expect(out).toMatch(/RpcError INVALID/);
    expect(out).toMatch(/parser pid \d+ killed by SIGKILL/);
    expect(out).toMatch(/parser respawned as pid \d+/);
    expect(out).toMatch(/result big\.txt: \d+ bytes, 200000 lines/);
    expect(out).toMatch(/demo finished: OK/);
    expect(code).toBe(0);
  });
});
