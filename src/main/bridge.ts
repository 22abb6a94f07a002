/**
 * The renderer bridge host: exposes chosen channels to a window.
 *
 * A renderer cannot hold descriptors (a sandboxed preload cannot load the addon, and
 * contextBridge drops ports), so its leg is an Electron MessagePort pair that main creates per
 * document: main keeps one end, the preload gets the other (see src/preload/index.ts). Main pumps
 * messages between that port and ordinary senders/receivers, validates everything that comes from
 * the renderer against a schema, and refuses to forward senders, receivers, file handles and
 * shared memory to it.
 *
 * The pure parts (`attachPort`, `pumpToPort`, `findHandle`) take a MessagePort-like object so
 * they run under plain Node with `worker_threads.MessageChannel`; `exposeToWindow` is the
 * Electron glue and loads `electron` only when called.
 */
import { createRequire } from 'node:module';
import type {
  BrowserWindowLike as BrowserWindow,
  ElectronMainModule,
  IpcMainEventLike as IpcMainEvent,
  MessagePortMainLike as MessagePortMain,
  WebContentsLike as WebContents,
} from '../shared/electron-types.js';
import { BRIDGE_OPEN_CHANNEL, bridgePortChannel, exposeArgument, isBridgeName } from '../shared/bridge-protocol.js';
import type { BridgeEnvelope } from '../shared/bridge-protocol.js';
import { IpcError, isIpcError } from '../shared/errors.js';
import { assertStandardSchema, validate } from '../shared/validate.js';
import type { StandardSchemaV1 } from '../shared/validate.js';
import { assertNoHandles, closeHandles } from './bridge-handles.js';

export { BRIDGE_OPEN_CHANNEL, bridgePortChannel } from '../shared/bridge-protocol.js';
export type { BridgeEnvelope } from '../shared/bridge-protocol.js';
export { assertNoHandles, closeHandles, findHandle } from './bridge-handles.js';

