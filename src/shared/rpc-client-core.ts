/**
 * The calling side of an RPC link, independent of what carries the frames: `rpcClient()` in Node
 * (src/main/rpc/client.ts, over a sender and a receiver) and `rendererRpc()` in a renderer
 * (src/shared/rpc-renderer.ts, over the preload bridge) both drive this one implementation.
 * Imports neither Node nor Electron (timers through `armDeadline`): it is bundled into the preload.
 *
 * Everything the server sends is untrusted: a frame that is not one of the protocol's is dropped
 * (its handles closed) and reported; a result is checked with the method's `output` schema before
 * the call resolves. Calls are bounded (`maxPendingCalls`) and each can be timed out or cancelled;
 * a cancelled or timed-out call tells the server, whose handler sees its `signal` abort. The
 * driver hands frames over one at a time (`receive`) and waits for the promise it returns (an
 * asynchronous schema at work) before the next, which keeps frames in order.
 */
import { armDeadline, checkTimeout } from './deadline.js';
import { IpcError, isIpcError } from './errors.js';
import { RpcError } from './protocol.js';
import type { CallInput, CallOutput, CallProgress, EventName, EventPayload, MethodDef, MethodName, Protocol } from './protocol.js';
import { CODE_PATTERN, checkKeys, isId, isRecord, MAX_MESSAGE_CHARS, malformedFrame, positiveInt, sanitizeIssues, showName, truncate } from './rpc-frames.js';
import type { Frame } from './rpc-frames.js';
import { validate } from './validate.js';
import type { StandardSchemaV1 } from './validate.js';

/** Options of one `call()`. */
export interface CallOptions<Progress = unknown> {
  /** Cancels the call: it rejects with the signal's reason and the server's handler is aborted. */
  signal?: AbortSignal;
  /** Milliseconds to wait for the reply; then the call rejects TIMEOUT and is cancelled. Default: the client's `timeout`. */
  timeout?: number;
  /** Receives each `progress(value)` of the handler, in order, before the call resolves. */
  onProgress?: (value: Progress) => void;
}

/** Options of `rpcClient()` and `rendererRpc()`. */
export interface RpcClientOptions {
  /** Default `timeout` of every call, in ms (default: none). */
  timeout?: number;
  /** Most calls waiting for a reply at once (default 1024); one more rejects `RpcError('BUSY')`. */
  maxPendingCalls?: number;
  /**
   * Errors that belong to no call: frames the server should not have sent, replies the receiver
   * refused (TOO_LARGE...), listeners and `onProgress` callbacks that threw. Default: one process
   * warning (in a renderer, one `console.error`) for the first.
   */
  onError?: (error: Error) => void;
}

/** Options of `client.events()`. */
export interface EventsOptions {
  /** Ends the iteration: the waiting `next()` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Most events kept unread (default 1024); one more ends the iteration with TOO_LARGE. */
  maxBuffered?: number;
}

type CallArgs<M> = undefined extends CallInput<M>
  ? [input?: CallInput<M>, options?: CallOptions<CallProgress<M>>]
  : [input: CallInput<M>, options?: CallOptions<CallProgress<M>>];

