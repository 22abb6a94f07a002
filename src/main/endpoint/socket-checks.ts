/**
 * Checks of the sockets a peer hands us to read (switch targets, attached writers, received
 * receivers), of a sender's own receiver, and of switch secrets.
 */
import { timingSafeEqual } from 'node:crypto';
import { osError } from '../handles.js';
import { fdInfo, native } from '../native.js';
import type { FdInfo } from '../native.js';
import { transport } from '../transport/index.js';

/** Constant-time comparison of two secrets of 32 hex digits. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 16 && y.length === 16 && timingSafeEqual(x, y);
}

/**
 * What is wrong with a socket a peer gave us to read from (a switch target, a received receiver),
 * or undefined: it must be a connected SOCK_SEQPACKET socket, not listening. Options that make
 * every read install descriptors or credentials (SO_PASSPIDFD, SO_PASSCRED) are switched off.
 */
export function switchSocketProblem(fd: number): string | undefined {
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
export function shutdownProblem(fd: number): string | undefined {
  try {
    native().shutdownWrite(fd);
  } catch (e) {
    return `a socket that cannot be shut for writing (${osError(e, 'shutdown').message})`;
  }
  return undefined;
}

/** Switches off the receive options a peer may have set on a socket we will read; a problem, or undefined. */
export function neutralizeSocket(fd: number): string | undefined {
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
export function isOwnReceiver(senderFd: number, receiverFd: number): boolean {
  if (senderFd === receiverFd) return true;
  const n = native();
  if (typeof n.isSocketPeer !== 'function') return false;
  try {
    return n.isSocketPeer(senderFd, receiverFd) === true;
  } catch {
    return false;
  }
}
