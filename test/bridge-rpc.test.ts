/**
 * RPC from a renderer through the preload bridge, under plain Node: `serveToWindow` in main (with
 * a fake `electron`, as in test/bridge.test.ts) against `rendererRpc` over the preload's
 * BridgeClient, over real worker_threads MessagePorts.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { IpcError } from '../src/shared/errors.js';
import { defineProtocol, RpcError } from '../src/shared/protocol.js';
import { exposeToWindow, setElectronForTesting, type MainPortLike } from '../src/main/bridge.js';
import { MAX_QUEUED_FRAMES, serveToWindow } from '../src/main/rpc/window.js';
import type { RpcHandlers } from '../src/main/rpc/server.js';
import { BridgeClient, bridgePortChannel, rendererRpc } from '../src/preload/index.js';
import { FakeHandle, FakeWebContents, installFakeElectron, mainSide, until } from './helpers.js';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

const Files = defineProtocol({
  methods: {
    read: { input: z.object({ path: z.string() }), output: z.string() },
    index: { input: z.object({ steps: z.number().int().max(10) }), output: z.literal('done'), progress: z.number() },
    wait: { input: z.object({}), output: z.string() },
    stubborn: { input: z.object({}), output: z.string() },
    ping: { output: z.literal('pong') },
    open: { input: z.object({}), output: z.unknown() },
    liar: { input: z.object({}), output: z.string() },
  },
  events: { changed: z.object({ path: z.string() }) },
});


/** What the handlers saw in main. */
interface Seen {
  reads: string[];
  aborts: unknown[];
  running: number;
  maxRunning: number;
  /** Ends the `stubborn` handler, which ignores its signal. */
  release?: () => void;
}

function handlers(seen: Seen, gate?: Promise<void>): RpcHandlers<typeof Files> {
  return {
    read: ({ path }) => {
      seen.reads.push(path);
      return `contents of ${path}`;
    },
    index: async ({ steps }, { progress }) => {
      for (let i = 1; i <= steps; i++) {
        progress(i);
        await tick(1);
      }
      return 'done' as const;
    },
    wait: (_input, { signal }) =>
      new Promise((resolve, reject) => {
        seen.running++;
        seen.maxRunning = Math.max(seen.maxRunning, seen.running);
        const finish = () => seen.running--;
        void gate?.then(() => {
          finish();
          resolve('released');
        });
        signal.addEventListener('abort', () => {
          seen.aborts.push(signal.reason);
          finish();
          reject(signal.reason);
        });
      }),
    stubborn: () => new Promise<string>((resolve) => (seen.release = () => resolve('late'))),
    ping: () => 'pong',
    open: (_input, { progress }) => {
      try {
        progress(new FakeHandle());
      } catch (e) {
        seen.aborts.push(e);
      }
      return { fd: new FakeHandle() };
    },
    liar: () => 42 as never,
  };
}

// ---- fake electron (as in test/bridge.test.ts)

const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
  setElectronForTesting(undefined);
  delete (globalThis as Record<string, unknown>).files;
});

/** What the preload does for the page: `window.files` is the document's channel. */
function exposeInPage(doc: BridgeClient<unknown, unknown>) {
  (globalThis as Record<string, unknown>).files = doc.api();
}

function fakeElectron() {
  return installFakeElectron(ports);
}