/** The calling side of an RPC link, typed by its protocol. */
export interface RpcClient<P extends Protocol> extends Disposable {
  /**
   * Calls `method` on the server and resolves with its result, checked with the method's `output`
   * schema. Rejects with an `RpcError` the server reported (the handler threw, `UNKNOWN_METHOD`,
   * `INVALID` input, `BUSY`), or an `IpcError`: `TIMEOUT`, `DISCONNECTED`, `CLOSED`, `INVALID`
   * (the result failed the schema; its handles are closed), `UNSERIALIZABLE` (the input cannot be
   * sent); with the signal's reason when it aborts; `RpcError('BUSY', remote false)` over
   * `maxPendingCalls`. Handles in `input` are sent as by `IpcSender.send` (receivers move); handles
   * in the result are the caller's.
   */
  call<K extends MethodName<P>>(method: K, ...args: CallArgs<P['methods'][K]>): Promise<CallOutput<P['methods'][K]>>;
  /**
   * Subscribes `listener` to `event` (the server sends an event only to clients that listen to
   * it). Frames the client sends arrive in order, so a call made after `on()` reaches the server
   * after the subscription. Returns the function that unsubscribes. A payload that fails the
   * event's schema is dropped and reported to `onError`.
   */
  on<K extends EventName<P>>(event: K, listener: (payload: EventPayload<P['events'][K]>) => void): () => void;
  /**
   * The same subscription as an async iterator: `for await (const e of client.events('changed'))`.
   * Ends when the client ends (DISCONNECTED, CLOSED) or the loop is left (which unsubscribes).
   * Throws the signal's reason when `signal` aborts, and `IpcError('TOO_LARGE')` when more than
   * `maxBuffered` (default 1024) events wait unread: the subscription is then dropped and the
   * handles in the buffered payloads closed.
   */
  events<K extends EventName<P>>(event: K, options?: EventsOptions): AsyncIterableIterator<EventPayload<P['events'][K]>>;
  /** Calls waiting for a reply. */
  readonly pending: number;
  /** True once closed, or once the link has ended (e.g. DISCONNECTED). */
  readonly closed: boolean;
  /** Rejects every waiting call with CLOSED and closes the link (both directions). Idempotent. */
  close(): void;
}

/** What carries a client's frames to the server; the driver hands the server's frames to `receive`. */
export interface ClientTransport {
  /** Sends one frame; throws what the link throws (UNSERIALIZABLE, CLOSED, DISCONNECTED). */
  send(frame: Frame): void;
  /** Keep the process alive (true) while calls wait or listeners listen; optional. */
  ref?(on: boolean): void;
  /** Called once when the client ends (closed, or the link ended): release the link. */
  close(): void;
}

/** How a driver configures the core. */
export interface ClientCoreOptions {
  /** Default timeout of every call, ms (undefined: none). */
  timeout: number | undefined;
  /** Most calls waiting at once (`maxPendingCalls`). */
  maxPending: number;
  /** Errors that belong to no call (already wrapped: never throws). */
  report: (error: Error) => void;
  /** Closes the handles inside a value that nobody will get (default: nothing to close). */
  closeHandles?: (value: unknown) => void;
  /** Closes the handles `raw` holds that a schema's output `kept` dropped (default: nothing). */
  closeDropped?: (raw: unknown, kept: unknown) => void;
  /**
   * On `close()`, tell the server first: a cancel for each waiting call and an unsub for each
   * event listened to. For a link that outlives the client (a renderer's bridge channel), where
   * the server would otherwise not learn that the client is gone.
   */
  farewell?: boolean;
  /** The first call id (default 1): a new client on a link an earlier one used continues its ids. */
  firstId?: number;
}

/** A client and the entry points its driver uses. */
export interface ClientCore<P extends Protocol> {
  readonly client: RpcClient<P>;
  /** One frame from the server; a promise while an asynchronous schema checks it (wait before the next). */
  receive(frame: unknown): Promise<void> | undefined;
  /** The link ended: every waiting call rejects with `error`, then the transport is closed. */
  end(error: IpcError): void;
  /**
   * The server refused the frame of call `id` before it read it (a bridge's `rejected` notice):
   * that call rejects with `RpcError(code, message)`, `remote: true`. False when no call waits
   * with that id.
   */
  refuse(id: number, code: string, message: string): boolean;
  /** The id the next call gets. */
  readonly nextId: number;
}

/** Throws a TypeError unless `protocol` looks like what `defineProtocol` returns. */
export function checkProtocol(what: string, protocol: unknown): asserts protocol is Protocol {
  const p = protocol as Protocol | null;
  if (typeof p !== 'object' || p === null || typeof p.methods !== 'object' || p.methods === null || typeof p.events !== 'object' || p.events === null) {
    throw new TypeError(`${what}: the first argument must be a protocol from defineProtocol()`);
  }
}

