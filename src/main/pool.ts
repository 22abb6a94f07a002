/**
 * IpcSharedMemoryPool: reusable shared memory segments for repeated big payloads.
 *
 * A segment is a memfd the pool keeps mapped (so refilling it costs a memcpy, not fresh pages)
 * plus, while it is out, a SOCK_SEQPACKET pair: the pool keeps one end; the other end, whose
 * receive queue holds the memfd, is what travels in messages. Whoever holds that end can take the
 * memfd from its queue (MSG_PEEK leaves it there for the next holder). When the last holder
 * closes it (or dies), the pool's end sees the hang-up and the segment is free again: no return
 * protocol, and a crashed receiver cannot leak a segment. (On Windows, where a pipe cannot peek
 * a handle, the section is attached to the travelling end instead: `shm.lendSegment`.)
 */
import { armDeadline } from '../shared/deadline.js';
import { IpcError } from '../shared/errors.js';
import { malformed } from './framing.js';
import { OwnedDescriptor, assertThread, checkTimeout, closedError, currentThreadId, kDetach, kHandle, osError, registerHandleKind, trackForGc, untrackForGc } from './handles.js';
import type { HandleInfo } from './handles.js';
import { POLL_READABLE, fdInfo, native } from './native.js';
import { transport } from './transport/index.js';
import type { FdInfo, NativePoller } from './native.js';
import { checkSharedMemory, countSharedMemory, sharedMemoryCopyMode, sharedMemoryIsZeroCopy } from './shm.js';

const ONE_BYTE = new Uint8Array(1);
const MAX_COUNT = 1024;

/** Options of {@link IpcSharedMemoryPool}. */
export interface SharedMemoryPoolOptions {
  /** Bytes per segment (a positive integer). */
  size: number;
  /** Most segments out at once; `acquire()` waits when all are out. Default 2. */
  count?: number;
}

/** Options of {@link IpcSharedMemoryPool.acquire}. */
export interface AcquireOptions {
  /** Reject with TIMEOUT after this many milliseconds. */
  timeout?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** @internal One segment's memfd and state. */
export interface Slot {
  /** The segment's memory, owned by the pool (and mapped writable by it). */
  fd: number;
  /** The descriptor of it that travels (the same, or a read-only one the pool also owns). */
  sendFd: number;
  /** The pool's writable mapping of it (zero-copy mode), kept for the pool's life. */
  base: ArrayBuffer | undefined;
  /** While out: the pool's end of the segment's socket pair, and its watch. */
  end: number;
  poller: NativePoller | undefined;
}

interface Waiter {
  resolve: (b: IpcSharedBuffer) => void;
  reject: (e: unknown) => void;
}

function checkOptions(options: SharedMemoryPoolOptions): { size: number; count: number } {
  if (typeof options !== 'object' || options === null) throw new TypeError('IpcSharedMemoryPool needs options: { size, count? }');
  const { size, count = 2 } = options;
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`size must be a positive integer number of bytes, got ${String(size)}`);
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw new RangeError(`count must be an integer from 1 to ${MAX_COUNT}, got ${String(count)}`);
  return { size, count };
}

/**
 * A pool of reusable shared memory segments of one size, for sending big payloads again and
 * again without allocating fresh memory each time (which costs page faults and zeroing: a new
 * 64 MiB `IpcSharedMemory` runs at ~2 GB/s here, a reused segment at memcpy speed).
 *
 * ```ts
 * const pool = new IpcSharedMemoryPool({ size: 64 << 20, count: 3 });
 * const buf = await pool.acquire();   // waits while all segments are out
 * buf.bytes.set(frame);               // contents start unspecified: write what you send
 * tx.send({ frame: buf });            // moves it: closed here, the receiver owns it
 * // receiver: const { frame } = await rx.recv(); use(frame.bytes); frame.close();
 * ```
 *
 * Unlike `IpcSharedMemory`, a segment is not sealed against writes (it could not be reused):
 * a receiver that does not trust the sender must copy what it validates, because a hostile
 * sender can keep writing into it. Every process that ever held a segment can keep a mapping of
 * it and see what is written into it later: use a pool for one peer, not across peers that must
 * not see each other's data.
 */
export class IpcSharedMemoryPool implements Disposable {
  /** Bytes per segment. */
  readonly size: number;
  /** Most segments out at once. */
  readonly count: number;
  private readonly slots: Slot[] = [];
  private readonly free: Slot[] = [];
  private waiters: Waiter[] = [];
  private isClosed = false;
  private readonly thread = currentThreadId;

