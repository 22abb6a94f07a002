/**
 * The renderer's side of the bridge (see src/main/bridge.ts). Bundled to one file because a
 * sandboxed preload cannot load modules; imports only `electron` (lazily, so `getBridge` also
 * works in page code) and `../shared`.
 *
 * In the preload:   `exposeIpcChannels('files')`
 * In the page:      `const files = getBridge<Request, Result>('files'); files.send(...); await files.recv()`
 */
import type { ElectronRendererModule, IpcRendererEventLike as IpcRendererEvent } from '../shared/electron-types.js';
import { BRIDGE_OPEN_CHANNEL, bridgePortChannel, isBridgeName, namesFromArgv } from '../shared/bridge-protocol.js';
import type { RejectedMessage, UncheckedEnvelope } from '../shared/bridge-protocol.js';
import { armDeadline } from '../shared/deadline.js';
import type { Disarm } from '../shared/deadline.js';
import { IpcError } from '../shared/errors.js';
import type { IpcErrorCode } from '../shared/errors.js';
import type { Protocol } from '../shared/protocol.js';
import type { RpcClient, RpcClientOptions } from '../shared/rpc-client-core.js';
import { rpcOverBridge } from '../shared/rpc-renderer.js';
import type { RpcBridgeChannel } from '../shared/rpc-renderer.js';

export { BRIDGE_OPEN_CHANNEL, bridgePortChannel, EXPOSE_SWITCH, namesFromArgv } from '../shared/bridge-protocol.js';
export type { RejectedMessage } from '../shared/bridge-protocol.js';
export { IpcError, isIpcError } from '../shared/errors.js';
export { RpcError, isRpcError } from '../shared/protocol.js';
export type { RpcClient, RpcClientOptions, CallOptions, EventsOptions } from '../shared/rpc-client-core.js';

/** The part of a DOM `MessagePort` the client uses (Node's `worker_threads` ports have it too). */
export interface RendererPortLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: () => void): void;
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: 'close', listener: () => void): void;
  start(): void;
  close(): void;
}

/**
 * What `window[name]` is in the page. `Send` is what the renderer sends to main, `Receive` what
 * main sends to the renderer. Errors crossing the context bridge keep only their message, so the
 * message ends with the code, e.g. `"(DISCONNECTED)"`.
 */
export interface RendererChannel<Send, Receive> {
  /** Posts to main; queued until main's port arrives. Throws when main closed the channel. */
  send(message: Send): void;
  /**
   * Next message from main. Rejects with DISCONNECTED when main closed the channel (after the
   * messages already received), TIMEOUT after `timeout` ms.
   */
  recv(options?: { timeout?: number }): Promise<Receive>;
  /**
   * Calls `listener` with every message from main (while at least one listener is registered,
   * messages go to listeners instead of `recv`). Returns the function that unsubscribes.
   */
  onMessage(listener: (message: Receive) => void): () => void;
  /**
   * Messages main rejected (schema). Without a listener they are logged with `console.error`.
   * `rejected.id` is the refused message's own `id` property, when it had one.
   */
  onError(listener: (rejected: RejectedMessage) => void): () => void;
  /**
   * Calls `listener` once with the reason when nothing more will come from main on this leg (main
   * closed the channel, the leg ended, or main's receiver ended): the moment `recv()` starts
   * failing DISCONNECTED. At once if that has already happened. Returns the function that
   * unsubscribes.
   */
  onEnd(listener: (reason: string) => void): () => void;
  /** True while main's port is attached and open. */
  isConnected(): boolean;
}

/** Messages `send` keeps before main's port arrives. */
const MAX_OUTBOX = 1024;

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  /** Stops its timeout (see armDeadline). */
  disarm: Disarm;
}

/**
 * One exposed channel in the renderer: buffers until main's port arrives, then pumps envelopes.
 * Plain logic over a MessagePort-like object; `exposeIpcChannels` wires it to Electron.
 */
export class BridgeClient<Send, Receive> {
  private port: RendererPortLike | undefined;
  private readonly outbox: Send[] = [];
  private readonly inbox: Receive[] = [];
  private readonly waiters: Waiter<Receive>[] = [];
  private readonly listeners = new Set<(message: Receive) => void>();
  private readonly errorListeners = new Set<(rejected: RejectedMessage) => void>();
  private readonly endListeners = new Set<(reason: string) => void>();
  /** Set by `eof`/`end`: no more messages will come on the current leg. */
  private eof: string | undefined;
  /** Set by `end`: the leg is gone, sends fail too. */
  private ended: string | undefined;

  constructor(readonly label: string) {}

  /** Takes main's port for a (new) leg: earlier end-of-stream state is forgotten, the outbox is flushed. */
  attach(port: RendererPortLike): void {
    this.detach();
    this.port = port;
    this.eof = undefined;
    this.ended = undefined;
    port.addEventListener('message', this.onPortMessage);
    port.addEventListener('close', this.onPortClose);
    port.start();
    const pending = this.outbox.splice(0);
    for (const m of pending) this.post(m);
  }