/** Reads the options common to every client; `extra` names options the caller handles itself. */
export function clientOptions(what: string, options: unknown, extra: readonly string[] = []): { timeout: number | undefined; maxPending: number; onError: ((e: Error) => void) | undefined } {
  const o = (options ?? {}) as RpcClientOptions;
  if (typeof o !== 'object' || o === null) throw new TypeError(`${what}: options must be an object`);
  checkKeys(what, o, [...CLIENT_OPTIONS, ...extra]);
  if (o.onError !== undefined && typeof o.onError !== 'function') throw new TypeError(`${what}: onError must be a function`);
  return { timeout: checkTimeout(o.timeout, `${what}: timeout`), maxPending: positiveInt(`${what}: maxPendingCalls`, o.maxPendingCalls, 1024), onError: o.onError };
}

/** Creates a client over `transport`; the caller drives it (see {@link ClientCore}). */
export function createClientCore<P extends Protocol>(protocol: P, transport: ClientTransport, options: ClientCoreOptions): ClientCore<P> {
  const c = new Client(protocol, transport, options);
  return {
    client: c as unknown as RpcClient<P>,
    receive: (frame) => c.receive(frame),
    end: (error) => c.end(error),
    refuse: (id, code, message) => c.refuse(id, code, message),
    get nextId() {
      return c.nextId;
    },
  };
}

interface Pending {
  method: string;
  def: MethodDef;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  disarm(): void;
  onProgress?: (value: unknown) => void;
}

const CALL_OPTIONS = ['signal', 'timeout', 'onProgress'] as const;
const CLIENT_OPTIONS = ['timeout', 'maxPendingCalls', 'onError'] as const;
const EVENTS_OPTIONS = ['signal', 'maxBuffered'] as const;
/** setTimeout's largest delay. */
const MAX_TIMER = 2 ** 31 - 1;
/** `Symbol.dispose`, or the name esbuild and TypeScript use where the runtime has none (a Chromium before 134). */
const DISPOSE: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose');
const nothing = (): void => {};

/** An AbortSignal of this realm or another (a page's, Node's): what a call's `signal` must be. */
function isAbortSignal(v: unknown): v is AbortSignal {
  const s = v as AbortSignal | null;
  return typeof s === 'object' && s !== null && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function' && typeof s.removeEventListener === 'function';
}

class Client {
  private readonly pendingCalls = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<(payload: unknown) => void>>();
  nextId: number;
  private ended: IpcError | undefined;
  /** Called when the client ends: the `events()` iterations that are still open. */
  private readonly enders = new Set<() => void>();
  private readonly closeHandles: (value: unknown) => void;
  private readonly closeDropped: (raw: unknown, kept: unknown) => void;

  constructor(
    private readonly protocol: Protocol,
    private readonly link: ClientTransport,
    private readonly opts: ClientCoreOptions,
  ) {
    this.nextId = opts.firstId ?? 1;
    this.closeHandles = opts.closeHandles ?? nothing;
    this.closeDropped = opts.closeDropped ?? nothing;
    (this as unknown as Record<symbol, () => void>)[DISPOSE] = () => this.close();
  }