  constructor(options: SharedMemoryPoolOptions) {
    const { size, count } = checkOptions(options);
    this.size = size;
    this.count = count;
    // A pool dropped without close(): its memfds are closed when it is collected. (While a
    // segment is out, the watch on it keeps the pool reachable.)
    const slots = this.slots;
    trackForGc(this, { fd: -1, release: () => slots.forEach((slot) => closeSlotFds(slot)) });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Segments that can be acquired now without waiting. */
  get available(): number {
    return this.isClosed ? 0 : this.free.length + (this.count - this.slots.length);
  }

  /** A free segment, or undefined when all `count` are out. Throws CLOSED after `close()`. */
  tryAcquire(): IpcSharedBuffer | undefined {
    assertThread(this.thread, 'this IpcSharedMemoryPool');
    if (this.isClosed) throw closedError('IpcSharedMemoryPool');
    const slot = this.free.pop() ?? (this.slots.length < this.count ? this.createSlot() : undefined);
    return slot && this.lend(slot);
  }

  /** A free segment, waiting for one to come back when all are out. */
  acquire(options: AcquireOptions = {}): Promise<IpcSharedBuffer> {
    const { signal } = options;
    let timeout: number | undefined;
    let now: IpcSharedBuffer | undefined;
    try {
      timeout = checkTimeout(options.timeout);
      now = this.tryAcquire();
    } catch (e) {
      return Promise.reject(e);
    }
    if (now) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<IpcSharedBuffer>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      const disarm = armDeadline(
        { timeout, signal, timeoutMessage: () => `no shared memory segment came back within ${timeout} ms (all ${this.count} are out)` },
        (reason) => w.reject(reason),
      );
      const drop = (): void => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        disarm();
      };
      w.resolve = (b) => (drop(), resolve(b));
      w.reject = (e) => (drop(), reject(e));
      this.waiters.push(w);
    });
  }

  /**
   * Stops lending. Free segments are released now, segments that are out once they come back;
   * pending `acquire()`s reject CLOSED. Receivers keep what they hold. Idempotent.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    untrackForGc(this);
    for (const slot of this.free.splice(0)) this.releaseSlot(slot);
    for (const w of [...this.waiters]) w.reject(closedError('IpcSharedMemoryPool'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private createSlot(): Slot {
    const n = native();
    let fd: number;
    let sendFd: number;
    try {
      // Size fixed for good: no holder can shrink it under another's mapping; writes stay possible.
      [fd, sendFd] = transport().shm.createSegment(this.size);
    } catch (e) {
      throw osError(e, `creating ${this.size} bytes of shared memory`);
    }
    const slot: Slot = { fd, sendFd, base: undefined, end: -1, poller: undefined };
    try {
      if (sharedMemoryIsZeroCopy()) slot.base = n.mapFd(fd, this.size, true, false, true);
    } catch (e) {
      n.close(fd);
      if (sendFd !== fd) n.close(sendFd);
      throw osError(e, 'mapping shared memory');
    }
    this.slots.push(slot);
    return slot;
  }

  /** Puts the slot's memfd into a fresh socket pair and hands out the travelling end. */
  private lend(slot: Slot): IpcSharedBuffer {
    const n = native();
    const t = transport();
    let pair: [number, number];
    try {
      pair = t.socketpair();
    } catch (e) {
      this.free.push(slot);
      throw osError(e, 'socketpair');
    }
    let r: number;
    try {
      // Windows: the segment is attached to the travelling end itself (transport/win32.ts).
      r = t.shm.lendSegment ? (t.shm.lendSegment(pair[1], slot.sendFd), 1) : t.send(pair[0], [ONE_BYTE], [slot.sendFd]);
    } catch (e) {
      this.free.push(slot);
      n.close(pair[0]);
      n.close(pair[1]);
      throw osError(e, 'queueing a shared memory segment');
    }
    if (r < 0) {
      n.close(pair[0]);
      n.close(pair[1]);
      this.free.push(slot);
      throw new IpcError('OS', 'queueing a shared memory segment: its fresh socket took no packet');
    }
    slot.end = pair[0];
    // The watch must not keep the process alive: a segment out in the world is not work pending.
    slot.poller = new n.Poller(slot.end, () => this.onEndEvent(slot));
    slot.poller.start(POLL_READABLE);
    slot.poller.unref();
    return new IpcSharedBuffer(pair[1], this.size, { pool: this, slot });
  }

  /** Something on the pool's end: bytes a holder wrote (dropped), or the last holder hung up. */
  private onEndEvent(slot: Slot): void {
    if (slot.end < 0) return;
    const n = native();
    // A holder may write into its end; drain and drop it (closing any descriptors) so that
    // readiness means hang-up.
    try {
      for (let i = 0; i < 64 && dropOne(slot.end); i++);
      if (n.peerHungUp(slot.end)) this.takeBack(slot);
    } catch {
      // Runs from the event loop, where a throw would be an uncaught exception. A segment that
      // cannot be watched any more is never lent again (someone may still hold it): the pool
      // lets it go and makes a new one when needed.
      slot.poller?.close();
      slot.poller = undefined;
      try {
        n.close(slot.end);
      } catch {
        // Already gone.
      }
      slot.end = -1;
      this.releaseSlot(slot);
      const w = this.waiters[0];
      if (w && !this.isClosed) {
        try {
          w.resolve(this.lend(this.createSlot()));
        } catch (e) {
          w.reject(e);
        }
      }
    }
  }

  /** @internal The segment is back (its last holder closed it): free, or released if closed. */
  takeBack(slot: Slot): void {
    if (slot.end < 0) return;
    slot.poller?.close();
    slot.poller = undefined;
    native().close(slot.end);
    slot.end = -1;
    if (this.isClosed) {
      this.releaseSlot(slot);
      return;
    }
    const w = this.waiters[0];
    if (w) {
      let buf: IpcSharedBuffer;
      try {
        buf = this.lend(slot);
      } catch (e) {
        w.reject(e);
        return;
      }
      w.resolve(buf);
    } else this.free.push(slot);
  }

  private releaseSlot(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    closeSlotFds(slot);
    // The mapping goes with the last reference to it (a segment may still view it).
    slot.base = undefined;
  }
}

