/**
 * Senders and receivers over SOCK_SEQPACKET sockets: the typed channel (`channel<T>()`) and the
 * untyped bytes channel (`bytesChannel()`), sharing one implementation of writing, reading,
 * framing and descriptor ownership.
 */
import { bodyLayout, decodeMessage, encodeMessage, peekHandleCount } from '../shared/codec.js';
import type { EncodeHooks } from '../shared/codec.js';
import { IpcError } from '../shared/errors.js';
import { DEFAULT_LIMITS } from '../shared/limits.js';
import type { Limits } from '../shared/limits.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { validate } from '../shared/validate.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isMainThread } from 'node:worker_threads';
import {
  FRAGMENT_HEADER,
  MAX_FRAGMENT_BYTES,
  MAX_PACKET_BYTES,
  MAX_RECV_PACKET_BYTES,
  PacketParser,
  RecordBatcher,
  releasePacketBuffer,
  fitsOnePacket,
  copyParts,
  fragmentPackets,
  immediateRecordParts,
  planFragments,
  sliceParts,
  malformed,
  pad8,
  singleRecordPacket,
  switchPacket,
} from './framing.js';
import type { LayoutOf, OutPacket, ParsedItem, SwitchItem, WireRecord } from './framing.js';
import {
  assertThread,
  checkTimeout,
  closedError,
  currentThreadId,
  handleKind,
  isHandleSource,
  kDetach,
  kHandle,
  errnoError,
  osError,
  registerHandleKind,
  trackForGc,
  untrackForGc,
} from './handles.js';
import type { Disposer, HandleInfo, HandleSource, ReviveContext } from './handles.js';

const NO_SECRETS: readonly string[] = Object.freeze([]);
import { PACKET_DESYNC, POLL_READABLE, POLL_WRITABLE, fdInfo, native } from './native.js';
import { AGAIN, GONE, TOO_BIG, transport } from './transport/index.js';
import { attachPacket, attachProblem, isAttachPacket, maxAttachedWriters } from './writers.js';
import type { Transport } from './transport/index.js';
import type { FdInfo, NativePoller } from './native.js';

/** Limits and checks a receiver applies to what its peers send. */
export interface ReceiverOptions<T = unknown> {
  /** Largest message body in bytes (default 128 MiB). Bigger messages are refused with TOO_LARGE. */
  maxMessageBytes?: number;
  /** Most descriptors in one message (default 1024). */
  maxHandles?: number;
  /** Deepest nesting of a decoded value (default 256). */
  maxDepth?: number;
  /** Most values in one decoded message (default 1,000,000). */
  maxElements?: number;
  /** Most binary sections (typed arrays, `ArrayBuffer`s, `DataView`s) in one message (default 65,536). */
  maxBinaries?: number;
  /** Most packets read from the socket ahead of `recv()` calls (default 64); the rest wait in the kernel. */
  maxQueue?: number;
  /**
   * Largest shared memory segment (`IpcSharedMemory`, or an `IpcSharedBuffer` of a pool) accepted
   * in a message, in bytes (default 256 MiB). Checked on the memfd's size before anything is
   * mapped or copied; a bigger one makes the message TOO_LARGE and all its descriptors are closed.
   */
  maxSharedMemoryBytes?: number;
  /** Most bytes of shared memory, all segments together, in one message (default 1 GiB); more is TOO_LARGE. */
  maxSharedMemoryTotal?: number;
  /** A Standard Schema (zod, valibot, arktype...) every incoming message must pass, else INVALID. */
  schema?: StandardSchemaV1<unknown, T>;
}

function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Every limit of `DEFAULT_LIMITS`, taken from the options where given (RangeError when invalid). */
function resolveLimits(o: ReceiverOptions<unknown> | undefined): Limits {
  const out = { ...DEFAULT_LIMITS } as Limits;
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof Limits>) {
    out[key] = positiveInt((o as Record<string, unknown> | undefined)?.[key], key, DEFAULT_LIMITS[key] as number) as never;
  }
  return out;
}

/**
 * Endpoints with work in flight (a pending recv, queued packets) stay reachable until it is
 * done, even if the program dropped every reference to them; idle ones can be collected.
 */
const busy = new Set<Pinnable>();

abstract class Pinnable {
  private readonly owner: WeakRef<object>;
  private pinned: object | undefined;
  constructor(owner: object) {
    this.owner = new WeakRef(owner);
  }
  protected pin(on: boolean): void {
    if (on) {
      if (this.pinned) return;
      this.pinned = this.owner.deref();
      busy.add(this);
    } else if (this.pinned) {
      this.pinned = undefined;
      busy.delete(this);
    }
  }
}

const NO_INFOS: HandleInfo[] = [];
const NO_FDS: number[] = [];

/**
 * A counter of JavaScript ticks, advanced by one microtask per tick in which anything was sent
 * (not one per send): the first send of a tick is written at once, the rest of a burst batched.
 */
let currentTick = 0;
let tickScheduled = false;
function tick(): number {
  if (!tickScheduled) {
    tickScheduled = true;
    queueMicrotask(() => {
      tickScheduled = false;
      currentTick++;
    });
  }
  return currentTick;
}

/**
 * Senders of this thread with output waiting (a batch or a queue): a blocking receive writes it
 * out first, and also waits for their sockets to take it, so that two processes that both block
 * in recvSync() never wait on messages held back in each other's queues.
 */
const waitingSenders = new Set<SenderCore>();

/** Writes what every sender of this thread holds back; returns the sockets still full. */
function drainWaitingSenders(): Int32Array | null {
  // A blocking wait ends this burst: the next send is written at once, not batched.
  currentTick++;
  if (waitingSenders.size === 0) return null;
  const full: number[] = [];
  for (const s of [...waitingSenders]) {
    s.drain();
    if (!s.idle && !s.closedOrGone) full.push(s.fd);
  }
  return full.length ? Int32Array.from(full) : null;
}

/**
 * @internal One blocking wait of recvSync()/selectSync(): writes out what this thread's senders
 * hold back, then blocks in poll(2) on `readFds` (and on the senders' sockets that are still
 * full) until `deadline` (a performance.now() time, -1 for none). True when a read socket is
 * ready, false when only a sender's socket is (call again). Throws TIMEOUT (`waitingFor` names
 * what did not come) or OS. With `single` (the one receiver waited on), no deadline and no full
 * sender, it waits in that receiver's blocking read instead, and returns true once it has read.
 */
export function blockingWait(
  readFds: number | Int32Array,
  deadline: number,
  waitingFor: string,
  single?: { readBlocking(): boolean },
): boolean {
  const full = drainWaitingSenders();
  // One receiver, no deadline, no sender to watch: a blocking recvmsg is the whole wait. Not in
  // a worker, whose wait must end when the worker is terminated (below).
  if (single !== undefined && full === null && deadline < 0 && isMainThread && single.readBlocking()) return true;
  let left = deadline < 0 ? -1 : Math.max(0, deadline - performance.now());
  // worker.terminate() cannot interrupt a system call: a worker waits in slices, and returns to
  // JavaScript between them, where V8 carries out a pending termination.
  if (!isMainThread && (left < 0 || left > WORKER_WAIT_SLICE_MS)) left = WORKER_WAIT_SLICE_MS;
  const r = native().waitFds(readFds, full, left);
  if (r < 0) throw errnoError(r, 'poll', 'poll');
  if (r === 0 && deadline >= 0 && performance.now() >= deadline) throw new IpcError('TIMEOUT', waitingFor);
  return r === 1;
}

/** How long a blocking receive in a worker waits in one system call (see blockingWait). */
const WORKER_WAIT_SLICE_MS = 50;

/**
 * At process exit (`process.exit()`, the end of the program, an uncaught exception), messages
 * that send() accepted but that are still queued are written out synchronously, waiting at most
 * this long in all for peers that do not read. What cannot be written is reported on stderr.
 */
const EXIT_FLUSH_MS = 2000;
let exitFlushInstalled = false;

function installExitFlush(): void {
  if (exitFlushInstalled) return;
  exitFlushInstalled = true;
  process.on('exit', flushAtExit);
}

/** @internal Writes what this thread's senders hold back, waiting (bounded) for full sockets. */
export function flushAtExit(): void {
  const deadline = performance.now() + EXIT_FLUSH_MS;
  const none = new Int32Array(0);
  for (;;) {
    let full: Int32Array | null;
    try {
      full = drainWaitingSenders();
    } catch {
      return;
    }
    if (full === null) return;
    const left = deadline - performance.now();
    if (left <= 0) break;
    if (native().waitFds(none, full, left) < 0) break;
  }
  let lost = 0;
  for (const s of waitingSenders) lost += s.queuedMessages;
  if (lost > 0) {
    process.stderr.write(`electron-ipc-channel: ${lost} message(s) sent before exit could not be written within ${EXIT_FLUSH_MS} ms (the receiving process does not read) and are lost\n`);
  }
}

const encodeHooks: EncodeHooks = {
  handleKind(value: object): string | undefined {
    if (!isHandleSource(value)) return undefined;
    // A receiver about to move reads what its sockets hold first (singleWriter transports): an
    // ATTACH packet there may announce the very sender it is being sent through (see write()),
    // and whatever it reads travels with it (the kind tag taken next says so).
    if (value instanceof ReceiverBase && transport().singleWriter) value.core.absorb();
    return value[kHandle]().kind;
  },
};