  get pending(): number {
    return this.pendingCalls.size;
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  call(method: string, input?: unknown, options: CallOptions = {}): Promise<unknown> {
    if (typeof method !== 'string' || !Object.hasOwn(this.protocol.methods, method)) {
      throw new TypeError(`call: the protocol has no method ${showName(method)}; its methods are ${Object.keys(this.protocol.methods).join(', ') || '(none)'}`);
    }
    if (typeof options !== 'object' || options === null) throw new TypeError('call: options must be an object');
    checkKeys('call', options, CALL_OPTIONS);
    const timeout = checkTimeout(options.timeout, 'call: timeout') ?? this.opts.timeout;
    const { signal, onProgress } = options;
    if (signal !== undefined && !isAbortSignal(signal)) throw new TypeError('call: signal must be an AbortSignal');
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('call: onProgress must be a function');
    if (this.ended) return Promise.reject(this.ended);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.pendingCalls.size >= this.opts.maxPending) {
      return Promise.reject(
        new RpcError('BUSY', `${this.opts.maxPending} calls are already waiting for a reply (maxPendingCalls); wait for some to finish`, { method }),
      );
    }
    const id = this.nextId++;
    try {
      this.link.send(onProgress ? { rpc: 'call', id, method, input, progress: true } : { rpc: 'call', id, method, input });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { method, def: this.protocol.methods[method]!, resolve, reject, disarm: nothing, onProgress: onProgress as Pending['onProgress'] };
      this.pendingCalls.set(id, p);
      p.disarm = armDeadline(
        {
          timeout: timeout === undefined ? undefined : Math.min(timeout, MAX_TIMER),
          signal,
          timeoutMessage: () => `call ${method}: no reply within ${timeout} ms; the call was cancelled on the server`,
        },
        (reason) => {
          this.settle(id, p);
          this.cancel(id);
          reject(reason);
        },
      );
      this.link.ref?.(true);
    });
  }

  on(event: string, listener: (payload: unknown) => void): () => void {
    if (typeof event !== 'string' || !Object.hasOwn(this.protocol.events, event)) {
      throw new TypeError(`on: the protocol has no event ${showName(event)}; its events are ${Object.keys(this.protocol.events).join(', ') || '(none)'}`);
    }
    if (typeof listener !== 'function') throw new TypeError('on: listener must be a function');
    if (this.ended) return () => {};
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
      this.sendQuietly({ rpc: 'sub', event });
    }
    // One entry per on(): the same function twice is called twice and needs two offs.
    const entry = (payload: unknown): void => listener(payload);
    set.add(entry);
    this.link.ref?.(true);
    return () => {
      if (!set.delete(entry) || set.size > 0 || this.listeners.get(event) !== set) return;
      this.listeners.delete(event);
      if (!this.ended) this.sendQuietly({ rpc: 'unsub', event });
      this.refIfBusy();
    };
  }

  events(event: string, options: EventsOptions = {}): AsyncIterableIterator<unknown> {
    if (typeof options !== 'object' || options === null) throw new TypeError('events: options must be an object');
    checkKeys('events', options, EVENTS_OPTIONS);
    const { signal } = options;
    if (signal !== undefined && !isAbortSignal(signal)) throw new TypeError('events: signal must be an AbortSignal');
    const maxBuffered = positiveInt('events: maxBuffered', options.maxBuffered, 1024);
    const buffered: unknown[] = [];
    let waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void } | undefined;
    let failure: { error: unknown } | undefined;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      off();
      this.enders.delete(onEnd);
      signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        this.closeHandles(buffered.splice(0));
        failure = { error };
      }
      const w = waiter;
      waiter = undefined;
      if (w && error !== undefined) w.reject(error);
      else if (w) w.resolve({ value: undefined, done: true });
    };
    const off = this.on(event, (payload) => {
      if (done) {
        this.closeHandles(payload);
        return;
      }
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w.resolve({ value: payload, done: false });
        return;
      }
      buffered.push(payload);
      if (buffered.length > maxBuffered) {
        finish(new IpcError('TOO_LARGE', `more than ${maxBuffered} ${event} events arrived unread (maxBuffered); read them faster or raise maxBuffered`));
      }
    });
    const onEnd = (): void => finish();
    const onAbort = (): void => finish(signal!.reason);
    this.enders.add(onEnd);
    if (this.ended) finish();
    if (signal?.aborted) finish(signal.reason);
    else signal?.addEventListener('abort', onAbort, { once: true });
    const iterator: AsyncIterableIterator<unknown> = {
      next: () => {
        if (buffered.length > 0) return Promise.resolve({ value: buffered.shift(), done: false });
        if (failure) {
          const { error } = failure;
          failure = undefined; // thrown once; then the iteration is over
          return Promise.reject(error);
        }
        if (done) return Promise.resolve({ value: undefined, done: true });
        if (waiter) return Promise.reject(new TypeError('events: next() called while another next() waits'));
        return new Promise((resolve, reject) => (waiter = { resolve, reject }));
      },
      return: () => {
        finish();
        this.closeHandles(buffered.splice(0));
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  close(): void {
    if (this.ended) return;
    if (this.opts.farewell) {
      for (const id of this.pendingCalls.keys()) this.cancel(id);
      for (const event of this.listeners.keys()) this.sendQuietly({ rpc: 'unsub', event });
    }
    this.end(new IpcError('CLOSED', 'the RPC client was closed'));
  }

  /** Ends the client: every waiting call rejects with `error`, the link is closed. */
  end(error: IpcError): void {
    if (this.ended) return;
    this.ended = error;
    const calls = [...this.pendingCalls];
    this.pendingCalls.clear();
    for (const [id, p] of calls) {
      this.settle(id, p);
      p.reject(error);
    }
    this.listeners.clear();
    for (const ender of [...this.enders]) ender();
    this.link.close();
  }

  private settle(id: number, p: Pending): void {
    this.pendingCalls.delete(id);
    p.disarm();
    this.refIfBusy();
  }

  /** Keeps the process alive only while calls wait or listeners listen. */
  private refIfBusy(): void {
    if (!this.ended) this.link.ref?.(this.pendingCalls.size > 0 || this.listeners.size > 0);
  }

  private cancel(id: number): void {
    this.sendQuietly({ rpc: 'cancel', id });
  }

  private sendQuietly(frame: Frame): void {
    try {
      this.link.send(frame);
    } catch {
      /* the link is gone: the driver ends the client */
    }
  }

  /**
   * Routes one frame. Returns a promise while an asynchronous schema checks it: the driver waits
   * for it before handing over the next frame, which keeps frames in order and bounds what a
   * server can make this client hold.
   */
  receive(frame: unknown): Promise<void> | undefined {
    if (this.ended) {
      this.closeHandles(frame);
      return undefined;
    }
    if (!isRecord(frame) || typeof frame.rpc !== 'string') {
      this.closeHandles(frame);
      this.opts.report(malformedFrame('client', 'a message that is not an RPC frame'));
      return undefined;
    }
    switch (frame.rpc) {
      case 'result':
      case 'error':
      case 'progress': {
        const p = this.callOf(frame);
        return p ? this.deliver(p, frame) : undefined;
      }
      case 'event':
        return this.emitEvent(frame);
      default:
        this.closeHandles(frame);
        this.opts.report(malformedFrame('client', `a frame of unknown type ${showName(frame.rpc)}`));
        return undefined;
    }
  }

  /** The waiting call a result/error/progress frame answers; undefined (handles closed) when none. */
  private callOf(frame: Record<string, unknown>): Pending | undefined {
    const id = frame.id;
    const p = isId(id) ? this.pendingCalls.get(id) : undefined;
    if (p) return p;
    this.closeHandles(frame);
    // A reply to a call that timed out or was cancelled is expected; an id never used is not.
    if (!isId(id) || id >= this.nextId) this.opts.report(malformedFrame('client', `a ${frame.rpc} frame for call id ${showName(String(id))}, which was never used`));
    return undefined;
  }

  /** Rejects the waiting call `id` with `RpcError(code, message)`; false when no call waits with that id. */
  refuse(id: number, code: string, message: string): boolean {
    const p = this.pendingCalls.get(id);
    if (!p) return false;
    this.settle(id, p);
    p.reject(new RpcError(CODE_PATTERN.test(code) ? code : 'INTERNAL', truncate(message, MAX_MESSAGE_CHARS), { method: p.method, remote: true }));
    return true;
  }

  /** Delivers one frame of a call; a promise while an asynchronous schema runs. */
  private deliver(p: Pending, frame: Record<string, unknown>): Promise<void> | undefined {
    const id = frame.id as number;
    if (this.pendingCalls.get(id) !== p) {
      this.closeHandles(frame); // settled meanwhile (timeout, abort, close)
      return undefined;
    }
    if (frame.rpc === 'progress') {
      if (!p.onProgress) {
        this.closeHandles(frame.value);
        this.opts.report(malformedFrame('client', `progress for call ${id} (${p.method}), which did not ask for progress`));
        return undefined;
      }
      return this.checked(p.def.progress, frame.value, (value) => {
        if (this.pendingCalls.get(id) !== p) {
          this.closeHandles(value);
          return;
        }
        try {
          p.onProgress!(value);
        } catch (e) {
          this.opts.report(new Error(`onProgress of call ${p.method} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
        }
      }, (e) => this.opts.report(new IpcError('INVALID', `a progress value of call ${p.method} failed its schema and was dropped: ${e.message}`, { cause: e, issues: e.issues })));
    }
    if (frame.rpc === 'error') {
      this.settle(id, p);
      p.reject(remoteError(p.method, frame));
      this.closeHandles(frame);
      return undefined;
    }
    this.settle(id, p);
    return this.checked(p.def.output, frame.output, p.resolve, (e) =>
      p.reject(new IpcError('INVALID', `the result of ${p.method} failed its output schema: ${e.message}`, { cause: e, issues: e.issues })),
    );
  }

  private emitEvent(frame: Record<string, unknown>): Promise<void> | undefined {
    const name = frame.event;
    if (typeof name !== 'string' || !Object.hasOwn(this.protocol.events, name)) {
      this.closeHandles(frame);
      this.opts.report(malformedFrame('client', `an event ${showName(name)} that the protocol does not define`));
      return undefined;
    }
    if (!this.listeners.has(name)) {
      this.closeHandles(frame.payload); // unsubscribed meanwhile
      return undefined;
    }
    const def = this.protocol.events[name] as StandardSchemaV1 | object;
    const schema = '~standard' in def ? (def as StandardSchemaV1) : undefined;
    return this.checked(schema, frame.payload, (payload) => {
      const set = this.listeners.get(name);
      if (!set) {
        this.closeHandles(payload);
        return;
      }
      for (const listener of [...set]) {
        try {
          listener(payload);
        } catch (e) {
          this.opts.report(new Error(`a listener of event ${name} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
        }
      }
    }, (e) => this.opts.report(new IpcError('INVALID', `a ${name} event failed its schema and was dropped: ${e.message}`, { cause: e, issues: e.issues })));
  }

  /** Validates `value` with `schema` (if any), then `ok(value)`, or closes its handles and `bad(error)`. */
  private checked(schema: StandardSchemaV1 | undefined, value: unknown, ok: (v: unknown) => void, bad: (e: IpcError) => void): Promise<void> | undefined {
    if (!schema) {
      ok(value);
      return undefined;
    }
    const fail = (e: unknown): void => {
      this.closeHandles(value);
      bad(isIpcError(e) ? e : new IpcError('INVALID', String(e), { cause: e }));
    };
    let r: unknown;
    try {
      r = validate(schema, value);
    } catch (e) {
      fail(e);
      return undefined;
    }
    if (r instanceof Promise) {
      return r.then((v) => {
        this.closeDropped(value, v);
        ok(v);
      }, fail);
    }
    this.closeDropped(value, r);
    ok(r);
    return undefined;
  }
}

/** The RpcError for an error frame, or MALFORMED when the frame is not a valid one. */
function remoteError(method: string, frame: Record<string, unknown>): Error {
  const { code, message, stack } = frame;
  if (typeof code !== 'string' || !CODE_PATTERN.test(code) || typeof message !== 'string') {
    return malformedFrame('client', `an error frame for ${method} without a valid code and message`);
  }
  return new RpcError(code, truncate(message, MAX_MESSAGE_CHARS), {
    method,
    remote: true,
    issues: sanitizeIssues(frame.issues),
    remoteStack: typeof stack === 'string' ? truncate(stack, 16384) : undefined,
  });
}
