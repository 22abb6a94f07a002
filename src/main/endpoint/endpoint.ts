/**
 * The endpoint base classes: what every sender and receiver object shares (state, closing, how
 * it travels inside a message, what `util.inspect()` shows), and the sending and receiving
 * halves over their socket cores (send-side cloning; recv, tryRecv, recvSync, iteration).
 * channel.ts builds the public classes on them.
 */
import { inspect } from 'node:util';
import type { InspectOptionsStylized } from 'node:util';
import { IpcError } from '../../shared/errors.js';
import type { LayoutOf, ParsedItem } from '../framing.js';
import { assertThread, closedError, currentThreadId, kDetach, kHandle } from '../handles.js';
import type { HandleInfo, HandleSource } from '../handles.js';
import { transport } from '../transport/index.js';
import { IteratorTail } from '../iterator-tail.js';
import { asyncSchemaError, checkRecvOptions } from './options.js';
import type { ReceiverOptions, RecvOptions } from './options.js';
import { ReceiverCore } from './receiver-core.js';
import type { IterState } from './receiver-core.js';
import { SenderCore, kReadFds } from './sender-core.js';
import { blockingWait, drainWaitingSenders, newTick, waitingSenders } from './thread-state.js';

/**
 * What every endpoint shares: its state, closing, and how it travels inside a message (a
 * receiver moves, a sender is duplicated by the kernel).
 */
export abstract class Endpoint implements HandleSource, Disposable {
  /** @internal */
  abstract readonly core: { readonly closed: boolean; readonly fd: number; close(owner: object): unknown };

  /** Closed through this object (a sender's core may live on for its clones). */
  private selfClosed = false;

  constructor(
    private readonly kind: 'S' | 'BS' | 'R' | 'BR',
    private readonly move: boolean,
  ) {}

  get closed(): boolean {
    return this.selfClosed || this.core.closed;
  }

