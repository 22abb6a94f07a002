/**
 * RPC to a renderer: `serveToWindow(protocol, win, handlers, { name })` serves a protocol to the
 * page's `rendererRpc(protocol, name)` (src/shared/rpc-renderer.ts) over the preload bridge.
 *
 * Built on the bridge's per-document legs (`exposeLegs` in src/main/bridge.ts) and on `serve()`:
 * each document of the window gets a server of its own, over its own MessagePort, so a
 * navigation, a reload, a renderer crash or the window's close ends that document's server (its
 * handlers see their `signal` abort with DISCONNECTED) and the next document starts afresh. The
 * renderer is untrusted: every frame's shape is checked before the server reads it (a bad one is
 * refused back to the renderer, with its `id`), every input passes the method's schema in main (a
 * method without an input schema takes no input), at most `maxConcurrentCalls` handlers run and at
 * most `MAX_QUEUED_FRAMES` frames wait for the server. Handles never reach the renderer: a result,
 * progress value or event holding one is refused with UNSERIALIZABLE.
 */
import { IpcError, isIpcError } from '../../shared/errors.js';
import { RpcError } from '../../shared/protocol.js';
import type { EmitPayload, EventName, MethodDef, Protocol } from '../../shared/protocol.js';
import { checkProtocol } from '../../shared/rpc-client-core.js';
import { requestFrameProblem } from '../../shared/rpc-frames.js';
import type { Frame } from '../../shared/rpc-frames.js';
import type { StandardSchemaV1 } from '../../shared/validate.js';
import type { BrowserWindowLike, WebContentsLike } from '../../shared/electron-types.js';
import { exposeLegs } from '../bridge.js';
import type { PortLink } from '../bridge.js';
import { checkKeys, reporter, showName } from './link.js';
import { serve } from './server.js';
import type { RpcHandlers, RpcServer } from './server.js';

/** Options of {@link serveToWindow}. */
export interface ServeToWindowOptions {
  /** The key on `window` (the preload exposes `window[name]`): letters, digits, `_` and `$`. */
  name: string;
  /** Most handlers running at once for one document (default 64); one more call is refused with `RpcError('BUSY')`. */
  maxConcurrentCalls?: number;
  /** Send the handler's stack with its error (`RpcError.remoteStack`). Default false. */
  exposeStack?: boolean;
  /**
   * Errors that belong to no reply: frames the renderer should not have sent (each is also
   * refused back to the renderer), and results, progress values or events that could not be
   * sent. Default: one process warning for the first.
   */
  onError?: (error: Error) => void;
}

/** Main's handle on a protocol served to one window, see {@link serveToWindow}. */
export interface WindowRpcServer<P extends Protocol> extends Disposable {
  readonly name: string;
  /** True while a document of the window holds the other end. */
  readonly connected: boolean;
  /** Handlers running for the current document (a cancelled one counts until it returns). */
  readonly inFlight: number;
  /** True once closed (by `close()` or because the window was closed). */
  readonly closed: boolean;
  /**
   * Sends `event` to the current document if it listens to it; returns whether it was sent (false
   * while no document is connected or it does not listen). Throws `TypeError` for an event the
   * protocol does not define, `IpcError('UNSERIALIZABLE')` for a payload holding a handle or a
   * value a MessagePort cannot clone.
   */
  emit<K extends EventName<P>>(event: K, payload: EmitPayload<P['events'][K]>): boolean;
  /** Resolves when a document of the window connects (now, if one is); rejects CLOSED once closed. */
  whenConnected(): Promise<void>;
  /** Aborts the running handlers (reason CLOSED), ends the renderer's leg and stops serving. Idempotent. */
  close(): void;
}

/** Frames waiting for a document's server at most; one more is refused with `RpcError('BUSY')`. */
export const MAX_QUEUED_FRAMES = 1024;

const OPTIONS = ['name', 'maxConcurrentCalls', 'exposeStack', 'onError'] as const;

/** The Standard Schema main checks every message from the renderer with: an RPC request frame. */
const requestFrame: StandardSchemaV1<unknown, Frame> = {
  '~standard': {
    version: 1,
    vendor: 'electron-ipc-channel',
    validate(value) {
      const problem = requestFrameProblem(value);
      return problem ? { issues: [problem] } : { value: value as Frame };
    },
  },
};

/** The input schema of a method that declares none: a renderer may send it no input at all. */
const noInput: StandardSchemaV1<unknown, undefined> = {
  '~standard': {
    version: 1,
    vendor: 'electron-ipc-channel',
    validate(value) {
      return value === undefined ? { value: undefined } : { issues: [{ message: 'this method takes no input (it has no input schema)' }] };
    },
  },
};

/**
 * Serves `protocol` to a window's renderer, which calls it with `rendererRpc(protocol, name)` from
 * `electron-ipc-channel/preload` (the preload exposes `name` as for `exposeToWindow`:
 * `preloadWebPreferences(name)` or `exposeIpcChannels(name)`).
 *
 * ```ts
 * const files = serveToWindow(Files, win, {
 *   read: async ({ path }, { signal }) => new Uint8Array(await readFile(allowed(path), { signal })),
 * }, { name: 'files' });
 * files.emit('changed', { path });
 * ```
 *
 * Each document of the window gets its own server: on navigation, reload, a renderer crash or the
 * window's close, the running handlers' `signal`s abort with DISCONNECTED and the page's calls in
 * flight reject DISCONNECTED; the next document starts afresh. Inputs are checked in main with
 * the methods' `input` schemas (`RpcError('INVALID')` in the page); a method without one takes no
 * input. Results, progress values and events holding handles are refused (UNSERIALIZABLE).
 *
 * Throws `TypeError` for a missing or extra handler, a bad name or an unknown option, as
 * `exposeToWindow` and `serve` do; runs in Electron's main process only.
 */
