/**
 * Backend 3, Windows: overlapped message-mode named pipes (src/native/win/, docs/windows.md).
 * The system keeps message boundaries, like `SOCK_SEQPACKET`; the addon adds a header with the
 * handles of each message (taken by the receiving process with `DuplicateHandle`) and checks it.
 *
 * Ends, listeners and files are small integers as descriptors are on POSIX (ends from
 * `ID_BASE` up, node.exe's C runtime descriptors below), and the Windows addon offers the
 * descriptor calls of {@link NativeBinding} the typed layer makes (`close`, `dup`, `fdInfo`,
 * `waitFds`, `peerHungUp`...). Readiness, which libuv cannot give for pipes (uv_poll watches
 * sockets only on Windows), comes from the addon's `watch` (an event per operation, waited for
 * by the thread pool) behind the same `Poller` shape, built here by {@link win32Native}.
 *
 * Shared memory: immutable blocks (`IpcSharedMemory`) are pagefile-backed sections, kept and sent
 * as read-only duplicates and always read by copy. Pool segments (`IpcSharedBuffer`) are sections
 * the pool keeps writable, lent as a lease: a pipe end carrying a read-only duplicate of the
 * section (src/native/win/lease.cc); the pool's end of the pair sees the hang-up when every
 * holder closed the lease, as on Linux.
 */
import path from 'node:path';
import type { FdInfo, NativeBinding, NativePoller, NativeWindowsLockdownResult, PeerCredentials, RecvPackets } from '../native.js';
import { AGAIN } from './types.js';
import type { SharedMemoryBackend, Transport } from './types.js';

/** The Windows addon's exports (src/native/win/module.cc). */
export interface NativeWin32 {
  readonly platform: 'win32';
  /** First id of a table entry; smaller numbers are node.exe's C runtime descriptors. */
  readonly ID_BASE: number;
  /**
   * carrierOf: the id of a receiver's end that moveProblem(id, via) saw move to another process:
   * the first (server) end of the pair then never sends handles by token (End::remoteOnly).
   */
  socketpair(carrierOf?: number): [number, number];
  close(id: number): void;
  dup(id: number): number;
  fdInfo(id: number, out?: Float64Array): undefined | FdInfo;
  peerHungUp(id: number): boolean;
  /** Cancels the read in flight; via: the end it is sent through (notes whether the move leaves the process). */
  moveProblem(id: number, via?: number): string | undefined;
  /**
   * Called from this thread's 'exit' event, before the exit flush: pipe ends closed from then on
   * stay open for the addon's exit wait while handles parked through them are not taken.
   */
  atExit(): void;
  /** Whether two ends are the two ends of one pipe; null when the system cannot tell (multi-instance names). */
  isSocketPeer(a: number, b: number): boolean | null;
  /** GetProcessHandleCount of this process. */
  handleCount(): number;
  openCount(): number;
  stats(): { open: number; localTokens: number };
  setBlocking(id: number, blocking: boolean): void;
  shutdownWrite(id: number): void;
  setBufferSizes(id: number, snd: number, rcv: number): [number, number];
  sendPacket(id: number, parts: Uint8Array[], handles: number[] | null): number;
  /** 0 when the last accepted message is written, AGAIN while its overlapped write is in flight, GONE. */
  writePending(id: number): number;
  recvPackets: RecvPackets;
  /** callback(id, bits) on the JS thread when a watched end became ready (bit 1 readable, 2 writable). */
  init(callback: (id: number, bits: number) => void): void;
  watch(id: number, bits: number): void;
  ref(delta: number): void;
  waitFds(readIds: number | Int32Array, writeIds: Int32Array | null, timeoutMs: number): number;
  listen(pipeName: string): number;
  accept(id: number): number;
  connect(pipeName: string): number;
  peerCredentials(id: number): PeerCredentials;
  /** The DACL of a listener as SDDL, and the one expected (the current user only). */
  pipeSecurity(id: number): { dacl: string; expected: string };
  /** A new writable section of `size` bytes (after a 16-byte header with the exact length). */
  sectionCreate(size: number): number;
  /** A read-only duplicate of a section (map for reading and query only). */
  sectionReadOnly(id: number): number;
  sectionWrite(id: number, bytes: Uint8Array, offset: number): void;
  /** A copy of the first `length` bytes. */
  sectionRead(id: number, length: number): ArrayBuffer;
  /** Whether the handle allows a writable view. */
  sectionWritable(id: number): boolean;
  /** Attaches a duplicate of a section to a pipe end: the end becomes a pool segment's lease. */
  segmentAttach(endId: number, sectionId: number): void;
  /** A new section id for the segment a lease end carries (the caller owns it), or -1 if none. */
  segmentSection(endId: number): number;
  /** Detaches an ArrayBuffer (its views read as empty). */
  detachBuffer(buffer: ArrayBuffer): void;
  /** lockdown() on Windows (src/native/win/lockdown.cc). */
  windowsLockdown(): NativeWindowsLockdownResult;
}