  send(message: Send): void {
    if (this.ended !== undefined) throw this.error('DISCONNECTED', this.ended);
    if (this.port === undefined) {
      if (this.outbox.length >= MAX_OUTBOX) {
        throw this.error('TOO_LARGE', `${MAX_OUTBOX} messages are waiting for main to connect; is exposeToWindow() called for this window?`);
      }
      this.outbox.push(message);
      return;
    }
    this.post(message);
  }

  recv(options: { timeout?: number } = {}): Promise<Receive> {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift() as Receive);
    if (this.eof !== undefined) return Promise.reject(this.error('DISCONNECTED', this.eof));
    return new Promise<Receive>((resolve, reject) => {
      const timeout = options.timeout;
      if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
        reject(new RangeError(`${this.label}.recv: timeout must be a number of milliseconds >= 0`));
        return;
      }
      const waiter: Waiter<Receive> = { resolve, reject, disarm: () => {} };
      waiter.disarm = armDeadline({ timeout, timeoutMessage: () => this.message('TIMEOUT', `no message within ${timeout} ms`) }, (reason) => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(reason);
      });
      this.waiters.push(waiter);
    });
  }

  onMessage(listener: (message: Receive) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`${this.label}.onMessage: listener must be a function`);
    this.listeners.add(listener);
    for (const m of this.inbox.splice(0)) this.emit(m);
    return () => {
      this.listeners.delete(listener);
    };
  }

  onError(listener: (rejected: RejectedMessage) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`${this.label}.onError: listener must be a function`);
    this.errorListeners.add(listener);
    return () => {
      this.errorListeners.delete(listener);
    };
  }

  onEnd(listener: (reason: string) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`${this.label}.onEnd: listener must be a function`);
    if (this.eof !== undefined) {
      listener(this.eof);
      return () => {};
    }
    this.endListeners.add(listener);
    return () => {
      this.endListeners.delete(listener);
    };
  }

  isConnected(): boolean {
    return this.port !== undefined && this.ended === undefined;
  }

  /** The object handed to `contextBridge`: functions only (they are proxied, values would be copied). */
  api(): RendererChannel<Send, Receive> {
    return {
      send: (message) => this.send(message),
      recv: (options) => this.recv(options),
      onMessage: (listener) => this.onMessage(listener),
      onError: (listener) => this.onError(listener),
      onEnd: (listener) => this.onEnd(listener),
      isConnected: () => this.isConnected(),
    };
  }

  /** Drops the port (for example on a new leg) without touching queued messages. */
  detach(): void {
    const port = this.port;
    if (!port) return;
    this.port = undefined;
    port.removeEventListener('message', this.onPortMessage);
    port.removeEventListener('close', this.onPortClose);
    try {
      port.close();
    } catch {
      /* already closed */
    }
  }

  private post(message: Send): void {
    try {
      (this.port as RendererPortLike).postMessage(message);
    } catch (e) {
      throw new TypeError(`${this.label}.send: the message cannot be cloned: ${(e as Error).message}`);
    }
  }

  private readonly onPortMessage = (event: { data: unknown }): void => {
    const env = event.data as UncheckedEnvelope | null;
    if (typeof env !== 'object' || env === null) return;
    switch (env.kind) {
      case 'message':
        this.deliver(env.value as Receive);
        break;
      case 'rejected': {
        const r: RejectedMessage = { code: String(env.code), message: String(env.message) };
        if (typeof env.id === 'number' && Number.isSafeInteger(env.id) && env.id >= 0) r.id = env.id;
        this.rejected(r);
        break;
      }
      case 'eof':
        this.finish(String(env.reason), false);
        break;
      case 'end':
        this.finish(String(env.reason), true);
        this.detach();
        break;
    }
  };

  private readonly onPortClose = (): void => {
    this.finish("main's end of the port closed", true);
    this.detach();
  };

  private deliver(message: Receive): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.disarm();
      waiter.resolve(message);
      return;
    }
    if (this.listeners.size > 0) this.emit(message);
    else this.inbox.push(message);
  }

  private emit(message: Receive): void {
    for (const l of [...this.listeners]) {
      try {
        l(message);
      } catch (e) {
        console.error(`${this.label}: an onMessage listener threw`, e);
      }
    }
  }

  private rejected(r: RejectedMessage): void {
    if (this.errorListeners.size === 0) {
      console.error(`${this.label}: main rejected a message: ${r.message} (${r.code})`);
      return;
    }
    for (const l of [...this.errorListeners]) {
      try {
        l(r);
      } catch (e) {
        console.error(`${this.label}: an onError listener threw`, e);
      }
    }
  }

  private finish(reason: string, ended: boolean): void {
    const first = this.eof === undefined;
    if (first) this.eof = reason;
    if (ended && this.ended === undefined) this.ended = reason;
    for (const w of this.waiters.splice(0)) {
      w.disarm();
      w.reject(this.error('DISCONNECTED', reason));
    }
    if (!first) return;
    const listeners = [...this.endListeners];
    this.endListeners.clear();
    for (const l of listeners) {
      try {
        l(reason);
      } catch (e) {
        console.error(`${this.label}: an onEnd listener threw`, e);
      }
    }
  }

  private error(code: IpcErrorCode, what: string): IpcError {
    return new IpcError(code, this.message(code, what));
  }

  /** An error message as the page sees it: the label first, the code last (the context bridge keeps only messages). */
  private message(code: IpcErrorCode, what: string): string {
    return `${this.label}: ${what} (${code})`;
  }
}

