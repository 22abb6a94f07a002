/**
 * Backend 1, Linux `SOCK_SEQPACKET`: the kernel keeps packet boundaries, so a packet is one
 * sendmsg/recvmsg with its descriptors, written whole or not at all (src/native/channel.cc).
 * Linux errno values are translated here, once.
 */
import type { NativeBinding } from '../native.js';
import { AGAIN, GONE, TOO_BIG } from './types.js';
import type { Transport } from './types.js';

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

export function seqpacketTransport(n: NativeBinding): Transport {
  return {
    name: 'seqpacket',
    socketKind: 'seqpacket',
    socketName: 'SOCK_SEQPACKET socket',
    scatterReads: true,
    socketpair: () => n.socketpair(),
    send: (fd, parts, fds) => {
      const r = n.sendPacket(fd, parts, fds);
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