/** The sockets a handle reads (a receiver's own and its attached writers'), else `[fd]`. */
function readFdsOf(handle: HandleSource, fd: number): number[] {
  if (!(handle instanceof ReceiverBase)) return [fd];
  const fds = handle.core.readFds;
  return typeof fds === 'number' ? [fds] : fds;
}

/** IOV_MAX: the most parts one sendPacket (sendmsg) takes. */
const MAX_SEND_PARTS = 1024;

function closeFds(fds: number[]): void {
  const n = native();
  for (const fd of fds) {
    try {
      n.close(fd);
    } catch {
      // Already gone; nothing to release.
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

interface Queued extends OutPacket {
  /** The queue owns these descriptors and closes them once the packet is written or dropped. */
  owned: boolean;
  /** Messages this packet completes (a batch: several; a fragment: 1 on the last, else 0). */
  messages: number;
}

/** The writing half: one socket, an ordered queue, batching of small records. */
class SenderCore extends Pinnable {
  readonly fd: number;
  closed = false;
  disconnected = false;
  private readonly streamId = randomBytes(8).readBigUInt64LE(0);
  private seq = 0;
  private queue: Queued[] = [];
  private readonly batcher = new RecordBatcher();
  private flushScheduled = false;
  /** The tick of this sender's last immediate write: later sends in the same tick are batched. */
  private sentAt = -1;
  private poller: NativePoller | undefined;
  private flushWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private closeWhenFlushed = false;
  private readonly disposer: Disposer;
  /**
   * Set once a write that send() had already returned from failed (an error other than the peer
   * hanging up): every later send() throws it and flush() rejects with it.
   */
  failure: IpcError | undefined;
  /** Messages in the batcher (not yet a packet of the queue). */
  private batchMessages = 0;
  /** Messages written since the last failure-free drain began, for the failure's report. */
  private writtenSinceQueued = 0;

  private readonly t: Transport = transport();

  /** Sender objects sharing this core (clones); the socket closes with the last. */
  private owners = 1;

  constructor(fd: number, owner: object, readonly what: string) {
    super(owner);
    this.fd = fd;
    this.disposer = { fd, release: () => this.poller?.close() };
    this.track(owner);
  }

  /**
   * An owner collected without close() counts as closed: what it queued is still written (the
   * core stays reachable while busy) and the socket closes with the last owner.
   */
  private track(owner: object): void {
    trackForGc(owner, { fd: -1, release: () => this.dropOwner() });
  }

  /**
   * A further sender object writing through this core (a clone): one socket, one queue, so the
   * clones' messages keep the order this thread sent them in.
   */
  share(owner: object): this {
    if (this.closed) throw closedError(this.what);
    this.owners++;
    this.track(owner);
    return this;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.batcher.empty && !this.t.hasPending?.(this.fd);
  }

  /**
   * Writes one encoded message with its handles. Throws DISCONNECTED/CLOSED synchronously;
   * on a throw nothing was sent and nothing was consumed.
   */
  write(parts: Uint8Array[], bytes: number, handles: HandleSource[]): void {
    if (this.closed) throw closedError(this.what);
    if (this.failure) throw this.failure;
    if (this.disconnected) throw disconnected(this.what);
    const infos: HandleInfo[] = handles.length === 0 ? NO_INFOS : handles.map((h) => h[kHandle]());
    for (let i = 0; i < infos.length; i++) {
      if (infos[i]!.fd < 0) throw new IpcError('CLOSED', `cannot send a closed ${handles[i]!.constructor.name}`);
      // A moved sender (singleWriter transports) travels on a new socket of its own: no check.
      if (isSenderKind(infos[i]!.kind)) continue;
      if (infos[i]!.move && readFdsOf(handles[i]!, infos[i]!.fd).some((fd) => isOwnReceiver(this.fd, fd))) {
        throw new TypeError(`a receiver cannot be sent through its own channel (it would be lost): this ${this.what} writes to the ${handles[i]!.constructor.name} it was asked to send`);
      }
      const problem = infos[i]!.move ? this.t.moveProblem?.(infos[i]!.fd) : undefined;
      if (problem) throw new IpcError('OS', `this ${handles[i]!.constructor.name} cannot be moved now: ${problem}`);
    }
    // Moved handles (receivers) are detached first: a receiver with messages already read
    // hands over a different socket than its own (see ReceiverCore.detachWithPending).
    const moved = handles.length === 0 ? NO_FDS : this.detachMoved(handles, infos);
    const fds = handles.length === 0 ? NO_FDS : infos.map((info, i) => (info.move ? moved[i]! : info.fd));
    const single = fitsOnePacket(bytes, fds.length);
    // Written as is (one iovec per part) only when sendmsg takes that many parts: a message with
    // hundreds of small binaries has more, and goes through the batcher, which copies.
    if (single && this.idle && this.sentAt !== currentTick && parts.length + 2 <= MAX_SEND_PARTS) {
      let r: number;
      try {
        r = this.t.send(this.fd, immediateRecordParts(parts, bytes, fds.length), fds.length ? fds : null);
      } catch (e) {
        // Nothing was written; this sender stays usable (a message without descriptors may pass).
        closeFds(moved.filter((fd) => fd >= 0));
        throw osError(e, 'sendmsg');
      }
      if (r >= 0) {
        this.sentAt = tick();
        if (moved.length) closeFds(moved.filter((fd) => fd >= 0));
        // A backend that took the packet in part finishes it from drain().
        if (this.t.hasPending?.(this.fd)) this.schedule();
        return;
      }
      if (r === GONE) {
        closeFds(moved.filter((fd) => fd >= 0));
        this.setDisconnected();
        throw disconnected(this.what);
      }
      // AGAIN (full) or TOO_BIG (smaller socket buffer than our packet): queued below.
    }
    if (!single) {
      this.writeFragments(parts, bytes, infos, moved, fds);
      return;
    }
    // Queue: from here the queue owns a descriptor for each handle (a duplicate for those
    // that stay with their object), and the message bytes are copied.
    const owned = this.ownAll(infos, moved);
    if (!this.batcher.fits(bytes, owned.length)) this.takeBatch();
    this.batcher.add(parts, bytes, owned);
    this.batchMessages++;
    this.schedule();
  }

  /**
   * A message bigger than one packet: fragments are written straight from the caller's memory
   * while the socket takes them; what remains when it is full is copied once and queued.
   */
  private writeFragments(parts: Uint8Array[], bytes: number, infos: HandleInfo[], moved: number[], fds: number[]): void {
    const t = this.t;
    this.takeBatch(); // what was batched before goes first
    const packetBytes = this.growSendBuffer();
    const frags = planFragments(this.streamId, this.seq++ >>> 0, bytes, fds.length, packetBytes);
    let i = 0;
    if (this.queue.length === 0) {
      for (; i < frags.length; i++) {
        const f = frags[i]!;
        let iov = [f.header, ...sliceParts(parts, f.offset, f.bytes)];
        if (iov.length > MAX_SEND_PARTS) iov = [f.header, copyParts(parts, f.offset, f.bytes)];
        const fragFds = fds.slice(f.fdStart, f.fdStart + f.fdCount);
        let r: number;
        let err: IpcError | undefined;
        try {
          r = t.send(this.fd, iov, fragFds.length ? fragFds : null);
        } catch (e) {
          r = SEND_FAILED;
          err = osError(e, 'sendmsg');
        }
        if (r >= 0) continue;
        if (r === AGAIN) break;
        closeFds(moved.filter((fd) => fd >= 0));
        if (r === GONE) {
          this.setDisconnected();
          if (i === 0) throw disconnected(this.what);
          return; // the receiver went away in the middle: nothing more can be delivered
        }
        err ??= tooBigError();
        if (i === 0) throw err; // nothing of this message was written; the sender stays usable
        // Part of the message is out: the receiver drops it when the next message starts.
        this.fail(this.failureOf(err, 1));
        throw this.failure ?? err;
      }
    }
    const firstFd = i < frags.length ? frags[i]!.fdStart : fds.length;
    // Moved descriptors already handed to the kernel are closed here; the queue owns the rest.
    closeFds(moved.filter((fd, j) => fd >= 0 && j < firstFd));
    if (i === frags.length) {
      // A backend that took the last fragment in part finishes it from drain().
      if (this.t.hasPending?.(this.fd)) this.schedule();
      return;
    }
    const owned = this.ownAll(infos.slice(firstFd), moved.slice(firstFd));
    const start = frags[i]!.offset;
    const rest = this.spillCopy(parts, start, bytes - start);
    for (; i < frags.length; i++) {
      const f = frags[i]!;
      this.queue.push({
        parts: [f.header, rest.subarray(f.offset - start, f.offset - start + f.bytes)],
        fds: owned.slice(f.fdStart - firstFd, f.fdStart - firstFd + f.fdCount),
        owned: true,
        messages: i === frags.length - 1 ? 1 : 0,
      });
    }
    this.schedule();
  }

  /**
   * Where the unsent rest of a big message is copied. Reused while it is free (fresh memory
   * costs a page fault per 4 KiB, as much as the copy itself), and dropped a second after use.
   */
  private spill: Uint8Array | undefined;
  private spillBusy = false;
  private spillTimer: ReturnType<typeof setTimeout> | undefined;

  private spillCopy(parts: Uint8Array[], offset: number, n: number): Uint8Array {
    if (this.spillBusy || n < SPILL_MIN_BYTES) return copyParts(parts, offset, n);
    if (!this.spill || this.spill.byteLength < n) this.spill = new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
    this.spillBusy = true;
    const out = this.spill.subarray(0, n);
    let at = 0;
    for (const v of sliceParts(parts, offset, n)) {
      out.set(v, at);
      at += v.byteLength;
    }
    return out;
  }

  /** The queue is empty: the spill buffer is free again, and released if not reused soon. */
  private releaseSpill(): void {
    if (!this.spillBusy) return;
    this.spillBusy = false;
    clearTimeout(this.spillTimer);
    this.spillTimer = setTimeout(() => {
      if (!this.spillBusy) this.spill = undefined;
    }, 1000);
    this.spillTimer.unref();
  }

  /** Size of this sender's fragment packets, once a big message raised its send buffer. */
  private fragmentBytes = 0;

  /**
   * Big messages go faster with a big socket send buffer (the kernel caps it at twice
   * net.core.wmem_max) and with fragments as big as half of it, so that two are in flight.
   */
  private growSendBuffer(): number {
    if (this.fragmentBytes > 0) return this.fragmentBytes;
    let sndbuf = 0;
    try {
      sndbuf = native().setBufferSizes(this.fd, SEND_BUFFER_BYTES, 0)[0];
    } catch {
      // Only an optimization.
    }
    this.fragmentBytes = Math.max(MAX_PACKET_BYTES, Math.min(MAX_FRAGMENT_BYTES, Math.floor(sndbuf / 2 / 4096) * 4096));
    return this.fragmentBytes;
  }

  /** True once nothing more can be written (failed, or the socket released). */
  get closedOrGone(): boolean {
    return this.disconnected || this.disposer.fd < 0;
  }

  /** Messages accepted by send() and not yet written. */
  get queuedMessages(): number {
    let n = this.batchMessages;
    for (const p of this.queue) n += p.messages;
    return n;
  }

  private schedule(): void {
    this.pin(true);
    waitingSenders.add(this);
    installExitFlush();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.drain();
      });
    }
  }

  /** Queues ready-made packets whose descriptors the queue takes over. */
  writePackets(packets: OutPacket[], messages = 1): void {
    this.takeBatch();
    for (const p of packets) this.queue.push({ ...p, owned: true, messages });
    this.pin(true);
    waitingSenders.add(this);
    installExitFlush();
    this.drain();
  }

  /**
   * Detaches the moved handles: their descriptors (now owned here) by index, -1 for the others.
   * Senders first (a new writer socket each, which may fail): when one fails, the sockets made
   * so far are closed and nothing has been taken from a receiver yet.
   */
  private detachMoved(handles: HandleSource[], infos: HandleInfo[]): number[] {
    const moved = new Array<number>(handles.length).fill(-1);
    try {
      for (let i = 0; i < handles.length; i++) if (infos[i]!.move && isSenderKind(infos[i]!.kind)) moved[i] = handles[i]![kDetach]!();
    } catch (e) {
      closeFds(moved.filter((fd) => fd >= 0));
      throw e;
    }
    for (let i = 0; i < handles.length; i++) if (infos[i]!.move && !isSenderKind(infos[i]!.kind)) moved[i] = handles[i]![kDetach]!();
    return moved;
  }

  /**
   * The socket of a new sender to this sender's receiver, on a transport whose sockets take one
   * writer each (see writers.ts): a socket pair whose other end goes to the receiver in an
   * ATTACH packet, queued in order after everything this sender sent so far. A sender whose
   * receiver is gone (or that failed) gives a socket whose peer is closed, so the new sender is
   * disconnected too, as a duplicate of a dead channel's socket would be.
   */
  newWriter(): number {
    if (this.closed) throw closedError(this.what);
    let pair: [number, number];
    try {
      pair = this.t.socketpair();
    } catch (e) {
      throw osError(e, 'socketpair');
    }
    if (this.failure || this.disconnected) closeFds([pair[1]]);
    else this.writePackets([attachPacket(pair[1])], 0);
    return pair[0];
  }

  /** Descriptors for a queued message: the moved ones, plus duplicates of the borrowed ones. */
  private ownAll(infos: HandleInfo[], moved: number[]): number[] {
    const owned: number[] = [];
    const n = native();
    try {
      for (let i = 0; i < infos.length; i++) owned.push(infos[i]!.move ? moved[i]! : n.dup(infos[i]!.fd));
    } catch (e) {
      closeFds(owned.filter((fd, i) => !infos[i]!.move));
      closeFds(moved.filter((fd) => fd >= 0));
      throw osError(e, 'duplicating a descriptor to send');
    }
    return owned;
  }

  private takeBatch(): void {
    const p = this.batcher.take();
    if (p) {
      this.queue.push({ ...p, owned: true, messages: this.batchMessages });
      this.batchMessages = 0;
    }
  }

  /** The error a failed deferred write leaves on this sender: what failed, what was dropped. */
  private failureOf(cause: IpcError, extra = 0): IpcError {
    let dropped = extra + this.batchMessages;
    for (const p of this.queue) dropped += p.messages;
    const written = this.writtenSinceQueued;
    return new IpcError(
      'OS',
      `a message queued on this ${this.what} could not be written (${cause.message}): ${written} queued message(s) had been written, ` +
        `${dropped} were dropped and will not arrive; this ${this.what} cannot send any more (close it, and use a new channel)`,
      { errno: cause.errno, syscall: cause.syscall ?? 'sendmsg', cause },
    );
  }

  /** Sends one packet from drain(); a thrown OS error is kept in lastSendError and gives SEND_FAILED. */
  private sendQueued(parts: Uint8Array[], fds: number[]): number {
    try {
      return this.t.send(this.fd, parts, fds.length ? fds : null);
    } catch (e) {
      this.lastSendError = osError(e, 'sendmsg');
      return SEND_FAILED;
    }
  }
  private lastSendError: IpcError | undefined;

  /** Writes queued packets until the socket is full. */
  drain(): void {
    if (this.disposer.fd < 0 || this.failure || this.disconnected) return;
    if (this.t.flushPending !== undefined && !this.finishPending()) return;
    for (;;) {
      if (this.queue.length === 0) {
        if (this.batcher.empty) break;
        // The common case of a burst: write the batch from the batcher's own buffer, which is
        // then reused (no allocation per packet); only a batch that must wait is copied out.
        const b = this.batcher.current();
        const r = this.sendQueued([b.bytes], b.fds);
        if (r >= 0) {
          closeFds(b.fds);
          this.batcher.reset();
          this.writtenSinceQueued += this.batchMessages;
          this.batchMessages = 0;
          continue;
        }
        this.takeBatch();
      }
      const p = this.queue[0]!;
      const r = this.sendQueued(p.parts, p.fds);
      if (r >= 0) {
        this.queue.shift();
        if (p.owned) closeFds(p.fds);
        if (p.pooled) releasePacketBuffer(p.pooled);
        this.writtenSinceQueued += p.messages;
        continue;
      }
      if (r === AGAIN) {
        this.watchWritable(true);
        return;
      }
      if (r === GONE) {
        this.setDisconnected();
        return;
      }
      // Any other failure (TOO_BIG here means the peer's buffer is smaller than our packets;
      // EPERM a peer that refuses descriptors with SO_PASSRIGHTS 0; ETOOMANYREFS the per-user
      // budget of descriptors in flight): never thrown here, where the event loop would get it.
      const cause = this.lastSendError ?? tooBigError();
      this.lastSendError = undefined;
      this.fail(this.failureOf(cause));
      return;
    }
    // The last packet may have been taken in part (stream backends): wait for it too.
    if (this.t.hasPending?.(this.fd) && !this.finishPending()) return;
    this.watchWritable(false);
    this.pin(false);
    waitingSenders.delete(this);
    this.writtenSinceQueued = 0;
    this.batcher.idle();
    this.releaseSpill();
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.closeWhenFlushed) this.release();
  }

  /** Finishes a packet the backend took in part; false when it must wait (or the peer is gone). */
  private finishPending(): boolean {
    let r: number;
    try {
      r = this.t.flushPending!(this.fd);
    } catch (e) {
      this.fail(this.failureOf(osError(e, 'sendmsg'), 0));
      return false;
    }
    if (r === AGAIN) {
      this.watchWritable(true);
      return false;
    }
    if (r === GONE) {
      this.setDisconnected();
      return false;
    }
    return true;
  }

  private watchWritable(on: boolean): void {
    if (on) {
      if (!this.poller) this.poller = new (native().Poller)(this.fd, () => this.drain());
      this.poller.start(POLL_WRITABLE);
    } else this.poller?.stop();
  }

  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.disconnected && !this.idle) return Promise.reject(disconnected(this.what));
    if (this.idle) return this.disconnected ? Promise.reject(disconnected(this.what)) : Promise.resolve();
    return new Promise((resolve, reject) => this.flushWaiters.push({ resolve, reject }));
  }

  private setDisconnected(): void {
    this.disconnected = true;
    this.fail(disconnected(this.what));
  }

  private fail(err: IpcError): void {
    if (!this.disconnected) this.failure = err;
    this.dropQueue();
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w.reject(err);
    if (this.closeWhenFlushed) this.release();
  }

  private dropQueue(): void {
    this.takeBatch();
    this.batchMessages = 0;
    for (const p of this.queue) {
      if (p.owned) closeFds(p.fds);
      if (p.pooled) releasePacketBuffer(p.pooled);
    }
    this.queue = [];
    this.batcher.idle();
    this.releaseSpill();
    this.watchWritable(false);
    this.pin(false);
    waitingSenders.delete(this);
  }

  close(owner: object): void {
    untrackForGc(owner);
    this.dropOwner();
  }

  private dropOwner(): void {
    if (this.closed) return;
    if (--this.owners > 0) return;
    this.closed = true;
    // Queued messages are still delivered: the socket stays open until they are written.
    if (!this.idle && !this.disconnected) {
      this.closeWhenFlushed = true;
      return;
    }
    this.release();
  }

  private release(): void {
    if (this.disposer.fd < 0) return;
    this.dropQueue();
    this.poller?.close();
    this.poller = undefined;
    closeFds([this.fd]);
    this.disposer.fd = -1;
  }
}

