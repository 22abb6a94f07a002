/**
 * The renderer bridge under plain Node: main's pump (attachPort, pumpToPort, exposeToWindow with a
 * fake `electron`) against the preload's BridgeClient over real worker_threads MessagePorts.
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { IpcError } from '../src/shared/errors.js';
import {
  BRIDGE_OPEN_CHANNEL as MAIN_OPEN,
  attachPort,
  bridgePortChannel as mainPortChannel,
  closeHandles,
  exposeToWindow,
  findHandle,
  pumpToPort,
  setElectronForTesting,
  type ReceiverLike,
} from '../src/main/bridge.js';
import {
  BRIDGE_OPEN_CHANNEL as PRELOAD_OPEN,
  BridgeClient,
  bridgePortChannel as preloadPortChannel,
  getBridge,
  type RendererPortLike,
} from '../src/preload/index.js';
import { FakeHandle, FakeWebContents, installFakeElectron, mainSide, until } from './helpers.js';


const rendererSide = (port: MessagePort): RendererPortLike => port as unknown as RendererPortLike;
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const Req = z.object({ op: z.enum(['open', 'crash']), path: z.string().optional() });
type Req = z.infer<typeof Req>;

const ports: MessagePort[] = [];
function pair() {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  return { main: mainSide(port1), renderer: rendererSide(port2), raw: [port1, port2] as const };
}
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
  setElectronForTesting(undefined);
});

class IpcSharedMemory {
  closed = false;
  close() {
    this.closed = true;
  }
}

describe('protocol', () => {
  it('main and preload agree on channel names', () => {
    expect(PRELOAD_OPEN).toBe(MAIN_OPEN);
    expect(preloadPortChannel('files')).toBe(mainPortChannel('files'));
  });
});

describe('attachPort + BridgeClient', () => {
  it('queues renderer sends until the port arrives, validates them in main, and delivers main messages', async () => {
    const { main, renderer } = pair();
    const client = new BridgeClient<Req, string>('window.files');
    client.send({ op: 'open', path: '/a' });
    expect(client.isConnected()).toBe(false);
    const got: Req[] = [];
    const link = attachPort<Req, string>(main, { schema: Req, onMessage: (v) => got.push(v) });
    client.attach(renderer);
    expect(client.isConnected()).toBe(true);
    client.send({ op: 'crash' });
    await tick();
    expect(got).toEqual([{ op: 'open', path: '/a' }, { op: 'crash' }]);
    link.post('hello');
    link.post('world');
    await expect(client.recv()).resolves.toBe('hello');
    await expect(client.recv({ timeout: 1000 })).resolves.toBe('world');
  });

  it('rejects invalid renderer messages in main and tells the renderer, keeping later ones', async () => {
    const { main, renderer } = pair();
    const errors: Error[] = [];
    const got: Req[] = [];
    attachPort<Req, never>(main, { schema: Req, onMessage: (v) => got.push(v), onError: (e) => errors.push(e), label: 'window.files' });
    const client = new BridgeClient<unknown, never>('window.files');
    const rejected: Array<{ code: string; message: string }> = [];
    client.onError((r) => rejected.push(r));
    client.attach(renderer);
    client.send({ op: 'rm -rf', path: 1 });
    client.send({ op: 'open' });
    await tick();
    expect(got).toEqual([{ op: 'open' }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(IpcError);
    expect((errors[0] as IpcError).code).toBe('INVALID');
    expect(errors[0]!.message).toMatch(/^window\.files: .*op: /);
    expect(rejected).toEqual([{ code: 'INVALID', message: expect.stringMatching(/path: /) }]);
  });

  it('keeps the order of messages when the schema is asynchronous', async () => {
    const { main, renderer } = pair();
    let n = 0;
    const Slow: StandardSchemaV1<unknown, number> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        async validate(x) {
          await tick(x === 0 ? 30 : 1);
          n++;
          return x === 2 ? { issues: [{ message: 'no 2' }] } : { value: x as number };
        },
      },
    };
    const got: number[] = [];
    const errors: Error[] = [];
    attachPort<number, never>(main, { schema: Slow, onMessage: (v) => got.push(v), onError: (e) => errors.push(e) });
    const client = new BridgeClient<number, never>('w');
    client.onError(() => {});
    client.attach(renderer);
    for (const i of [0, 1, 2, 3]) client.send(i);
    await tick(120);
    expect(n).toBe(4);
    expect(got).toEqual([0, 1, 3]);
    expect(errors).toHaveLength(1);
  });

  it('rejects renderer messages when main accepts none', async () => {
    const { main, renderer } = pair();
    attachPort(main, { onError: () => {} });
    const client = new BridgeClient<string, never>('window.view');
    const rejected: string[] = [];
    client.onError((r) => rejected.push(r.code));
    client.attach(renderer);
    client.send('hi');
    await tick();
    expect(rejected).toEqual(['DISCONNECTED']);
  });

  it('refuses to post handles to the renderer, naming where they are', () => {
    const { main } = pair();
    const link = attachPort<never, unknown>(main);
    expect(() => link.post({ files: [1, new FakeHandle()] })).toThrow(/value\.files\[1\] \(file\) cannot be sent to a renderer/);
    expect(() => link.post(new Map([['m', new IpcSharedMemory()]]))).toThrow(TypeError);
    expect(() => link.post({ f: () => 1 })).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }));
    link.post({ plain: new Uint8Array([1, 2]) });
  });

  it('end() fails pending and later receives and sends with DISCONNECTED', async () => {
    const { main, renderer } = pair();
    const link = attachPort<never, number>(main);
    const client = new BridgeClient<string, number>('window.x');
    client.attach(renderer);
    const pending = client.recv();
    link.end('the window navigated');
    await expect(pending).rejects.toMatchObject({ code: 'DISCONNECTED', message: 'window.x: the window navigated (DISCONNECTED)' });
    await expect(client.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    expect(() => client.send('x')).toThrow(/DISCONNECTED/);
    expect(client.isConnected()).toBe(false);
    expect(link.closed).toBe(true);
  });

  it('eof() lets the renderer drain, then receives fail while sends still work', async () => {
    const { main, renderer } = pair();
    const got: string[] = [];
    const link = attachPort<string, number>(main, { schema: z.string(), onMessage: (v) => got.push(v) });
    const client = new BridgeClient<string, number>('w');
    client.attach(renderer);
    link.post(1);
    link.eof();
    await tick();
    await expect(client.recv()).resolves.toBe(1);
    await expect(client.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    client.send('still');
    await tick();
    expect(got).toEqual(['still']);
  });

  it('a new leg replaces the old one and clears end-of-stream state', async () => {
    const a = pair();
    const b = pair();
    const client = new BridgeClient<never, string>('w');
    const linkA = attachPort<never, string>(a.main);
    client.attach(a.renderer);
    linkA.end('navigated');
    await tick();
    const linkB = attachPort<never, string>(b.main);
    client.attach(b.renderer);
    linkB.post('fresh');
    await expect(client.recv()).resolves.toBe('fresh');
  });

  it('onMessage takes messages instead of recv, drains the queue, and unsubscribes', async () => {
    const { main, renderer } = pair();
    const link = attachPort<never, number>(main);
    const client = new BridgeClient<never, number>('w');
    client.attach(renderer);
    link.post(1);
    await tick();
    const seen: number[] = [];
    const off = client.onMessage((m) => seen.push(m));
    expect(seen).toEqual([1]);
    link.post(2);
    await tick();
    off();
    link.post(3);
    await tick();
    expect(seen).toEqual([1, 2]);
    await expect(client.recv()).resolves.toBe(3);
  });

  it('recv times out with TIMEOUT', async () => {
    const client = new BridgeClient<never, number>('w');
    await expect(client.recv({ timeout: 10 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(client.recv({ timeout: -1 })).rejects.toBeInstanceOf(RangeError);
  });

  it('main learns when the renderer side goes away', async () => {
    const { main, renderer } = pair();
    const onClose = vi.fn();
    const link = attachPort(main, { onClose });
    renderer.close();
    // The close event crosses threads: a loaded machine delivers it late.
    await until(() => onClose.mock.calls.length > 0);
    await tick();
    expect(onClose).toHaveBeenCalledTimes(1);
    expect(link.closed).toBe(true);
    expect(() => link.post(1)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });
});

describe('handles', () => {
  it('findHandle walks arrays, objects, maps and sets, and survives cycles', () => {
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = cyc;
    expect(findHandle(cyc)).toBeUndefined();
    expect(findHandle(new Set([1, { x: new FakeHandle() }]))).toBe('value.<item>.x (file)');
    expect(findHandle(new IpcSharedMemory())).toBe('value (IpcSharedMemory)');
    expect(findHandle(new Uint8Array(4))).toBeUndefined();
  });
  it('closeHandles closes every handle inside a value', () => {
    const h1 = new FakeHandle();
    const h2 = new IpcSharedMemory();
    closeHandles({ list: [h1], m: new Map([[1, h2]]) });
    expect(h1.closed && h2.closed).toBe(true);
  });
});

/** A ReceiverLike fed by an array; ends with DISCONNECTED. */
function fakeReceiver<T>(items: Array<T | IpcError>): ReceiverLike<T> & { closed: boolean } {
  return {
    closed: false,
    async recv() {
      await tick(1);
      const next = items.shift();
      if (next === undefined) throw new IpcError('DISCONNECTED', 'every sender closed');
      if (next instanceof IpcError) throw next;
      return next;
    },
    close() {
      this.closed = true;
    },
  };
}

