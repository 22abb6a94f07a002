/**
 * Packet framing: how message bodies (and their descriptors) are cut into SOCK_SEQPACKET packets
 * and put together again. The layout is written down in docs/wire-format.md.
 */
import { IpcError } from '../shared/errors.js';

export const MAGIC = 0x43504945; // "EIPC" little endian
export const VERSION = 1;
export const TYPE_RECORDS = 1;
export const TYPE_FRAGMENT = 2;
export const TYPE_SWITCH = 3;

export const PACKET_HEADER = 8;
export const RECORD_HEADER = 8;
export const FRAGMENT_HEADER = 48;
export const FRAG_FIRST = 1;
export const FRAG_LAST = 2;

/** Largest packet this library writes; fits in Linux's default socket send buffer (208 KiB). */
export const MAX_PACKET_BYTES = 128 * 1024;
/** Largest packet a receiver accepts; bigger ones arrive truncated and are MALFORMED. */
export const MAX_RECV_PACKET_BYTES = 256 * 1024;
/** SCM_MAX_FD: the kernel's limit of descriptors per sendmsg. */
export const MAX_FDS_PER_PACKET = 253;
/** Partial fragmented messages a receiver keeps at once (one per concurrent sending endpoint). */
export const MAX_PARTIAL_STREAMS = 64;

export const pad8 = (n: number): number => (n + 7) & ~7;
const ZEROS = new Uint8Array(8);

/** A complete message as it came off the wire: its body and the descriptors that belong to it. */
export interface WireRecord {
  body: Uint8Array;
  fds: number[];
}

// Off-heap (ArrayBuffer-backed) scratch for the immediate send path: small typed arrays made
// with `new Uint8Array(n)` live on the V8 heap and cost an extra copy when the addon reads them.
const IMMEDIATE_HEADER = new Uint8Array(new ArrayBuffer(PACKET_HEADER + RECORD_HEADER));
const IMMEDIATE_VIEW = new DataView(IMMEDIATE_HEADER.buffer);
const OFFHEAP_ZEROS = new Uint8Array(new ArrayBuffer(8));
const immediateParts: Uint8Array[] = [];

/**
 * The parts of a RECORDS packet holding one record, for a sendmsg made right away: the header
 * and the returned array are reused by the next call.
 */
export function immediateRecordParts(parts: Uint8Array[], bytes: number, fdCount: number): Uint8Array[] {
  if (IMMEDIATE_VIEW.getUint32(0, true) !== MAGIC) {
    IMMEDIATE_VIEW.setUint32(0, MAGIC, true);
    IMMEDIATE_HEADER[4] = TYPE_RECORDS;
    IMMEDIATE_HEADER[5] = VERSION;
  }
  IMMEDIATE_VIEW.setUint32(PACKET_HEADER, bytes, true);
  IMMEDIATE_VIEW.setUint32(PACKET_HEADER + 4, fdCount, true);
  immediateParts.length = 0;
  immediateParts.push(IMMEDIATE_HEADER);
  for (let i = 0; i < parts.length; i++) immediateParts.push(parts[i]!);
  const padding = pad8(bytes) - bytes;
  if (padding) immediateParts.push(OFFHEAP_ZEROS.subarray(0, padding));
  return immediateParts;
}

/** A packet ready for sendmsg. */
export interface OutPacket {
  parts: Uint8Array[];
  fds: number[];
}

function packetHeader(type: number): Uint8Array {
  const h = new Uint8Array(PACKET_HEADER);
  const v = new DataView(h.buffer);
  v.setUint32(0, MAGIC, true);
  h[4] = type;
  h[5] = VERSION;
  return h;
}

const RECORDS_HEADER = packetHeader(TYPE_RECORDS);

/** True when a message of `bytes` with `fdCount` descriptors fits in one RECORDS packet alone. */
export function fitsOnePacket(bytes: number, fdCount: number): boolean {
  return PACKET_HEADER + RECORD_HEADER + pad8(bytes) <= MAX_PACKET_BYTES && fdCount <= MAX_FDS_PER_PACKET;
}

/** The parts of a RECORDS packet holding exactly one record (no copy of the body parts). */
export function singleRecordPacket(parts: Uint8Array[], bytes: number, fds: number[]): OutPacket {
  const rec = new Uint8Array(RECORD_HEADER);
  const v = new DataView(rec.buffer);
  v.setUint32(0, bytes, true);
  v.setUint32(4, fds.length, true);
  const out = [RECORDS_HEADER, rec, ...parts];
  const padding = pad8(bytes) - bytes;
  if (padding) out.push(ZEROS.subarray(0, padding));
  return { parts: out, fds };
}