/** A window serving Files as `files`, one loaded document, and a renderer client on it. */
function setup(options: { maxConcurrentCalls?: number; gate?: Promise<void>; maxPendingCalls?: number } = {}) {
  const ipcMain = fakeElectron();
  const wc = new FakeWebContents();
  const seen: Seen = { reads: [], aborts: [], running: 0, maxRunning: 0 };
  const mainErrors: Error[] = [];
  const server = serveToWindow(Files, wc as never, handlers(seen, options.gate), {
    name: 'files',
    maxConcurrentCalls: options.maxConcurrentCalls,
    onError: (e) => mainErrors.push(e),
  });
  const doc = wc.load(ipcMain, 'files');
  exposeInPage(doc);
  const rendererErrors: Error[] = [];
  const client = rendererRpc(Files, 'files', { onError: (e) => rendererErrors.push(e), maxPendingCalls: options.maxPendingCalls });
  return { ipcMain, wc, seen, server, doc, client, mainErrors, rendererErrors };
}

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('rendererRpc + serveToWindow', () => {
  it('calls a handler in main and resolves with its result, checked by the output schema in the renderer', async () => {
    const { client, seen, server } = setup();
    expect(server.connected).toBe(true);
    await expect(client.call('read', { path: 'a.txt' })).resolves.toBe('contents of a.txt');
    await expect(client.call('ping')).resolves.toBe('pong');
    expect(seen.reads).toEqual(['a.txt']);
    const bad = await rejection(client.call('liar', {}));
    expect(bad).toBeInstanceOf(IpcError);
    expect(bad.code).toBe('INVALID');
    expect(bad.message).toMatch(/the result of liar failed its output schema/);
  });

  it('checks inputs in main: the renderer gets RpcError INVALID with issues and the handler never runs', async () => {
    const { client, seen } = setup();
    const e = await rejection(client.call('read', { path: 7 } as never));
    expect(e).toBeInstanceOf(RpcError);
    expect(e).toMatchObject({ code: 'INVALID', remote: true, method: 'read' });
    expect(e.issues[0].path).toEqual(['path']);
    // A method without an input schema takes no input from a renderer.
    const noInput = await rejection(client.call('ping', { sneaky: true } as never));
    expect(noInput).toMatchObject({ code: 'INVALID', message: expect.stringMatching(/takes no input/) });
    expect(seen.reads).toEqual([]);
  });

  it("timeouts and aborts reject in the renderer and abort the handler's signal in main (CANCELLED)", async () => {
    const { client, seen, server } = setup();
    const timedOut = await rejection(client.call('wait', {}, { timeout: 30 }));
    expect(timedOut).toMatchObject({ code: 'TIMEOUT' });
    const ac = new AbortController();
    const aborted = client.call('wait', {}, { signal: ac.signal });
    await tick();
    expect(server.inFlight).toBe(1);
    ac.abort('user left');
    expect(await rejection(aborted)).toBe('user left');
    await tick();
    expect(seen.aborts).toHaveLength(2);
    for (const reason of seen.aborts) expect(reason).toMatchObject({ name: 'RpcError', code: 'CANCELLED' });
    expect(server.inFlight).toBe(0);
    expect(client.pending).toBe(0);
  });

  it('delivers progress values in order before the result', async () => {
    const { client } = setup();
    const got: number[] = [];
    await expect(client.call('index', { steps: 4 }, { onProgress: (n) => got.push(n) })).resolves.toBe('done');
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('sends events to a document that listens, as listeners and as an iterator', async () => {
    const { client, server } = setup();
    expect(server.emit('changed', { path: 'early' })).toBe(false); // nobody listens yet
    const seen: string[] = [];
    const off = client.on('changed', ({ path }) => seen.push(path));
    await tick();
    expect(server.emit('changed', { path: 'a' })).toBe(true);
    await tick();
    const it = client.events('changed');
    await tick();
    server.emit('changed', { path: 'b' });
    await expect(it.next()).resolves.toEqual({ value: { path: 'b' }, done: false });
    await it.return!();
    off();
    await tick();
    expect(seen).toEqual(['a', 'b']);
    expect(server.emit('changed', { path: 'c' })).toBe(false); // unsubscribed in main
    expect(() => server.emit('nope' as never, {} as never)).toThrow(TypeError);
  });

  it('refuses handles: a result, a progress value or an event holding one never reaches the renderer', async () => {
    const { client, server, seen } = setup();
    const e = await rejection(client.call('open', {}, { onProgress: () => {} }));
    expect(e).toMatchObject({ name: 'RpcError', code: 'UNSERIALIZABLE' });
    expect(e.message).toMatch(/value\.output\.fd \(file\) cannot be sent to a renderer/);
    expect(seen.aborts[0]).toMatchObject({ code: 'UNSERIALIZABLE' }); // progress() threw in the handler
    client.on('changed', () => {});
    await tick();
    expect(() => server.emit('changed', { path: new FakeHandle() } as never)).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }));
  });

  it('a navigation rejects the calls in flight with DISCONNECTED, aborts their handlers, and serves the next document afresh', async () => {
    const { ipcMain, wc, client, seen, server } = setup();
    const inFlight = [rejection(client.call('wait', {})), rejection(client.call('wait', {}))];
    await tick();
    expect(server.inFlight).toBe(2);
    const doc2 = wc.load(ipcMain, 'files');
    for (const p of inFlight) {
      const e = await p;
      expect(e).toBeInstanceOf(IpcError);
      expect(e).toMatchObject({ code: 'DISCONNECTED', message: 'window.files: the window navigated' });
    }
    expect(client.closed).toBe(true);
    await tick();
    expect(seen.aborts.map((r: any) => r.code)).toEqual(['DISCONNECTED', 'DISCONNECTED']);
    expect(server.inFlight).toBe(0);
    exposeInPage(doc2);
    const client2 = rendererRpc(Files, 'files');
    await expect(client2.call('read', { path: 'b' })).resolves.toBe('contents of b');
  });

  it("closing the window rejects the calls in flight and closes the server; server.close() does too, aborting handlers with CLOSED", async () => {
    const a = setup();
    const p = a.client.call('wait', {});
    await tick();
    a.wc.destroy();
    expect(await rejection(p)).toMatchObject({ code: 'DISCONNECTED', message: 'window.files: the window was closed' });
    await tick();
    expect(a.seen.aborts[0]).toMatchObject({ code: 'DISCONNECTED' });
    expect(a.server.closed).toBe(true);
    expect(a.server.emit('changed', { path: 'x' })).toBe(false);

    const b = setup();
    const q = b.client.call('wait', {});
    await tick();
    b.server.close();
    expect(await rejection(q)).toMatchObject({ code: 'DISCONNECTED', message: 'window.files: main closed the channel' });
    expect(b.seen.aborts[0]).toMatchObject({ code: 'CLOSED' });
    await expect(b.server.whenConnected()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it("client.close() rejects with CLOSED, cancels the calls in main, and a later client on the channel is served", async () => {
    const { client, seen, server } = setup();
    const q = rejection(client.call('stubborn', {})); // id 1; ignores its signal: runs on after the cancel
    const p = rejection(client.call('wait', {}));
    await tick();
    expect(() => rendererRpc(Files, 'files')).toThrow(/window\.files already has an RPC client/);
    client.close();
    expect(await p).toMatchObject({ code: 'CLOSED' });
    expect(await q).toMatchObject({ code: 'CLOSED' });
    await tick();
    expect(seen.aborts[0]).toMatchObject({ code: 'CANCELLED' });
    expect(server.inFlight).toBe(1);
    // Its ids continue: main refuses an id the previous client still has running (the stubborn call).
    const again = rendererRpc(Files, 'files');
    await expect(again.call('read', { path: 'c' }, { timeout: 1000 })).resolves.toBe('contents of c');
    seen.release!();
    await tick();
    expect(server.inFlight).toBe(0);
  });

  it("a refusal by main (a rejected notice carrying the frame's id) rejects that call at once", async () => {
    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    exposeToWindow(wc as never, { name: 'plain', onError: () => {} }); // accepts nothing from the renderer
    const doc = wc.load(ipcMain, 'plain');
    const client = rendererRpc(Files, doc.api(), { onError: () => {} });
    const started = Date.now();
    const e = await rejection(client.call('read', { path: 'x' }, { timeout: 5000 }));
    expect(e).toMatchObject({ name: 'RpcError', code: 'DISCONNECTED', method: 'read', remote: true });
    expect(e.message).toMatch(/main refused this call: window\.plain: main does not accept messages/);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(client.pending).toBe(0);
  });
});

describe('a hostile renderer', () => {
  it('bad frames are refused back to the renderer, reported in main, and serving goes on', async () => {
    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    const seen: Seen = { reads: [], aborts: [], running: 0, maxRunning: 0 };
    const mainErrors: Error[] = [];
    serveToWindow(Files, wc as never, handlers(seen), { name: 'files', onError: (e) => mainErrors.push(e) });
    const doc = wc.load(ipcMain, 'files');
    const notices: Array<{ code: string; id?: number }> = [];
    doc.onError((r) => notices.push(r));
    const bad: unknown[] = [
      'hello',
      [1, 2],
      { rpc: 'nope' },
      { rpc: 'call', id: -1, method: 'read', input: {} },
      { rpc: 'call', id: 3, method: 5, input: {} },
      { rpc: 'call', id: 4, method: 'x'.repeat(200), input: {} },
      { rpc: 'call', id: 5, method: 'read', input: {}, extra: true },
      { rpc: 'sub', event: 'nope' }, // well formed: the server reports it
      { rpc: 'toString' },
    ];
    for (const frame of bad) doc.send(frame);
    doc.send({ rpc: 'call', id: 9, method: 'toString', input: {} }); // unknown method: answered
    doc.send({ rpc: 'call', id: 10, method: 'read', input: { path: 'ok' } });
    const replies = [await doc.recv({ timeout: 2000 }), await doc.recv({ timeout: 2000 })];
    expect(replies).toEqual([
      expect.objectContaining({ rpc: 'error', id: 9, code: 'UNKNOWN_METHOD' }),
      { rpc: 'result', id: 10, output: 'contents of ok' },
    ]);
    expect(notices.map((n) => n.code)).toEqual(Array(8).fill('INVALID'));
    expect(notices.map((n) => n.id)).toEqual([undefined, undefined, undefined, undefined, 3, 4, 5, undefined]);
    expect(mainErrors).toHaveLength(9);
    expect(mainErrors.filter((e) => /subscription to "nope"/.test(e.message))).toHaveLength(1);
    expect(seen.reads).toEqual(['ok']);
  });

  it('a flood of calls runs at most maxConcurrentCalls handlers; the rest are refused BUSY and every call settles', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { client, seen } = setup({ maxConcurrentCalls: 4, gate, maxPendingCalls: 10_000 });
    const settled = Promise.allSettled(Array.from({ length: 3000 }, () => client.call('wait', {})));
    await tick(200);
    expect(seen.maxRunning).toBe(4);
    release();
    const results = await settled;
    const ok = results.filter((r) => r.status === 'fulfilled');
    const busy = results.filter((r) => r.status === 'rejected' && (r.reason as RpcError).code === 'BUSY');
    expect(ok).toHaveLength(4);
    expect(busy).toHaveLength(2996);
    expect(seen.maxRunning).toBe(4);
    expect(client.pending).toBe(0);
  });

  it('a flood of malformed frames is refused one by one without stopping the server', async () => {
    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    const seen: Seen = { reads: [], aborts: [], running: 0, maxRunning: 0 };
    let reported = 0;
    serveToWindow(Files, wc as never, handlers(seen), { name: 'files', onError: () => reported++ });
    const doc = wc.load(ipcMain, 'files');
    let notices = 0;
    doc.onError(() => notices++);
    for (let i = 0; i < 5000; i++) doc.send({ rpc: 'call', id: i, method: 42 });
    doc.send({ rpc: 'call', id: 1, method: 'read', input: { path: 'after' } });
    await expect(doc.recv({ timeout: 5000 })).resolves.toEqual({ rpc: 'result', id: 1, output: 'contents of after' });
    expect(reported).toBe(5000);
    await tick();
    expect(notices).toBe(5000);
  });

  it('frames that arrive faster than the server reads them are bounded: over MAX_QUEUED_FRAMES each is refused BUSY with its id', async () => {
    // A port that hands main a burst of messages in one go, with no microtask in between (the
    // server's loop takes one frame per microtask, so only such a burst can outrun it).
    const ipcMain = new EventEmitter();
    let deliver: ((event: { data: unknown }) => void) | undefined;
    class MessageChannelMain {
      port1: MainPortLike;
      port2: MessagePort;
      constructor() {
        const { port1, port2 } = new MessageChannel();
        ports.push(port1, port2);
        const real = mainSide(port1);
        this.port1 = {
          ...real,
          on(event: 'message' | 'close', listener: never) {
            if (event === 'message') deliver = listener;
            else real.on('close', listener);
            return this;
          },
          removeListener(event: 'message' | 'close', listener: never) {
            if (event === 'message') deliver = undefined;
            else real.removeListener('close', listener);
            return this;
          },
        } as MainPortLike;
        this.port2 = port2;
      }
    }
    setElectronForTesting({ ipcMain, MessageChannelMain });
    const wc = new FakeWebContents();
    const seen: Seen = { reads: [], aborts: [], running: 0, maxRunning: 0 };
    let reported = 0;
    const server = serveToWindow(Files, wc as never, handlers(seen), { name: 'files', maxConcurrentCalls: 2000, onError: () => reported++ });
    const doc = wc.load(ipcMain, 'files');
    const notices: Array<{ code: string; id?: number }> = [];
    doc.onError((r) => notices.push(r));
    // The first frame goes straight to the waiting loop; the next MAX_QUEUED_FRAMES wait; the rest are refused.
    const taken = MAX_QUEUED_FRAMES + 1;
    for (let id = 1; id <= taken + 500; id++) deliver!({ data: { rpc: 'call', id, method: 'wait', input: {} } });
    // Until every refusal came back (a loaded machine needs more than a few ms), then a little more
    // for any notice too many.
    await until(() => notices.length >= 500);
    await tick(100);
    expect(server.inFlight).toBe(taken);
    expect(notices).toHaveLength(500);
    expect(notices[0]).toMatchObject({ code: 'BUSY', id: taken + 1 });
    expect(notices.at(-1)).toMatchObject({ code: 'BUSY', id: taken + 500 });
    expect(reported).toBe(500);
    server.close();
  });
});

describe('the bundled preload (dist/preload/index.cjs)', () => {
  it('its rendererRpc works in a sandbox-like context with only `electron` to require', async () => {
    const file = fileURLToPath(new URL('../dist/preload/index.cjs', import.meta.url));
    const exposed: Record<string, any> = {};
    const handlers2 = new Map<string, (event: { ports: unknown[] }) => void>();
    const electron = {
      contextBridge: { exposeInMainWorld: (key: string, api: unknown) => (exposed[key] = api) },
      ipcRenderer: { on: (channel: string, h: (event: { ports: unknown[] }) => void) => handlers2.set(channel, h), send: () => {} },
    };
    const required: string[] = [];
    const module = { exports: {} as Record<string, any> };
    vm.runInNewContext(
      readFileSync(file, 'utf8'),
      {
        module,
        exports: module.exports,
        require: (id: string) => {
          required.push(id);
          if (id !== 'electron') throw new Error(`a sandboxed preload cannot require ${id}`);
          return electron;
        },
        process: { type: 'renderer', contextIsolated: true, argv: ['electron', '--electron-ipc-channel-expose=files'] },
        console,
        setTimeout,
        clearTimeout,
      },
      { filename: file },
    );
    expect(required).toEqual(['electron']);

    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    wc.postMessage = (_channel, _message, transfer) => handlers2.get(bridgePortChannel('files'))!({ ports: [transfer[0]] });
    wc.url = 'file:///index.html';
    const seen: Seen = { reads: [], aborts: [], running: 0, maxRunning: 0 };
    const server = serveToWindow(Files, wc as never, handlers(seen), { name: 'files' });
    void ipcMain;
    expect(server.connected).toBe(true);
    const errors: Error[] = [];
    const client = module.exports.rendererRpc(Files, exposed.files, { onError: (e: Error) => errors.push(e) });
    await expect(client.call('read', { path: 'p' }, { timeout: 2000 })).resolves.toBe('contents of p');
    const e = await rejection(client.call('read', { path: 1 }));
    expect(e).toMatchObject({ name: 'RpcError', code: 'INVALID' });
    expect(errors).toEqual([]);
    server.close();
  });
});