describe('pumpToPort', () => {
  it('forwards messages, refuses (and closes) handles, skips bad messages, ends on DISCONNECTED', async () => {
    const { main, renderer } = pair();
    const link = attachPort<never, unknown>(main);
    const client = new BridgeClient<never, unknown>('w');
    client.attach(renderer);
    const handle = new FakeHandle();
    const errors: Error[] = [];
    let ended: Error | undefined;
    await pumpToPort(fakeReceiver<unknown>(['a', { h: handle }, new IpcError('TOO_LARGE', 'big'), 'b']), (v) => link.post(v), {
      onError: (e) => errors.push(e),
      onEnd: (e) => {
        ended = e;
        link.eof('done');
      },
    });
    expect(handle.closed).toBe(true);
    expect(errors.map((e) => e.name)).toEqual(['TypeError', 'IpcError']);
    expect(ended).toMatchObject({ code: 'DISCONNECTED' });
    await expect(client.recv()).resolves.toBe('a');
    await expect(client.recv()).resolves.toBe('b');
    await expect(client.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
  });
});

describe('getBridge', () => {
  it('says which preload call is missing', () => {
    expect(() => getBridge('files')).toThrow('window.files is missing: add `exposeIpcChannels("files")`');
    expect(() => getBridge()).toThrow('window.ipc is missing: add `exposeIpcChannels()`');
  });
  it('returns what the preload exposed', () => {
    const client = new BridgeClient<string, string>('window.t');
    (globalThis as Record<string, unknown>).eicTest = client.api();
    try {
      expect(getBridge<string, string>('eicTest').isConnected()).toBe(false);
    } finally {
      delete (globalThis as Record<string, unknown>).eicTest;
    }
  });
});

// ---- exposeToWindow against a fake electron: the lifecycle of legs across documents.

function fakeElectron() {
  return installFakeElectron(ports);
}

describe('exposeToWindow (fake electron)', () => {
  it('requires a schema when the renderer can send, and a valid name', () => {
    fakeElectron();
    const wc = new FakeWebContents();
    expect(() => exposeToWindow(wc as never, { name: 'x', onMessage: () => {} })).toThrow(/schema is required/);
    expect(() => exposeToWindow(wc as never, { name: 'not-an-id' })).toThrow(TypeError);
  });

  it('connects each document, queues before it, reconnects after navigation and closes with the window', async () => {
    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    const got: Req[] = [];
    const receiver = fakeReceiver<string>([]);
    const bridge = exposeToWindow<Req, string>(wc as never, { name: 'files', schema: Req, onMessage: (v) => got.push(v) });
    bridge.send('early');
    expect(bridge.connected).toBe(false);

    const doc1 = wc.load(ipcMain, 'files');
    await bridge.whenConnected();
    await expect(doc1.recv()).resolves.toBe('early');
    doc1.send({ op: 'open', path: '/x' });
    await tick();
    expect(got).toEqual([{ op: 'open', path: '/x' }]);

    const doc2 = wc.load(ipcMain, 'files');
    await tick();
    await expect(doc1.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    expect(() => bridge.send({ fd: new FakeHandle() } as never)).toThrow(/cannot be sent to a renderer/);
    bridge.send('second');
    await expect(doc2.recv()).resolves.toBe('second');

    // A subframe asking is ignored.
    ipcMain.emit(PRELOAD_OPEN, { sender: wc, senderFrame: { processId: 4, routingId: 7 } }, 'files');
    expect(wc.posted).toHaveLength(2);

    wc.destroy();
    await tick();
    expect(bridge.connected).toBe(false);
    expect(() => bridge.send('late')).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    receiver.close();
  });

  it('connects a document that asked before main exposed the name, and pumps a receiver', async () => {
    const ipcMain = fakeElectron();
    const wc = new FakeWebContents();
    const doc = wc.load(ipcMain, 'view');
    const receiver = fakeReceiver<string>(['r1', 'r2']);
    const bridge = exposeToWindow<never, string>(wc as never, { name: 'view', receiver });
    await expect(doc.recv()).resolves.toBe('r1');
    await expect(doc.recv()).resolves.toBe('r2');
    await expect(doc.recv()).rejects.toMatchObject({ code: 'DISCONNECTED', message: expect.stringMatching(/every sender/) });
    bridge.close();
    expect(receiver.closed).toBe(true);
    await tick();
    expect(doc.isConnected()).toBe(false);
  });
});

describe('preload without a bundler', () => {
  it('main and preload agree on the expose switch', async () => {
    const { preloadWebPreferences } = await import('../src/main/bridge.js');
    const { namesFromArgv } = await import('../src/preload/index.js');
    const prefs = preloadWebPreferences('files', 'status');
    expect(prefs.preload).toMatch(/preload[/\\]index\.cjs$/);
    expect(prefs.sandbox && prefs.contextIsolation).toBe(true);
    expect(namesFromArgv(['electron', ...prefs.additionalArguments])).toEqual(['files', 'status']);
    expect(namesFromArgv(['x'])).toEqual([]);
    expect(() => preloadWebPreferences('a-b')).toThrow(TypeError);
  });
});

describe('the bundled preload (dist/preload/index.cjs) in a sandbox-like context', () => {
  it('loads with only `electron` to require, exposes window[name] from the command line and attaches the port', async () => {
    const { readFileSync, existsSync } = await import('node:fs');
    const vm = await import('node:vm');
    const file = fileURLToPath(new URL('../dist/preload/index.cjs', import.meta.url));
    expect(existsSync(file), 'run npm run build:ts first').toBe(true);

    const exposed: Record<string, any> = {};
    const sent: unknown[][] = [];
    const handlers = new Map<string, (event: { ports: unknown[] }) => void>();
    const electron = {
      contextBridge: { exposeInMainWorld: (key: string, api: unknown) => (exposed[key] = api) },
      ipcRenderer: {
        on: (channel: string, h: (event: { ports: unknown[] }) => void) => handlers.set(channel, h),
        send: (...args: unknown[]) => sent.push(args),
      },
    };
    const required: string[] = [];
    const module = { exports: {} as Record<string, unknown> };
    const sandbox = {
      module,
      exports: module.exports,
      require: (id: string) => {
        required.push(id);
        if (id !== 'electron') throw new Error(`a sandboxed preload cannot require ${id}`);
        return electron;
      },
      process: { type: 'renderer', contextIsolated: true, argv: ['electron', '--electron-ipc-channel-expose=files,status'] },
      console,
      setTimeout,
      clearTimeout,
    };
    vm.runInNewContext(readFileSync(file, 'utf8'), sandbox, { filename: file });

    expect(required).toEqual(['electron']);
    expect(Object.keys(exposed)).toEqual(['files', 'status']);
    expect(sent).toEqual([
      [PRELOAD_OPEN, 'files'],
      [PRELOAD_OPEN, 'status'],
    ]);
    // Main answers with a port, as webContents.postMessage(channel, null, [port2]) would.
    const { main, raw } = pair();
    const got: unknown[] = [];
    const link = attachPort<unknown, string>(main, { schema: z.object({ hi: z.number() }), onMessage: (v) => got.push(v) });
    handlers.get(mainPortChannel('files'))!({ ports: [raw[1]] });
    exposed.files.send({ hi: 1 });
    link.post('from main');
    await expect(exposed.files.recv({ timeout: 2000 })).resolves.toBe('from main');
    await tick();
    expect(got).toEqual([{ hi: 1 }]);
    expect(exposed.files.isConnected()).toBe(true);
    expect(exposed.status.isConnected()).toBe(false);
  });
});
