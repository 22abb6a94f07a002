/**
 * The packet format of the framing layer (docs/wire-format.md): constants, the types the sender
 * and the parser share, and the errors that stand for a bad packet or message.
 */
import { IpcError } from '../../shared/errors.js';

/** The descriptors of a packet, record or message that carries none: shared, never written to. */
export const NO_FDS: number[] = Object.freeze([]) as unknown as number[];

/**
 * The descriptors of a received packet or record, without an array for the common cases: none
 * is {@link NO_FDS}, exactly one is the descriptor itself (a number), two or more an array.
 * The receive path makes only these forms; an array of any length (tests, callers that build
 * one) is read the same way. Whoever holds a RecordFds owns each descriptor in it exactly once.
 */
export type RecordFds = number | number[];

/** How many descriptors `fds` holds. */
export function fdCount(fds: RecordFds): number {
  return typeof fds === 'number' ? 1 : fds.length;
}

/** `fds` as an array (a new one for a single descriptor): for the paths that are not per message. */
export function fdList(fds: RecordFds): number[] {
  return typeof fds === 'number' ? [fds] : fds;
}

/** The `n` descriptors of `fds` from `at`, in the record's form (none, one as a number, else a new array). */
export function fdSlice(fds: RecordFds, at: number, n: number): RecordFds {
  if (n === 0) return NO_FDS;
  if (typeof fds === 'number') return fds;
  return n === 1 ? fds[at]! : fds.slice(at, at + n);
}

/** First 4 bytes of every packet: "EIPC", little endian. */
export const MAGIC = 0x43504945;
/** Packet format version (byte 5 of the packet header). */
export const VERSION = 1;
/** Packet type: one or more whole records. */
export const TYPE_RECORDS = 1;
/** Packet type: one fragment of a message too big for one packet. */
export const TYPE_FRAGMENT = 2;
/** Packet type: the channel continues on the socket this packet carries. */
export const TYPE_SWITCH = 3;

/** Bytes of the packet header. */
export const PACKET_HEADER = 8;
/** Bytes of a record header (body length, descriptor count). */
export const RECORD_HEADER = 8;
/** Bytes of a fragment packet's header, the packet header included. */
export const FRAGMENT_HEADER = 48;
/** Fragment flag: the first fragment of its message. */
export const FRAG_FIRST = 1;
/** Fragment flag: the last fragment of its message. */
export const FRAG_LAST = 2;

/**
 * Largest records packet this library writes; fits in Linux's default socket send buffer
 * (208 KiB). Fragments of big messages may be bigger, up to MAX_FRAGMENT_BYTES, where the
 * sender's socket buffer was raised to hold them.
 */
export const MAX_PACKET_BYTES = 128 * 1024;
/** Largest fragment packet this library writes (where the socket send buffer allows). */
export const MAX_FRAGMENT_BYTES = 1024 * 1024 + 64 * 1024;
/** Largest packet a receiver accepts; bigger ones arrive truncated and are MALFORMED. */
export const MAX_RECV_PACKET_BYTES = MAX_FRAGMENT_BYTES;
/** SCM_MAX_FD: the kernel's limit of descriptors per sendmsg. */
export const MAX_FDS_PER_PACKET = 253;
/** Partial fragmented messages a receiver keeps at once (one per concurrent sending endpoint). */
export const MAX_PARTIAL_STREAMS = 64;
/**
 * Descriptors a receiver keeps for its unfinished fragmented messages together, by default (or
 * `maxHandles` when higher), never more than a quarter of the process's RLIMIT_NOFILE: so that
 * peers leaving messages unfinished cannot pin descriptors until the process runs out (EMFILE,
 * and then MSG_CTRUNC for every later message carrying descriptors).
 */
export const PARTIAL_FDS_BUDGET = 2048;
/** Bytes a receiver keeps for its unfinished fragmented messages together, by default (or 2 × `maxMessageBytes` when higher). */
export const PARTIAL_BYTES_BUDGET = 256 * 1024 * 1024;
/** An unfinished message no fragment came for while the receiver read this many packets is stale. */
export const STALE_PACKETS = 256;
/** An unfinished message no fragment came for in this many milliseconds is stale. */
export const STALE_MS = 1000;

/** `n` rounded up to a multiple of 8 (records are 8-aligned). */
export const pad8 = (n: number): number => (n + 7) & ~7;
/** Padding bytes. */
export const ZEROS = new Uint8Array(8);

/** A complete message as it came off the wire: its body and the descriptors that belong to it. */
export interface WireRecord {
  /** The body; for a split record, its head only (see `sections`). */
  body: Uint8Array;
  /** Its descriptors: none (NO_FDS), one (the number), or an array (see RecordFds). */
  fds: RecordFds;
  /** Binary sections received straight into buffers of their own (see codec bodyLayout). */
  sections?: Uint8Array[];
}

/** A packet ready for sendmsg. */
export interface OutPacket {
  parts: Uint8Array[];
  fds: number[];
  /** A pooled batch buffer that `parts` live in, released once the packet is written or dropped. */
  pooled?: Uint8Array;
}

/** A new packet header of type `type`. */
function packetHeader(type: number): Uint8Array {
  const h = new Uint8Array(PACKET_HEADER);
  const v = new DataView(h.buffer);
  v.setUint32(0, MAGIC, true);
  h[4] = type;
  h[5] = VERSION;
  return h;
}

/** The packet header of a RECORDS packet (shared: never written to). */
export const RECORDS_HEADER = packetHeader(TYPE_RECORDS);

/** A SWITCH packet: the rest of this channel's messages come on another socket. */
export interface SwitchItem {
  switchTo: number;
  /** The 16-byte secret the packet carried, as 32 lowercase hex digits. */
  secret: string;
}

/** Bytes of the secret a switch packet carries after its header (see docs/wire-format.md). */
export const SWITCH_SECRET_BYTES = 16;

/** What the parser yields: a complete record, or an error standing in for one message. */
export type ParsedItem = WireRecord | IpcError;

/**
 * A SWITCH packet carrying `fd`, the socket the receiver continues on, and `secret` (32 hex
 * digits), which only the receiver's new holder learns (from the kind tag of the message that
 * moved it): a switch without it is refused, so a sender cannot redirect a receiver.
 */
export function switchPacket(fd: number, secret: string): OutPacket {
  return { parts: [packetHeader(TYPE_SWITCH), Buffer.from(secret, 'hex')], fds: [fd] };
}

/** MALFORMED: what the peer sent breaks the packet format. */
export function malformed(what: string): IpcError {
  return new IpcError('MALFORMED', `malformed message from the peer: ${what}`);
}

/** TOO_LARGE: the peer sent a message over one of this receiver's limits. */
export function tooLarge(what: string): IpcError {
  return new IpcError('TOO_LARGE', `message refused: ${what}`);
}
