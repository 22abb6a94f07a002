/**
 * The transport seam: everything the typed layer (channels, receivers, the one-shot server,
 * select, the pool) needs from the operating system to move packets and descriptors, behind one
 * interface. One backend per file in this folder (`seqpacket.ts`: Linux `SOCK_SEQPACKET`;
 * `stream.ts`: POSIX `SOCK_STREAM` with explicit framing, what macOS needs); `index.ts` picks one.
 * A new OS or a multiplexed transport is a new backend file plus a line in `index.ts`.
 *
 * Results are OS-independent: a send or receive that cannot proceed now returns {@link AGAIN},
 * a peer that is gone {@link GONE}, a packet the socket cannot take {@link TOO_BIG}; any other
 * failure throws an Error whose `code` is the errno *name* (`EPERM`), never a number.
 */
import type { FdInfo, PeerCredentials } from '../native.js';

/** The socket is full (send) or has nothing to read (receive): wait for readiness. */
export const AGAIN = -1;
/** The peer is gone (EPIPE, ECONNRESET): nothing more can be written. */
export const GONE = -2;
/** The packet is bigger than the socket accepts (EMSGSIZE); ENOBUFS counts as AGAIN. */
export const TOO_BIG = -3;

/**
 * Shared memory of a backend: immutable blocks (`IpcSharedMemory`, kind `M`) and pool segments
 * (`IpcSharedBuffer`, kind `P`), made here and checked here when a peer sends them.
 */
export interface SharedMemoryBackend {
  /**
   * An immutable block of `length` bytes: made, filled by `fill(fd)` (with pwrite), then made
   * unchangeable; returns the descriptor the block keeps and sends. Closes what it made on a throw.
   */
  createBlock(length: number, fill: (fd: number) => void): number;
  /** What is wrong with a received block's descriptor (problem text after "is"), or undefined. */
  checkBlock(fd: number, info: FdInfo): string | undefined;
  /**
   * A pool segment of `size` bytes whose size nobody can change: the descriptor the pool keeps
   * (and maps writable), and the one that travels inside its socket (the same one, or a
   * read-only one). Closes what it made on a throw.
   */
  createSegment(size: number): [keep: number, send: number];
  /** What is wrong with a received segment's memory descriptor, or undefined. */
  checkSegment(fd: number, info: FdInfo): string | undefined;
  /**
   * Backends whose sockets cannot peek a queued descriptor (Windows pipes): ties the segment's
   * travelling descriptor `send` to `end` (the pool pair's end that travels) instead of queueing
   * it there; whoever holds that end gets the memory back with `NativeBinding.peekFd(end)`.
   * Absent: the pool queues `send` in a packet on the pair and holders peek it.
   */
  lendSegment?(end: number, send: number): void;
  /**
   * Whether received memory may be mapped: true where its size is sealed (no SIGBUS can come
   * from a sender truncating it); otherwise `.bytes` of a received block is a copy made by `read`.
   */
  readonly mapsReceived: boolean;
  /** A copy of the first `length` bytes of `fd` (an OS error when it is shorter now). */
  read(fd: number, length: number): ArrayBuffer;
}

export interface Transport {
  /** Shared memory as this backend makes and checks it. */
  readonly shm: SharedMemoryBackend;

  /** The backend's name, as `ELECTRON_IPC_CHANNEL_TRANSPORT` spells it. */
  readonly name: 'seqpacket' | 'stream' | 'win32';
  /** What `fdInfo().kind` a channel socket of this transport has ('seqpacket', 'stream-socket', 'message-pipe'). */
  readonly socketKind: FdInfo['kind'];
  /** Human name of that socket type, for error messages ("SOCK_SEQPACKET socket"). */
  readonly socketName: string;
  /**
   * Whether {@link recvInto} receives one packet scattered over the caller's buffers (big
   * messages are then read in place); false where packets are reassembled by the backend.
   */
  readonly scatterReads: boolean;
  /**
   * Whether one socket takes one writer only (a byte stream, where two writers' frames would
   * interleave): then every further sender of a channel (a clone, a sender sent to another
   * process) gets a socket of its own, announced to the receiver by an ATTACH packet on the
   * socket of the sender it came from (docs/wire-format.md). Absent or false: senders share the
   * socket (duplicated descriptors), as `SOCK_SEQPACKET` allows.
   */
  readonly singleWriter?: boolean;

