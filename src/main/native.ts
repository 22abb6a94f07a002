/**
 * The native surface (src/native/*.cc), declared once, and its loader.
 *
 * The native layer moves bytes and descriptors; it knows no message types. Every descriptor it
 * returns is close-on-exec and non-blocking, and is registered in a per-environment table that
 * closes whatever is still open when the environment (main thread or worker) is torn down.
 * Descriptors are plain numbers here: the TypeScript layer gives each one exactly one owner.
 *
 * Errors: functions throw an `Error` with `code` (e.g. 'EBADF'), `errno` (positive) and `syscall`
 * for OS failures, except where a negative errno return is documented (the expected, frequent
 * outcomes of non-blocking calls).
 */
import { loadAddon } from './locate-addon.js';
import { isWin32Addon, win32Native } from './transport/win32.js';

/** Negated errno values that native calls return instead of throwing. */
export const EAGAIN = -11;
export const EPIPE = -32;
export const ECONNRESET = -104;
export const EMSGSIZE = -90;
export const ENOBUFS = -105;

/** Flags of one received packet, see {@link NativeBinding.recvPackets}. */
export const PACKET_TRUNCATED = 1; // MSG_TRUNC: the packet was larger than the buffer
export const PACKET_CTRUNCATED = 2; // MSG_CTRUNC: descriptors were dropped by the kernel
/**
 * Stream transport only: the stream went out of step (see {@link NativeStream.recvPackets}). The
 * packet's bytes are not the peer's: they are the addon's UTF-8 account of what happened, for the
 * MALFORMED error; end of file follows. PACKET_TRUNCATED is set with it, so that a reader that
 * knows only the seqpacket flags refuses the packet all the same.
 */
export const PACKET_DESYNC = 4;

/** uv_poll event bits. */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;

/**
 * What kind of object a descriptor refers to (from statx/getsockopt/getpeername/fcntl). Finding
 * out never waits on another process: statx runs with AT_STATX_DONT_SYNC, so a FUSE or NFS file
 * is described from the kernel's cache (its size may then be stale).
 */
/**
 * Reads up to `maxPackets` whole packets into `arena` from `arenaOffset` (the same shape for the
 * seqpacket and the stream call; each documents its own meta layout and blocking rules).
 */
export type RecvPackets = (
  fd: number,
  meta: Int32Array,
  fdsOut: Int32Array,
  maxPackets: number,
  maxPacketBytes: number,
  arena: Uint8Array,
  arenaOffset: number,
  block?: boolean,
) => number;

export interface FdInfo {
  /** 'message-pipe', 'section': a Windows message-mode named pipe end, a shared memory section (the win32 transport). */
  kind: 'seqpacket' | 'stream-socket' | 'dgram-socket' | 'socket' | 'memfd' | 'file' | 'pipe' | 'dir' | 'other' | 'message-pipe' | 'section';
  /** File size for files and memfds. */
  size: number;
  /** F_GET_SEALS bits for memfds (F_SEAL_SEAL=1, SHRINK=2, GROW=4, WRITE=8, FUTURE_WRITE=16), else 0. */
  seals: number;
  /** True when the descriptor is a listening socket (SO_ACCEPTCONN). */
  listening: boolean;
  /**
   * True when the descriptor is a socket with a peer (getpeername succeeds). An AF_UNIX socket
   * keeps its peer after that peer closed, so this is "was connected", not "peer still there".
   */
  connected: boolean;
  /** The socket's address family: 'unix' (AF_UNIX), 'other', or 'none' when not a socket. */
  domain: 'unix' | 'other' | 'none';
}

/** Credentials of the peer of a connected Unix socket (SO_PEERCRED). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * A libuv poll handle on one descriptor, driven by the JS thread's event loop.
 * The callback runs on the JS thread with (status, events): status is 0 or a negative errno.
 * An active poller keeps the event loop alive unless `unref()` was called.
 */
export interface NativePoller {
  /** Starts or changes the watched events (POLL_* bits); 0 is the same as stop(). */
  start(events: number): void;
  stop(): void;
  ref(): void;
  unref(): void;
  /** Stops and releases the handle. Idempotent. Does not close the descriptor. */
  close(): void;
}