/**
 * Builds RECORDS packets holding several small records, copying each body in, so that a burst of
 * sends costs one system call per packet instead of one per message.
 */
export class RecordBatcher {
  private buf: Uint8Array = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private len = 0;
  private fds: number[] = [];

  get empty(): boolean {
    return this.len === 0;
  }

  /** Whether a record of this size and descriptor count still fits in the current packet. */
  fits(bytes: number, fdCount: number): boolean {
    const base = this.len === 0 ? PACKET_HEADER : this.len;
    return base + RECORD_HEADER + pad8(bytes) <= MAX_PACKET_BYTES && this.fds.length + fdCount <= MAX_FDS_PER_PACKET;
  }

  add(parts: Uint8Array[], bytes: number, fds: number[]): void {
    if (this.len === 0) this.len = PACKET_HEADER;
    const need = this.len + RECORD_HEADER + pad8(bytes);
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(Math.min(Math.max(size, need), MAX_PACKET_BYTES));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.view.setUint32(this.len, bytes, true);
    this.view.setUint32(this.len + 4, fds.length, true);
    let at = this.len + RECORD_HEADER;
    for (const p of parts) {
      this.buf.set(p, at);
      at += p.byteLength;
    }
    this.buf.fill(0, at, this.len + RECORD_HEADER + pad8(bytes));
    this.len += RECORD_HEADER + pad8(bytes);
    for (const fd of fds) this.fds.push(fd);
  }

  /** Takes the packet built so far (undefined when empty) and starts a new one. */
  take(): OutPacket | undefined {
    if (this.len === 0) return undefined;
    const packet = this.buf.slice(0, this.len);
    packet.set(RECORDS_HEADER, 0);
    const out = { parts: [packet], fds: this.fds };
    this.len = 0;
    this.fds = [];
    if (this.buf.length > 64 * 1024) {
      this.buf = new Uint8Array(4096);
      this.view = new DataView(this.buf.buffer);
    }
    return out;
  }
}

/**
 * Cuts one message into FRAGMENT packets of at most MAX_PACKET_BYTES and MAX_FDS_PER_PACKET
 * descriptors. `parts` are copied into the packets, so the caller's memory may change afterwards.
 */
export function fragmentPackets(streamId: bigint, seq: number, parts: Uint8Array[], bytes: number, fds: number[]): OutPacket[] {
  const chunk = MAX_PACKET_BYTES - FRAGMENT_HEADER;
  const out: OutPacket[] = [];
  let offset = 0;
  let fdAt = 0;
  let partIndex = 0;
  let partOffset = 0;
  do {
    const n = Math.min(chunk, bytes - offset);
    const nfds = Math.min(MAX_FDS_PER_PACKET, fds.length - fdAt);
    const pkt = new Uint8Array(FRAGMENT_HEADER + n);
    const v = new DataView(pkt.buffer);
    v.setUint32(0, MAGIC, true);
    pkt[4] = TYPE_FRAGMENT;
    pkt[5] = VERSION;
    v.setBigUint64(8, streamId, true);
    v.setUint32(16, seq, true);
    v.setUint32(20, nfds, true);
    v.setBigUint64(24, BigInt(bytes), true);
    v.setBigUint64(32, BigInt(offset), true);
    v.setUint32(40, fds.length, true);
    let flags = offset === 0 ? FRAG_FIRST : 0;
    const last = offset + n >= bytes && fdAt + nfds >= fds.length;
    if (last) flags |= FRAG_LAST;
    v.setUint32(44, flags, true);
    // Copy n bytes from the parts.
    let at = FRAGMENT_HEADER;
    let left = n;
    while (left > 0) {
      const p = parts[partIndex]!;
      const take = Math.min(left, p.byteLength - partOffset);
      pkt.set(p.subarray(partOffset, partOffset + take), at);
      at += take;
      left -= take;
      partOffset += take;
      if (partOffset === p.byteLength) {
        partIndex++;
        partOffset = 0;
      }
    }
    out.push({ parts: [pkt], fds: fds.slice(fdAt, fdAt + nfds) });
    offset += n;
    fdAt += nfds;
    if (last) break;
  } while (true);
  return out;
}

/** Limits the packet parser enforces while reassembling. */
export interface FramingLimits {
  maxMessageBytes: number;
  maxHandles: number;
}

