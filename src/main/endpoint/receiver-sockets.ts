/**
 * The sockets layer of a receiver's core (the chain: ReceiverSockets, then ReceiverReading in
 * receiver-reading.ts, then ReceiverCore in receiver-core.ts): the socket it reads and the
 * attached writers' sockets (singleWriter transports, see writers.ts), watching them for
 * readability, attaching, dropping and promoting writer sockets, end of file; and the queue of
 * items read (records and the errors that stand for refused messages), which every layer fills.
 */
import { IpcError } from '../../shared/errors.js';
import type { Limits } from '../../shared/limits.js';
import { describeError, trace, traceEnabled } from '../debug.js';
import { PacketParser, fdList, malformed } from '../framing.js';
import type { LayoutOf, ParsedItem, RecordFds } from '../framing.js';
import { trackForGc } from '../handles.js';
import type { Disposer } from '../handles.js';
import { POLL_READABLE, native } from '../native.js';
import type { NativePoller } from '../native.js';
import { transport } from '../transport/index.js';
import type { Transport } from '../transport/index.js';
import { attachProblem, maxAttachedWriters } from '../writers.js';
import { resolveLimits } from './options.js';
import type { ReceiverOptions } from './options.js';
import { shutdownProblem, switchSocketProblem } from './socket-checks.js';
import { Pinnable, afterMicrotasks, closeFds, newTick } from './thread-state.js';

const RESOLVED = Promise.resolve();
/**
 * Where reads report their packets (see NativeBinding.recvPackets), shared by this thread's
 * receivers (a read's report is taken before the next read) and bound in the addon with the
 * receive arena (see receiver-reading.ts).
 */
export const RECV_META = new Int32Array(2 + 4 * 256);
export const RECV_FDS = new Int32Array(1024);
/** Whether reads go through the addon's binding (recvBound, read-first pollers); known at the first receiver. */
let bound: boolean | undefined;
/** Whether tracing is on (NODE_DEBUG is read once, at start-up), known after the first message. */
let tracing: boolean | undefined;

/** Whether the watch of an attached writer's socket keeps the event loop alive. */
function setWriterRef(w: WriterSource, on: boolean): void {
  if (w.poller && on !== w.pollRef) {
    if (on) w.poller.ref();
    else w.poller.unref();
    w.pollRef = on;
  }
}

/** A socket a receiver reads besides its own: an attached sender's (see writers.ts). */
export interface WriterSource {
  fd: number;
  poller: NativePoller | undefined;
  polling: boolean;
  pollRef: boolean;
}

/** The sockets a receiver reads, their watching, and the queue of items read from them. */
export abstract class ReceiverSockets extends Pinnable {
  fd: number;
  closed = false;
  eof = false;
  readonly limits: Limits;
  readonly parser: PacketParser;
  protected items: ParsedItem[] = [];
  protected head = 0;
  protected poller: NativePoller | undefined;
  protected refed = true;
  protected readonly disposer: Disposer;
  /** Called when items arrive or the state changes: the readiness hook (see {@link subscribe}). */
  protected onActivity: (() => void) | undefined;
  protected readonly t: Transport = transport();
  protected readonly meta = RECV_META;
  protected readonly fdsOut = RECV_FDS;
  /**
   * Where the transport reads through the addon's binding (seqpacket): the read the poller of the
   * receiver's own socket makes before it calls back, [maxPackets]: 1 while a plain read is what
   * the next readiness event calls for (see demand()), else 0. A read there saves onReadable its
   * call into the addon. Undefined elsewhere.
   */
  protected readonly readCell: Int32Array | undefined = readFirstCell(this.t);
  /**
   * Sockets of further senders read besides `fd` (singleWriter transports, see writers.ts), in
   * the order they were attached. When `fd` reaches end of file the first of them takes its place.
   */
  protected writers: WriterSource[] = [];
  protected polling = false;
  protected pollRef = true;
  /** A select() set watching this receiver keeps it readable while the set waits (see {@link setWatched}). */
  protected watchers = 0;

  /**
   * The readiness hook of a receiver, what `IpcReceiverSet` (select) is built on: `onActivity`
   * runs whenever messages arrive or the receiver's state changes (closed, end of file); the
   * returned function removes the hook (and stops watching for it). One hook at a time.
   */
  subscribe(onActivity: () => void): () => void {
    if (this.onActivity) throw new TypeError('this receiver is already in an IpcReceiverSet');
    this.onActivity = onActivity;
    return () => {
      if (this.onActivity !== onActivity) return;
      this.onActivity = undefined;
      this.setWatched(false);
    };
  }

  /** Whether the hook's owner waits now: the sockets are watched (read) only then (backpressure otherwise). */
  setWatched(on: boolean): void {
    if (this.closed) return;
    this.watchers = on ? 1 : 0;
    this.demand();
  }
  /** The descriptor this core put in blocking mode (its file's O_NONBLOCK cleared), or -1. */
  protected blockingFd = -1;
  /** Set when the stream transport gave up on this socket (PACKET_DESYNC): end of file follows. */
  protected abandoned = false;