export interface NativePollerConstructor {
  /**
   * Watches `fd`. With `cell` (the Linux addon; others ignore it): when `cell[0]` (maxPackets, 1
   * to 256) is above 0 at a readiness event with status >= 0, the poller first reads the socket as
   * `recvBound(fd, cell[0])` would (see {@link NativeBinding.bindRecv}) and passes what that
   * returned as `read` (the count, 0 at end of file, or a negated errno: EAGAIN or an error, never
   * thrown). `read` is undefined when it did not read (cell[0] was 0, nothing is bound, or the
   * arena has no room for a packet at its offset). The cell is read at every event, so the caller
   * switches reading on and off by writing `cell[0]`.
   */
  new (fd: number, callback: (status: number, events: number, read?: number) => void, cell?: Int32Array): NativePoller;
}

/** Result of Landlock/no_new_privs setup, see lockdown() in src/main/lockdown.ts. */
export interface NativeLandlockResult {
  abi: number;
  handledAccessFs: number;
  handledAccessNet: number;
  scoped: number;
  /** Threads restricted (-1 when LANDLOCK_RESTRICT_SELF_TSYNC did it in one call). */
  threads?: number;
  /** Threads that could not be reached (they block every signal). */
  unrestrictedThreads?: number;
  threadError?: string;
}

/** What the Windows addon's `windowsLockdown()` applied, each item as the system reads it back. */
export interface NativeWindowsLockdownResult {
  /** This process is in the new job. */
  job: boolean;
  /** SetInformationJobObject accepted the limits. */
  jobLimitsSet: boolean;
  /** The job's limit of one active process (no child processes) reads back. */
  jobLimits: boolean;
  /** The job's UI restrictions were accepted. */
  jobUi: boolean;
  jobError?: string;
  extensionPointsSet: boolean;
  /** Legacy extension points are disabled (GetProcessMitigationPolicy says so). */
  extensionPoints: boolean;
  imageLoadSet: boolean;
  /** Remote and low-label images are refused (read back). */
  imageLoad: boolean;
}

/**
 * The POSIX stream transport's native half (src/native/stream.cc): AF_UNIX `SOCK_STREAM` with
 * explicit framing, portable to macOS. A frame is an 8-byte header { u32 LE payloadBytes, u32 LE
 * fdCount } then the payload; the descriptors (at most 253) ride as SCM_RIGHTS on the sendmsg
 * whose data begins with the header. The addon keeps, per descriptor and only while needed, the
 * unwritten rest of at most one accepted frame and at most one partially read frame (with its
 * descriptors, in no table until delivered). That state is dropped when the descriptor is closed
 * through the addon, when its number is registered anew, and at environment teardown. A
 * descriptor duplicated (`dup`) or sent elsewhere does not take the state with it: check
 * {@link hasPending} / {@link hasPartial} before giving a socket away. Negative results are
 * this platform's errno values, negated: compare them with {@link errno}.
 */