/** A SWITCH packet: the rest of this channel's messages come on another socket. */
export interface SwitchItem {
  switchTo: number;
}

/** What the parser yields: a complete record, or an error standing in for one message. */
export type ParsedItem = WireRecord | IpcError;

/** A SWITCH packet carrying `fd`, the socket the receiver continues on. */
export function switchPacket(fd: number): OutPacket {
  return { parts: [packetHeader(TYPE_SWITCH)], fds: [fd] };
}

/**
 * Fragments that re-create the first `received` bytes of a partial message (for handing a
 * receiver with a message half read to another process); the rest follows from the sender.
 */
function partialPackets(stream: bigint, p: { seq: number; total: number; totalFds: number; received: number; body?: Uint8Array; fds: number[] }): OutPacket[] {
  const chunk = MAX_PACKET_BYTES - FRAGMENT_HEADER;
  const out: OutPacket[] = [];
  let offset = 0;
  let fdAt = 0;
  do {
    const n = Math.min(chunk, p.received - offset);
    const nfds = Math.min(MAX_FDS_PER_PACKET, p.fds.length - fdAt);
    const pkt = new Uint8Array(FRAGMENT_HEADER + n);
    const v = new DataView(pkt.buffer);
    v.setUint32(0, MAGIC, true);
    pkt[4] = TYPE_FRAGMENT;
    pkt[5] = VERSION;
    v.setBigUint64(8, stream, true);
    v.setUint32(16, p.seq, true);
    v.setUint32(20, nfds, true);
    v.setBigUint64(24, BigInt(p.total), true);
    v.setBigUint64(32, BigInt(offset), true);
    v.setUint32(40, p.totalFds, true);
    v.setUint32(44, offset === 0 ? FRAG_FIRST : 0, true);
    pkt.set(p.body!.subarray(offset, offset + n), FRAGMENT_HEADER);
    out.push({ parts: [pkt], fds: p.fds.slice(fdAt, fdAt + nfds) });
    offset += n;
    fdAt += nfds;
  } while (offset < p.received || fdAt < p.fds.length);
  return out;
}

interface Partial {
  seq: number;
  total: number;
  totalFds: number;
  received: number;
  body: Uint8Array | undefined; // undefined while discarding an over-limit message
  fds: number[];
  error?: IpcError;
  /** Already reported MALFORMED; its remaining fragments are consumed silently. */
  failed?: boolean;
}

/**
 * Turns packets into records. Every descriptor it is given ends up either in a yielded record
 * or in `close` (the caller closes those), so nothing leaks.
 */
export class PacketParser {
  private partials = new Map<bigint, Partial>();

  constructor(private readonly limits: FramingLimits, private readonly close: (fds: number[]) => void) {}

  /**
   * Parses one packet; `fds` are the descriptors that came with it. Returns a SwitchItem for a
   * valid SWITCH packet (which the caller acts on), else undefined.
   */
  parse(packet: Uint8Array, fds: number[], flags: number, out: ParsedItem[]): SwitchItem | undefined {
    if (flags !== 0) {
      this.close(fds);
      out.push(malformed(flags & 1 ? `a packet larger than ${MAX_RECV_PACKET_BYTES} bytes was truncated` : 'the kernel dropped descriptors of a packet (MSG_CTRUNC)'));
      return;
    }
    if (packet.byteLength < PACKET_HEADER) {
      this.close(fds);
      out.push(malformed(packet.byteLength === 0 ? 'an empty packet' : `a packet of ${packet.byteLength} bytes is shorter than its header`));
      return;
    }
    const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    if (v.getUint32(0, true) !== MAGIC || packet[5] !== VERSION || packet[6] !== 0 || packet[7] !== 0) {
      this.close(fds);
      out.push(malformed('a packet with a bad magic number, version or reserved bytes'));
      return;
    }
    if (packet[4] === TYPE_RECORDS) this.parseRecords(packet, v, fds, out);
    else if (packet[4] === TYPE_FRAGMENT) this.parseFragment(packet, v, fds, out);
    else if (packet[4] === TYPE_SWITCH) {
      if (packet.byteLength === PACKET_HEADER && fds.length === 1) return { switchTo: fds[0]! };
      this.close(fds);
      out.push(malformed('a switch packet must be 8 bytes with exactly one descriptor'));
    } else {
      this.close(fds);
      out.push(malformed(`a packet of unknown type ${packet[4]}`));
    }
  }