  /**
   * Closes this endpoint. Idempotent. A sender still writes the messages it has queued; a
   * receiver rejects its pending receives with `CLOSED` and drops what it has queued.
   */
  close(): void {
    if (this.selfClosed) return;
    this.selfClosed = true;
    this.core.close(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  [kHandle](): HandleInfo {
    const closed = this.closed;
    const kind = !closed && this.core instanceof ReceiverCore ? this.core.kindTag(this.kind) : this.kind;
    return { kind, fd: closed ? -1 : this.core.fd, move: this.move };
  }

  /**
   * What `util.inspect()` and `console.log()` show: the endpoint's state, never message contents,
   * e.g. `IpcReceiver { fd: 12, transport: 'seqpacket', closed: false, queued: 3, waiting: 1 }`
   * (`queued`: messages read and not yet taken; `waiting`: pending receives) or
   * `IpcSender { fd: 11, transport: 'seqpacket', closed: false, queuedWrites: 0 }` (messages sent
   * and not yet written to the socket). `fd` is -1 once closed. Always on one line.
   */
  [inspect.custom](depth: number, options: InspectOptionsStylized, nodeInspect?: typeof inspect): string {
    const name = this.constructor.name;
    if (depth < 0) return options.stylize(`[${name}]`, 'special');
    const core = this.core;
    const closed = this.closed;
    const counts = core instanceof ReceiverCore ? { queued: core.pending, waiting: core.waiting } : { queuedWrites: (core as SenderCore).queuedMessages };
    const state = { fd: closed ? -1 : core.fd, transport: transport().name, closed, ...counts };
    return `${name} ${(nodeInspect ?? inspect)(state, { ...options, breakLength: Infinity })}`;
  }
}

/** The core a sender under construction shares (see cloneOf); undefined otherwise. */
let sharing: SenderCore | undefined;

/** A clone from cloneSource(): a sender sharing the core. */
export function cloneOf<S>(make: (fd: number) => S, source: SenderCore): S {
  sharing = source;
  try {
    return make(-1);
  } finally {
    sharing = undefined;
  }
}

export abstract class SenderBase extends Endpoint {
  /** @internal */
  readonly core: SenderCore;
  /** @internal */
  protected readonly thread = currentThreadId;

  constructor(fd: number, kind: 'S' | 'BS', what: string) {
    // Where a socket takes one writer, a sender sent in a message travels on a new socket.
    super(kind, transport().singleWriter === true);
    // A clone made by cloneOf() shares its original's core (fd is -1 then).
    this.core = sharing !== undefined ? sharing.share(this) : new SenderCore(fd, this, what);
  }

  /** @internal Sending (singleWriter transports): a new writer socket; this sender stays open. */
  [kDetach](): number {
    return this.core.newWriter();
  }

  /** @internal Throws unless this sender may send now (right thread, not closed). */
  protected ready(): void {
    if (this.thread !== currentThreadId) assertThread(this.thread, `this ${this.core.what}`);
    if (this.closed) throw closedError(this.core.what);
  }

  /** Resolves when every queued message has been handed to the kernel. */
  flush(): Promise<void> {
    return this.core.flush();
  }

  /**
   * Bytes that send() accepted and the kernel has not taken yet (the receiver is slow or does not
   * read): what to bound before sending more. Clones share one queue, hence one figure.
   */
  get queuedBytes(): number {
    return this.core.queuedBytes;
  }

  /**
   * @internal What a clone() is made from: this sender's core, shared. Clones write through one
   * socket and one queue, so one thread's messages through any of them arrive in the order it
   * sent them (and a stream socket never has two writers interleaving their frames).
   */
  protected cloneSource(): SenderCore {
    if (this.thread !== currentThreadId) assertThread(this.thread, `this ${this.core.what}`);
    if (this.closed) throw closedError(this.core.what);
    return this.core;
  }

}

/**
 * What every receiving end shares: recv/tryRecv/iteration over its socket core, ref/unref,
 * closing, and moving when sent. `finish` turns one queued item into a message.
 */
export abstract class ReceiverBase<M> extends Endpoint implements AsyncIterable<M> {
  /** @internal */
  readonly core: ReceiverCore;
  private readonly thread = currentThreadId;
  /** @internal */
  protected get recvThread(): number {
    return this.thread;
  }
  /** @internal The thread this receiver belongs to (its iterator checks it). */
  get recvThreadId(): number {
    return this.thread;
  }
  private readonly finishItem = (item: ParsedItem): M => this.finish(item);

  constructor(fd: number, options: ReceiverOptions<unknown>, kind: 'R' | 'BR', what: string, layoutOf?: LayoutOf) {
    super(kind, true);
    this.core = new ReceiverCore(fd, this, options, what, layoutOf);
  }

  /** @internal Turns a queued item into the message (or throws the error it stands for). */
  abstract finish(item: ParsedItem): M;

  /**
   * The next message. Rejects `DISCONNECTED` once every sender is closed and all sent messages
   * were received, `TIMEOUT`, `CLOSED`, or with the error that stands for one bad message
   * (`MALFORMED`, `TOO_LARGE`, `INVALID`); the receiver stays usable after those.
   */
  recv(options?: RecvOptions): Promise<M> {
    if (this.thread !== currentThreadId) assertThread(this.thread, `this ${this.core.what}`);
    let timeout: number | undefined;
    try {
      timeout = checkRecvOptions(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.core.next(timeout, options?.signal, this.finishItem) as Promise<M>;
  }

  /** The next message if one is already there (shape of Node's `receiveMessageOnPort`), else undefined. */
  tryRecv(): { message: M } | undefined {
    if (this.thread !== currentThreadId) assertThread(this.thread, `this ${this.core.what}`);
    if (this.core.closed) throw closedError(this.core.what);
    if (this.core.pending === 0) {
      // What this thread sent and still holds back may be for this receiver: write it out first.
      // Reading the socket begins a tick, as a readiness callback does (see thread-state.ts): the
      // next send is written at once, so `send(); tryRecv()` in a loop writes each message as it
      // is sent instead of every other one through a batch.
      if (waitingSenders.size > 0) drainWaitingSenders();
      else newTick();
    }
    const item = this.core.takeNow();
    if (item === undefined) {
      if (this.core.eof) throw this.core.eofError();
      return undefined;
    }
    const value = this.finish(item);
    if (value instanceof Promise) throw asyncSchemaError(value, 'tryRecv()');
    return { message: value };
  }

  /**
   * The next message, blocking this thread until it arrives (like servo ipc-channel's `recv`):
   * no promise, no event-loop round, so a request/response exchange costs little more than the
   * system calls. Nothing else runs on this thread meanwhile (no timers, no I/O callbacks), so
   * it suits a worker or helper process that serves requests in a loop. Messages this thread's
   * senders hold back are written out first, and their sockets are watched while it waits, so two
   * processes blocked in `recvSync()` on each other never deadlock on queued output.
   *
   * Throws what `recv()` rejects with: `TIMEOUT` after `timeout` ms, `DISCONNECTED`, `CLOSED`,
   * or the error of one bad message. Cannot be mixed with a pending `recv()` on the same
   * receiver, nor used with an asynchronous schema.
   */
  recvSync(options?: Pick<RecvOptions, 'timeout'>): M {
    if (this.thread !== currentThreadId) assertThread(this.thread, `this ${this.core.what}`);
    const timeout = checkRecvOptions(options);
    const core = this.core;
    if (core.closed) throw closedError(core.what);
    if (core.waiting > 0) throw new TypeError(`recvSync() cannot be used while a recv() is pending on this ${core.what}`);
    const deadline = timeout === undefined ? -1 : performance.now() + timeout;
    // Queued items first; otherwise wait, then read: poll(2) on a socket that is already
    // readable returns at once, and in request/response traffic the reply is rarely there yet,
    // so reading first would mostly cost a recvmsg that fails with EAGAIN.
    let waited = false;
    for (;;) {
      const item = waited ? core.takeNow() : core.takeQueued();
      if (item !== undefined) {
        const value = this.finish(item);
        if (value instanceof Promise) throw asyncSchemaError(value, 'recvSync()');
        return value;
      }
      if (core.eof) throw core.eofError();
      if (core.closed) throw closedError(core.what);
      const fds = core.readFds;
      waited = blockingWait(typeof fds === 'number' ? fds : Int32Array.from(fds), deadline, `no message arrived within ${timeout} ms`, core);
    }
  }

  /**
   * Iterates messages until every sender is closed (`DISCONNECTED` ends the iteration; any other
   * error is thrown and ends it too). Each step is one `recv()` whose promise is the step's own.
   */
  [Symbol.asyncIterator](): AsyncGenerator<M, void, undefined> {
    return new ReceiverIterator<M>(this);
  }

  /** Lets a pending `recv()` keep the process alive (the default). */
  ref(): this {
    this.core.ref();
    return this;
  }

  /** Lets the process exit even while a `recv()` is pending. */
  unref(): this {
    this.core.unref();
    return this;
  }

  /** @internal */
  [kDetach](): number {
    return this.core.close(this, true);
  }

  /** @internal The sockets this receiver reads (see SenderCore.write: never sent through its own channel). */
  [kReadFds](): number[] {
    const fds = this.core.readFds;
    return typeof fds === 'number' ? [fds] : fds;
  }
}

/**
 * A receiver's async iterator: what `for (;;) try { yield await rx.recv() } catch (e) { if
 * DISCONNECTED return; throw e }` would do, without a generator's own promises per step: each
 * next() is one pending receive of the core whose promise resolves to the step's result, so a
 * `for await` loop resumes one microtask after the message arrives (and has asked for the next
 * one before the core checks whether anyone still waits, see ReceiverSockets.demand).
 */
class ReceiverIterator<M> extends IteratorTail<M> implements IterState {
  constructor(private readonly rx: ReceiverBase<M>) {
    super();
  }

  next(): Promise<IteratorResult<M, void>> {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    const rx = this.rx;
    if (rx.recvThreadId !== currentThreadId) assertThread(rx.recvThreadId, `this ${rx.core.what}`);
    return rx.core.next(undefined, undefined, this.step, this);
  }

  /** Turns a queued item into this step's result (an asynchronous schema's promise into a promise of it). */
  private readonly step = (item: ParsedItem): IteratorResult<M, void> | Promise<IteratorResult<M, void>> => {
    // A throw ends the iteration where the core settles the step (Waiter.fail, refuse).
    const value = this.rx.finish(item);
    if (value instanceof Promise) {
      return value.then(
        (v: M) => ({ value: v, done: false }),
        (e: unknown) => {
          this.finished = true;
          throw e;
        },
      );
    }
    return { value, done: false };
  };
}
