/**
 * Backend 2, POSIX `SOCK_STREAM` (what macOS needs; built and tested on Linux too): the addon
 * frames packets on the byte stream (src/native/stream.cc: an 8-byte frame header whose first
 * byte carries the descriptors, then exactly the payload), finishes a frame the socket took in
 * part (flushPending), and reassembles incoming frames, so the typed layer sees whole packets as
 * with `SOCK_SEQPACKET`. Shared memory is `shm_open` + unlink without seals: immutable blocks
 * travel as read-only descriptors, and received memory is copied (never mapped), because a
 * sender that kept a writable descriptor could truncate it under a mapping (SIGBUS).
 */
import type { NativeBinding, NativeStream } from '../native.js';
import { AGAIN, GONE, TOO_BIG } from './types.js';
import type { SharedMemoryBackend, Transport } from './types.js';

/** A negated errno of a non-blocking call (this platform's values) as the seam's result, or an Error. */
function resultOf(errno: NativeStream['errno']): (r: number, syscall: string) => number {
  return (r, syscall) => {
    if (r >= 0) return r;
    if (r === errno.EAGAIN || r === errno.ENOBUFS) return AGAIN;
    if (r === errno.EPIPE || r === errno.ECONNRESET) return GONE;
    if (r === errno.EMSGSIZE) return TOO_BIG;
    throw Object.assign(new Error(`${syscall} failed`), { errno: -r, syscall });
  };
}

/**
 * Whether `fd` is POSIX shared memory: on Linux a tmpfs (or memfd, hugetlbfs) file, which answers
 * F_GET_SEALS, so a file on any other file system (FUSE, NFS included) is refused without asking
 * its server; on macOS an object with no file type. readAll of 0 bytes makes exactly that check.
 */
function isSharedMemory(s: NativeStream, fd: number, kind: string): boolean {
  if (kind !== 'memfd' && kind !== 'file' && kind !== 'other') return false;
  try {
    s.readAll(fd, 0);
    return true;
  } catch {
    return false;
  }
}

function shmOpenSharedMemory(n: NativeBinding, s: NativeStream): SharedMemoryBackend {
  return {
    createBlock(length, fill) {
      const [rw, ro] = s.shmCreate(length);
      try {
        fill(rw);
      } catch (e) {
        n.close(ro);
        throw e;
      } finally {
        n.close(rw);
      }
      return ro;
    },
    checkBlock(fd, info) {
      if (!isSharedMemory(s, fd, info.kind)) return `a ${info.kind}, not shared memory`;
      if (s.accessMode(fd) !== 'r') return 'shared memory open for writing (an immutable block travels read-only)';
      return undefined;
    },
    createSegment(size) {
      if (size <= 0) throw new RangeError('a shared memory segment needs at least one byte');
      return s.shmCreate(size);
    },
    checkSegment(fd, info) {
      if (!isSharedMemory(s, fd, info.kind)) return `a ${info.kind}, not shared memory`;
      if (info.size <= 0) return 'empty';
      return undefined;
    },
    mapsReceived: false,
    read: (fd, length) => s.readAll(fd, length),
  };
}

export function streamTransport(n: NativeBinding): Transport {
  const s = n.stream;
  const result = resultOf(s.errno);
  return {
    name: 'stream',
    socketKind: 'stream-socket',
    socketName: 'SOCK_STREAM socket',
    scatterReads: false,
    singleWriter: true,
    shm: shmOpenSharedMemory(n, s),
    socketpair: () => s.socketpair(),
    send: (fd, parts, fds) => {
      const r = s.sendPacket(fd, parts, fds);
      return r >= 0 ? r : result(r, 'sendmsg');
    },
    sendOne: (fd, parts, oneFd) => {
      const r = s.sendPacket(fd, parts, oneFd);
      return r >= 0 ? r : result(r, 'sendmsg');
    },
    flushPending: (fd) => {
      const r = s.flushPending(fd);
      return r >= 0 ? 0 : result(r, 'sendmsg');
    },
    hasPending: (fd) => s.hasPending(fd),
    recv: (fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block) => {
      const r = s.recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block);
      return r >= 0 ? r : result(r, 'recvmsg');
    },
    recvInto: () => {
      throw new Error('the stream transport has no scatter reads (scatterReads is false)');
    },
    moveProblem: (fd) => (s.hasPartial(fd) ? 'it is in the middle of reading a message from its stream socket; send it after its next recv()' : undefined),
    listen: (path) => s.listen(path),
    accept: (fd) => {
      const r = s.accept(fd);
      return r >= 0 ? r : result(r, 'accept');
    },
    connect: (path) => s.connect(path),
    peerCredentials: (fd) => s.peerCredentials(fd),
  };
}