  private parseRecords(packet: Uint8Array, v: DataView, fds: number[], out: ParsedItem[]): void {
    // Validate the whole packet first, so that a bad packet yields one error and no records.
    let at = PACKET_HEADER;
    let fdSum = 0;
    let count = 0;
    let problem: string | undefined;
    while (at < packet.byteLength) {
      if (packet.byteLength - at < RECORD_HEADER) {
        problem = 'a record header runs past the end of its packet';
        break;
      }
      const len = v.getUint32(at, true);
      const nfds = v.getUint32(at + 4, true);
      if (len > packet.byteLength - at - RECORD_HEADER) {
        problem = `a record claims ${len} bytes but its packet holds ${packet.byteLength - at - RECORD_HEADER}`;
        break;
      }
      fdSum += nfds;
      count++;
      at += RECORD_HEADER + pad8(len);
    }
    if (!problem && count === 0) problem = 'a packet with no records';
    if (!problem && fdSum !== fds.length) problem = `records name ${fdSum} descriptors but the packet carried ${fds.length}`;
    if (problem) {
      this.close(fds);
      out.push(malformed(problem));
      return;
    }
    at = PACKET_HEADER;
    let fdAt = 0;
    while (at < packet.byteLength) {
      const len = v.getUint32(at, true);
      const nfds = v.getUint32(at + 4, true);
      const recFds = fds.slice(fdAt, fdAt + nfds);
      fdAt += nfds;
      const body = packet.subarray(at + RECORD_HEADER, at + RECORD_HEADER + len);
      at += RECORD_HEADER + pad8(len);
      if (len > this.limits.maxMessageBytes) {
        this.close(recFds);
        out.push(tooLarge(`a message of ${len} bytes exceeds this receiver's maxMessageBytes (${this.limits.maxMessageBytes})`));
      } else if (nfds > this.limits.maxHandles) {
        this.close(recFds);
        out.push(tooLarge(`a message with ${nfds} descriptors exceeds this receiver's maxHandles (${this.limits.maxHandles})`));
      } else out.push({ body, fds: recFds });
    }
  }

  private parseFragment(packet: Uint8Array, v: DataView, fds: number[], out: ParsedItem[]): void {
    if (packet.byteLength < FRAGMENT_HEADER) {
      this.close(fds);
      out.push(malformed('a fragment packet shorter than its header'));
      return;
    }
    const stream = v.getBigUint64(8, true);
    const seq = v.getUint32(16, true);
    const nfds = v.getUint32(20, true);
    const total = v.getBigUint64(24, true);
    const offset = v.getBigUint64(32, true);
    const totalFds = v.getUint32(40, true);
    const flags = v.getUint32(44, true);
    const chunk = packet.subarray(FRAGMENT_HEADER);
    let p = this.partials.get(stream);
    if (p?.failed) {
      // The rest of a message already reported bad is consumed silently: one error per message.
      if (!(flags & FRAG_FIRST) && seq === p.seq) {
        this.close(fds);
        return;
      }
      if (flags & FRAG_FIRST) {
        this.partials.delete(stream);
        p = undefined;
      }
    }
    if (p && seq !== p.seq && !(flags & FRAG_FIRST)) {
      // Bad itself; the message in progress is left intact.
      this.close(fds);
      out.push(malformed('a fragment from another message interleaved with a fragmented message'));
      return;
    }
    if (nfds !== fds.length) return this.fail(stream, p, seq, fds, out, `a fragment names ${nfds} descriptors but carried ${fds.length}`);
    if (flags & ~(FRAG_FIRST | FRAG_LAST)) return this.fail(stream, p, seq, fds, out, 'a fragment with unknown flags');
    if (flags & FRAG_FIRST) {
      if (p) {
        // The previous message of this sender never ended: it is dropped (one error), and the
        // new one is read on its own merits.
        this.drop(stream, p);
        out.push(malformed('a new fragmented message started before the previous one from the same sender ended'));
      }
      if (offset !== 0n) return this.fail(stream, undefined, seq, fds, out, 'a first fragment at a non-zero offset');
      if (this.partials.size >= MAX_PARTIAL_STREAMS) this.evictFailed();
      if (this.partials.size >= MAX_PARTIAL_STREAMS) {
        this.close(fds);
        out.push(malformed(`more than ${MAX_PARTIAL_STREAMS} fragmented messages in progress at once`));
        return;
      }
      const np: Partial = { seq, total: 0, totalFds, received: 0, body: undefined, fds: [] };
      if (total > BigInt(this.limits.maxMessageBytes)) {
        np.error = tooLarge(`a message of ${total} bytes exceeds this receiver's maxMessageBytes (${this.limits.maxMessageBytes})`);
      } else if (totalFds > this.limits.maxHandles) {
        np.error = tooLarge(`a message with ${totalFds} descriptors exceeds this receiver's maxHandles (${this.limits.maxHandles})`);
      } else {
        np.total = Number(total);
        try {
          np.body = new Uint8Array(np.total);
        } catch (e) {
          np.error = tooLarge(`cannot allocate ${np.total} bytes for a message`);
        }
      }
      this.partials.set(stream, np);
      return this.continueFragment(stream, np, offset, total, totalFds, flags, chunk, fds, out);
    }
    if (!p) {
      this.close(fds);
      out.push(malformed('a fragment of a message whose first fragment never arrived'));
      return;
    }
    return this.continueFragment(stream, p, offset, total, totalFds, flags, chunk, fds, out);
  }