/** Whether a loaded addon is the Windows one. */
export function isWin32Addon(addon: unknown): addon is NativeWin32 {
  return typeof addon === 'object' && addon !== null && (addon as { platform?: unknown }).platform === 'win32';
}

function unsupported(what: string): never {
  throw Object.assign(new Error(`electron-ipc-channel: ${what} is not implemented on Windows yet (issue 13)`), { code: 'ENOTSUP' });
}

/**
 * The {@link NativeBinding} the typed layer uses, over the Windows addon: its calls pass through,
 * `Poller` is built on `watch`; `peekFd` gives the section a pool segment's lease carries; the
 * calls of zero-copy memory (writable mappings, external buffers) throw ENOTSUP, never reached
 * since `externalBuffersAllowed()` is false (memory is copied in and out).
 */
export function win32Native(w: NativeWin32): NativeBinding {
  const pollers = new Map<number, WinPoller>();
  w.init((id, bits) => pollers.get(id)?.fire(bits));

  /** A Poller over watch(): edge-triggered in the addon, re-armed by every AGAIN. */
  class WinPoller implements NativePoller {
    private events = 0;
    private refed = true;
    private counted = false;
    constructor(
      private readonly id: number,
      private readonly callback: (status: number, events: number) => void,
    ) {}
    start(events: number): void {
      if (events === 0) return this.stop();
      this.events = events;
      pollers.set(this.id, this);
      w.watch(this.id, events);
      this.count();
    }
    stop(): void {
      if (this.events === 0) return;
      this.events = 0;
      if (pollers.get(this.id) === this) pollers.delete(this.id);
      try {
        w.watch(this.id, 0);
      } catch {
        // Closed already: nothing is watched.
      }
      this.count();
    }
    ref(): void {
      this.refed = true;
      this.count();
    }
    unref(): void {
      this.refed = false;
      this.count();
    }
    close(): void {
      this.stop();
    }
    fire(bits: number): void {
      if (this.events & bits) this.callback(0, bits & this.events);
    }
    /** Keeps the event loop alive while started and ref'd, as a uv_poll handle does. */
    private count(): void {
      const want = this.events !== 0 && this.refed;
      if (want === this.counted) return;
      this.counted = want;
      w.ref(want ? 1 : -1);
    }
  }

  return {
    socketpair: () => w.socketpair(),
    close: (id) => w.close(id),
    pendingCloses: () => 0,
    dup: (id) => w.dup(id),
    adopt: () => undefined,
    fdInfo: ((id: number, out?: Float64Array) => w.fdInfo(id, out)) as NativeBinding['fdInfo'],
    openCount: () => w.openCount(),
    setBufferSizes: (id, snd, rcv) => w.setBufferSizes(id, snd, rcv),
    peerHungUp: (id) => w.peerHungUp(id),
    isSocketPeer: (a, b) => w.isSocketPeer(a, b),
    shutdownWrite: (id) => w.shutdownWrite(id),
    setBlocking: (id, b) => w.setBlocking(id, b),
    waitFds: (r, wr, t) => w.waitFds(r, wr, t),
    peekFd: (id) => w.segmentSection(id),
    pwrite: (id, bytes, offset) => w.sectionWrite(id, bytes, offset),
    // Received memory is read by copy (mapsReceived is false); a writable mapping is the pool's.
    mapFd: (id, length, writable) => (writable ? unsupported('a writable mapping of shared memory') : w.sectionRead(id, length)),
    detachBuffer: (b) => w.detachBuffer(b),
    aliasBuffer: () => unsupported('shared memory'),
    externalBuffersAllowed: () => false,
    windowsLockdown: () => w.windowsLockdown(),
    Poller: WinPoller,
    get stream(): never {
      return unsupported('the stream transport');
    },
  };
}