type ElectronRenderer = ElectronRendererModule;

function loadElectron(): ElectronRenderer {
  // Lazy, so that page code importing getBridge() from this module never needs `electron`.
  // A sandboxed preload has `require('electron')`; it is the only module this file loads.
  if (typeof require !== 'function') {
    throw new Error('exposeIpcChannels() runs in an Electron preload script (bundled as CommonJS: use electron-ipc-channel/preload\'s require entry)');
  }
  return require('electron') as ElectronRenderer;
}

const exposed = new Set<string>();

/**
 * Call in the preload: exposes `window[name]` for each name (default `ipc`) as a
 * {@link RendererChannel}, and asks main for each name's port. Main must call
 * `exposeToWindow(win, { name })` for the same names. Works with `sandbox: true` and
 * `contextIsolation: true` (and without isolation, by assigning `window[name]`).
 */
export function exposeIpcChannels(...names: string[]): void {
  const { contextBridge, ipcRenderer } = loadElectron();
  const list = names.length === 0 ? ['ipc'] : names;
  for (const name of list) {
    if (!isBridgeName(name)) {
      throw new TypeError(`exposeIpcChannels: names must be JavaScript identifiers (they become window.<name>), got ${JSON.stringify(name)}`);
    }
    if (exposed.has(name)) throw new Error(`exposeIpcChannels: "${name}" is already exposed`);
  }
  for (const name of list) {
    exposed.add(name);
    const client = new BridgeClient<unknown, unknown>(`window.${name}`);
    ipcRenderer.on(bridgePortChannel(name), (event: IpcRendererEvent) => {
      const port = event.ports[0];
      if (port) client.attach(port as unknown as RendererPortLike);
    });
    const api = client.api();
    if ((process as { contextIsolated?: boolean }).contextIsolated === false) {
      (globalThis as Record<string, unknown>)[name] = api;
    } else {
      contextBridge.exposeInMainWorld(name, api);
    }
    ipcRenderer.send(BRIDGE_OPEN_CHANNEL, name);
  }
}

/**
 * In page code: the channel the preload exposed as `window[name]` (default `ipc`), typed.
 * Throws an Error saying which preload call is missing when it is not there.
 */
export function getBridge<Send, Receive>(name = 'ipc'): RendererChannel<Send, Receive> {
  const api = (globalThis as Record<string, unknown>)[name];
  if (typeof api !== 'object' || api === null || typeof (api as { recv?: unknown }).recv !== 'function') {
    throw new Error(
      `window.${name} is missing: add \`exposeIpcChannels(${name === 'ipc' ? '' : JSON.stringify(name)})\` ` +
        `(from 'electron-ipc-channel/preload') to your preload, set webPreferences.preload, and call ` +
        `exposeToWindow(win, { name: ${JSON.stringify(name)} }) in main`,
    );
  }
  return api as RendererChannel<Send, Receive>;
}

/**
 * In page code: an RPC client for `protocol` over the bridge channel `window[name]` (default
 * `ipc`), served in main by `serveToWindow(protocol, win, handlers, { name })`. The same client
 * as `rpcClient()` in Node: `call(method, input, { timeout, signal, onProgress })`, `on(event,
 * listener)`, `events(event)`, `close()`; inputs are checked in main (`RpcError('INVALID')`),
 * results, progress values and events here with the protocol's schemas.
 *
 * The channel carries only this client's frames: one client per channel at a time (`TypeError`
 * while another is open). Calls in flight reject `IpcError('DISCONNECTED')` when main ends the
 * leg (the window navigates, main closes); `close()` rejects them with CLOSED and cancels them in
 * main. `channel` may also be the channel object itself (`getBridge(name)`, or in the preload
 * `BridgeClient.api()`).
 *
 * ```ts
 * import { rendererRpc } from 'electron-ipc-channel/preload';
 * const files = rendererRpc(Files, 'files', { timeout: 10_000 });
 * const text = await files.call('read', { path: 'notes.txt' }, { onProgress: (n) => bar.set(n) });
 * ```
 */
export function rendererRpc<P extends Protocol>(protocol: P, channel: string | RendererChannel<unknown, unknown> = 'ipc', options?: RpcClientOptions): RpcClient<P> {
  if (typeof channel === 'string') return rpcOverBridge(protocol, getBridge(channel) as RpcBridgeChannel, options, `window.${channel}`);
  return rpcOverBridge(protocol, channel as RpcBridgeChannel, options, 'rendererRpc channel');
}

// Loaded as the preload itself (see EXPOSE_SWITCH): expose what the command line asks for.
if (typeof process === 'object' && process !== null && (process as { type?: string }).type === 'renderer') {
  const names = namesFromArgv(Array.isArray(process.argv) ? process.argv : []);
  if (names.length > 0) exposeIpcChannels(...names);
}
