/**
 * The writing half of a sender: one socket, an ordered queue, batching of small records,
 * fragments for big messages, and failure reporting. Clones of a sender share one core.
 */
import { randomBytes } from 'node:crypto';
import { IpcError } from '../../shared/errors.js';
import { trace, traceEnabled } from '../debug.js';
import {
  MAX_FRAGMENT_BYTES,
  MAX_PACKET_BYTES,
  NO_FDS,
  RecordBatcher,
  copyParts,
  fitsOnePacket,
  immediateRecordParts,
  planFragments,
  releasePacketBuffer,
  sliceParts,
} from '../framing.js';
import type { OutPacket } from '../framing.js';
import { IMMEDIATE_BODY, IMMEDIATE_SCRATCH, copyImmediate, inPlaceParts } from '../framing/send.js';
import { closedError, kDetach, kHandle, osError, trackForGc, untrackForGc } from '../handles.js';
import type { Disposer, HandleInfo, HandleSource } from '../handles.js';
import { POLL_WRITABLE, native } from '../native.js';
import type { NativePoller } from '../native.js';
import { AGAIN, GONE, transport } from '../transport/index.js';
import type { Transport } from '../transport/index.js';
import { attachPacket } from '../writers.js';
import { isOwnReceiver } from './socket-checks.js';
import { Pinnable, closeFds, drainLater, installExitFlush, newTick, thisTick, tick, waitingSenders } from './thread-state.js';

/**
 * A handle that reads sockets of its own (a receiver: its socket and its attached writers')
 * lists them with a method under this key, so that a sender refuses to carry it through its own
 * channel.
 */
export const kReadFds = Symbol('electron-ipc-channel.readFds');

/** The sockets a handle reads (a receiver's own and its attached writers'), else `[fd]`. */
function firstProblem(fds: number[], problemOf: (fd: number) => string | undefined): string | undefined {
  for (const fd of fds) {
    const p = problemOf(fd);
    if (p !== undefined) return p;
  }
  return undefined;
}

function readFdsOf(handle: HandleSource, fd: number): number[] {
  const readFds = (handle as { [kReadFds]?: () => number[] })[kReadFds];
  return typeof readFds === 'function' ? readFds.call(handle) : [fd];
}

const NO_INFOS: HandleInfo[] = [];
/** `moved` of one handle that stays with its object (read only). */
const NOT_MOVED: number[] = Object.freeze([-1]) as unknown as number[];

/** Closes the moved descriptors (those >= 0) of a write that is over. */
function closeMoved(moved: number[]): void {
  for (let i = 0; i < moved.length; i++) {
    if (moved[i]! >= 0) {
      closeFds(moved.filter((fd) => fd >= 0));
      return;
    }
  }
}
/** IOV_MAX: the most parts one sendPacket (sendmsg) takes. */
const MAX_SEND_PARTS = 1024;


interface Queued extends OutPacket {
  /** The queue owns these descriptors and closes them once the packet is written or dropped. */
  owned: boolean;
  /** Messages this packet completes (a batch: several; a fragment: 1 on the last, else 0). */
  messages: number;
}