/**
 * Sections: a block is filled through a writable section whose handle is closed once a read-only
 * duplicate exists, so nobody can change it after; a received block must not allow a writable
 * view. A pool segment is a section the pool keeps writable (written with `pwrite` when a buffer
 * is sent) and lends read-only, attached to the lease end (`lendSegment`); a received segment
 * must be a non-empty section of ours (pagefile-backed, our header: checked by the addon when it
 * arrives). The size of a section is fixed, but received memory is copied all the same (the
 * typed layer's copy path): no external buffers.
 */
function sectionSharedMemory(w: NativeWin32): SharedMemoryBackend {
  return {
    createBlock(length, fill) {
      const rw = w.sectionCreate(length);
      try {
        fill(rw);
        return w.sectionReadOnly(rw);
      } finally {
        w.close(rw);
      }
    },
    checkBlock(fd, info) {
      if (info.kind !== 'section') return `a ${info.kind}, not a shared memory section`;
      if (w.sectionWritable(fd)) return 'a section open for writing (an immutable block travels read-only)';
      return undefined;
    },
    createSegment(size) {
      const rw = w.sectionCreate(size);
      try {
        return [rw, w.sectionReadOnly(rw)];
      } catch (e) {
        w.close(rw);
        throw e;
      }
    },
    checkSegment(_fd, info) {
      if (info.kind !== 'section') return `a ${info.kind}, not a shared memory section`;
      if (info.size <= 0) return 'empty';
      return undefined;
    },
    lendSegment: (end, send) => w.segmentAttach(end, send),
    mapsReceived: false,
    read: (fd, length) => w.sectionRead(fd, length),
  };
}

/**
 * The pipe name of a one-shot server "path" (server.ts names servers `<fresh private dir>/s`,
 * the directory with 128 random bits): `\\.\pipe\electron-ipc-channel-<dir name>-<file name>`.
 * A name that is a pipe name already is kept.
 */
export function pipeNameOf(name: string): string {
  if (name.startsWith('\\\\.\\pipe\\')) return name;
  const p = path.win32;
  return `\\\\.\\pipe\\electron-ipc-channel-${p.basename(p.dirname(name))}-${p.basename(name)}`;
}

/** The win32 backend over the Windows addon. */
export function win32Transport(w: NativeWin32): Transport {
  // Registered before the typed layer's exit flush (installed with the first queued write, after
  // the transport exists), so it runs first: the ends that flush closes keep their pipe for the
  // addon's exit wait, which then sees whether their reader still lives (docs/windows.md).
  process.on('exit', () => w.atExit());
  return {
    name: 'win32',
    socketKind: 'message-pipe',
    socketName: 'message-mode named pipe',
    scatterReads: false,
    readsAhead: true,
    shm: sectionSharedMemory(w),
    socketpair: (carrierOf) => w.socketpair(carrierOf),
    send: (fd, parts, fds) => w.sendPacket(fd, parts, fds),
    // An accepted message may still be in flight (an overlapped WriteFile on a full pipe): the
    // sender stays busy until it completes, so that process exit waits for it (a write pending
    // when the process ends is cancelled by the system, and its message lost).
    flushPending: (fd) => w.writePending(fd),
    hasPending: (fd) => w.writePending(fd) === AGAIN,
    recv: (fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block) =>
      w.recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block),
    recvInto: () => {
      throw new Error('the win32 transport has no scatter reads (scatterReads is false)');
    },
    moveProblem: (fd, via) => w.moveProblem(fd, via),
    listen: (name) => w.listen(pipeNameOf(name)),
    accept: (fd) => w.accept(fd),
    connect: (name) => w.connect(pipeNameOf(name)),
    peerCredentials: (fd) => w.peerCredentials(fd),
  };
}