export interface NativeStream {
  /** socketpair(AF_UNIX, SOCK_STREAM): close-on-exec, non-blocking, registered. */
  socketpair(): [number, number];
  /**
   * Frames the concatenation of `parts` (any typed arrays, at most 1023) with `fds` (at most 253,
   * else RangeError) and writes it without blocking. Returns the payload length when the frame is
   * accepted: written whole, or its first byte and the descriptors written and the rest copied
   * into the addon (flushPending or the next sendPacket writes it; at most one such frame per
   * descriptor; one descriptor may be passed as a plain number). Returns errno.EAGAIN when nothing was accepted (the socket is full, or an earlier
   * frame's rest could not be finished first), errno.EMSGSIZE for a payload over
   * {@link maxPayloadBytes} (nothing written), errno.EPIPE / errno.ECONNRESET when the peer is
   * gone, errno.ENOBUFS (kernel memory short; as EAGAIN). Throws any other errno as an Error with
   * `code` (e.g. 'EPERM', 'ETOOMANYREFS'), `errno` and `syscall` 'sendmsg'.
   */
  sendPacket(fd: number, parts: ArrayBufferView[], fds: number[] | number | null): number;
  /**
   * Writes the rest of an accepted frame: 0 when nothing is left (also when there was none),
   * errno.EAGAIN (or errno.ENOBUFS) when some remains, errno.EPIPE / errno.ECONNRESET when the
   * peer is gone (the rest is dropped). Throws other errnos like sendPacket ('send').
   */
  flushPending(fd: number): number;
  /** True while an accepted frame is not all written (see flushPending). */
  hasPending(fd: number): boolean;
  /**
   * Reads whole frames: the contract of {@link NativeBinding.recvPackets}' arena mode (meta layout,
   * 8-aligned offsets into `arena`, descriptors registered and close-on-exec into `fdsOut`, a
   * frame whose descriptors do not fit stops the batch or, first, throws RangeError; returns the
   * count n > 0, 0 at end of file, or errno.EAGAIN). A frame not yet complete stays in the addon
   * and errno.EAGAIN is returned until it is. End of file in the middle of a frame drops it
   * (descriptors closed). A stream out of step (descriptors with any read but a header's first
   * bytes, a header whose fdCount differs from the descriptors that came with it, truncated
   * control data, a payload over `maxPacketBytes`) closes every descriptor involved and reports
   * one last packet flagged {@link PACKET_DESYNC} (and PACKET_TRUNCATED) whose bytes (at most
   * `maxPacketBytes`) say what happened ("the stream socket is out of step: a frame header
   * announces 2 descriptor(s) but 0 arrived with it (descriptor count mismatch); ..."), with
   * meta[1] = 1, then end of file (0) on every later call. With `block`, reads until the first
   * frame is whole go without MSG_DONTWAIT (they wait when the file is in blocking mode, see
   * setBlocking).
   */
  recvPackets: RecvPackets;
  /**
   * True while part of a frame has been read from `fd` and is held by the addon: moving the
   * socket to another process now would lose it.
   */
  hasPartial(fd: number): boolean;
  /** A SOCK_STREAM Unix socket bound to `path` and listening (backlog 1), non-blocking. */
  listen(path: string): number;
  /** The next connection (close-on-exec, non-blocking, registered), or errno.EAGAIN. */
  accept(fd: number): number;
  /** A SOCK_STREAM socket connected to `path` (blocking connect, then made non-blocking). */
  connect(path: string): number;
  /** SO_PEERCRED on Linux; getpeereid() and LOCAL_PEERPID on macOS. */
  peerCredentials(fd: number): PeerCredentials;
  /**
   * A new POSIX shared memory object of `size` bytes (shm_open of a random name, opened a second
   * time read-only, then unlinked): [rwFd, roFd], close-on-exec and registered. Fill it through
   * rwFd (pwrite on Linux; on macOS such objects refuse read/write and must be mapped), send roFd
   * for immutable blocks. Without seals the holder of rwFd can still change or truncate it: see
   * readAll.
   */
  shmCreate(size: number): [number, number];
  /**
   * The first `length` bytes of a shared memory object, copied into a new ArrayBuffer (receivers
   * copy instead of mapping: a mapping of a file its other holder truncates faults with SIGBUS).
   * Throws an Error with code 'ETRUNCATED' ("shared memory shorter than announced") when the object
   * is shorter than `length`, code 'EINVAL' when the descriptor is not shared memory (Linux: not
   * tmpfs/memfd/hugetlbfs, so a FUSE or NFS file cannot make it wait; macOS: not a POSIX shared
   * memory object), RangeError over 4 GiB or beyond what the runtime can allocate.
   */
  readAll(fd: number, length: number): ArrayBuffer;
  /** The access mode of the descriptor's open file (fcntl F_GETFL & O_ACCMODE). */
  accessMode(fd: number): 'r' | 'w' | 'rw';
  /**
   * What this environment's framing state holds: descriptors with state, bytes buffered (write
   * rests and partial payloads), descriptors held by partial frames. For tests and diagnostics.
   */
  stats(): { states: number; bytes: number; fds: number };
  /** This platform's errno values, negated as the functions above return them. */
  readonly errno: { readonly EAGAIN: number; readonly EPIPE: number; readonly ECONNRESET: number; readonly EMSGSIZE: number; readonly ENOBUFS: number };
  /** Size of a frame header (8). */
  readonly headerBytes: number;
  /**
   * The largest payload sendPacket frames: 1 MiB + 64 KiB, the typed layer's largest packet
   * (MAX_FRAGMENT_BYTES, header included) and the most a receiver reads (MAX_RECV_PACKET_BYTES).
   */
  readonly maxPayloadBytes: number;
}