  constructor(fd: number, owner: object, options: ReceiverOptions<unknown> | undefined, readonly what: string, layoutOf?: LayoutOf) {
    super(owner);
    this.fd = fd;
    this.limits = resolveLimits(options);
    this.parser = new PacketParser(this.limits, closeFds, layoutOf);
    this.disposer = { fd, release: () => this.closeItems() };
    trackForGc(owner, this.disposer);
  }

  get pending(): number {
    return this.items.length - this.head;
  }

  /** Receives waiting for a message (recv() promises). */
  abstract get waiting(): number;

  /** Hands queued items to waiting receives. */
  abstract dispatch(): void;

  /**
   * The socket `fd` is readable (status >= 0) or failed (status < 0). `read`: what the poller's
   * own read returned, when it read (see readCell).
   */
  protected abstract onReadable(status: number, read?: number): void;

  /** Reads what an attached writer's socket holds now. */
  protected abstract readWriter(w: WriterSource): void;

  /** Whether the next read of the receiver's own socket is one plain batch of one packet (see readCell). */
  protected abstract readsPlain(): boolean;

  protected shift(): ParsedItem | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as ParsedItem;
    if (this.head === this.items.length) {
      // Emptied: the array is kept (no array and no growth per message) until 64 items went through it.
      if (this.head >= 64) {
        this.items = [];
        this.head = 0;
      }
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Starts or stops watching the socket depending on whether anyone waits. */
  demand(watch = this.waiting > 0 || this.watchers > 0): void {
    if (this.closed) return;
    const waiting = this.waiting > 0 || this.watchers > 0;
    // Nobody waits: the poller does not read (onReadable then stops it, leaving data in the kernel).
    if (this.readCell !== undefined) this.readCell[0] = watch && this.readsPlain() ? 1 : 0;
    if (watch && !this.eof) {
      if (!this.poller) {
        const onPoll = (status: number, _events: number, read?: number): void => {
          newTick();
          this.onReadable(status, read);
        };
        const P = native().Poller;
        this.poller = this.readCell === undefined ? new P(this.fd, onPoll) : new P(this.fd, onPoll, this.readCell);
        this.blockingFd = -1; // uv_poll_init set O_NONBLOCK
        this.polling = false;
        this.pollRef = true;
      }
      if (!this.polling) {
        this.poller.start(POLL_READABLE);
        this.polling = true;
      }
      this.setPollRef(this.refed && waiting);
      if (this.writers.length > 0) this.watchWriters(this.refed && waiting);
      if (waiting) this.pin(true);
    } else if (!this.idleScheduled) {
      // Lazy stop: the watch stays until the next readiness event (onReadable stops it then),
      // which saves two epoll_ctl calls per message in request/response traffic; but an idle
      // receiver no longer keeps the process alive. That is settled once this turn's microtasks
      // have all run: a program that receives in a loop has asked for the next message by then
      // (`await recv()` resumes in a microtask, an async iterator a few later), and the watch's
      // ref and the pin stay as they are instead of being dropped and taken again per message.
      // Checked first in a microtask queued now, which runs after the continuation of the recv()
      // just resolved: `await recv()` in a loop (and this library's async iterator) has asked
      // again by then, and nothing more is scheduled; otherwise the check waits for the end of
      // the turn's microtasks (afterMicrotasks).
      this.idleScheduled = true;
      void RESOLVED.then(this.checkIdle);
    }
  }

  private idleScheduled = false;
  private readonly checkIdle = (): void => {
    if (this.closed || this.waiting > 0 || this.watchers > 0) {
      this.idleScheduled = false;
      return;
    }
    afterMicrotasks(this.settleIdle);
  };
  private readonly settleIdle = (): void => {
    this.idleScheduled = false;
    if (this.closed || this.waiting > 0 || this.watchers > 0) return;
    if (this.poller) this.setPollRef(false);
    for (const w of this.writers) setWriterRef(w, false);
    this.pin(false);
  };

  /** Watches every attached writer's socket (started lazily, stopped by onWriterReadable). */
  private watchWriters(ref: boolean): void {
    for (const w of this.writers) {
      if (!w.poller) {
        w.poller = new (native().Poller)(w.fd, (status) => {
          newTick();
          this.onWriterReadable(w, status);
        });
        w.polling = false;
        w.pollRef = true;
      }
      if (!w.polling) {
        w.poller.start(POLL_READABLE);
        w.polling = true;
      }
      setWriterRef(w, ref);
    }
  }

  private onWriterReadable(w: WriterSource, status: number): void {
    if (this.closed || !this.writers.includes(w)) return;
    if (this.waiting === 0 && this.watchers === 0) {
      w.poller?.stop();
      w.polling = false;
      return;
    }
    const from = this.items.length;
    if (status < 0) this.dropWriter(w);
    else this.readWriter(w);
    this.traceRefused(from);
    this.dispatch();
  }

  /** An attached writer's socket reached end of file: it is closed and no longer read. */
  protected dropWriter(w: WriterSource): void {
    const i = this.writers.indexOf(w);
    if (i < 0) return;
    this.writers.splice(i, 1);
    w.poller?.close();
    w.poller = undefined;
    closeFds([w.fd]);
    trace('channel', '%s: the attached sender socket fd %d reached end of file (%d left)', this.what, w.fd, this.writers.length);
  }

  /** Reads the socket of a new sender from now on (an ATTACH packet), or one MALFORMED item. */
  protected attachWriter(packet: Uint8Array, packetFds: RecordFds): void {
    const fds = fdList(packetFds);
    let problem = attachProblem(packet, fds);
    if (problem === undefined && !this.t.singleWriter) problem = `an attach packet, which the ${this.t.name} transport never sends (its senders share one socket)`;
    if (problem === undefined && this.writers.length >= maxAttachedWriters()) {
      problem = `an attach packet beyond the ${maxAttachedWriters()} sender sockets a receiver reads at once (a quarter of RLIMIT_NOFILE; close senders you no longer use)`;
    }
    if (problem === undefined) {
      const bad = switchSocketProblem(fds[0]!) ?? shutdownProblem(fds[0]!);
      if (bad !== undefined) problem = `an attach packet carried ${bad}`;
    }
    if (problem !== undefined) {
      closeFds(fds);
      this.items.push(malformed(problem));
      return;
    }
    this.writers.push({ fd: fds[0]!, poller: undefined, polling: false, pollRef: true });
  }

  /** The descriptors a blocking wait of this receiver polls: its socket and its attached writers'. */
  get readFds(): number | number[] {
    return this.writers.length === 0 ? this.fd : [this.fd, ...this.writers.map((w) => w.fd)];
  }

  /** Whether the watches of the sockets keep the event loop alive. */
  protected setPollRef(on: boolean): void {
    if (this.poller && on !== this.pollRef) {
      if (on) this.poller.ref();
      else this.poller.unref();
      this.pollRef = on;
    }
    for (const w of this.writers) setWriterRef(w, on);
  }

  /** Stops watching the receiver's own socket (a new socket gets a new poller). */
  protected dropPoller(): void {
    this.poller?.close();
    this.poller = undefined;
    this.polling = false;
  }

  /**
   * The receiver's own socket reached end of file: the first attached writer's socket takes its
   * place; with none left, the receiver is at end of file.
   */
  protected primaryEnded(): void {
    const next = this.writers.shift();
    if (next === undefined) {
      this.setEof();
      return;
    }
    next.poller?.close();
    trace('channel', '%s: fd %d reached end of file; the attached sender socket fd %d takes its place', this.what, this.fd, next.fd);
    const wasWatching = this.poller !== undefined;
    this.dropPoller();
    closeFds([this.fd]);
    this.fd = next.fd;
    this.disposer.fd = next.fd;
    this.blockingFd = -1;
    if (wasWatching) this.demand();
  }

  /** Every sender is gone (or the stream was abandoned): nothing more will arrive. */
  protected setEof(): void {
    trace('channel', '%s on fd %d: end of file (%s)', this.what, this.fd, this.abandoned ? 'its stream went out of step and was abandoned' : 'every sender is closed');
    this.eof = true;
    // A message cut short by the peer's death is dropped whole, never delivered in part.
    this.parser.reset();
  }

  /** The DISCONNECTED error of a receiver at end of file. */
  eofError(): IpcError {
    if (this.abandoned) {
      return new IpcError(
        'DISCONNECTED',
        `the stream socket of this ${this.what} was abandoned after it went out of step (the MALFORMED error before this one says how): nothing more is read from it, even though the peer may still be connected`,
      );
    }
    return new IpcError('DISCONNECTED', `every sender of this ${this.what} is closed`);
  }

  /** Traces the errors (each standing for a refused message) queued since the queue held `from` items. */
  protected traceRefused(from: number): void {
    if (this.items.length <= from || !(tracing ??= traceEnabled())) return;
    for (let i = Math.max(from, this.head); i < this.items.length; i++) {
      const it = this.items[i];
      if (it instanceof Error) trace('channel', '%s on fd %d refused a message: %s', this.what, this.fd, describeError(it));
    }
  }

  /** Closes what the queue and the sockets hold: items' descriptors, partial messages, writer sockets. */
  protected closeItems(): void {
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i];
      if (it && !(it instanceof Error)) closeFds(it.fds);
    }
    this.items = [];
    this.head = 0;
    this.parser.reset();
    this.dropPoller();
    for (const w of this.writers) {
      w.poller?.close();
      closeFds([w.fd]);
    }
    this.writers = [];
  }
}

/** Whether this thread's reads go through the addon's binding (bindRecv, recvBound): seqpacket on Linux. */
function readsBound(t: Transport): boolean {
  return (bound ??= t.name === 'seqpacket' && typeof native().recvBound === 'function' && typeof native().bindRecv === 'function');
}

/** A receiver's read cell (see ReceiverSockets.readCell), or undefined where reads are not bound. */
function readFirstCell(t: Transport): Int32Array | undefined {
  if (!readsBound(t)) return undefined;
  // Its own ArrayBuffer: the addon keeps a pointer to the element, which must not move.
  return new Int32Array(new ArrayBuffer(8));
}