  /**
   * A connected pair (close-on-exec, non-blocking, registered in the descriptor table).
   * `carrierOf`: the pair is the carrier of the receiver reading that socket, which
   * {@link moveProblem} was last asked about with the socket it moves through (win32: the first
   * end then sends handles the way that move goes, parked for another process or by token for
   * this one). Other backends ignore it.
   */
  socketpair(carrierOf?: number): [number, number];
  /**
   * Writes one packet (the concatenation of `parts`) with `fds`: the byte count when accepted,
   * else AGAIN, GONE or TOO_BIG. Nothing is accepted unless all of it is (or, for a backend with
   * {@link flushPending}, kept to be finished by it).
   */
  send(fd: number, parts: Uint8Array[], fds: number[] | null): number;
  /**
   * {@link send} with exactly one descriptor, passed as a number (no array made or read across
   * Node-API: the common case of a message carrying one handle). Absent: callers use `send`.
   */
  sendOne?(fd: number, parts: Uint8Array[], oneFd: number): number;
  /**
   * {@link send} of the packet in the first `length` bytes of `scratch` (a long-lived buffer,
   * bound in the addon on first use: no typed array crosses Node-API per packet); one descriptor
   * may be a number. Absent: callers use `send`.
   */
  sendScratch?(fd: number, scratch: Uint8Array, length: number, fds: number[] | number | null): number;
  /**
   * Backends that may accept a packet they could write only in part: finishes it. 0 when
   * nothing is left, AGAIN when some is, GONE. Absent where writes are all or nothing.
   */
  flushPending?(fd: number): number;
  /** True while a packet accepted by {@link send} is not all written (see flushPending). */
  hasPending?(fd: number): boolean;
  /**
   * Reads up to `maxPackets` whole packets into `arena` from `arenaOffset` (see
   * NativeBinding.recvPackets for `meta` and `fdsOut`): their count, 0 at end of file, or AGAIN.
   */
  recv(fd: number, meta: Int32Array, fdsOut: Int32Array, maxPackets: number, maxPacketBytes: number, arena: Uint8Array, arenaOffset: number, block?: boolean): number;
  /** One packet scattered over `iovs` (only where {@link scatterReads}); see NativeBinding.recvInto. AGAIN when none. */
  recvInto(fd: number, iovs: Uint8Array[], fdsOut: Int32Array, meta: Int32Array, peek?: boolean): number;
  /**
   * Whether the backend reads one message ahead of the typed layer (win32: an overlapped read
   * is always in flight): then a receiver about to move reads what its socket holds, and
   * {@link moveProblem} stops the read in flight, until nothing is held below the typed layer.
   */
  readonly readsAhead?: boolean;
  /**
   * Why the receiver reading `fd` cannot be moved now, or undefined. May stop a read in flight
   * (where {@link readsAhead}); a later `recv` or readiness resumes it. `via`: the socket it is
   * about to be sent through; win32 notes on `fd` whether that leads to another process, for
   * the carrier pair the move may make next ({@link socketpair}'s `carrierOf`).
   */
  moveProblem?(fd: number, via?: number): string | undefined;

  /** A listening socket at `path` (the one-shot server). */
  listen(path: string): number;
  /** The next connection, or AGAIN. */
  accept(fd: number): number;
  /** A socket connected to `path`. */
  connect(path: string): number;
  peerCredentials(fd: number): PeerCredentials;
}