/** The writing half: one socket, an ordered queue, batching of small records. */
export class SenderCore extends Pinnable {
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
    // A body encoded in place (encodeMessageInto): its own bytes of the scratch.
    if (parts[0] === IMMEDIATE_BODY) parts = inPlaceParts(bytes);
    if (this.closed) throw closedError(this.what);
    if (this.failure) throw this.failure;
    if (this.disconnected) throw disconnected(this.what);
    let infos = NO_INFOS;
    let moved = NO_FDS;
    let fds = NO_FDS;
    const n = handles.length;
    // One handle (the common case of a descriptor): its info and descriptor, no array unless
    // the message is queued or fragmented (made below).
    let info: HandleInfo | undefined;
    let one = -1;
    if (n === 1) {
      const h = handles[0]!;
      info = h[kHandle]();
      this.checkHandle(h, info);
      one = info.move ? h[kDetach]!() : info.fd;
    } else if (n > 1) {
      infos = handles.map((h) => h[kHandle]());
      for (let i = 0; i < n; i++) this.checkHandle(handles[i]!, infos[i]!);
      // Moved handles (receivers) are detached first: a receiver with messages already read
      // hands over a different socket than its own (see ReceiverCore.detachWithPending).
      moved = this.detachMoved(handles, infos);
      fds = infos.map((info, i) => (info.move ? moved[i]! : info.fd));
    }
    const single = fitsOnePacket(bytes, n);
    // Written as is (one iovec per part) only when sendmsg takes that many parts: a message with
    // hundreds of small binaries has more, and goes through the batcher, which copies.
    if (single && this.idle && this.sentAt !== thisTick() && parts.length + 2 <= MAX_SEND_PARTS) {
      const t = this.t;
      const movedOne = info !== undefined && info.move;
      let r: number;
      try {
        // A small packet is built in the thread's scratch, which a backend that binds it sends
        // with no typed array across Node-API.
        const copied = t.sendScratch !== undefined ? copyImmediate(parts, bytes, n) : 0;
        if (copied > 0) r = t.sendScratch!(this.fd, IMMEDIATE_SCRATCH, copied, n === 1 ? one : n > 0 ? fds : null);
        else {
          const iov = immediateRecordParts(parts, bytes, n);
          // One descriptor travels as a number where the backend takes one (no array across Node-API).
          r = n === 1 ? (t.sendOne !== undefined ? t.sendOne(this.fd, iov, one) : t.send(this.fd, iov, [one])) : t.send(this.fd, iov, n > 0 ? fds : null);
        }
      } catch (e) {
        // Nothing was written; this sender stays usable (a message without descriptors may pass).
        if (movedOne) closeFds([one]);
        else closeMoved(moved);
        throw osError(e, 'sendmsg');
      }
      if (r >= 0) {
        this.sentAt = tick();
        if (movedOne) closeFds([one]);
        else if (n > 1) closeMoved(moved);
        // A backend that took the packet in part finishes it from drain().
        if (t.hasPending?.(this.fd)) this.schedule();
        return;
      }
      if (r === GONE) {
        if (movedOne) closeFds([one]);
        else closeMoved(moved);
        this.setDisconnected();
        throw disconnected(this.what);
      }
      // AGAIN (full) or TOO_BIG (smaller socket buffer than our packet): queued below.
    }
    if (info !== undefined) {
      // One handle that could not be written at once: the arrays the queue and fragments take.
      infos = [info];
      if (info.move) {
        moved = [one];
        fds = moved;
      } else {
        moved = NOT_MOVED;
        fds = [one];
      }
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
   * Throws when handle `h` (whose info is `info`) cannot be sent now: closed, a receiver sent
   * through its own channel, or a receiver whose sockets are not between messages.
   */
  private checkHandle(h: HandleSource, info: HandleInfo): void {
    if (info.fd < 0) throw new IpcError('CLOSED', `cannot send a closed ${h.constructor.name}`);
    // A moved sender (singleWriter transports) travels on a new socket of its own: no check.
    if (!info.move || isSenderKind(info.kind)) return;
    if (readFdsOf(h, info.fd).some((fd) => isOwnReceiver(this.fd, fd))) {
      throw new TypeError(`a receiver cannot be sent through its own channel (it would be lost): this ${this.what} writes to the ${h.constructor.name} it was asked to send`);
    }
    // Every socket the receiver reads must be between messages (an attached sender's too).
    const problem = firstProblem(readFdsOf(h, info.fd), (fd) => this.t.moveProblem?.(fd, this.fd));
    if (problem) throw new IpcError('OS', `this ${h.constructor.name} cannot be moved now: ${problem}`);
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
   * Where the unsent rest of a big message is copied: up to SPILL_KEEP buffers, reused while
   * the queue holds them and kept a second after it empties (fresh memory costs a page fault
   * per 4 KiB inside the copy, as much as the copy itself). `spillsUsed` of them hold queued
   * bytes; all are free again once the queue is empty.
   */
  private spills: Uint8Array[] = [];
  private spillsUsed = 0;
  private spillTimer: ReturnType<typeof setTimeout> | undefined;

  private spillCopy(parts: Uint8Array[], offset: number, n: number): Uint8Array {
    if (n < SPILL_MIN_BYTES || this.spillsUsed >= SPILL_KEEP) return copyParts(parts, offset, n);
    const k = this.spillsUsed;
    let spill = this.spills[k];
    if (spill === undefined || spill.byteLength < n) {
      spill = new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
      this.spills[k] = spill;
    }
    this.spillsUsed = k + 1;
    const out = spill.subarray(0, n);
    let at = 0;
    for (const v of sliceParts(parts, offset, n)) {
      out.set(v, at);
      at += v.byteLength;
    }
    return out;
  }

  /** The queue is empty: the spill buffers are free again, and released if not reused soon. */
  private releaseSpill(): void {
    if (this.spillsUsed === 0) return;
    this.spillsUsed = 0;
    clearTimeout(this.spillTimer);
    this.spillTimer = setTimeout(() => {
      if (this.spillsUsed === 0) this.spills = [];
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

  /**
   * Bytes accepted by send() and not yet handed to the kernel: queued packets and the batch being
   * filled (framing included). The stream backend's rest of a packet the socket took in part (at
   * most one packet) is not counted.
   */
  get queuedBytes(): number {
    let n = this.batcher.bytes;
    for (const p of this.queue) for (const part of p.parts) n += part.byteLength;
    return n;
  }

  /** Messages accepted by send() and not yet written. */
  get queuedMessages(): number {
    let n = this.batchMessages;
    for (const p of this.queue) n += p.messages;
    return n;
  }

  /**
   * Output waits: a partial batch is written at the end of this turn of the event loop (with
   * the rest of the tick's sends), anything more (a full batch, fragments) in a microtask.
   */
  private schedule(): void {
    this.pin(true);
    waitingSenders.add(this);
    installExitFlush();
    if (this.queue.length === 0 && !this.t.hasPending?.(this.fd)) {
      if (!this.laterScheduled) {
        this.laterScheduled = true;
        drainLater(this);
      }
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.drain();
      });
    }
  }

  private laterScheduled = false;
  /** @internal The end of the turn (see drainLater in thread-state.ts). */
  drainLater(): void {
    this.laterScheduled = false;
    this.drain();
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
    if (this.flushWaiters.length > 0) {
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const w of waiters) w.resolve();
    }
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
      if (!this.poller)
        this.poller = new (native().Poller)(this.fd, () => {
          newTick();
          this.drain();
        });
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
    if (traceEnabled()) {
      const errno = err.errno === undefined ? '' : `, ${err.syscall ?? 'sendmsg'} errno ${err.errno}`;
      trace('channel', '%s on fd %d stopped sending (%s%s): %d queued message(s) dropped', this.what, this.fd, err.code, errno, this.queuedMessages);
    }
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
export function isSenderKind(kind: string): boolean {
  return kind === 'S' || kind === 'BS';
}

/** sendQueued's result when the backend threw (the error is in lastSendError). */
const SEND_FAILED = -100;

function tooBigError(): IpcError {
  return new IpcError('OS', 'sendmsg: EMSGSIZE (the socket takes no packet this big: its buffer is smaller than this library\'s packets)', { syscall: 'sendmsg' });
}

function disconnected(what: string): IpcError {
  return new IpcError('DISCONNECTED', `the receiving end of this ${what} is closed`);
}
/** Socket send buffer asked for once a sender writes big messages (the kernel caps it). */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
/** The rest of a message at least this big is copied into one of the sender's reusable spill buffers. */
const SPILL_MIN_BYTES = 1024 * 1024;
/**
 * Spill buffers a sender reuses (a writer that waits for flush() every few big messages has
 * that many queued); the rest of a message queued beyond them is copied into fresh memory.
 */
const SPILL_KEEP = 4;
