/**
 * Senders of one channel on a transport whose sockets take one writer each (the stream
 * transport: two writers' frames would interleave on one byte stream). Every sender beyond the
 * first gets a socket of its own: the sender it came from makes a socket pair, keeps one end for
 * the new sender and writes the other to the receiver in an ATTACH packet, in order with its own
 * messages. The receiver reads the attached socket from then on, besides its own, so:
 *
 * - each sender's messages arrive in the order it sent them (one socket per sender);
 * - a sender handed to another process cannot write ahead of what its origin wrote before
 *   handing it over (the receiver learns of its socket only after reading those messages);
 * - the receiver is disconnected once every socket it reads has reached end of file.
 *
 * The layout is in docs/wire-format.md ("Attach packet"). A peer may send ATTACH packets of its
 * own: that gives it nothing it did not have (it could write the same messages itself), and the
 * receiver keeps at most {@link maxAttachedWriters} attached sockets.
 */
import { MAGIC, PACKET_HEADER, VERSION, openFileLimit } from './framing.js';
import type { OutPacket } from './framing.js';

/** Packet type of an ATTACH packet (records 1, fragment 2, switch 3). */
export const TYPE_ATTACH = 4;

/** Attached writer sockets a receiver may read at once, at least (see {@link maxAttachedWriters}). */
export const MIN_ATTACHED_WRITERS = 1024;

/**
 * Attached writer sockets a receiver reads at most besides its own (each one costs a descriptor
 * until the sender it stands for is closed and the receiver has read that): a quarter of the
 * process's RLIMIT_NOFILE, and at least {@link MIN_ATTACHED_WRITERS}. Further ATTACH packets are
 * refused as MALFORMED and their socket closed (that sender is then disconnected).
 */
export function maxAttachedWriters(): number {
  return Math.max(MIN_ATTACHED_WRITERS, Math.min(Math.floor(openFileLimit() / 4), 1 << 20));
}

const ATTACH_HEADER = (() => {
  const h = new Uint8Array(PACKET_HEADER);
  new DataView(h.buffer).setUint32(0, MAGIC, true);
  h[4] = TYPE_ATTACH;
  h[5] = VERSION;
  return h;
})();

/** An ATTACH packet carrying `fd`, a socket whose other end a new sender writes to. */
export function attachPacket(fd: number): OutPacket {
  return { parts: [ATTACH_HEADER], fds: [fd] };
}

/** Whether `packet` is an ATTACH packet (its header's type byte; the rest is checked by {@link attachProblem}). */
export function isAttachPacket(packet: Uint8Array): boolean {
  return packet.byteLength >= PACKET_HEADER && packet[4] === TYPE_ATTACH;
}

/** What is wrong with an ATTACH packet and the descriptors that came with it, or undefined. */
export function attachProblem(packet: Uint8Array, fds: number[]): string | undefined {
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (v.getUint32(0, true) !== MAGIC || packet[5] !== VERSION || packet[6] !== 0 || packet[7] !== 0) {
    return 'a packet with a bad magic number, version or reserved bytes';
  }
  if (packet.byteLength !== PACKET_HEADER || fds.length !== 1) {
    return `an attach packet must be ${PACKET_HEADER} bytes with exactly one descriptor`;
  }
  return undefined;
}