  /**
   * Reports one bad message: closes the packet's descriptors and what the message held, and
   * remembers the message as failed (a tombstone holding nothing, until the sender's next first
   * fragment) so that its other fragments are consumed without further errors.
   */
  private fail(stream: bigint, p: Partial | undefined, seq: number, fds: number[], out: ParsedItem[], why: string): void {
    this.close(fds);
    if (p) this.drop(stream, p);
    if (this.partials.size >= MAX_PARTIAL_STREAMS) this.evictFailed();
    if (this.partials.size < MAX_PARTIAL_STREAMS) {
      this.partials.set(stream, { seq, total: 0, totalFds: 0, received: 0, body: undefined, fds: [], failed: true });
    }
    out.push(malformed(why));
  }

  /** Forgets the oldest tombstone, if any, to make room. */
  private evictFailed(): void {
    for (const [stream, p] of this.partials) {
      if (p.failed) {
        this.partials.delete(stream);
        return;
      }
    }
  }

  private continueFragment(
    stream: bigint,
    p: Partial,
    offset: bigint,
    total: bigint,
    totalFds: number,
    flags: number,
    chunk: Uint8Array,
    fds: number[],
    out: ParsedItem[],
  ): void {
    const bad = (why: string): void => this.fail(stream, p, p.seq, fds, out, why);
    if (total !== BigInt(p.total) && !p.error) return bad('fragments of one message disagree on its size');
    if (totalFds !== p.totalFds) return bad('fragments of one message disagree on its descriptor count');
    if (offset !== BigInt(p.received)) return bad('a fragment out of order (offset mismatch)');
    if (p.error) {
      // Over a limit: consume the rest of the message without keeping it.
      this.close(fds);
      p.received += chunk.byteLength;
      if (flags & FRAG_LAST) {
        this.partials.delete(stream);
        out.push(p.error);
      }
      return;
    }
    if (p.received + chunk.byteLength > p.total) return bad('fragments carry more bytes than their message size');
    if (p.fds.length + fds.length > p.totalFds) return bad('fragments carry more descriptors than their message names');
    p.body!.set(chunk, p.received);
    p.received += chunk.byteLength;
    for (const fd of fds) p.fds.push(fd);
    if (flags & FRAG_LAST) {
      this.partials.delete(stream);
      if (p.received !== p.total || p.fds.length !== p.totalFds) {
        this.close(p.fds);
        out.push(malformed('the last fragment arrived before the whole message'));
        return;
      }
      out.push({ body: p.body!, fds: p.fds });
    }
  }

  /**
   * Moves every partial message out as packets that re-create it (the parser forgets them).
   * Over-limit messages being discarded are dropped.
   */
  exportPartials(): OutPacket[] {
    const out: OutPacket[] = [];
    for (const [stream, p] of this.partials) {
      if (p.error || !p.body) this.close(p.fds);
      else out.push(...partialPackets(stream, p));
    }
    this.partials.clear();
    return out;
  }

  private drop(stream: bigint, p: Partial): void {
    this.partials.delete(stream);
    this.close(p.fds);
    p.fds = [];
  }

  /** Releases everything held for partial messages (on close, or at end of file). */
  reset(): boolean {
    const had = this.partials.size > 0;
    for (const [stream, p] of this.partials) this.drop(stream, p);
    return had;
  }
}

export function malformed(what: string): IpcError {
  return new IpcError('MALFORMED', `malformed message from the peer: ${what}`);
}

function tooLarge(what: string): IpcError {
  return new IpcError('TOO_LARGE', `message refused: ${what}`);
}