const SCRATCH = new Uint8Array(4096);
const SCRATCH_FDS = new Int32Array(253);
const SCRATCH_META = new Int32Array(3);
const SCRATCH_BATCH = new Int32Array(6);

/**
 * Reads one packet from a pool end and drops it, closing its descriptors: false once there is
 * nothing more (drained, or end of file). Without the addon's Linux half (macOS) the end is a
 * stream socket, read frame by frame through the transport (a frame too big for SCRATCH puts it
 * out of step, which ends it: also fine for a drain).
 */
function dropOne(fd: number): boolean {
  const n = native();
  if (n.recvInto !== undefined) {
    const r = n.recvInto(fd, [SCRATCH], SCRATCH_FDS, SCRATCH_META);
    if (r < 0) return false; // EAGAIN: drained (meta is not written then)
    for (let j = 0; j < SCRATCH_META[0]!; j++) n.close(SCRATCH_FDS[j]!);
    return !(r === 0 && SCRATCH_META[2] === 1); // end of file
  }
  const r = transport().recv(fd, SCRATCH_BATCH, SCRATCH_FDS, 1, SCRATCH.length, SCRATCH, 0);
  if (r <= 0) return false; // AGAIN or end of file
  for (let j = 0; j < SCRATCH_BATCH[4]!; j++) n.close(SCRATCH_FDS[j]!);
  return true;
}
const kOwner = Symbol('electron-ipc-channel.segment');

/** How a sender-side segment reaches its memory: its pool's slot. */
interface Lent {
  pool: IpcSharedMemoryPool;
  slot: Slot;
}

/**
 * One segment of an {@link IpcSharedMemoryPool}. From `acquire()` it is writable (in Node a
 * zero-copy view of the pool's mapping; where external buffers are refused, as in Electron, a
 * staging copy written into the segment when it is sent). Sending it moves it: it is closed here
 * and its view detached (reads as empty). The receiver gets a view (zero-copy, private: its
 * stores stay in its own copy-on-write pages) or a copy; `close()` gives the segment back to the
 * pool once every holder closed it.
 */
export class IpcSharedBuffer extends OwnedDescriptor {
  /** Size in bytes. */
  readonly length: number;
  /** Received segments: this process's descriptor of the memfd (shared with the GC safety net). */
  private readonly mem: { fd: number };
  private lent: Lent | undefined;
  private view: Uint8Array | undefined;

  /** @internal Use `IpcSharedMemoryPool.acquire()`. The object owns `sock` (the segment's socket end). */
  constructor(sock: number, length: number, lent?: Lent, memfd = -1) {
    const mem = { fd: memfd };
    // The safety net must not reach this object (or it would never be collected).
    super(sock, () => mem.fd >= 0 && native().close(mem.fd));
    this.mem = mem;
    this.length = length;
    this.lent = lent;
  }

