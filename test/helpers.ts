import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { IpcError } from '../src/shared/errors.js';
import { IpcOneShotServer } from '../src/main/index.js';
import type { IpcReceiver, IpcSender } from '../src/main/index.js';
import type { ChildProcess } from 'node:child_process';
import { fstatSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { setElectronForTesting, type MainPortLike } from '../src/main/bridge.js';
import { kHandle } from '../src/main/handles.js';
import { native } from '../src/main/native.js';
import { BRIDGE_OPEN_CHANNEL, BridgeClient, type RendererPortLike } from '../src/preload/index.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * True in the win32 stage of `npm run test:windows` (vitest under Wine's node.exe, the win32
 * transport; see vitest.win32.config.ts): what only Linux has is skipped there, with a reason.
 */
export const win32 = process.platform === 'win32';

/**
 * Test or suite options that skip it on Windows with `reason`, which the win32 stage prints:
 * `it(name, skipOnWin32('why'), fn)`, `describe(name, skipOnWin32('why'), body)` (a skipped
 * suite runs none of its hooks). Elsewhere the options change nothing. The reason says what the
 * test needs that Windows lacks (/proc, a python3 peer speaking the Linux wire, memfd seals...),
 * or names the win32 transport's known gap. EIPC_WIN32_RUN_SKIPPED=1 runs them anyway (to see
 * whether a gap is closed). A test's timeout goes in `options` (vitest 4 takes no
 * timeout after the function once options come second).
 */
export function skipOnWin32(reason: string, options: { timeout?: number } = {}): { skip?: true; timeout?: number; meta: { win32Skip: string } } {
  // No `skip: false` elsewhere: vitest spreads options over `it.skip`/`it.skipIf` and over the
  // tests of a suite, so a false would un-skip them.
  const skip = win32 && process.env.EIPC_WIN32_RUN_SKIPPED !== '1';
  return skip ? { ...options, skip: true, meta: { win32Skip: reason } } : { ...options, meta: { win32Skip: reason } };
}

declare module 'vitest' {
  interface TaskMeta {
    /** Why the test does not run on Windows (see {@link skipOnWin32}). */
    win32Skip?: string;
  }
}

/**
 * Open descriptors of this process, from /proc/self/fd (the listing's own fd excluded), once the
 * addon's closer thread has closed what was handed to it (a socket that may still hold
 * descriptors closes there, a few microseconds later, or more on a loaded machine; see
 * src/native/closer.cc). Waits at most 2 s for it, then counts anyway.
 *
 * On Windows, what the library can hold: the Windows addon's table (pipe ends, listeners,
 * sections), its handles kept for local receivers, and node.exe's C runtime descriptors (received
 * files; probed with fstat up to 32 free numbers in a row). Not GetProcessHandleCount: in a
 * vitest worker the runner's own threads, events and pipes move it by a few handles at any time.
 */
export function fdCount(): number {
  if (win32) {
    const { open, localTokens } = win32Addon().stats();
    let crt = 0;
    for (let fd = 0, misses = 0; misses < 32; fd++) {
      try {
        fstatSync(fd);
        crt++;
        misses = 0;
      } catch {
        misses++;
      }
    }
    return open + localTokens + crt;
  }
  const end = Date.now() + 2000;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (native().pendingCloses() > 0 && Date.now() < end) Atomics.wait(cell, 0, 0, 1);
  return readdirSync('/proc/self/fd').length - 1;
}

/** The Windows addon itself (ELECTRON_IPC_CHANNEL_ADDON, which scripts/test-windows.mjs sets). */
function win32Addon(): { stats(): { open: number; localTokens: number } } {
  native(); // loads it, or says where it looked
  const file = process.env.ELECTRON_IPC_CHANNEL_ADDON;
  if (!file) throw new Error('fdCount() on Windows needs ELECTRON_IPC_CHANNEL_ADDON (npm run test:windows sets it)');
  return createRequire(import.meta.url)(file) as { stats(): { open: number; localTokens: number } };
}