export function serveToWindow<P extends Protocol>(
  protocol: P,
  target: WebContentsLike | BrowserWindowLike,
  handlers: RpcHandlers<P>,
  options: ServeToWindowOptions,
): WindowRpcServer<P> {
  checkProtocol('serveToWindow', protocol);
  if (typeof options !== 'object' || options === null) throw new TypeError('serveToWindow: options must be an object with at least { name }');
  checkKeys('serveToWindow', options, OPTIONS);
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('serveToWindow: onError must be a function');
  const label = `window.${String(options.name)}`;
  const report = reporter(`RPC server ${label}`, options.onError);
  const served = withInputSchemas(protocol);
  const serveOptions = { maxConcurrentCalls: options.maxConcurrentCalls, exposeStack: options.exposeStack, onError: report };
  // Checks handlers and options before anything is exposed (serve throws TypeError/RangeError).
  serve(served, idleLink(), handlers, serveOptions).close();

  let current: RpcServer<P> | undefined;
  const exposure = exposeLegs<Frame, Frame>(target, { name: options.name, schema: requestFrame, onError: report }, (leg) => {
    const queue = new FrameQueue(label);
    const server = serve(served, legLink(leg, queue, label), handlers, serveOptions) as RpcServer<P>;
    current = server;
    return {
      onMessage: (frame) => queue.push(frame),
      onClose: (reason) => {
        queue.end(new IpcError('DISCONNECTED', `${label}: ${reason}; the calls of that document were aborted`));
        if (current === server) current = undefined;
      },
    };
  });

  const close = (): void => {
    current?.close();
    exposure.close();
  };
  return {
    name: options.name,
    get connected() {
      return exposure.connected;
    },
    get inFlight() {
      return current?.inFlight ?? 0;
    },
    get closed() {
      return exposure.closed;
    },
    emit(event, payload) {
      if (typeof event !== 'string' || !Object.hasOwn(protocol.events, event)) {
        throw new TypeError(`emit: the protocol has no event ${showName(event)}; its events are ${Object.keys(protocol.events).join(', ') || '(none)'}`);
      }
      return current !== undefined && !current.closed && current.emit(event, payload as never);
    },
    whenConnected: () => exposure.whenConnected(),
    close,
    [Symbol.dispose]: close,
  };
}

/** `protocol` with `noInput` for the methods that declare no input schema (a renderer is untrusted). */
function withInputSchemas<P extends Protocol>(protocol: P): P {
  const methods: Record<string, MethodDef> = {};
  for (const [name, def] of Object.entries(protocol.methods)) methods[name] = def.input ? def : { ...def, input: noInput };
  return { methods, events: protocol.events } as unknown as P;
}

/** A link that never delivers anything: serve() on it only checks its arguments. */
function idleLink(): { send(): void; recv(): Promise<unknown>; close(): void } {
  return { send() {}, recv: () => new Promise(() => {}), close() {} };
}

/** The RPC link over one document's leg: frames from `queue`, replies posted to the port. */
function legLink(leg: PortLink<Frame>, queue: FrameQueue, label: string): { send(frame: unknown): void; recv(): Promise<unknown>; close(): void } {
  return {
    send(frame) {
      try {
        leg.post(frame as Frame);
      } catch (e) {
        // The bridge refuses handles with a TypeError; in RPC terms the value cannot be sent.
        if (e instanceof TypeError) throw new IpcError('UNSERIALIZABLE', e.message, { cause: e });
        if (isIpcError(e, 'CLOSED')) throw new IpcError('DISCONNECTED', `${label}: the document is gone`, { cause: e });
        throw e;
      }
    },
    recv: () => queue.recv(),
    close() {
      queue.end(new IpcError('CLOSED', `${label}: the server was closed`));
      leg.end('main closed the channel');
    },
  };
}

/**
 * Frames of one document waiting for its server's loop. The loop takes each frame in the
 * microtask after it arrives, so the queue stays short; the bound is for a loop that falls
 * behind: a frame over it is refused (`RpcError('BUSY')`, which the bridge sends back to the
 * renderer with the frame's id, so the call it carried rejects at once).
 */
class FrameQueue {
  private readonly frames: unknown[] = [];
  private waiter: { resolve(v: unknown): void; reject(e: unknown): void } | undefined;
  private ended: IpcError | undefined;

  constructor(private readonly label: string) {}

  push(frame: unknown): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(frame);
      return;
    }
    if (this.frames.length >= MAX_QUEUED_FRAMES) {
      throw new RpcError('BUSY', `${this.label}: ${MAX_QUEUED_FRAMES} frames already wait for the server; this one was refused`);
    }
    this.frames.push(frame);
  }

  recv(): Promise<unknown> {
    if (this.frames.length > 0) return Promise.resolve(this.frames.shift());
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  end(error: IpcError): void {
    if (this.ended) return;
    this.ended = error;
    this.frames.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(error);
  }
}