/** The side of a MessagePort that main holds: Electron's `MessagePortMain` has this shape. */
export interface MainPortLike {
  on(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  removeListener(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
  postMessage(message: unknown): void;
  start(): void;
  close(): void;
}

/** The part of an `IpcSender` the bridge uses. */
export interface SenderLike<T> {
  send(value: T): void;
  close(): void;
}

/** The part of an `IpcReceiver` the bridge uses. */
export interface ReceiverLike<T> {
  recv(): Promise<T>;
  close(): void;
}

/** Options of {@link attachPort}. */
export interface AttachPortOptions<In> {
  /** Checks every message from the port; failures go to `onError` and to the renderer as `rejected`. */
  schema?: StandardSchemaV1<unknown, In>;
  /** Receives each valid message, in order. Without it, messages from the port are rejected. */
  onMessage?: (value: In) => void;
  /** Invalid or undeliverable messages, and failures of `onMessage`. */
  onError?: (error: Error) => void;
  /**
   * The other end of the port went away, or `end()`/`close()` was called. Called once, with the
   * reason given to `end()` (or a sentence saying what closed).
   */
  onClose?: (reason: string) => void;
  /** Used in error messages, e.g. the exposed name. */
  label?: string;
}

/** Main's end of one renderer leg, see {@link attachPort}. */
export interface PortLink<Out> {
  /** Posts one value. Throws TypeError for handles or values a MessagePort cannot clone. */
  post(value: Out): void;
  /** Tells the renderer nothing more will come to it; it may still send. */
  eof(reason?: string): void;
  /** Tells the renderer this leg ended (its receives fail with DISCONNECTED), then closes. */
  end(reason?: string): void;
  /** Closes the port without telling the renderer. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/**
 * Attaches to main's end of a MessagePort pair: validates each incoming message with `schema`,
 * hands valid ones to `onMessage` in arrival order (asynchronous schemas do not reorder), and
 * reports invalid ones to `onError` and back to the renderer. Starts the port.
 */
export function attachPort<In, Out>(port: MainPortLike, options: AttachPortOptions<In> = {}): PortLink<Out> {
  if (options.schema !== undefined) assertStandardSchema(options.schema, 'schema');
  const label = options.label ?? 'bridge';
  let closed = false;

  const report = (error: Error): void => {
    if (options.onError) {
      try {
        options.onError(error);
      } catch {
        /* a failing error handler must not break the pump */
      }
    }
  };
  const reject = (error: Error, data?: unknown): void => {
    report(error);
    if (closed) return;
    const ownCode = (error as { code?: unknown }).code;
    const code = typeof ownCode === 'string' ? ownCode : error.name;
    // The refused message's own id, so that the renderer can tell which request was refused.
    const id = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as { id?: unknown }).id : undefined;
    const envelope: BridgeEnvelope = { kind: 'rejected', code, message: error.message };
    if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) envelope.id = id;
    try {
      port.postMessage(envelope);
    } catch {
      /* port already gone */
    }
  };
  const deliver = (value: In, data: unknown): void => {
    if (closed) return;
    if (!options.onMessage) {
      reject(new IpcError('DISCONNECTED', `${label}: main does not accept messages from this renderer`), data);
      return;
    }
    try {
      options.onMessage(value);
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)), data);
    }
  };
  const check = (data: unknown): In | Promise<In> => {
    if (options.schema === undefined) return data as In;
    return validate(options.schema, data);
  };

  // Asynchronous schemas: later messages wait behind earlier ones so the order is kept.
  let inflight = 0;
  let tail: Promise<void> = Promise.resolve();
  const later = (work: () => Promise<void>): void => {
    inflight++;
    tail = tail.then(work).finally(() => {
      inflight--;
    });
  };
  const onMessage = (event: { data: unknown }): void => {
    if (closed) return;
    const data = event.data;
    if (inflight > 0) {
      later(async () => {
        if (closed) return;
        try {
          deliver(await check(data), data);
        } catch (e) {
          reject(asError(e, label), data);
        }
      });
      return;
    }
    let checked: In | Promise<In>;
    try {
      checked = check(data);
    } catch (e) {
      reject(asError(e, label), data);
      return;
    }
    if (checked instanceof Promise) {
      const p = checked;
      later(() => p.then((v) => deliver(v, data), (e: unknown) => reject(asError(e, label), data)));
      return;
    }
    deliver(checked, data);
  };
  const onClose = (): void => {
    if (closed) return;
    shutdown("the renderer's end of the port closed");
  };
  const shutdown = (reason: string): void => {
    closed = true;
    port.removeListener('message', onMessage);
    port.removeListener('close', onClose);
    try {
      port.close();
    } catch {
      /* already closed */
    }
    options.onClose?.(reason);
  };

  port.on('message', onMessage);
  port.on('close', onClose);
  port.start();

  return {
    post(value: Out): void {
      if (closed) throw new IpcError('CLOSED', `${label}: the renderer's port is closed`);
      assertNoHandles(value, label);
      try {
        port.postMessage({ kind: 'message', value } satisfies BridgeEnvelope<Out>);
      } catch (e) {
        throw new IpcError('UNSERIALIZABLE', `${label}: the message cannot be posted to a renderer: ${(e as Error).message}`, {
          cause: e,
        });
      }
    },
    eof(reason = 'main has nothing more to send'): void {
      if (closed) return;
      try {
        port.postMessage({ kind: 'eof', reason } satisfies BridgeEnvelope);
      } catch {
        /* port already gone */
      }
    },
    end(reason = 'main closed the channel'): void {
      if (closed) return;
      try {
        port.postMessage({ kind: 'end', reason } satisfies BridgeEnvelope);
      } catch {
        /* port already gone */
      }
      shutdown(reason);
    },
    close(): void {
      if (!closed) shutdown('main closed the port');
    },
    get closed() {
      return closed;
    },
  };
}

function asError(e: unknown, label: string): Error {
  if (e instanceof Error) {
    if (isIpcError(e, 'INVALID')) return new IpcError('INVALID', `${label}: ${e.message}`, { issues: e.issues, cause: e });
    return e;
  }
  return new Error(`${label}: ${String(e)}`);
}

/** Options of {@link pumpToPort}. */
export interface PumpOptions {
  /** A message that was refused (handles, unclonable) or a receive error that did not end the pump. */
  onError?: (error: Error) => void;
  /** Why the pump stopped: DISCONNECTED (every sender gone), CLOSED, or another fatal error. */
  onEnd?: (error: IpcError | Error) => void;
}

const PER_MESSAGE_CODES = new Set(['INVALID', 'TOO_LARGE', 'MALFORMED', 'UNSERIALIZABLE']);

/**
 * Receives from `receiver` until it disconnects and hands each message to `post` (for example
 * a bridge's `send`). A message carrying handles is refused: its handles are closed, `onError`
 * is told and the pump goes on. Resolves when the pump stops.
 */
