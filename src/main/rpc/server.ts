/**
 * The serving side of an RPC link: `serve(protocol, sender, receiver, handlers)`.
 *
 * One receive loop reads the client's frames. Everything in them is untrusted: a call names a
 * method of the protocol (else `UNKNOWN_METHOD`), its input passes the method's `input` schema
 * before the handler sees it (else `INVALID`), at most `maxConcurrentCalls` handlers run at once
 * (else `BUSY`), and any other frame is dropped with its handles closed and reported to `onError`.
 * The loop waits for what it has sent to reach the kernel before it reads the next frame, so a
 * client that calls without reading the replies fills its own socket, not this process's memory.
 * A handler that throws becomes an error reply (code and message; no stack unless `exposeStack`).
 */
import { IpcError, isIpcError } from '../../shared/errors.js';
import { RpcError } from '../../shared/protocol.js';
import type { EmitPayload, EventName, HandlerInput, HandlerOutput, HandlerProgress, MethodName, Protocol } from '../../shared/protocol.js';
import { validate } from '../../shared/validate.js';
import { closeHandles } from '../bridge.js';
import { checkProtocol } from './client.js';
import { checkKeys, closeDropped, CODE_PATTERN, isId, isRecord, linkArgs, malformedFrame, positiveInt, reporter, sanitizeIssues, showName, truncate } from './link.js';
import type { Frame, Link, RpcEndpointLike, RpcPairLike, RpcReceiverLike, RpcSenderLike } from './link.js';

/** What a handler gets besides its input. */
export interface RpcContext<Progress = unknown> {
  /**
   * Aborts when the caller cancels (its signal or timeout; reason `RpcError('CANCELLED')`), when
   * the client disconnects (reason `IpcError('DISCONNECTED')`) or the server is closed
   * (`IpcError('CLOSED')`). The result of an aborted call is dropped.
   */
  readonly signal: AbortSignal;
  /** The method called. */
  readonly method: string;
  /**
   * Sends a progress value to the caller (sent as by `IpcSender.send`). Does nothing when the
   * caller passed no `onProgress`, or once the call is over or aborted. Throws
   * `IpcError('UNSERIALIZABLE')` for a value that cannot be sent.
   */
  progress(value: Progress): void;
  /**
   * Marks handles in `value` to be closed here once the reply is sent (or dropped): return
   * `ctx.transfer(IpcFileHandle.from(fd))` to give the caller a handle without keeping a copy.
   * Returns `value`. Without it, senders, file handles and shared memory in a result stay open in
   * this process (as after `IpcSender.send`), for handlers that return something they keep.
   */
  transfer<T>(value: T): T;
}

/** The handlers of a protocol: one function per method, typed by the protocol. */
export type RpcHandlers<P extends Protocol> = {
  [K in MethodName<P>]: (
    input: HandlerInput<P['methods'][K]>,
    ctx: RpcContext<HandlerProgress<P['methods'][K]>>,
  ) => HandlerOutput<P['methods'][K]> | PromiseLike<HandlerOutput<P['methods'][K]>>;
};

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Most handlers running at once (default 64); a call over it is refused with `RpcError('BUSY')`. */
  maxConcurrentCalls?: number;
  /** Send the handler's stack with its error (`RpcError.remoteStack`). Default false: code and message only. */
  exposeStack?: boolean;
  /**
   * Errors that belong to no reply: frames the client should not have sent, and the error that
   * ended the link when it was not a disconnection. Default: one process warning for the first.
   */
  onError?: (error: Error) => void;
}