export interface Spawned {
  child: ChildProcess;
  /** Resolves with exit code/signal and captured output; rejects after the hard timeout. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs `test/fixtures/<rel>` under node with a hard timeout, capturing its output. */
export function spawnFixture(rel: string, env: Record<string, string> = {}, timeoutMs = 20_000, args: string[] = []): Spawned {
  const launch = () =>
    spawn(process.execPath, [path.join(root, 'test', 'fixtures', rel), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  // Under Wine 8, CreateProcess of node.exe fails now and then (libuv's `spawn UNKNOWN`, see
  // test/windows/harness.mjs): either no pid at once and the error next tick, or spawn() throws
  // it. Two more tries.
  const start = (last: boolean): ChildProcess | undefined => {
    try {
      return launch();
    } catch (e) {
      if (!win32 || last || (e as { code?: string }).code !== 'UNKNOWN') throw e;
      return undefined;
    }
  };
  let child = start(false);
  for (let i = 0; win32 && (child === undefined || child.pid === undefined) && i < 2; i++) {
    child?.on('error', () => {});
    child = start(i === 1);
  }
  if (child === undefined) throw new Error('unreachable: the last try throws');
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fixture ${rel} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
  return { child, done };
}

/**
 * Starts test/fixtures/core/peer.mjs in `role`: it connects to a one-shot server, and its first
 * message carries its pid and a sender to its own channel.
 */
export async function startPeer<In, Out>(role: string, env: Record<string, string> = {}) {
  const server = new IpcOneShotServer<{ pid: number; sender: IpcSender<Out> }>();
  const spawned = spawnFixture('core/peer.mjs', { EIPC_SERVER: server.name, EIPC_ROLE: role, ...env }, 60_000);
  const [rx, first] = await server.accept({ timeout: 15_000 });
  expect(first.pid).toBe(spawned.child.pid);
  return { rx: rx as unknown as IpcReceiver<In>, tx: first.sender, spawned, server };
}

/** Awaits `p` and checks that it rejects with an IpcError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<IpcError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(IpcError);
    expect((e as IpcError).code).toBe(code);
    return e as IpcError;
  }
  throw new Error(`expected a rejection with ${code}`);
}

/** The descriptor count once it stops changing (garbage-collection safety nets run late). */
export async function settledFdCount(): Promise<number> {
  // Settled: the same count four times, 20 ms apart (a worker's teardown, or the closer thread
  // under load, can pause longer than one interval: a fresh-clone CI run counted one descriptor
  // of a terminated worker after two equal samples).
  let last = -1;
  let same = 0;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const n = fdCount();
    same = n === last ? same + 1 : 0;
    if (same === 3) return n;
    last = n;
  }
  return last;
}

/** What `fn` throws (fails when it does not throw). */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

/** Electron's MessagePortMain shape (listener gets { data }) over a Node MessagePort. */
export function mainSide(port: MessagePort): MainPortLike {
  const wrapped = new Map<(...a: never[]) => void, (...a: unknown[]) => void>();
  return {
    on(event: 'message' | 'close', listener: (e: { data: unknown }) => void) {
      const w = event === 'message' ? (data: unknown) => listener({ data }) : () => (listener as () => void)();
      wrapped.set(listener, w);
      port.on(event, w);
      return this;
    },
    removeListener(event: 'message' | 'close', listener: (e: { data: unknown }) => void) {
      const w = wrapped.get(listener);
      if (w) port.off(event, w);
      return this;
    },
    postMessage: (m: unknown) => port.postMessage(m),
    start: () => port.start(),
    close: () => port.close(),
  } as MainPortLike;
}

/**
 * A fake `electron` for the bridge tests (no Electron binary here): an `ipcMain` emitter and a
 * `MessageChannelMain` over worker_threads ports (each collected in `ports`, for the test to close).
 * Returns `ipcMain`; `setElectronForTesting(undefined)` removes the fake.
 */
export function installFakeElectron(ports: MessagePort[]): EventEmitter {
  const ipcMain = new EventEmitter();
  class MessageChannelMain {
    port1: MainPortLike;
    port2: MessagePort;
    constructor() {
      const { port1, port2 } = new MessageChannel();
      ports.push(port1, port2);
      this.port1 = mainSide(port1);
      this.port2 = port2;
    }
  }
  setElectronForTesting({ ipcMain, MessageChannelMain });
  return ipcMain;
}

let nextWebContentsId = 1;

/**
 * A fake `webContents` for the bridge tests: `load(ipcMain, name)` starts a new document whose
 * preload (a `BridgeClient`) asks main for its port; `destroy()` closes the window. `posted`
 * lists the channels main posted ports on.
 */
export class FakeWebContents extends EventEmitter {
  readonly id = nextWebContentsId++;
  readonly mainFrame = { processId: 4, routingId: 1 };
  destroyed = false;
  /** What the current document's preload would have. */
  client: BridgeClient<unknown, unknown> | undefined;
  posted: string[] = [];
  url = '';
  getURL() {
    return this.url;
  }
  isLoadingMainFrame() {
    return false;
  }
  isDestroyed() {
    return this.destroyed;
  }
  postMessage(channel: string, _message: unknown, transfer: MessagePort[]) {
    this.posted.push(channel);
    this.client?.attach(transfer[0] as unknown as RendererPortLike);
  }
  /** A new document loads: its preload creates a client and asks main for the port. */
  load(ipcMain: EventEmitter, name: string) {
    this.emit('did-start-navigation', { isMainFrame: true, isSameDocument: false });
    this.client = new BridgeClient(`window.${name}`);
    this.url = 'file:///index.html';
    ipcMain.emit(BRIDGE_OPEN_CHANNEL, { sender: this, senderFrame: { ...this.mainFrame } }, name);
    return this.client;
  }
  destroy() {
    this.destroyed = true;
    this.emit('destroyed');
  }
}

/** An object that looks like a file handle to the bridge's handle check (never a real descriptor). */
export class FakeHandle {
  closed = false;
  [kHandle]() {
    return { kind: 'file', fd: 99, move: false };
  }
  close() {
    this.closed = true;
  }
}

/**
 * Waits until `done()` holds, checking every 10 ms, at most `timeoutMs` (then returns, and the
 * caller's assertion says what is missing): for events another thread or process delivers, which
 * a loaded machine delivers late.
 */
export async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !done() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
}