/** Whether a handle kind tag is a sender's (`S`, `BS`), which moves only on singleWriter transports. */
function isSenderKind(kind: string): boolean {
  return kind === 'S' || kind === 'BS';
}

/** Constant-time comparison of two secrets of 32 hex digits. */
function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 16 && y.length === 16 && timingSafeEqual(x, y);
}

/**
 * What is wrong with a socket a peer gave us to read from (a switch target, a received receiver),
 * or undefined: it must be a connected SOCK_SEQPACKET socket, not listening. Options that make
 * every read install descriptors or credentials (SO_PASSPIDFD, SO_PASSCRED) are switched off.
 */
function switchSocketProblem(fd: number): string | undefined {
  let info: FdInfo;
  try {
    info = fdInfo(fd);
  } catch (e) {
    return `a descriptor that cannot be inspected (${osError(e, 'statx').message})`;
  }
  const t = transport();
  if (info.kind !== t.socketKind) return `a ${info.kind}, not a connected ${t.socketName}`;
  if (info.domain !== 'unix') return `a network socket, not an AF_UNIX ${t.socketName}`;
  if (info.listening) return `a listening socket, not a connected ${t.socketName}`;
  if (!info.connected) return 'a socket that is not connected';
  return neutralizeSocket(fd);
}

/**
 * Shuts a socket we only read for writing (see shutdownWrite in src/native/channel.cc): a peer
 * that attached the peer of one of our own sockets cannot keep the receiver from end of file.
 */