/**
 * The addon's exports. Members marked `?` are Linux only (src/native/seqpacket.cc, landlock.cc,
 * the memfd half of shm.cc: SOCK_SEQPACKET, memfd seals, Landlock, SO_PEERCRED) and absent from
 * the macOS build, so TypeScript makes every caller handle their absence: check for the member,
 * or take {@link linuxNative} where only the Linux backend can be running. `isSocketPeer` is
 * optional for the same reason. Everything else exists on every supported system.
 */
export interface NativeBinding {
  // ---- descriptors
  /** socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK). */
  socketpair?(): [number, number];
  /**
   * Closes a descriptor of this environment's table (EBADF when the table does not hold it) and
   * removes it from the table at once. Never blocks: AF_UNIX sockets with nothing queued, pipes,
   * shared memory and anonymous inodes (eventfd, pidfd...) are closed here; anything else (a TCP
   * socket that may linger, a FUSE/NFS file that flushes to its server, a tty, a device) is
   * handed to the process-wide closer thread, and its number stays in use until it is really
   * closed (see pendingCloses). EINTR is not an error; errors of a deferred close are not seen.
   */
  close(fd: number): void;
  /** Descriptors handed to the closer thread (by any environment) and not closed yet. */
  pendingCloses(): number;
  /** fcntl(F_DUPFD_CLOEXEC); the copy is registered. */
  dup(fd: number): number;
  /** Registers an fd that came from elsewhere (fs.open...) so env teardown closes it. */
  adopt(fd: number): void;
  fdInfo(fd: number): FdInfo;
  /**
   * The same, no object built. The POSIX addon returns it packed in a small integer: kind index
   * in FD_KINDS (bits 0-3), listening (bit 4), connected (bit 5), domain index in FD_DOMAINS
   * (bits 6-7), seals (bits 8-13); and writes the size to `out[1]` for a regular file ('file',
   * 'memfd') only (`out` needs 2 elements), so that the other kinds never read the array. The
   * Windows addon returns undefined and writes [kind index, size, seals, listening, connected,
   * domain index] into `out` (6 elements).
   */
  fdInfo(fd: number, out: Float64Array): number | undefined;
  /** Number of descriptors in this environment's table. */
  openCount(): number;
  /** setsockopt SO_SNDBUF/SO_RCVBUF (0 leaves one as is); returns the effective [snd, rcv]. */
  setBufferSizes(fd: number, sndbuf: number, rcvbuf: number): [number, number];