  /**
   * The segment's memory. From `acquire()`: writable, and what is in it when sent is what the
   * receiver sees (it starts with unspecified contents: write everything you send). Received: the contents, as a
   * view or a copy (see the class). The same array on every access until closed or sent.
   */
  get bytes(): Uint8Array {
    this.openFd('IpcSharedBuffer');
    if (!this.view) {
      const n = native();
      try {
        if (this.lent) {
          const base = this.lent.slot.base;
          const buffer = base ? n.aliasBuffer(base) : new ArrayBuffer(this.length);
          // The alias does not own the mapping: while any view of it is reachable, so is this
          // segment, and through it the pool's mapping (never unmapped under a live view).
          Object.defineProperty(buffer, kOwner, { value: this });
          this.view = new Uint8Array(buffer);
        } else {
          const shm = transport().shm;
          this.view = new Uint8Array(shm.mapsReceived ? n.mapFd(this.mem.fd, this.length, false, sharedMemoryCopyMode()) : shm.read(this.mem.fd, this.length));
        }
      } catch (e) {
        throw osError(e, 'mapping shared memory');
      }
    }
    return this.view;
  }

  /** Closes it here; the pool gets the segment back once every holder has. Idempotent. */
  override close(): void {
    if (this.closed) return;
    super.close();
    // Never sent: nobody else holds it, so the pool need not wait for the hang-up.
    if (this.lent) this.lent.pool.takeBack(this.lent.slot);
    this.lent = undefined;
  }

  /** @internal */
  [kHandle](): HandleInfo {
    return { kind: 'P', fd: this.ownedFd, move: true };
  }

  /** @internal Sending: a staging copy is written in, the view detached, the socket handed over. */
  [kDetach](): number {
    if (this.lent && !this.lent.slot.base && this.view) {
      native().pwrite(this.lent.slot.fd, this.view, 0);
    }
    this.lent = undefined;
    return this.detachFd();
  }

  /** The view is detached and the memfd duplicate closed (on close and on transfer). */
  protected override releaseOwned(): void {
    this.detachView();
    this.releaseMemfd();
  }

  private detachView(): void {
    if (!this.view) return;
    const buffer = this.view.buffer as ArrayBuffer;
    this.view = undefined;
    native().detachBuffer(buffer);
  }

  private releaseMemfd(): void {
    if (this.mem.fd < 0) return;
    native().close(this.mem.fd);
    this.mem.fd = -1;
  }
}

// A received segment: the reviver owns `sock` (decodeRecord marks it used before calling), so
// every way out of it but success closes both `sock` and the memfd duplicate it peeked.
registerHandleKind(
  'P',
  (info) => {
    const t = transport();
    if (info.kind !== t.socketKind) return `is a ${info.kind}, not a ${t.socketName}`;
    if (info.domain !== 'unix') return `is a network socket, not an AF_UNIX ${t.socketName}`;
    return info.listening ? 'is a listening socket' : undefined;
  },
  (sock, _info, ctx) => {
    const n = native();
    let memfd = -1;
    try {
      if (n.peekFd === undefined) {
        // macOS: MSG_PEEK returns SCM_RIGHTS unexternalized (XNU soreceive_ctl), so the segment's
        // memory cannot be looked at while it stays queued for the next holder.
        throw new IpcError('OS', `shared memory segments (IpcSharedBuffer) cannot be received on ${process.platform} yet: its kernel does not pass descriptors to MSG_PEEK`);
      }
      memfd = n.peekFd(sock);
      if (memfd < 0) throw malformed('a shared memory segment carries no memfd');
      // One fdInfo for the checks and the length: the size checked is the size mapped or copied.
      const info = fdInfo(memfd);
      const problem = checkSegment(memfd, info);
      if (problem) throw malformed(`a shared memory segment ${problem}`);
      checkSharedMemory(info.size, ctx, 'an IpcSharedBuffer (pool segment)');
      const buf = new IpcSharedBuffer(sock, info.size, undefined, memfd);
      countSharedMemory(info.size, ctx);
      return buf;
    } catch (e) {
      if (memfd >= 0) n.close(memfd);
      n.close(sock);
      throw e instanceof IpcError ? e : osError(e, 'taking a shared memory segment');
    }
  },
);

function checkSegment(fd: number, info: FdInfo): string | undefined {
  const problem = transport().shm.checkSegment(fd, info);
  return problem === undefined ? undefined : info.kind === 'memfd' || problem === 'empty' ? `is ${problem}` : `carries ${problem}`;
}

/** Releases the segment's descriptors (the travelling one too when it is another). */
function closeSlotFds(slot: Slot): void {
  if (slot.fd < 0) return;
  if (slot.sendFd !== slot.fd && slot.sendFd >= 0) native().close(slot.sendFd);
  native().close(slot.fd);
  slot.fd = -1;
  slot.sendFd = -1;
}
