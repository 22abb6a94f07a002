/**
 * The end-to-end scenarios of e2e/ (open a file, see results, crash and recover, helper pids
 * distinct from main) without Electron: the example app's main logic and helpers as real
 * processes, and the renderer's leg over a real MessagePort pair (worker_threads) through the
 * same bridge code. Needs `npm run build:ts` (helpers load dist/main/index.js).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachPort, type MainPortLike, type PortLink } from '../src/main/bridge.js';
import { BridgeClient, type RendererPortLike } from '../src/preload/index.js';
import { mainSide } from './helpers.js';

const appDir = fileURLToPath(new URL('../examples/electron-app/', import.meta.url));
const T = { timeout: 60_000 };

type AppEvent = { type: string; [k: string]: any };


describe('file inspector, headless', () => {
  let dir: string;
  let small: string;
  let big: string;
  let inspector: any;
  let link: PortLink<AppEvent>;
  let renderer: BridgeClient<unknown, AppEvent>;
  let ports: MessagePort[];
  const events: AppEvent[] = [];
  const rejected: Array<{ code: string; message: string }> = [];

  /** Waits for the renderer to see an event matching `pred` (searching what it already saw). */
  function seen(pred: (e: AppEvent) => boolean, ms = 20_000): Promise<AppEvent> {
    const start = Date.now();
    return new Promise((resolve, reject) => {
      const poll = () => {
        const hit = events.find(pred);
        if (hit) return resolve(hit);
        if (Date.now() - start > ms) return reject(new Error(`not seen in ${ms} ms; events: ${JSON.stringify(events.map((e) => e.type))}`));
        setTimeout(poll, 10);
      };
      poll();
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'eic-headless-'));
    small = path.join(dir, 'small.txt');
    writeFileSync(small, 'one fish two fish\nred fish blue fish\n');
    big = path.join(dir, 'big.txt');
    writeFileSync(big, 'lorem ipsum dolor sit amet\n'.repeat(300_000));

    const { Inspector } = await import(path.join(appDir, 'inspector.mjs'));
    const { Request } = await import(path.join(appDir, 'protocol.mjs'));
    const { port1, port2 } = new MessageChannel();
    ports = [port1, port2];
    // What main.mjs does with exposeToWindow, on a MessagePort pair.
    inspector = new Inspector({ onEvent: (e: AppEvent) => link.post(e) });
    link = attachPort<any, AppEvent>(mainSide(port1), {
      schema: Request,
      label: 'window.inspector',
      onError: () => {},
      onMessage: (req: { op: string; path?: string }) => {
        if (req.op === 'open') void inspector.inspect(req.path);
        else if (req.op === 'crash') inspector.crashParser();
        else if (req.op === 'pids') link.post({ type: 'pids', ...inspector.pids() });
      },
    });
    renderer = new BridgeClient('window.inspector');
    renderer.attach(port2 as unknown as RendererPortLike);
    renderer.onMessage((e) => events.push(e));
    renderer.onError((r) => rejected.push(r));
    await inspector.start();
  }, 30_000);

  afterAll(async () => {
    await inspector?.close();
    for (const p of ports ?? []) p.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs main and the two helpers as distinct processes, both locked down when the kernel can', T, async () => {
    renderer.send({ op: 'pids' });
    const pids = await seen((e) => e.type === 'pids');
    expect(pids.main).toBe(process.pid);
    expect(new Set([pids.main, pids.parser, pids.indexer]).size).toBe(3);
    const parser = await seen((e) => e.type === 'helper' && e.role === 'parser');
    expect(parser.pid).toBe(pids.parser);
    if (parser.lockdown.enforced) expect(parser.probe).toMatch(/EACCES/);
  });

  it('opens a file the renderer names and shows the results', T, async () => {
    renderer.send({ op: 'open', path: small });
    const r = await seen((e) => e.type === 'result' && e.name === 'small.txt');
    expect(r).toMatchObject({ bytes: 37, lines: 2, words: 8 });
    expect(r.top[0]).toEqual(['fish', 4]);
  });

  it('rejects malformed renderer messages in main and tells the renderer', T, async () => {
    renderer.send({ op: 'open', path: 42 });
    renderer.send({ op: 'exec', cmd: 'rm -rf /' });
    await new Promise((r) => setTimeout(r, 100));
    expect(rejected.map((r) => r.code)).toEqual(['INVALID', 'INVALID']);
    expect(rejected[0]!.message).toMatch(/path: expected a path/);
    expect(rejected[1]!.message).toMatch(/op: expected 'open', 'crash' or 'pids'/);
  });

  it('crashes the parser mid-file, respawns it and finishes the file', T, async () => {
    const before = (await seen((e) => e.type === 'pids')).parser as number;
    renderer.send({ op: 'open', path: big });
    await seen((e) => e.type === 'progress' && e.name === 'big.txt');
    renderer.send({ op: 'crash' });
    const crash = await seen((e) => e.type === 'crash' && e.role === 'parser');
    expect(crash.pid).toBe(before);
    expect(crash.how).toBe('killed by SIGKILL');
    const recovered = await seen((e) => e.type === 'recovered');
    expect(recovered.pid).not.toBe(before);
    const r = await seen((e) => e.type === 'result' && e.name === 'big.txt', 30_000);
    expect(r).toMatchObject({ lines: 300_000, words: 1_500_000 });
    renderer.send({ op: 'pids' });
    await new Promise((res) => setTimeout(res, 100));
    const now = events.filter((e) => e.type === 'pids').at(-1)!;
    expect(now.parser).toBe(recovered.pid);
    expect(new Set([now.main, now.parser, now.indexer]).size).toBe(3);
    // The new parser serves further requests.
    renderer.send({ op: 'open', path: small });
    await seen((e) => e.type === 'result' && e.name === 'small.txt' && e.id > r.id);
  });
});

describe('npm run demo (examples/electron-app/headless.mjs)', () => {
  it('prints pids, results, the crash and the recovery, and exits 0', T, async () => {
    const child = spawn(process.execPath, [path.join(appDir, 'headless.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    const code = await new Promise((r) => child.once('exit', r));
    clearTimeout(timer);
    expect(out).toMatch(/pids: main \d+, parser \d+, indexer \d+/);
    expect(out).toMatch(/result #1 README\.md: \d+ bytes/);
    expect(out).toMatch(/parser pid \d+ killed by SIGKILL/);
    expect(out).toMatch(/parser respawned as pid \d+/);
    expect(out).toMatch(/result #\d+ big\.txt: \d+ bytes, 200000 lines/);
    expect(out).toMatch(/demo finished: OK/);
    expect(code).toBe(0);
  });
});