  // ---- packets
  /**
   * One sendmsg(MSG_NOSIGNAL | MSG_DONTWAIT) of the concatenation of `parts` (an iovec each) with
   * `fds` as SCM_RIGHTS (at most 253; one descriptor may be passed as a plain number, which reads
   * no array across Node-API). Returns the byte count written (always all of it: the
   * socket is SOCK_SEQPACKET), or EAGAIN, EPIPE, ECONNRESET, EMSGSIZE or ENOBUFS negated.
   * Throws for any other errno an Error with `code` the errno's name (e.g. 'EPERM' when the
   * receiving socket has SO_PASSRIGHTS 0, 'ETOOMANYREFS' when the user's in-flight descriptor
   * budget is spent), `errno` (positive) and `syscall` 'sendmsg'.
   */
  sendPacket?(fd: number, parts: Uint8Array[], fds: number[] | number | null): number;
  /**
   * Reads up to `maxPackets` packets with recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC), each straight
   * into `arena` (no copy) at an 8-byte-aligned offset from `arenaOffset` (8-aligned, with at least
   * `maxPacketBytes` of room after it), back to back; a batch stops before a packet that might
   * not fit in what is left of the arena. `meta` receives: meta[0] = packet count n, meta[1] = 1
   * when end-of-file was seen after them (else 0), then for packet i at 2 + 4i: [offset in
   * `arena`, length, fdCount, flags (PACKET_*)]. Received descriptors go to `fdsOut` in order and
   * are registered; a packet whose descriptors do not fit in `fdsOut` stops the batch before it
   * (it is read by the next call), unless it is the first, which throws RangeError.
   * Returns n > 0, 0 at end-of-file, or EAGAIN negated.
   * A zero-length read is end-of-file only if the peer has hung up (poll POLLRDHUP/POLLHUP);
   * otherwise it is reported as a packet of length 0.
   * Every other descriptor the kernel installs (a packet's descriptors beyond `fdsOut`, the
   * SCM_PIDFD of a socket with SO_PASSPIDFD) is closed before this returns; the control buffer has
   * room for SCM_CREDENTIALS and SCM_SECURITY too, so those never truncate the descriptors. The
   * same holds for recvInto and peekFd.
   * With `block`, the first recvmsg goes without MSG_DONTWAIT: it waits for a packet when the
   * socket's file is in blocking mode (see setBlocking), and returns EAGAIN at once when it is not.
   */
  recvPackets?: RecvPackets;
  /**
   * One recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) scattered over `iovs` (at most 1024), so that a
   * packet's bytes land directly where they belong. Descriptors go to `fdsOut` (253 entries) and
   * are registered; `meta` gets [fdCount, flags (PACKET_*), eof (1 when a zero-length read was
   * end-of-file)]. Returns the packet length, or EAGAIN negated. With `peek`, MSG_PEEK: the
   * packet stays queued and no descriptor is received.
   */
  recvInto?(fd: number, iovs: Uint8Array[], fdsOut: Int32Array, meta: Int32Array, peek?: boolean): number;
  /** True if the peer of a connected socket has hung up (poll POLLHUP/POLLRDHUP, no wait). */
  peerHungUp(fd: number): boolean;
  /** shutdown(fd, SHUT_WR) of a socket this process only reads (ENOTCONN ignored). */
  shutdownWrite(fd: number): void;
  /**
   * MSG_PEEK of the next packet's first descriptor: the packet stays queued; the caller owns the
   * returned duplicate. -1 when that packet has none, -errno (EAGAIN when no packet is queued).
   */
  peekFd?(fd: number): number;
  /**
   * Clears (`blocking` true) or sets O_NONBLOCK on the descriptor's open file. Every other call
   * here passes MSG_DONTWAIT, so the mode only matters to recvPackets' `block`.
   */
  setBlocking(fd: number, blocking: boolean): void;
  /** Blocks in poll(2): 1 a read fd readable or hung up, 2 a write fd writable, 0 timeout, -errno. */
  waitFds(readFds: number | Int32Array, writeFds: Int32Array | null, timeoutMs: number): number;

  // ---- one-shot server
  /** A SOCK_SEQPACKET Unix socket bound to `path` and listening (backlog 1), non-blocking. */
  listen?(path: string): number;
  /** accept4(SOCK_CLOEXEC | SOCK_NONBLOCK): the new fd, or EAGAIN negated. */
  accept?(fd: number): number;
  /** A SOCK_SEQPACKET socket connected to `path` (blocking connect, then made non-blocking). */
  connect?(path: string): number;
  peerCredentials?(fd: number): PeerCredentials;
  /**
   * Clears SO_PASSCRED, SO_PASSPIDFD and SO_PASSSEC and sets SO_PASSRIGHTS to 1 on a socket (for
   * sockets a peer hands over, before reading from them). Options the kernel or the socket's
   * family lacks are skipped; EBADF/ENOTSOCK throw. Whoever else holds the socket can set them
   * again: the receive functions close every descriptor any control message carries regardless.
   */
  neutralizeSocket?(fd: number): void;
  /**
   * True when AF_UNIX socket `b` is the peer of socket `a` (the two ends of one connection),
   * false when it is not, null when the kernel cannot tell (no unix_diag). Linux only
   * (NETLINK_SOCK_DIAG with UDIAG_SHOW_PEER); absent elsewhere.
   */
  isSocketPeer?(a: number, b: number): boolean | null;