function shutdownProblem(fd: number): string | undefined {
  try {
    native().shutdownWrite(fd);
  } catch (e) {
    return `a socket that cannot be shut for writing (${osError(e, 'shutdown').message})`;
  }
  return undefined;
}

/** Switches off the receive options a peer may have set on a socket we will read; a problem, or undefined. */
function neutralizeSocket(fd: number): string | undefined {
  // Linux only (SO_PASSCRED, SO_PASSPIDFD, SO_PASSSEC); other systems have nothing to reset.
  const reset = native().neutralizeSocket;
  if (typeof reset !== 'function') return undefined;
  try {
    reset(fd);
  } catch (e) {
    return `a socket whose receive options cannot be reset (${osError(e, 'setsockopt').message})`;
  }
  return undefined;
}

/**
 * Whether `receiverFd` is the other end of `senderFd`'s socket (asked of the kernel: Linux
 * sock_diag). Unknown (no unix_diag, another OS) counts as no.
 */
function isOwnReceiver(senderFd: number, receiverFd: number): boolean {
  if (senderFd === receiverFd) return true;
  const n = native();
  if (typeof n.isSocketPeer !== 'function') return false;
  try {
    return n.isSocketPeer(senderFd, receiverFd) === true;
  } catch {
    return false;
  }
}

/** sendQueued's result when the backend threw (the error is in lastSendError). */
const SEND_FAILED = -100;

function tooBigError(): IpcError {
  return new IpcError('OS', 'sendmsg: EMSGSIZE (the socket takes no packet this big: its buffer is smaller than this library\'s packets)', { syscall: 'sendmsg' });
}