export async function pumpToPort<T>(
  receiver: ReceiverLike<T>,
  post: (value: T) => void,
  options: PumpOptions = {},
): Promise<void> {
  for (;;) {
    let value: T;
    try {
      value = await receiver.recv();
    } catch (e) {
      if (isIpcError(e) && PER_MESSAGE_CODES.has(e.code)) {
        options.onError?.(e);
        continue;
      }
      options.onEnd?.(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    try {
      post(value);
    } catch (e) {
      closeHandles(value);
      options.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Electron glue

/** Options of {@link exposeToWindow}. `FromRenderer` is what the renderer sends, `ToRenderer` what it receives. */
export interface ExposeOptions<FromRenderer, ToRenderer> {
  /** The key on `window` (the preload exposes `window[name]`). Letters, digits, `_` and `$`. */
  name: string;
  /** Messages received here are forwarded to the renderer. The bridge owns it and closes it. */
  receiver?: ReceiverLike<ToRenderer>;
  /** Validated messages from the renderer are sent here. The bridge owns it and closes it. */
  sender?: SenderLike<FromRenderer>;
  /** Alternative to `sender`: called in main with each validated message from the renderer. */
  onMessage?: (value: FromRenderer) => void;
  /**
   * Checks every message from the renderer (which is untrusted). Required when the renderer can
   * send (`sender` or `onMessage`).
   */
  schema?: StandardSchemaV1<unknown, FromRenderer>;
  /** Rejected or undeliverable messages in either direction. Default: `console.warn`. */
  onError?: (error: Error) => void;
  /** Messages `send()` keeps while no document is connected; more is TOO_LARGE. Default 1024. */
  maxQueued?: number;
}

/** Main's handle on one channel exposed to one window, see {@link exposeToWindow}. */
export interface WindowBridge<ToRenderer> {
  readonly name: string;
  /** True while a document of the window holds the other end. */
  readonly connected: boolean;
  /**
   * Sends a value to the renderer; queued while no document is connected (before the page loaded,
   * during a navigation). Throws TypeError when it contains a sender, receiver, file handle or
   * shared memory.
   */
  send(value: ToRenderer): void;
  /** Resolves when a document of the window connects (now, if one is). */
  whenConnected(): Promise<void>;
  /** Stops exposing: ends the renderer's leg and closes the given sender and receiver. Idempotent. */
  close(): void;
  [Symbol.dispose](): void;
}

type ElectronMain = ElectronMainModule;

let electronMain: ElectronMain | undefined;

/** Test seam: replaces the `electron` module (a fake with ipcMain and MessageChannelMain). Not exported from the package. */
export function setElectronForTesting(fake: unknown): void {
  electronMain = fake as ElectronMain | undefined;
  openListener = undefined; // the next exposure listens on the new fake's ipcMain
}

function loadElectron(): ElectronMain {
  if (electronMain) return electronMain;
  if (!(process.versions as Record<string, string | undefined>).electron || (process as { type?: string }).type !== 'browser') {
    throw new Error("exposeToWindow() runs in Electron's main process only");
  }
  electronMain = createRequire(import.meta.url)('electron') as ElectronMain;
  return electronMain;
}

interface Exposure {
  connect(): void;
  close(reason?: string): void;
}

/** Per webContents: exposures by name, and names a preload asked for before main exposed them. */
interface WindowState {
  exposures: Map<string, Exposure>;
  requested: Set<string>;
}
/** Keyed by `webContents.id`. */
const windows = new Map<number, WindowState>();
let openListener: ((event: IpcMainEvent, name: unknown) => void) | undefined;

function windowState(wc: WebContents): WindowState {
  const id = wc.id;
  let state = windows.get(id);
  if (!state) {
    state = { exposures: new Map(), requested: new Set() };
    windows.set(id, state);
    wc.once('destroyed', () => {
      const s = windows.get(id);
      windows.delete(id);
      if (s) for (const e of [...s.exposures.values()]) e.close('the window was closed');
    });
  }
  return state;
}

function installOpenListener(electron: ElectronMain): void {
  if (openListener) return;
  openListener = (event, name) => {
    if (typeof name !== 'string') return;
    const wc = event.sender;
    // Only the top-level document of the window gets ports: subframes may be other origins.
    const frame = event.senderFrame;
    const top = wc.mainFrame;
    if (frame === null || frame.processId !== top.processId || frame.routingId !== top.routingId) return;
    const state = windowState(wc);
    const exposure = state.exposures.get(name);
    if (exposure) exposure.connect();
    else state.requested.add(name);
  };
  electron.ipcMain.on(BRIDGE_OPEN_CHANNEL, openListener);
}

/**
 * `webPreferences` that load this package's bundled preload directly and have it expose `names`
 * (no preload of your own, no bundler): `new BrowserWindow({ webPreferences:
 * { ...preloadWebPreferences('files') } })`. Sandboxed and context-isolated. To add your own
 * preload code instead, bundle a preload that calls `exposeIpcChannels(...)` from
 * `electron-ipc-channel/preload`.
 */
export function preloadWebPreferences(...names: string[]): {
  preload: string;
  additionalArguments: string[];
  sandbox: true;
  contextIsolation: true;
  nodeIntegration: false;
} {
  for (const n of names) {
    if (!isBridgeName(n)) throw new TypeError(`preloadWebPreferences: ${JSON.stringify(n)} is not a JavaScript identifier`);
  }
  return {
    // The package's own `require` entry of ./preload: a sandboxed preload must be one CommonJS file.
    preload: createRequire(import.meta.url).resolve('electron-ipc-channel/preload'),
    additionalArguments: [exposeArgument(names)],
    sandbox: true,
    contextIsolation: true,
    nodeIntegration: false,
  };
}

/**
 * Exposes one channel to a window's renderer as `window[name]` (the preload must call
 * `exposeIpcChannels(name)` from `electron-ipc-channel/preload`).
 *
 * Each document of the window gets a fresh `MessageChannelMain`; on navigation, reload or a
 * renderer crash the old leg is closed, and the new document connects again. Closing the window
 * closes the bridge. Messages from the renderer are validated with `schema` and forwarded to
 * `sender` (or `onMessage`); messages from `receiver` (or `send()`) go to the renderer.
 */
export function exposeToWindow<FromRenderer = never, ToRenderer = unknown>(
  target: WebContents | BrowserWindow,
  options: ExposeOptions<FromRenderer, ToRenderer>,
): WindowBridge<ToRenderer> {
  return expose(target, options, undefined);
}

/** One document's leg as {@link exposeLegs} hands it over. */
export interface LegHandler<In> {
  /** A message of this document, validated. What it throws is refused back to the renderer (`rejected`, with the message's `id`). */
  onMessage(value: In): void;
  /** The leg ended: navigation, reload, a renderer crash, the window closed, or `close()`; `reason` says which. Called once. */
  onClose(reason: string): void;
}

/**
 * For `serveToWindow` (src/main/rpc/window.ts; not exported by the package): exposes `name` to a
 * window as {@link exposeToWindow} does (same preload, same per-document legs, same subframe
 * filter and window lifecycle), but hands each document's leg to `open`, which returns where that
 * document's messages go. Nothing is queued across documents: each leg is its own conversation.
 */
export function exposeLegs<In, Out>(
  target: WebContents | BrowserWindow,
  options: { name: string; schema: StandardSchemaV1<unknown, In>; onError: (error: Error) => void },
  open: (leg: PortLink<Out>) => LegHandler<In>,
): Pick<WindowBridge<Out>, 'name' | 'connected' | 'whenConnected' | 'close'> & { readonly closed: boolean } {
  return expose<In, Out>(target, { name: options.name, schema: options.schema, onError: options.onError }, open);
}

function expose<FromRenderer, ToRenderer>(
  target: WebContents | BrowserWindow,
  options: ExposeOptions<FromRenderer, ToRenderer>,
  open: ((leg: PortLink<ToRenderer>) => LegHandler<FromRenderer>) | undefined,
): WindowBridge<ToRenderer> & { readonly closed: boolean } {
  const { name } = options;
  if (!isBridgeName(name)) {
    throw new TypeError(`name must be a JavaScript identifier (it becomes window.<name>), got ${JSON.stringify(name)}`);
  }
  if (options.sender && options.onMessage) throw new TypeError('give either sender or onMessage, not both');
  const acceptsMessages = options.sender !== undefined || options.onMessage !== undefined || open !== undefined;
  if (acceptsMessages && options.schema === undefined) {
    throw new TypeError(
      `exposeToWindow("${name}"): a schema is required when the renderer can send (it is untrusted); pass schema: z.object({...}) or another Standard Schema`,
    );
  }
  if (options.schema !== undefined) assertStandardSchema(options.schema, 'schema');
  const electron = loadElectron();
  const wc: WebContents = 'webContents' in target ? target.webContents : target;
  if (wc.isDestroyed()) throw new IpcError('CLOSED', `exposeToWindow("${name}"): the window is already closed`);
  const state = windowState(wc);
  if (state.exposures.has(name)) throw new Error(`exposeToWindow: "${name}" is already exposed to this window`);
  installOpenListener(electron);

  const label = `window.${name}`;
  const maxQueued = options.maxQueued ?? 1024;
  const onError = options.onError ?? ((e: Error) => console.warn(`[electron-ipc-channel] ${e.message}`));
  const queue: ToRenderer[] = [];
  let receiverEnded: string | undefined;
  let link: PortLink<ToRenderer> | undefined;
  let closed = false;
  let waiters: Array<() => void> = [];

  const forward = options.sender
    ? (v: FromRenderer) => options.sender!.send(v)
    : options.onMessage;

  const dropLink = (reason: string): void => {
    const l = link;
    link = undefined;
    l?.end(reason);
  };

  const connect = (): void => {
    if (closed || wc.isDestroyed()) return;
    dropLink('a new document connected');
    const { port1, port2 } = new electron.MessageChannelMain();
    let leg: LegHandler<FromRenderer> | undefined;
    const current = attachPort<FromRenderer, ToRenderer>(port1 as MainPortLike & MessagePortMain, {
      schema: options.schema,
      onMessage: open ? (v) => leg?.onMessage(v) : forward,
      onError,
      label,
      onClose: (reason) => {
        if (link === current) link = undefined;
        leg?.onClose(reason);
      },
    });
    link = current;
    if (open) {
      try {
        leg = open(current);
      } catch (e) {
        onError(e instanceof Error ? e : new Error(String(e)));
        current.end('main could not serve this document');
        return;
      }
    }
    wc.postMessage(bridgePortChannel(name), null, [port2]);
    while (queue.length > 0 && link === current) {
      const v = queue.shift() as ToRenderer;
      try {
        current.post(v);
      } catch (e) {
        onError(e as Error);
      }
    }
    if (receiverEnded !== undefined) current.eof(receiverEnded);
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  const onNavigate = (details: { isMainFrame: boolean; isSameDocument: boolean }): void => {
    if (details.isMainFrame && !details.isSameDocument) dropLink('the window navigated');
  };
  const onGone = (): void => dropLink('the renderer process is gone');
  wc.on('did-start-navigation', onNavigate);
  wc.on('render-process-gone', onGone);

  const send = (value: ToRenderer): void => {
    if (closed) throw new IpcError('CLOSED', `${label}: the bridge is closed`);
    assertNoHandles(value, label);
    if (link) {
      link.post(value);
      return;
    }
    if (queue.length >= maxQueued) {
      throw new IpcError('TOO_LARGE', `${label}: ${maxQueued} messages are already queued for a renderer that has not connected`);
    }
    queue.push(value);
  };

  const close = (reason = 'main closed the channel'): void => {
    if (closed) return;
    closed = true;
    state.exposures.delete(name);
    if (!wc.isDestroyed()) {
      wc.removeListener('did-start-navigation', onNavigate);
      wc.removeListener('render-process-gone', onGone);
    }
    dropLink(reason);
    queue.length = 0;
    options.receiver?.close();
    options.sender?.close();
  };

  state.exposures.set(name, { connect, close });
  if (options.receiver) {
    void pumpToPort(options.receiver, send, {
      onError,
      onEnd: (e) => {
        if (closed) return;
        if (!isIpcError(e, 'DISCONNECTED') && !isIpcError(e, 'CLOSED')) onError(e);
        receiverEnded = 'every sender of the channel to this window is closed';
        // Posted after everything already sent, so the renderer drains its queue first.
        link?.eof(receiverEnded);
      },
    });
  }
  // A document that asked before this call (or before any bridge listened) connects now.
  const loaded = wc.getURL() !== '' && !wc.isLoadingMainFrame();
  if (state.requested.delete(name) || loaded) connect();

  return {
    name,
    get connected() {
      return link !== undefined && !link.closed;
    },
    send,
    whenConnected(): Promise<void> {
      if (link && !link.closed) return Promise.resolve();
      if (closed) return Promise.reject(new IpcError('CLOSED', `${label}: the bridge is closed`));
      return new Promise((resolve) => waiters.push(resolve));
    },
    get closed() {
      return closed;
    },
    close: () => close(),
    [Symbol.dispose]: () => close(),
  };
}
