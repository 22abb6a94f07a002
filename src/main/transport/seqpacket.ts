/**
 * Backend 1, Linux `SOCK_SEQPACKET`: the kernel keeps packet boundaries, so a packet is one
 * sendmsg/recvmsg with its descriptors, written whole or not at all (src/native/channel.cc).
 * Linux errno values are translated here, once.
 */
import { linuxNative } from '../native.js';
import type { NativeBinding, NativeLinuxBinding } from '../native.js';
import { AGAIN, GONE, TOO_BIG } from './types.js';
import type { SharedMemoryBackend, Transport } from './types.js';

const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;
const BLOCK_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
const SEGMENT_SEALS = F_SEAL_SHRINK | F_SEAL_GROW;

/**
 * memfds with seals: a block is sealed against writing, shrinking and growing before anyone else
 * sees it; a segment against shrinking and growing (it stays writable), so a mapping of either
 * can never fault. Received ones are checked for those seals.
 */
function memfdSharedMemory(n: NativeLinuxBinding): SharedMemoryBackend {
  return {
    createBlock(length, fill) {
      const fd = n.memfdCreate('electron-ipc-channel', length);
      try {
        fill(fd);
        n.addSeals(fd, BLOCK_SEALS | F_SEAL_SEAL);
      } catch (e) {
        n.close(fd);
        throw e;
      }
      return fd;
    },
    checkBlock(_fd, info) {
      if (info.kind !== 'memfd') return `a ${info.kind}, not a memfd`;
      if ((info.seals & BLOCK_SEALS) !== BLOCK_SEALS) return 'a memfd that is not sealed against writes, shrinking and growing';
      return undefined;
    },
    createSegment(size) {
      const fd = n.memfdCreate('electron-ipc-channel-pool', size);
      try {
        // Size fixed for good: no holder can shrink it under another's mapping; writes stay possible.
        n.addSeals(fd, SEGMENT_SEALS | F_SEAL_SEAL);
      } catch (e) {
        n.close(fd);
        throw e;
      }
      return [fd, fd];
    },
    checkSegment(_fd, info) {
      if (info.kind !== 'memfd') return `a ${info.kind}, not a memfd`;
      if ((info.seals & SEGMENT_SEALS) !== SEGMENT_SEALS) return 'a memfd not sealed against shrinking and growing';
      if (info.size <= 0) return 'empty';
      return undefined;
    },
    mapsReceived: true,
    read: (fd, length) => n.mapFd(fd, length, false, true),
  };
}

// Linux errno values, negated as the addon returns them.
const EAGAIN = -11;
const EPIPE = -32;
const EMSGSIZE = -90;
const ECONNRESET = -104;
const ENOBUFS = -105;

/** A negated errno of a non-blocking call as the seam's result, or an Error named by errno. */
function result(r: number, syscall: string): number {
  if (r >= 0) return r;
  if (r === EAGAIN || r === ENOBUFS) return AGAIN;
  if (r === EPIPE || r === ECONNRESET) return GONE;
  if (r === EMSGSIZE) return TOO_BIG;
  throw Object.assign(new Error(`${syscall} failed`), { errno: -r, syscall });
}

/** The scratch this thread's addon sends from (sendBound) once bound, and its binding's id. */
let boundScratch: Uint8Array | undefined;
let boundId = 0;
/** sendBound's result when another binding came since ours. */
const STALE = -116; // -ESTALE (Linux)

/** The seqpacket backend over the addon's Linux half (an Error naming it on other systems). */
export function seqpacketTransport(addon: NativeBinding): Transport {
  const n = linuxNative('the seqpacket transport', addon);
  return {
    name: 'seqpacket',
    socketKind: 'seqpacket',
    socketName: 'SOCK_SEQPACKET socket',
    scatterReads: true,
    shm: memfdSharedMemory(n),
    socketpair: () => n.socketpair(),
    send: (fd, parts, fds) => {
      const r = n.sendPacket(fd, parts, fds);
      return r >= 0 ? r : result(r, 'sendmsg');
    },
    sendOne: (fd, parts, oneFd) => {
      const r = n.sendPacket(fd, parts, oneFd);
      return r >= 0 ? r : result(r, 'sendmsg');
    },
    sendScratch:
      n.sendBound === undefined || n.bindSend === undefined
        ? undefined
        : (fd, scratch, length, fds) => {
            if (scratch !== boundScratch) {
              boundId = n.bindSend!(scratch);
              boundScratch = scratch;
            }
            let r = n.sendBound!(fd, boundId, length, fds);
            if (r === STALE) {
              // Another copy of the library on this thread bound its own scratch since.
              boundId = n.bindSend!(scratch);
              r = n.sendBound!(fd, boundId, length, fds);
            }
            return r >= 0 ? r : result(r, 'sendmsg');
          },
    recv: (fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block) => {
      const r = n.recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block);
      return r >= 0 ? r : result(r, 'recvmsg');
    },
    recvInto: (fd, iovs, fdsOut, meta, peek) => {
      const r = n.recvInto(fd, iovs, fdsOut, meta, peek);
      return r >= 0 ? r : result(r, 'recvmsg');
    },
    listen: (path) => n.listen(path),
    accept: (fd) => {
      const r = n.accept(fd);
      return r >= 0 ? r : result(r, 'accept');
    },
    connect: (path) => n.connect(path),
    peerCredentials: (fd) => n.peerCredentials(fd),
  };
}