function disconnected(what: string): IpcError {
  return new IpcError('DISCONNECTED', `the receiving end of this ${what} is closed`);
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Waiter {
  resolve: (item: ParsedItem) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const META_SIZE = 2 + 4 * 256;

/**
 * Received packets land directly in a shared arena (one per thread), in a bump-allocated run of
 * 2 MiB buffers (room for the largest packet, MAX_RECV_PACKET_BYTES, at every read): no
 * allocation per read, no copy out of the addon. A record keeps a view of its arena, which the
 * garbage collector frees once no record of it is left; small blocks keep what dead arenas hold
 * until a major collection small.
 */
const ARENA_BYTES = 2 * 1024 * 1024;
/** Where readDirect receives a fragment's header, and what does not fit the awaited regions. */
const DIRECT_HEADER = new Uint8Array(new ArrayBuffer(FRAGMENT_HEADER));
const DIRECT_OVERFLOW = new Uint8Array(new ArrayBuffer(MAX_RECV_PACKET_BYTES));
/** Where prepareBig peeks at the start of a first fragment's chunk (its body header and table). */
const PEEK_PREFIX = new Uint8Array(new ArrayBuffer(4096));
/** Packets readDirect takes per readiness event before it lets others run. */
const DIRECT_ROUNDS = 64;
/** Socket send buffer asked for once a sender writes big messages (the kernel caps it). */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** The rest of a message at least this big is copied into the sender's reusable spill buffer. */
const SPILL_MIN_BYTES = 1024 * 1024;
/** A packet at least this big suggests a bulk transfer: read ahead. */
const BULK_PACKET_BYTES = 32 * 1024;
const arenaState = { buf: new Uint8Array(0), off: 0 };
function recvArena(): { buf: Uint8Array; off: number } {
  if (arenaState.buf.length - arenaState.off < MAX_RECV_PACKET_BYTES) {
    arenaState.buf = new Uint8Array(Buffer.allocUnsafeSlow(ARENA_BYTES).buffer);
    arenaState.off = 0;
  }
  return arenaState;
}

function setWriterRef(w: WriterSource, on: boolean): void {
  if (w.poller && on !== w.pollRef) {
    if (on) w.poller.ref();
    else w.poller.unref();
    w.pollRef = on;
  }
}

/** A socket a receiver reads besides its own: an attached sender's (see writers.ts). */
interface WriterSource {
  fd: number;
  poller: NativePoller | undefined;
  polling: boolean;
  pollRef: boolean;
}

/**
 * The reading half: one socket (plus attached writers' sockets on singleWriter transports), a
 * parser, a queue of complete records, pending receives.
 */
class ReceiverCore extends Pinnable {
  fd: number;
  closed = false;
  eof = false;
  readonly limits: Limits;
  readonly parser: PacketParser;
  private items: ParsedItem[] = [];
  private head = 0;
  private waiters: Waiter[] = [];
  private poller: NativePoller | undefined;
  private refed = true;
  private readonly disposer: Disposer;
  private readonly meta = new Int32Array(META_SIZE);
  private readonly fdsOut = new Int32Array(1024);
  /** Called when items arrive or the state changes, for select(). */
  onActivity: (() => void) | undefined;
  /**
   * Secrets of the switch packets this receiver still expects, first expected first: a receiver
   * moved with messages already read continues on a carrier socket whose last packet switches it
   * back to its own socket, and only a switch carrying the secret given with the move is obeyed.
   */
  secrets: string[] = [];
  /** The secret announced for the next move (set when the handle's kind tag is taken). */
  private nextSecret: string | undefined;
  private readonly t: Transport = transport();
  /**
   * Sockets of further senders read besides `fd` (singleWriter transports, see writers.ts), in
   * the order they were attached. When `fd` reaches end of file the first of them takes its place.
   */
  private writers: WriterSource[] = [];

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
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes the next complete record or error, reading the socket without waiting if needed. */
  takeNow(): ParsedItem | undefined {
    if (this.pending === 0 && !this.eof) this.read();
    return this.shift();
  }

  /** Takes the next record or error already read, without touching the socket. */
  takeQueued(): ParsedItem | undefined {
    return this.shift();
  }

  private shift(): ParsedItem | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as ParsedItem;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /**
   * Waits for the next item and turns it into the result with `finish` (which may throw, for
   * an error item or a bad message). Rejects DISCONNECTED at end of file, TIMEOUT after `timeout`.
   */
  next<R>(timeout: number | undefined, signal: AbortSignal | undefined, finish: (item: ParsedItem) => R): Promise<Awaited<R>> {
    if (this.closed) return Promise.reject(closedError(this.what));
    const ready = this.shift();
    if (ready) {
      try {
        return Promise.resolve(finish(ready)) as Promise<Awaited<R>>;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.eof) return Promise.reject(this.eofError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Awaited<R>>((resolve, reject) => {
      const w: Waiter = {
        resolve: (item) => {
          try {
            resolve(finish(item) as Awaited<R>);
          } catch (e) {
            reject(e);
          }
        },
        reject,
      };
      if (timeout !== undefined) {
        w.timer = setTimeout(() => {
          this.removeWaiter(w);
          reject(new IpcError('TIMEOUT', `no message arrived within ${timeout} ms`));
        }, timeout);
        if (!this.refed) w.timer.unref();
      }
      if (signal) {
        const onAbort = (): void => {
          this.removeWaiter(w);
          if (w.timer) clearTimeout(w.timer);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const done = (): void => signal.removeEventListener('abort', onAbort);
        const settle = w.resolve;
        w.resolve = (item) => (done(), settle(item));
        w.reject = (e) => (done(), reject(e));
      }
      this.waiters.push(w);
      this.demand();
    });
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    this.demand();
  }

  /** Starts or stops watching the socket depending on whether anyone waits. */
  demand(watch = this.waiters.length > 0 || this.watchers > 0): void {
    if (this.closed) return;
    const waiting = this.waiters.length > 0 || this.watchers > 0;
    if (watch && !this.eof) {
      if (!this.poller) {
        this.poller = new (native().Poller)(this.fd, (status) => this.onReadable(status));
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
    } else {
      // Lazy stop: the watch stays until the next readiness event (onReadable stops it then),
      // which saves two epoll_ctl calls per message in request/response traffic; but an idle
      // receiver no longer keeps the process alive.
      if (this.poller) this.setPollRef(false);
      for (const w of this.writers) setWriterRef(w, false);
      this.pin(false);
    }
  }

  /** Watches every attached writer's socket (started lazily, stopped by onWriterReadable). */
  private watchWriters(ref: boolean): void {
    for (const w of this.writers) {
      if (!w.poller) {
        w.poller = new (native().Poller)(w.fd, (status) => this.onWriterReadable(w, status));
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
    if (this.waiters.length === 0 && this.watchers === 0) {
      w.poller?.stop();
      w.polling = false;
      return;
    }
    if (status < 0) this.dropWriter(w);
    else this.readWriter(w);
    this.dispatch();
  }

  /** Reads what an attached writer's socket holds now (see read()). */
  private readWriter(w: WriterSource): void {
    this.afterAttach = false;
    let zero = this.readBatch(false, false, w);
    while (zero) zero = this.readBatch(true, false, w);
    if (this.afterAttach) {
      this.afterAttach = false;
      zero = this.readBatch(false, false, w);
      while (zero) zero = this.readBatch(true, false, w);
    }
  }

  /** An attached writer's socket reached end of file: it is closed and no longer read. */
  private dropWriter(w: WriterSource): void {
    const i = this.writers.indexOf(w);
    if (i < 0) return;
    this.writers.splice(i, 1);
    w.poller?.close();
    w.poller = undefined;
    closeFds([w.fd]);
  }

  /** Reads the socket of a new sender from now on (an ATTACH packet), or one MALFORMED item. */
  private attachWriter(packet: Uint8Array, fds: number[]): void {
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

  /**
   * Reads what this receiver's sockets hold now, without waiting (bounded: a few batches), so
   * that ATTACH packets already there are known before it moves.
   */
  absorb(): void {
    if (this.closed || this.eof) return;
    for (let round = 0; round < 16; round++) {
      const before = this.items.length + this.writers.length;
      this.read();
      if (this.items.length + this.writers.length === before || this.eof) break;
    }
  }

  /** The descriptors a blocking wait of this receiver polls: its socket and its attached writers'. */
  get readFds(): number | number[] {
    return this.writers.length === 0 ? this.fd : [this.fd, ...this.writers.map((w) => w.fd)];
  }

  private polling = false;
  private pollRef = true;
  private readAhead = false;

  private setPollRef(on: boolean): void {
    if (this.poller && on !== this.pollRef) {
      if (on) this.poller.ref();
      else this.poller.unref();
      this.pollRef = on;
    }
    for (const w of this.writers) setWriterRef(w, on);
  }

  private dropPoller(): void {
    this.poller?.close();
    this.poller = undefined;
    this.polling = false;
  }

  /** A select() set watching this receiver keeps it readable while the set waits. */
  watchers = 0;

  private onReadable(status: number): void {
    if (this.closed) return;
    if (this.waiters.length === 0 && this.watchers === 0) {
      // Nobody wants data now: leave it in the kernel (backpressure) and stop watching.
      this.poller?.stop();
      this.polling = false;
      return;
    }
    if (status < 0) {
      this.primaryEnded();
    } else this.read();
    this.dispatch();
  }

  /** One non-blocking batch read into the item queue. */
  read(): void {
    // The addon takes a zero-length read from a peer that has hung up for end-of-file, but an
    // empty packet sent before the hang-up reads the same: when packets follow, it was a packet
    // (one MALFORMED) and reading goes on.
    this.afterAttach = false;
    let zero = this.readBatch(false);
    while (zero) zero = this.readBatch(true);
    if (this.afterAttach) {
      this.afterAttach = false;
      zero = this.readBatch(false);
      while (zero) zero = this.readBatch(true);
    }
    if (this.writers.length > 0) for (const w of [...this.writers]) this.readWriter(w);
  }

  /** The descriptor this core put in blocking mode (its file's O_NONBLOCK cleared), or -1. */
  private blockingFd = -1;
  /** Set by readBatch when a blocking read returned EAGAIN: the file is not in blocking mode. */
  private wouldBlock = false;

  /**
   * recvSync()'s wait when nothing else needs watching: one recvmsg that blocks until a packet
   * arrives (one system call where poll + recvmsg take two), then reads like read(). False when
   * this socket cannot be read that way now (the rest of a big message is due, which is read in
   * place, or the file is not in blocking mode): the caller then waits in poll(2).
   */
  readBlocking(): boolean {
    if (this.closed || this.eof || this.bigAhead || this.writers.length > 0 || this.parser.directTarget(0) !== undefined) return false;
    if (this.blockingFd !== this.fd) {
      // Our reads and writes all pass MSG_DONTWAIT, so the mode changes nothing else; libuv sets
      // O_NONBLOCK again when it starts watching the socket (see demand()).
      try {
        native().setBlocking(this.fd, true);
      } catch {
        return false;
      }
      this.blockingFd = this.fd;
    }
    this.wouldBlock = false;
    let zero = this.readBatch(false, true);
    // Another holder of this file (a peer that kept a duplicate) may have set O_NONBLOCK.
    if (this.wouldBlock) {
      this.blockingFd = -1;
      return false;
    }
    while (zero) zero = this.readBatch(true);
    return true;
  }

  /** Reads `fd`, or the attached writer `w`; returns true when it saw what may be end-of-file (see read()). */
  private readBatch(afterZero: boolean, block = false, w?: WriterSource): boolean {
    if (this.closed || this.eof) return false;
    const t = this.t;
    if (t.scatterReads && w === undefined) {
      if (this.parser.directTarget(0) !== undefined) return this.readDirect(afterZero);
      if (this.bigAhead && this.parser.idle && this.prepareBig()) return this.readDirect(afterZero);
    }
    // One packet per read unless packets are arriving in bulk: a request/response exchange then
    // costs one recvmsg, not a second one that fails with EAGAIN (level-triggered polling brings
    // us back at once if more is queued).
    const maxPackets = this.readAhead ? Math.min(this.limits.maxQueue, 256) : 1;
    const arena = recvArena();
    let r: number;
    try {
      r = t.recv(w === undefined ? this.fd : w.fd, this.meta, this.fdsOut, maxPackets, MAX_RECV_PACKET_BYTES, arena.buf, arena.off, block);
    } catch (e) {
      this.items.push(osError(e, 'recvmsg'));
      return false;
    }
    if (r <= 0) {
      if (r === 0) {
        if (!afterZero) return true;
        if (w === undefined) this.primaryEnded();
        else this.dropWriter(w);
      } else {
        if (afterZero) this.items.push(malformed('an empty packet'));
        if (block) this.wouldBlock = true;
      }
      return false;
    }
    const buf = arena.buf;
    const lastAt = 2 + 4 * (this.meta[0]! - 1);
    arena.off = pad8(this.meta[lastAt]! + this.meta[lastAt + 1]!);
    // Full batches of big packets (fragments, bursts of batched records) mean more is coming.
    this.readAhead = r === maxPackets && this.meta[lastAt + 1]! >= BULK_PACKET_BYTES;
    this.bigAhead = this.meta[lastAt + 1]! >= BULK_PACKET_BYTES;
    if (afterZero) this.items.push(malformed('an empty packet'));
    const count = this.meta[0]!;
    let fdAt = 0;
    for (let i = 0; i < count; i++) {
      const off = this.meta[2 + 4 * i]!;
      const len = this.meta[3 + 4 * i]!;
      const nfds = this.meta[4 + 4 * i]!;
      const flags = this.meta[5 + 4 * i]!;
      // A stream out of step is given up (end of file follows); the receiver with it, when it reads no other socket.
      if (flags & PACKET_DESYNC && w === undefined && this.writers.length === 0) this.abandoned = true;
      const fds: number[] = new Array(nfds);
      for (let j = 0; j < nfds; j++) fds[j] = this.fdsOut[fdAt + j]!;
      fdAt += nfds;
      const packet = buf.subarray(off, off + len);
      if (flags === 0 && isAttachPacket(packet)) {
        this.attachWriter(packet, fds);
        this.afterAttach = true;
        continue;
      }
      const sw = this.parser.parse(packet, fds, flags, this.items);
      if (sw && w !== undefined) {
        // Only the receiver's own socket (a carrier) may switch it; a writer's switch is refused.
        closeFds([sw.switchTo]);
        this.items.push(malformed('a switch packet on the socket of an attached sender (a sender may be trying to redirect the receiver): refused, the channel continues'));
        continue;
      }
      // A refused switch is one bad message; the rest of the batch is still this socket's.
      if (sw && this.switchTo(sw)) {
        // The rest of the channel comes on another socket; this one is done.
        const rest = this.remainingFds(i + 1, count);
        for (let j = 0; j < rest; j++) closeFds([this.fdsOut[fdAt + j]!]);
        return false;
      }
    }
    // What the socket that announced a writer still holds was mostly sent before that writer's
    // first message: read it in bulk before the new socket is read (see read()).
    if (this.afterAttach) this.readAhead = true;
    return this.meta[1] === 1;
  }

  /** Set when a batch carried an ATTACH packet: read() then reads the same socket once more first. */
  private afterAttach = false;

  /**
   * Reads the rest of a big message in place: each packet is scattered straight into the
   * message's own buffers (the next fragment's header into DIRECT_HEADER, its bytes where they
   * belong), so a fragment costs the kernel's copy and nothing more. A packet that turns out to
   * be something else is rebuilt from where it landed and parsed as usual.
   */
  private readDirect(afterZero: boolean): boolean {
    const t = this.t;
    for (let round = 0; round < DIRECT_ROUNDS; round++) {
      if (this.closed || this.eof) return false;
      const target = this.parser.directTarget(MAX_RECV_PACKET_BYTES - FRAGMENT_HEADER);
      if (!target) return false;
      const iovs = [DIRECT_HEADER, ...target.regions, DIRECT_OVERFLOW];
      let r: number;
      try {
        r = t.recvInto(this.fd, iovs, this.fdsOut, this.directMeta);
      } catch (e) {
        this.items.push(osError(e, 'recvmsg'));
        return false;
      }
      if (r < 0) {
        if (afterZero) this.items.push(malformed('an empty packet'));
        return false;
      }
      const nfds = this.directMeta[0]!;
      const flags = this.directMeta[1]!;
      if (r === 0 && this.directMeta[2] === 1) {
        if (!afterZero) return true;
        this.setEof();
        return false;
      }
      if (afterZero) {
        this.items.push(malformed('an empty packet'));
        afterZero = false;
      }
      const fds: number[] = new Array(nfds);
      for (let j = 0; j < nfds; j++) fds[j] = this.fdsOut[j]!;
      const regionBytes = target.regions.reduce((sum, v) => sum + v.byteLength, 0);
      if (r >= FRAGMENT_HEADER && this.parser.parseDirect(target.stream, DIRECT_HEADER, r - FRAGMENT_HEADER, regionBytes, fds, flags, this.items)) {
        this.bigAhead = true;
        continue;
      }
      // Not the awaited fragment: rebuild the packet from where its bytes landed.
      this.parser.unprepare(target.stream);
      const packet = new Uint8Array(r);
      let at = 0;
      for (const v of iovs) {
        if (at >= r) break;
        const take = Math.min(v.byteLength, r - at);
        packet.set(v.subarray(0, take), at);
        at += take;
      }
      const sw = this.parser.parse(packet, fds, flags, this.items);
      if (sw && this.switchTo(sw)) return false;
    }
    return false;
  }

  private readonly directMeta = new Int32Array(3);
  /** The last packet was big: peek at the next one, which may start another big message. */
  private bigAhead = false;

  /**
   * Peeks at the next packet (no descriptors, nothing consumed): when it starts a big message,
   * the parser sets that message up so that its first fragment too is received in place.
   */
  private prepareBig(): boolean {
    let r: number;
    try {
      r = this.t.recvInto(this.fd, [DIRECT_HEADER, PEEK_PREFIX], this.fdsOut, this.directMeta, true);
    } catch {
      return false;
    }
    if (r < 0) return false; // nothing there yet: peek again next time
    const ok = r >= FRAGMENT_HEADER && this.parser.prepareFirst(DIRECT_HEADER, PEEK_PREFIX.subarray(0, r - FRAGMENT_HEADER));
    this.bigAhead = ok;
    return ok;
  }

  private remainingFds(from: number, count: number): number {
    let n = 0;
    for (let i = from; i < count; i++) n += this.meta[4 + 4 * i]!;
    return n;
  }

  /** Continues on `fd`; false (and one MALFORMED item) when it is not a connected SOCK_SEQPACKET socket. */
  private switchTo(sw: SwitchItem): boolean {
    const fd = sw.switchTo;
    const expected = this.secrets[0];
    if (expected === undefined || !sameSecret(sw.secret, expected)) {
      closeFds([fd]);
      this.items.push(
        malformed(
          expected === undefined
            ? 'a switch packet on a receiver that expects none (only a moved receiver gets one; a sender may be trying to redirect it): refused, the channel continues'
            : 'a switch packet without the secret this receiver expects (a sender may be trying to redirect it): refused, the channel continues',
        ),
      );
      return false;
    }
    const problem = switchSocketProblem(fd);
    if (problem) {
      closeFds([fd]);
      this.items.push(malformed(`a switch packet carried ${problem}`));
      return false;
    }
    this.secrets.shift();
    const wasWatching = this.poller !== undefined;
    this.dropPoller();
    closeFds([this.fd]);
    this.fd = fd;
    this.disposer.fd = fd;
    if (wasWatching) this.demand();
    return true;
  }

  /**
   * The receiver's own socket reached end of file: the first attached writer's socket takes its
   * place; with none left, the receiver is at end of file.
   */
  private primaryEnded(): void {
    const next = this.writers.shift();
    if (next === undefined) {
      this.setEof();
      return;
    }
    next.poller?.close();
    const wasWatching = this.poller !== undefined;
    this.dropPoller();
    closeFds([this.fd]);
    this.fd = next.fd;
    this.disposer.fd = next.fd;
    this.blockingFd = -1;
    if (wasWatching) this.demand();
  }

  private setEof(): void {
    this.eof = true;
    // A message cut short by the peer's death is dropped whole, never delivered in part.
    this.parser.reset();
  }

  /** Set when the stream transport gave up on this socket (PACKET_DESYNC): end of file follows. */
  private abandoned = false;

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

  /** Hands queued items to waiting receives. */
  dispatch(): void {
    while (this.waiters.length > 0) {
      const item = this.shift();
      if (!item) break;
      const w = this.waiters.shift()!;
      if (w.timer) clearTimeout(w.timer);
      w.resolve(item);
    }
    if (this.eof && this.pending === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) {
        if (w.timer) clearTimeout(w.timer);
        w.reject(this.eofError());
      }
    }
    this.demand();
    this.onActivity?.();
  }

  ref(): void {
    this.refed = true;
    this.setPollRef(this.waiters.length > 0);
  }

  unref(): void {
    this.refed = false;
    this.setPollRef(false);
  }

  private closeItems(): void {
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

  /**
   * Gives the socket away. Messages already read from it (and partial ones) must travel with it:
   * they are written into a fresh socket, followed by a SWITCH packet carrying the original, and
   * the fresh socket's other end is what is sent.
   */
  /**
   * The kind tag this receiver travels with: `base`, then the secret its carrier's switch will
   * carry when it has messages read ahead (taken now, so the tag and the move agree), then the
   * secrets it still expects itself, each as `.` and 32 hex digits.
   */
  kindTag(base: string): string {
    // Messages read ahead, or attached writers' sockets, travel ahead of the socket on a carrier.
    if (this.nextSecret === undefined && (this.head < this.items.length || !this.parser.idle || this.writers.length > 0)) {
      this.nextSecret = randomBytes(16).toString('hex');
    }
    if (this.nextSecret === undefined && this.secrets.length === 0) return base;
    return [base, ...(this.nextSecret === undefined ? [] : [this.nextSecret]), ...this.secrets].join('.');
  }

  private detachWithPending(fd: number): number {
    const secret = this.nextSecret;
    this.nextSecret = undefined;
    const packets: OutPacket[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it instanceof Error) continue; // an error stands for a message already refused
      const parts = recordParts(it);
      const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
      if (fitsOnePacket(bytes, it.fds.length)) packets.push(singleRecordPacket(parts, bytes, it.fds));
      else packets.push(...fragmentPackets(randomBytes(8).readBigUInt64LE(0), 0, parts, bytes, it.fds));
    }
    this.items = [];
    this.head = 0;
    packets.push(...this.parser.exportPartials());
    this.dropPoller();
    // Attached writers' sockets follow, to be read by the receiver's new owner too.
    for (const w of this.writers) {
      w.poller?.close();
      packets.push(attachPacket(w.fd));
    }
    this.writers = [];
    // The tag sent with this receiver announced a carrier exactly when `secret` is set.
    if (secret === undefined) {
      for (const p of packets) closeFds(p.fds);
      return fd;
    }
    let pair: [number, number];
    try {
      pair = this.t.socketpair();
    } catch (e) {
      for (const p of packets) closeFds(p.fds);
      closeFds([fd]);
      throw osError(e, 'socketpair');
    }
    packets.push(switchPacket(fd, secret));
    const carrier = {};
    const sender = new SenderCore(pair[0], carrier, 'IpcReceiver');
    sender.writePackets(packets);
    sender.close(carrier);
    return pair[1];
  }

  /** Closes, or (`detach`) gives the descriptor to the caller. Pending receives reject CLOSED. */
  close(owner: object, detach = false): number {
    if (this.closed) return -1;
    this.closed = true;
    untrackForGc(owner);
    this.pin(false);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(detach ? new IpcError('CLOSED', `this ${this.what} was sent to another endpoint`) : closedError(this.what));
    }
    const fd = this.fd;
    this.fd = -1;
    this.disposer.fd = -1;
    if (detach) return this.detachWithPending(fd);
    this.closeItems();
    closeFds([fd]);
    this.onActivity?.();
    return -1;
  }
}

// ---------------------------------------------------------------------------------------------
// Typed channel

/** Decodes a record; the handle objects it creates are also pushed to `revived`. */
const noHandleHooks = {
  reviveHandle(): never {
    throw malformed('a handle reference in a message that carried no descriptors');
  },
};

function decodeRecord<T>(rec: WireRecord, limits: Limits, revived: Array<{ close(): void }> = []): T {
  let expected: number;
  try {
    expected = peekHandleCount(rec.body);
  } catch (e) {
    closeFds(rec.fds);
    throw e;
  }
  if (expected !== rec.fds.length) {
    closeFds(rec.fds);
    throw malformed(`the message names ${expected} descriptors but ${rec.fds.length} arrived with it`);
  }
  if (rec.fds.length === 0) return decodeMessage(rec.body, 0, noHandleHooks, limits, rec.sections) as T;
  const used = new Array<boolean>(rec.fds.length).fill(false);
  const ctx: ReviveContext = { limits, sharedBytes: 0, secrets: NO_SECRETS };
  try {
    const value = decodeMessage(
      rec.body,
      rec.fds.length,
      {
        reviveHandle(tag: string, index: number): unknown {
          const { kind, secrets } = parseKindTag(tag);
          const entry = handleKind(kind);
          if (!entry) throw malformed(`unknown handle kind ${JSON.stringify(tag.slice(0, 40))}`);
          ctx.secrets = secrets;
          if (index < 0 || index >= rec.fds.length || used[index]) throw malformed(`a bad or repeated handle reference #${index}`);
          const fd = rec.fds[index]!;
          const info = fdInfo(fd);
          const problem = entry.check(info, ctx, fd);
          if (problem) throw malformed(`handle #${index} (${kind}) ${problem}`);
          used[index] = true;
          const obj = entry.revive(fd, info, ctx) as { close(): void };
          revived.push(obj);
          return obj;
        },
      },
      limits,
      rec.sections,
    ) as T;
    closeFds(rec.fds.filter((_, i) => !used[i]));
    return value;
  } catch (e) {
    for (const o of revived) o.close();
    closeFds(rec.fds.filter((_, i) => !used[i]));
    throw e instanceof IpcError ? e : malformed((e as Error).message ?? String(e));
  }
}

/** Most switch secrets one receiver's kind tag may carry (a receiver moved this often in a row). */
const MAX_SECRETS = 64;
const SECRET_RE = /^[0-9a-f]{32}$/;

/** Splits a kind tag `R.<secret>.<secret>` into its kind and secrets (only receivers have any). */
function parseKindTag(tag: string): { kind: string; secrets: readonly string[] } {
  const dot = tag.indexOf('.');
  if (dot < 0) return { kind: tag, secrets: NO_SECRETS };
  const kind = tag.slice(0, dot);
  if (kind !== 'R' && kind !== 'BR') throw malformed(`handle kind ${JSON.stringify(tag.slice(0, 40))} carries secrets, which only receivers have`);
  if (tag.length > dot + 1 + MAX_SECRETS * 33) throw malformed(`a receiver's kind tag carries more than ${MAX_SECRETS} switch secrets`);
  const secrets = tag.slice(dot + 1).split('.');
  for (const x of secrets) if (!SECRET_RE.test(x)) throw malformed(`a receiver's kind tag carries a malformed switch secret`);
  return { kind, secrets };
}

/**
 * Closes the handles a message brought that the validated value no longer holds (a schema that
 * strips unknown keys drops them): the application never sees them, so nobody else would close
 * them. Walks the value once (objects, arrays, Maps, Sets; own enumerable properties, each read
 * once), stopping as soon as every handle is found.
 */
function closeUnreachable<V>(revived: Array<{ close(): void }>, value: V): V {
  if (revived.length === 0) return value;
  const missing = new Set<object>(revived);
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0 && missing.size > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (missing.delete(v) || isHandleSource(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (v instanceof Map) {
      for (const [k, x] of v) stack.push(k, x);
    } else if (v instanceof Set) {
      for (const x of v) stack.push(x);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else {
      for (const k of Object.keys(v)) {
        const d = Object.getOwnPropertyDescriptor(v, k);
        if (d && 'value' in d) stack.push(d.value);
      }
    }
  }
  for (const h of missing) (h as { close(): void }).close();
  return value;
}

const ZERO_PAD = new Uint8Array(8);

/** The body of a record as parts (a split record's head, sections and their padding). */
function recordParts(rec: WireRecord): Uint8Array[] {
  if (!rec.sections) return [rec.body];
  const parts = [rec.body];
  for (const sec of rec.sections) {
    parts.push(sec);
    if (sec.byteLength % 8) parts.push(ZERO_PAD.subarray(0, 8 - (sec.byteLength % 8)));
  }
  return parts;
}

/**
 * @internal A synchronous receive met an asynchronous schema: the message is dropped, and so is the
 * pending validation, whose failure must not surface later as an unhandled rejection (a refused
 * message releases its handles itself; an accepted one leaves them to the GC safety net).
 */
export function asyncSchemaError(pending: Promise<unknown>, call: string, instead = 'recv()'): TypeError {
  pending.catch(() => {});
  return new TypeError(`${call} cannot be used with an asynchronous schema; use ${instead}`);
}

/** Options of `recv()`. */
export interface RecvOptions {
  /** Reject with TIMEOUT after this many milliseconds. */
  timeout?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

function checkRecvOptions(o: RecvOptions | undefined): number | undefined {
  if (o === undefined) return undefined;
  if (typeof o !== 'object' || o === null) throw new TypeError('recv options must be an object');
  return checkTimeout(o.timeout);
}

/** What every sending end shares: its socket core, flushing, cloning, closing, travelling. */
/**
 * What every endpoint shares: its state, closing, and how it travels inside a message (a
 * receiver moves, a sender is duplicated by the kernel).
 */
abstract class Endpoint implements HandleSource, Disposable {
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
}

/** The core a sender under construction shares (see cloneOf); undefined otherwise. */
let sharing: SenderCore | undefined;

/** A clone from cloneSource(): a sender sharing the core. */
function cloneOf<S>(make: (fd: number) => S, source: SenderCore): S {
  sharing = source;
  try {
    return make(-1);
  } finally {
    sharing = undefined;
  }
}

abstract class SenderBase extends Endpoint {
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
    assertThread(this.thread, `this ${this.core.what}`);
    if (this.closed) throw closedError(this.core.what);
  }

  /** Resolves when every queued message has been handed to the kernel. */
  flush(): Promise<void> {
    return this.core.flush();
  }

  /**
   * @internal What a clone() is made from: this sender's core, shared. Clones write through one
   * socket and one queue, so one thread's messages through any of them arrive in the order it
   * sent them (and a stream socket never has two writers interleaving their frames).
   */
  protected cloneSource(): SenderCore {
    assertThread(this.thread, `this ${this.core.what}`);
    if (this.closed) throw closedError(this.core.what);
    return this.core;
  }

}

/**
 * What every receiving end shares: recv/tryRecv/iteration over its socket core, ref/unref,
 * closing, and moving when sent. `finish` turns one queued item into a message.
 */
abstract class ReceiverBase<M> extends Endpoint implements AsyncIterable<M> {
  /** @internal */
  readonly core: ReceiverCore;
  private readonly thread = currentThreadId;
  /** @internal */
  protected get recvThread(): number {
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
    assertThread(this.thread, `this ${this.core.what}`);
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
    assertThread(this.thread, `this ${this.core.what}`);
    if (this.core.closed) throw closedError(this.core.what);
    // What this thread sent and still holds back may be for this receiver: write it out first.
    if (waitingSenders.size > 0 && this.core.pending === 0) drainWaitingSenders();
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
    assertThread(this.thread, `this ${this.core.what}`);
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

  /** Iterates messages until every sender is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<M, void, undefined> {
    for (;;) {
      try {
        yield await this.recv();
      } catch (e) {
        if (e instanceof IpcError && e.code === 'DISCONNECTED') return;
        throw e;
      }
    }
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
}

/** The sending end of a typed channel. Cloneable, and sendable inside messages (it stays usable). */
export class IpcSender<T> extends SenderBase {
  /** @internal Use `channel()` or `IpcSender.connect()`. */
  constructor(fd: number) {
    super(fd, 'S', 'IpcSender');
  }

  /** Connects to an `IpcOneShotServer` by its name (run in the process that was given the name). */
  static connect<T>(name: string): IpcSender<T> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('IpcSender.connect(name) needs the server name, a non-empty string');
    let fd: number;
    try {
      fd = transport().connect(name);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        const err = osError(e, `no one-shot server is listening at ${name}: it was already used, closed, or never existed`);
        throw err;
      }
      throw osError(e, `connecting to ${name}`);
    }
    return new IpcSender<T>(fd);
  }

  /**
   * Sends a value. Never blocks: when the socket is full the message is queued in order and
   * written when the peer reads. Throws `UNSERIALIZABLE` (nothing sent), `DISCONNECTED` once the
   * receiver is known closed, `CLOSED` after `close()`.
   */
  send(value: T): void {
    this.ready();
    const enc = encodeMessage(value, encodeHooks);
    this.core.write(enc.parts, enc.byteLength, enc.handles as HandleSource[]);
  }

  /** A second sender to the same receiver (a duplicated descriptor). */
  clone(): IpcSender<T> {
    return cloneOf((fd) => new IpcSender<T>(fd), this.cloneSource());
  }
}

/** The receiving end of a typed channel. Sending it inside a message moves it. */
export class IpcReceiver<T> extends ReceiverBase<T> {
  private schema: StandardSchemaV1<unknown, T> | undefined;

  /** @internal Use `channel()` or `IpcOneShotServer`. */
  constructor(fd: number, options?: ReceiverOptions<T>) {
    super(fd, options as ReceiverOptions<unknown>, 'R', 'IpcReceiver', bodyLayout);
    this.schema = options?.schema;
  }

  /** @internal Turns a queued item into the message (or throws the error it stands for). */
  finish(item: ParsedItem): T {
    if (item instanceof Error) throw item;
    if (!this.schema) return decodeRecord<T>(item, this.core.limits);
    // A message the schema refuses releases the handles it carried.
    const revived: Array<{ close(): void }> = [];
    const value = decodeRecord<T>(item, this.core.limits, revived);
    const release = (e: unknown): never => {
      for (const o of revived) o.close();
      throw e;
    };
    try {
      const out = validate(this.schema, value);
      if (out instanceof Promise) return out.then((v) => closeUnreachable(revived, v), release) as T;
      return closeUnreachable(revived, out);
    } catch (e) {
      return release(e);
    }
  }

  /**
   * Changes this receiver's limits and schema (for messages not yet taken; packets already read
   * ahead were checked against the old byte and descriptor limits). A receiver that arrived in a
   * message starts with the limits of the one it came through and no schema: set them here.
   * Options left out keep their current value; `schema: undefined` removes the schema.
   */
  configure<U = T>(options: ReceiverOptions<U>): IpcReceiver<U> {
    assertThread(this.recvThread, `this ${this.core.what}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('configure(options) takes an object of receiver options');
    const next = resolveLimits({ ...this.core.limits, ...(options as ReceiverOptions<unknown>) });
    Object.assign(this.core.limits, next);
    if ('schema' in options) this.schema = options.schema as unknown as StandardSchemaV1<unknown, T> | undefined;
    return this as unknown as IpcReceiver<U>;
  }
}

/** Creates a typed channel: a sender and the receiver it sends to. */
export function channel<T>(options?: ReceiverOptions<T>): [IpcSender<T>, IpcReceiver<T>] {
  resolveLimits(options as ReceiverOptions<unknown>); // throws on bad options before anything is allocated
  let pair: [number, number];
  try {
    pair = transport().socketpair();
  } catch (e) {
    throw osError(e, 'socketpair');
  }
  return [new IpcSender<T>(pair[0]), new IpcReceiver<T>(pair[1], options)];
}

// ---------------------------------------------------------------------------------------------
// Bytes channel

function checkBytes(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError(`IpcBytesSender.send() takes a Uint8Array (or Buffer), got ${data === null ? 'null' : typeof data}`);
}

/** The sending end of a bytes channel: raw `Uint8Array`s, no serialization. */
export class IpcBytesSender extends SenderBase {
  /** @internal Use `bytesChannel()`. */
  constructor(fd: number) {
    super(fd, 'BS', 'IpcBytesSender');
  }

  /** Sends the bytes (copied when they cannot be written at once). */
  send(data: Uint8Array): void {
    this.ready();
    checkBytes(data);
    this.core.write([data], data.byteLength, []);
  }

  /** A second sender to the same receiver (a duplicated descriptor). */
  clone(): IpcBytesSender {
    return cloneOf((fd) => new IpcBytesSender(fd), this.cloneSource());
  }
}

/** The receiving end of a bytes channel. */
export class IpcBytesReceiver extends ReceiverBase<Uint8Array> {
  /** @internal Use `bytesChannel()`. */
  constructor(fd: number, options?: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>) {
    super(fd, { ...options, maxHandles: 1 }, 'BR', 'IpcBytesReceiver');
  }

  /** @internal */
  finish(item: ParsedItem): Uint8Array {
    return bytesOf(item);
  }

  /** Changes this receiver's limits, as `IpcReceiver.configure()` does. */
  configure(options: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>): this {
    assertThread(this.recvThread, `this ${this.core.what}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('configure(options) takes an object of receiver options');
    const { maxMessageBytes, maxQueue } = options;
    Object.assign(this.core.limits, resolveLimits({ ...this.core.limits, ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }), ...(maxQueue === undefined ? {} : { maxQueue }), maxHandles: 1 }));
    return this;
  }
}

function bytesOf(item: ParsedItem): Uint8Array {
  if (item instanceof Error) throw item;
  if (item.fds.length > 0) {
    closeFds(item.fds);
    throw malformed('a bytes-channel message carried descriptors');
  }
  const b = item.body;
  // A reassembled message owns its whole buffer; a batched one is copied out of the packet.
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

/** Creates a bytes channel: `send(Uint8Array)` / `recv()` -> `Uint8Array`, no serialization. */
export function bytesChannel(options?: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>): [IpcBytesSender, IpcBytesReceiver] {
  resolveLimits(options); // throws on bad options before anything is allocated
  let pair: [number, number];
  try {
    pair = transport().socketpair();
  } catch (e) {
    throw osError(e, 'socketpair');
  }
  return [new IpcBytesSender(pair[0]), new IpcBytesReceiver(pair[1], options)];
}

// ---------------------------------------------------------------------------------------------
// Handle kinds of this module

/** The descriptor of a channel endpoint must be a connected socket of this transport. */
const isSeqpacket = (info: Pick<FdInfo, 'kind' | 'listening' | 'domain'>): string | undefined => {
  const t = transport();
  if (info.kind !== t.socketKind) return `is a ${info.kind}, not a ${t.socketName}`;
  // A TCP socket is a SOCK_STREAM socket too: channels are AF_UNIX only.
  if (info.domain !== 'unix') return `is a ${info.domain === 'none' ? 'socket of no domain' : 'network socket'}, not an AF_UNIX ${t.socketName}`;
  return info.listening ? 'is a listening socket, not a connected one' : undefined;
};

/** A socket to read from: also connected, and with the options that install descriptors switched off. */
const isReadableSeqpacket = (info: FdInfo): string | undefined =>
  isSeqpacket(info) ?? (info.connected ? undefined : 'is a socket that is not connected');

/**
 * A receiver that arrives in a message gets the limits of the receiver it came through (a peer
 * must not be able to hand over a channel that accepts more than the one it used), and no schema:
 * set its own with `configure()`.
 */
function reviveReceiver<R extends IpcReceiver<unknown> | IpcBytesReceiver>(make: (limits: Limits) => R, fd: number, ctx: ReviveContext): R {
  // The reviver owns `fd` (decodeRecord marked it used): every way out but success closes it.
  const problem = neutralizeSocket(fd);
  if (problem) {
    closeFds([fd]);
    throw malformed(`a received receiver is ${problem}`);
  }
  const r = make({ ...ctx.limits });
  r.core.secrets = [...ctx.secrets];
  return r;
}

registerHandleKind('S', isSeqpacket, (fd) => new IpcSender(fd));
registerHandleKind('R', isReadableSeqpacket, (fd, _info, ctx) => reviveReceiver((limits) => new IpcReceiver(fd, limits), fd, ctx));
registerHandleKind('BS', isSeqpacket, (fd) => new IpcBytesSender(fd));
registerHandleKind('BR', isReadableSeqpacket, (fd, _info, ctx) => reviveReceiver((limits) => new IpcBytesReceiver(fd, limits), fd, ctx));

/** @internal for select() and the server: the core of a receiver. */
export function receiverCore(r: IpcReceiver<unknown> | IpcBytesReceiver): ReceiverCore {
  return r.core;
}

export type { ReceiverCore };