  // ---- memory
  /** memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) sized to `size`. */
  memfdCreate?(name: string, size: number): number;
  /** pwrite the bytes at `offset` (loops until all are written). */
  pwrite(fd: number, data: Uint8Array, offset: number): void;
  /** fcntl(F_ADD_SEALS). */
  addSeals?(fd: number, seals: number): void;
  /**
   * mmap(fd, length) as an ArrayBuffer: MAP_SHARED when `writable`, else MAP_PRIVATE
   * (copy-on-write: stores through the view never reach the file, and cannot fault). Zero-copy (an
   * external ArrayBuffer unmapped by its finalizer) unless `copy` is true or the runtime forbids
   * external buffers (Electron's V8 memory cage); then the contents are copied into an ordinary
   * ArrayBuffer and the mapping is dropped at once. Length 0 gives an empty ArrayBuffer.
   * Never aborts the process: a length beyond the file's size (statx, not waiting on a FUSE/NFS
   * server) is a RangeError, and so is a copy larger than 4 GiB or one the runtime cannot allocate
   * ('shared memory of N bytes is larger than this runtime can hold'); a mapping the kernel
   * refuses throws ENOMEM.
   */
  mapFd(fd: number, length: number, writable: boolean, copy: boolean, populate?: boolean): ArrayBuffer;
  /** Detaches an ArrayBuffer (its views read as empty); a mapping behind it is then unmapped. */
  detachBuffer(buffer: ArrayBuffer): void;
  /** A finalizer-less ArrayBuffer over the same memory as an external one; keep the original alive. */
  aliasBuffer(mapping: ArrayBuffer): ArrayBuffer;
  /** Whether this runtime allows external ArrayBuffers (false inside Electron's memory cage). */
  externalBuffersAllowed(): boolean;

  // ---- sandbox
  /** prctl(PR_SET_NO_NEW_PRIVS) then a Landlock ruleset; see src/native/landlock.cc. */
  landlockAbi?(): number;
  landlockRestrict?(rules: {
    readPaths: string[];
    writePaths: string[];
    execPaths: string[];
    bindPorts: number[];
    connectPorts: number[];
    scopeSignals: boolean;
    scopeAbstractSockets: boolean;
  }): NativeLandlockResult;

  /** Windows only (src/native/win/lockdown.cc): a job object and mitigation policies, each read back. */
  windowsLockdown?(): NativeWindowsLockdownResult;

  Poller: NativePollerConstructor;
  /**
   * Binds what {@link recvBound} and read-first Pollers read with on this thread: the arena,
   * the cell whose element 0 is the offset of the next read in it (the caller moves it on past what
   * each read took, as with recvPackets' arenaOffset), meta (2 + 4 * 256 entries) and fdsOut (at
   * least 253) as for recvPackets, and the largest packet. Kept alive until the next call. Linux
   * addon only.
   */
  bindRecv?(arena: Uint8Array, offset: Int32Array, meta: Int32Array, fdsOut: Int32Array, maxPacketBytes: number): void;
  /**
   * recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, offset[0], block) with what
   * {@link bindRecv} bound (no typed arrays per call): the same results and errors. maxPackets 1 to
   * 256; RangeError when nothing is bound or the arena has no room for a packet at the offset.
   * Linux addon only.
   */
  recvBound?(fd: number, maxPackets: number, block?: boolean): number;
  /**
   * Binds the scratch {@link sendBound} sends from on this thread (kept alive until the next
   * call); returns the binding's id (> 0). Linux addon only.
   */
  bindSend?(scratch: Uint8Array): number;
  /**
   * sendPacket(fd, [scratch.subarray(0, length)], fds) with the scratch {@link bindSend} bound (no
   * typed array per call): the same results and errors; -errno.ESTALE (nothing sent) when `id`
   * is not the current binding's id (another bindSend on this thread since: bind again).
   * RangeError for a `length` outside [1, scratch.length]. Linux addon only.
   */
  sendBound?(fd: number, id: number, length: number, fds: number[] | number | null): number;

  /** The POSIX stream transport (see {@link NativeStream}). */
  stream: NativeStream;
}

let loaded: NativeBinding | undefined;

/** fdInfo kinds by the index the addon reports (same order as kFdKinds in channel.cc). */
const FD_KINDS: ReadonlyArray<FdInfo['kind']> = ['other', 'socket', 'seqpacket', 'stream-socket', 'dgram-socket', 'memfd', 'file', 'pipe', 'dir', 'message-pipe', 'section'];
/** fdInfo domains by the index the addon reports (same order as kFdDomains in channel.cc). */
const FD_DOMAINS: ReadonlyArray<FdInfo['domain']> = ['none', 'unix', 'other'];
const fdInfoOut = new Float64Array(6);