/** The serving side of an RPC link. */
export interface RpcServer<P extends Protocol> extends Disposable {
  /**
   * Sends `event` to the client if it listens to it (`client.on`); returns whether it was sent.
   * False once the link is over. Throws `TypeError` for an event the protocol does not define and
   * `IpcError('UNSERIALIZABLE')` for a payload that cannot be sent.
   */
  emit<K extends EventName<P>>(event: K, payload: EmitPayload<P['events'][K]>): boolean;
  /** Handlers running now (a cancelled one counts until it returns). */
  readonly inFlight: number;
  /** True once closed or once the client is gone. */
  readonly closed: boolean;
  /** Resolves when the link is over (client gone, or `close()`); never rejects. */
  readonly done: Promise<void>;
  /** Aborts every running handler (reason CLOSED) and closes the link. Idempotent. */
  close(): void;
}

interface Running {
  method: string;
  controller: AbortController;
  wantsProgress: boolean;
  transfers: unknown[];
}

const SERVE_OPTIONS = ['maxConcurrentCalls', 'exposeStack', 'onError'] as const;

/**
 * Serves `handlers` for `protocol` over a receiver (requests) and a sender (replies), or over an
 * endpoint with both (`connectToParent()`'s `ParentEndpoint`, a `Helper`, an `IpcServerConnection`
 * of an `IpcServer`). The server owns the
 * link from then on: it is closed when the client disconnects or `close()` is called.
 *
 * ```ts
 * // files-helper.mjs
 * serve(Files, connectToParent(), {
 *   async read({ path }, { signal }) { return new Uint8Array(await readFile(path, { signal })); },
 *   count: ({ dir }) => readdirSync(dir).length,
 * });
 * ```
 *
 * Throws `TypeError` when a method of the protocol has no handler or `handlers` has a function
 * the protocol does not define.
 */