/** fdInfo's packed form's listening bit (see {@link NativeBinding.fdInfo}). */
export const FD_PACKED_LISTENING = 16;

/**
 * fdInfo's packed small integer (see {@link NativeBinding.fdInfo}) for a kind check that needs no
 * more (a file handle's: not a listening socket), or undefined where the addon has no packed form
 * (Windows): then call {@link fdInfo}. Throws as fdInfo does.
 */
export function fdInfoPacked(fd: number): number | undefined {
  const packed = native().fdInfo(fd, fdInfoOut);
  return typeof packed === 'number' ? packed : undefined;
}

/**
 * What a descriptor is (statx, socket options, getpeername), through the addon's allocation-free
 * form. Never waits on another process. Throws the OS error (code 'EBADF', 'EIO'...) when the
 * descriptor cannot be examined.
 */
export function fdInfo(fd: number): FdInfo {
  const packed = native().fdInfo(fd, fdInfoOut);
  if (typeof packed === 'number') {
    const kind = FD_KINDS[packed & 15]!;
    return {
      kind,
      size: kind === 'file' || kind === 'memfd' ? fdInfoOut[1]! : 0,
      seals: packed >>> 8,
      listening: (packed & 16) !== 0,
      connected: (packed & 32) !== 0,
      domain: FD_DOMAINS[(packed >>> 6) & 3]!,
    };
  }
  return {
    kind: FD_KINDS[fdInfoOut[0]!]!,
    size: fdInfoOut[1]!,
    seals: fdInfoOut[2]!,
    listening: fdInfoOut[3] === 1,
    connected: fdInfoOut[4] === 1,
    domain: FD_DOMAINS[fdInfoOut[5]!]!,
  };
}

/**
 * The addon, loaded once per process (see src/main/locate-addon.ts for where it is looked for:
 * `ELECTRON_IPC_CHANNEL_ADDON`, then the package's build/Release and build/Debug, also when the
 * main process is bundled or packaged in an asar). The error lists every path tried and what to do.
 */
export function native(): NativeBinding {
  if (loaded) return loaded;
  const addon = loadAddon<unknown>();
  // The Windows addon (src/native/win/) offers the descriptor calls over its own ids; its
  // Poller is built in JS (src/main/transport/win32.ts).
  loaded = isWin32Addon(addon) ? win32Native(addon) : (addon as NativeBinding);
  return loaded;
}

/** The Linux-only members of {@link NativeBinding}, present. */
export type NativeLinuxBinding = NativeBinding &
  Required<
    Pick<
      NativeBinding,
      | 'socketpair'
      | 'sendPacket'
      | 'recvPackets'
      | 'recvInto'
      | 'peekFd'
      | 'listen'
      | 'accept'
      | 'connect'
      | 'peerCredentials'
      | 'neutralizeSocket'
      | 'memfdCreate'
      | 'addSeals'
      | 'landlockAbi'
      | 'landlockRestrict'
    >
  >;

/** Whether the addon has its Linux half (SOCK_SEQPACKET, memfd seals, Landlock): Linux builds. */
export function hasLinuxHalf(n: NativeBinding): n is NativeLinuxBinding {
  return typeof n.socketpair === 'function' && typeof n.memfdCreate === 'function' && typeof n.landlockRestrict === 'function';
}

/**
 * The addon with its Linux half, for code that only the Linux backend reaches (the seqpacket
 * transport, memfd shared memory). Throws an Error naming `what` on a build without it (macOS):
 * reaching it there is a bug of the caller, which should have gone through the stream backend.
 */
export function linuxNative(what: string, n: NativeBinding = native()): NativeLinuxBinding {
  if (hasLinuxHalf(n)) return n;
  throw new Error(
    `electron-ipc-channel: ${what} needs the Linux half of the native addon (SOCK_SEQPACKET, memfd seals, Landlock), ` +
      `which the ${process.platform} build does not have; use the stream transport (ELECTRON_IPC_CHANNEL_TRANSPORT=stream)`,
  );
}