export function serve<P extends Protocol>(protocol: P, endpoint: RpcEndpointLike | RpcPairLike, handlers: RpcHandlers<P>, options?: ServeOptions): RpcServer<P>;
export function serve<P extends Protocol>(protocol: P, sender: RpcSenderLike, receiver: RpcReceiverLike, handlers: RpcHandlers<P>, options?: ServeOptions): RpcServer<P>;
export function serve<P extends Protocol>(protocol: P, ...args: unknown[]): RpcServer<P> {
  checkProtocol('serve', protocol);
  const [link, rest] = linkArgs('serve', args);
  const handlers = rest[0] as Record<string, unknown>;
  const options = (rest[1] ?? {}) as ServeOptions;
  if (typeof handlers !== 'object' || handlers === null) throw new TypeError('serve: handlers must be an object with one function per method');
  for (const name of Object.keys(protocol.methods)) {
    if (typeof handlers[name] !== 'function') throw new TypeError(`serve: no handler for method "${name}"`);
  }
  for (const name of Object.keys(handlers)) {
    if (!Object.hasOwn(protocol.methods, name)) throw new TypeError(`serve: handler "${name}" is not a method of the protocol; its methods are ${Object.keys(protocol.methods).join(', ')}`);
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('serve: options must be an object');
  checkKeys('serve', options, SERVE_OPTIONS);
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('serve: onError must be a function');
  return new Server(protocol, link, { ...handlers } as Record<string, Handler>, {
    maxConcurrent: positiveInt('serve: maxConcurrentCalls', options.maxConcurrentCalls, 64),
    exposeStack: options.exposeStack === true,
    report: reporter('RPC server', options.onError),
  }) as unknown as RpcServer<P>;
}

type Handler = (input: unknown, ctx: RpcContext) => unknown;

class Server {
  private readonly running = new Map<number, Running>();
  private readonly subscribed = new Set<string>();
  private ended: IpcError | undefined;
  /** Frames sent since the loop last waited for the sender to drain. */
  private unflushed = 0;
  private finish!: () => void;
  readonly done = new Promise<void>((resolve) => (this.finish = resolve));

  constructor(
    private readonly protocol: Protocol,
    private readonly link: Link,
    private readonly handlers: Record<string, Handler>,
    private readonly opts: { maxConcurrent: number; exposeStack: boolean; report: (e: Error) => void },
  ) {
    void this.loop();
  }

  get inFlight(): number {
    return this.running.size;
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  emit(event: string, payload: unknown): boolean {
    if (typeof event !== 'string' || !Object.hasOwn(this.protocol.events, event)) {
      throw new TypeError(`emit: the protocol has no event ${showName(event)}; its events are ${Object.keys(this.protocol.events).join(', ') || '(none)'}`);
    }
    if (this.ended || !this.subscribed.has(event)) return false;
    return this.trySend({ rpc: 'event', event, payload });
  }

  close(): void {
    this.end(new IpcError('CLOSED', 'the RPC server was closed'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private end(error: IpcError): void {
    if (this.ended) return;
    this.ended = error;
    for (const r of this.running.values()) r.controller.abort(error);
    this.subscribed.clear();
    this.link.close();
    this.finish();
  }

  /** Sends a frame; false when the client is gone. What cannot be serialized throws. */
  private trySend(frame: Frame): boolean {
    try {
      this.link.send(frame);
    } catch (e) {
      if (isIpcError(e, 'DISCONNECTED') || isIpcError(e, 'CLOSED')) return false;
      throw e;
    }
    this.unflushed++;
    return true;
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.unflushed > 0) {
        // Backpressure: a client that does not read its replies stops being read.
        this.unflushed = 0;
        try {
          await this.link.flush();
        } catch (e) {
          this.end(isIpcError(e) ? e : new IpcError('OS', String(e), { cause: e }));
          return;
        }
        if (this.ended) return;
      }
      let frame: unknown;
      try {
        frame = await this.link.recv();
      } catch (e) {
        if (this.ended) return;
        if (isIpcError(e, 'MALFORMED') || isIpcError(e, 'TOO_LARGE') || isIpcError(e, 'INVALID')) {
          this.opts.report(new IpcError(e.code, `a message from the RPC client was refused: ${e.message}`, { cause: e }));
          continue;
        }
        const error = isIpcError(e) ? e : new IpcError('OS', `the RPC server's receiver failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
        if (!isIpcError(e, 'DISCONNECTED')) this.opts.report(error);
        this.end(error);
        return;
      }
      if (this.ended) {
        closeHandles(frame);
        return;
      }
      try {
        this.dispatch(frame);
      } catch (e) {
        // Only a reply that cannot be sent gets here (a refusal always serializes); keep serving.
        this.opts.report(e as Error);
      }
    }
  }

  private dispatch(frame: unknown): void {
    if (!isRecord(frame) || typeof frame.rpc !== 'string') {
      closeHandles(frame);
      this.opts.report(malformedFrame('server', 'a message that is not an RPC frame'));
      return;
    }
    switch (frame.rpc) {
      case 'call':
        this.startCall(frame);
        return;
      case 'cancel': {
        const r = isId(frame.id) ? this.running.get(frame.id) : undefined;
        // An unknown id is a call that finished before the cancel arrived: nothing to do.
        r?.controller.abort(new RpcError('CANCELLED', `the caller cancelled this call of ${r.method}`, { method: r.method, remote: true }));
        return;
      }
      case 'sub':
      case 'unsub': {
        const event = frame.event;
        if (typeof event !== 'string' || !Object.hasOwn(this.protocol.events, event)) {
          this.opts.report(malformedFrame('server', `a subscription to ${showName(event)}, which the protocol does not define`));
          closeHandles(frame);
          return;
        }
        if (frame.rpc === 'sub') this.subscribed.add(event);
        else this.subscribed.delete(event);
        return;
      }
      default:
        closeHandles(frame);
        this.opts.report(malformedFrame('server', `a frame of unknown type ${showName(frame.rpc)}`));
    }
  }

  private startCall(frame: Record<string, unknown>): void {
    const { id, method } = frame;
    if (!isId(id)) {
      closeHandles(frame);
      this.opts.report(malformedFrame('server', `a call with a bad id ${showName(String(id))}`));
      return;
    }
    if (this.running.has(id)) {
      closeHandles(frame);
      this.opts.report(malformedFrame('server', `a call with id ${id}, which is already running`));
      return;
    }
    if (typeof method !== 'string' || !Object.hasOwn(this.protocol.methods, method)) {
      closeHandles(frame);
      this.refuse(id, String(method), 'UNKNOWN_METHOD', `the server has no method ${showName(method)}`);
      return;
    }
    if (this.running.size >= this.opts.maxConcurrent) {
      closeHandles(frame);
      this.refuse(id, method, 'BUSY', `the server is running ${this.opts.maxConcurrent} calls already (maxConcurrentCalls); try again later`);
      return;
    }
    const r: Running = { method, controller: new AbortController(), wantsProgress: frame.progress === true, transfers: [] };
    this.running.set(id, r);
    void this.run(id, r, frame.input);
  }

  private refuse(id: number, method: string, code: string, message: string, issues?: unknown): void {
    this.trySend({ rpc: 'error', id, code, message: `${method}: ${message}`, ...(issues ? { issues: sanitizeIssues(issues) } : {}) });
  }

  private async run(id: number, r: Running, rawInput: unknown): Promise<void> {
    const def = this.protocol.methods[r.method]!;
    const { signal } = r.controller;
    let input = rawInput;
    let output: unknown;
    let failure: { error: unknown } | undefined;
    if (def.input) {
      try {
        input = await validate(def.input, rawInput);
        closeDropped(rawInput, input);
      } catch (e) {
        closeHandles(rawInput);
        this.running.delete(id);
        if (!signal.aborted && !this.ended) {
          const issues = isIpcError(e) ? e.issues : undefined;
          this.refuse(id, r.method, 'INVALID', `the input failed the method's schema: ${(e as Error).message}`, issues);
        }
        return;
      }
    }
    const ctx: RpcContext = {
      signal,
      method: r.method,
      progress: (value: unknown) => {
        if (!r.wantsProgress || signal.aborted || this.running.get(id) !== r) return;
        this.trySend({ rpc: 'progress', id, value });
      },
      transfer: <T>(value: T): T => {
        r.transfers.push(value);
        return value;
      },
    };
    if (signal.aborted) {
      closeHandles(input); // cancelled while its input was validated: the handler never owned it
    } else {
      try {
        output = await this.handlers[r.method]!(input, ctx);
      } catch (e) {
        failure = { error: e };
      }
    }
    this.running.delete(id);
    try {
      if (signal.aborted || this.ended) return;
      if (failure) {
        this.trySend(this.errorFrame(id, r.method, failure.error));
        return;
      }
      try {
        this.trySend({ rpc: 'result', id, output });
      } catch (e) {
        this.trySend({
          rpc: 'error',
          id,
          code: isIpcError(e) ? e.code : 'INTERNAL',
          message: `${r.method}: its result cannot be sent: ${truncate((e as Error)?.message ?? String(e))}`,
        });
      }
    } finally {
      closeHandles(r.transfers);
    }
  }

  /** The error frame for what a handler threw: its code when it has a usable one, and its message. */
  private errorFrame(id: number, method: string, e: unknown): Frame {
    let code = 'INTERNAL';
    let message: string;
    let issues: unknown;
    if (e instanceof Error) {
      message = truncate(String(e.message));
      const c = (e as { code?: unknown }).code;
      if (typeof c === 'string' && CODE_PATTERN.test(c)) code = c;
      issues = (e as { issues?: unknown }).issues;
    } else {
      message = `the handler threw a ${e === null ? 'null' : typeof e} instead of an Error`;
    }
    const frame: Frame = { rpc: 'error', id, code, message };
    const clean = sanitizeIssues(issues);
    if (clean) frame.issues = clean;
    if (this.opts.exposeStack && e instanceof Error && typeof e.stack === 'string') frame.stack = truncate(e.stack, 16384);
    return frame;
  }
}
