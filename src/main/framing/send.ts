/**
 * The sending side of the framing layer: one-record packets, batches of small records in
 * pooled buffers, and the fragments of messages too big for one packet.
 */
import {
  FRAGMENT_HEADER,
  FRAG_FIRST,
  FRAG_LAST,
  MAGIC,
  MAX_FDS_PER_PACKET,
  MAX_PACKET_BYTES,
  PACKET_HEADER,
  RECORDS_HEADER,
  RECORD_HEADER,
  TYPE_FRAGMENT,
  TYPE_RECORDS,
  VERSION,
  ZEROS,
  pad8,
} from './wire.js';
import type { OutPacket } from './wire.js';

// Off-heap (ArrayBuffer-backed) scratch for the immediate send path: small typed arrays made
// with `new Uint8Array(n)` live on the V8 heap and cost an extra copy when the addon reads them.
const IMMEDIATE_HEADER = new Uint8Array(new ArrayBuffer(PACKET_HEADER + RECORD_HEADER));
const IMMEDIATE_VIEW = new DataView(IMMEDIATE_HEADER.buffer);
const OFFHEAP_ZEROS = new Uint8Array(new ArrayBuffer(8));
/** k bytes of padding (off-heap zeros), for k from 0 to 7. */
const PADDING: Uint8Array[] = Array.from({ length: 8 }, (_, k) => OFFHEAP_ZEROS.subarray(0, k));
const ONE_PART: Uint8Array[] = [IMMEDIATE_HEADER, IMMEDIATE_HEADER];
const ONE_PART_PADDED: Uint8Array[] = [IMMEDIATE_HEADER, IMMEDIATE_HEADER, OFFHEAP_ZEROS];

/**
 * Packets up to this size (headers and padding included) are copied into one reused off-heap
 * scratch and written as one part: for the addon, each further part of a sendmsg costs more
 * (an element read, a typed-array check and its buffer's lookup through Node-API) than copying
 * a few kilobytes in JavaScript does.
 */
const IMMEDIATE_COPY_BYTES = 4096;
export const IMMEDIATE_SCRATCH = new Uint8Array(new ArrayBuffer(IMMEDIATE_COPY_BYTES));
const IMMEDIATE_SCRATCH_VIEW = new DataView(IMMEDIATE_SCRATCH.buffer);
/**
 * The one-part array of a copied packet, by its length / 8 (lengths are multiples of 8): made
 * on first use and reused, so a copied send allocates nothing (a view costs more than the copy).
 */
const IMMEDIATE_COPIES: Array<Uint8Array[] | undefined> = new Array<Uint8Array[] | undefined>(IMMEDIATE_COPY_BYTES / 8 + 1).fill(undefined);

/**
 * Where a sender encodes a small body in place (codec encodeMessageInto): the immediate scratch
 * past the packet and record headers, so that an immediate send copies nothing. Valid until the
 * next send of this thread: write() takes it at once.
 */
export const IMMEDIATE_BODY = IMMEDIATE_SCRATCH.subarray(PACKET_HEADER + RECORD_HEADER);
/** One-part arrays of IMMEDIATE_BODY's first bytes, by length / 8 (made on first use, reused). */
const IMMEDIATE_BODIES: Array<Uint8Array[] | undefined> = new Array<Uint8Array[] | undefined>(IMMEDIATE_COPY_BYTES / 8 + 1).fill(undefined);

/** The parts of a body of `bytes` (a multiple of 8) encoded in IMMEDIATE_BODY. */
export function inPlaceParts(bytes: number): Uint8Array[] {
  return (IMMEDIATE_BODIES[bytes >>> 3] ??= [IMMEDIATE_BODY.subarray(0, bytes)]);
}

/**
 * Builds the RECORDS packet holding one record of `bytes` (the parts' sum) with `fdCount`
 * descriptors in IMMEDIATE_SCRATCH when it fits there (copying the parts, unless the body was
 * encoded in place): returns its length, else 0 (nothing written). Valid until the next send of
 * this thread.
 */
export function copyImmediate(parts: Uint8Array[], bytes: number, fdCount: number): number {
  const padded = pad8(bytes);
  const total = PACKET_HEADER + RECORD_HEADER + padded;
  if (total > IMMEDIATE_COPY_BYTES) return 0;
  const out = IMMEDIATE_SCRATCH;
  let at = PACKET_HEADER + RECORD_HEADER;
  // A body encoded in place (the parts inPlaceParts gave) is there already: told by identity,
  // with no `.buffer` of a view to look up. Any other part is copied (a view of the scratch too:
  // set() copies overlapping memory correctly).
  const inPlace = parts === IMMEDIATE_BODIES[bytes >>> 3] && parts[0]!.byteLength === bytes;
  if (inPlace) at += bytes;
  for (let i = 0; i < parts.length && !inPlace; i++) {
    const part = parts[i]!;
    // `bytes` is the parts' sum; a caller that got it wrong is sent as parts instead.
    if (at + part.byteLength > total) return 0;
    out.set(part, at);
    at += part.byteLength;
  }
  if (at !== PACKET_HEADER + RECORD_HEADER + bytes) return 0;
  // The padding is zeros, never what an earlier (longer) packet left in the scratch.
  for (; at < total; at++) out[at] = 0;
  const v = IMMEDIATE_SCRATCH_VIEW;
  v.setUint32(0, MAGIC, true);
  out[4] = TYPE_RECORDS;
  out[5] = VERSION;
  out[6] = 0;
  out[7] = 0;
  v.setUint32(PACKET_HEADER, bytes, true);
  v.setUint32(PACKET_HEADER + 4, fdCount, true);
  return total;
}

/**
 * The parts of a RECORDS packet holding one record, for a sendmsg made right away: the header
 * (or, for a small packet, the whole packet copied into one part) and the returned array are
 * reused by the next call, so they must be handed to the transport before anything else sends.
 */
export function immediateRecordParts(parts: Uint8Array[], bytes: number, fdCount: number): Uint8Array[] {
  const total = copyImmediate(parts, bytes, fdCount);
  if (total > 0) return (IMMEDIATE_COPIES[total >>> 3] ??= [IMMEDIATE_SCRATCH.subarray(0, total)]);
  const padded = pad8(bytes);
  if (IMMEDIATE_VIEW.getUint32(0, true) !== MAGIC) {
    IMMEDIATE_VIEW.setUint32(0, MAGIC, true);
    IMMEDIATE_HEADER[4] = TYPE_RECORDS;
    IMMEDIATE_HEADER[5] = VERSION;
  }
  IMMEDIATE_VIEW.setUint32(PACKET_HEADER, bytes, true);
  IMMEDIATE_VIEW.setUint32(PACKET_HEADER + 4, fdCount, true);
  const padding = padded - bytes;
  // One part (most messages): a reused array of fixed length, no array built or resized.
  if (parts.length === 1) {
    if (padding === 0) {
      ONE_PART[1] = parts[0]!;
      return ONE_PART;
    }
    ONE_PART_PADDED[1] = parts[0]!;
    ONE_PART_PADDED[2] = PADDING[padding]!;
    return ONE_PART_PADDED;
  }
  const out: Uint8Array[] = [IMMEDIATE_HEADER];
  for (let i = 0; i < parts.length; i++) out.push(parts[i]!);
  if (padding) out.push(PADDING[padding]!);
  return out;
}

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
 * Full-size (MAX_PACKET_BYTES) batch buffers of this thread, reused. A sender under load queues
 * a full batch every 128 KiB; allocating each one afresh (and growing the next one from 4 KiB by
 * doubling) churns the allocator, which keeps RSS growing long after the bytes were freed.
 */
const packetPool: Uint8Array[] = [];
/** At most this many idle buffers are kept per thread (4 MiB). */
const PACKET_POOL_MAX = 32;
/** Records up to this many bytes are batched in a sender's own small buffer. */
const SMALL_BATCH_BYTES = 4096;

function acquirePacketBuffer(): Uint8Array {
  return packetPool.pop() ?? new Uint8Array(MAX_PACKET_BYTES);
}

/** Gives a buffer from a queued batch (OutPacket.pooled) back once its packet was written or dropped. */
export function releasePacketBuffer(buf: Uint8Array): void {
  if (buf.byteLength === MAX_PACKET_BYTES && packetPool.length < PACKET_POOL_MAX) packetPool.push(buf);
}

/**
 * Builds RECORDS packets holding several small records, copying each body in, so that a burst of
 * sends costs one system call per packet instead of one per message.
 */
export class RecordBatcher {
  /** This batcher's own small buffer, and the one in use (the small one or a pooled full-size one). */
  private readonly small = new Uint8Array(SMALL_BATCH_BYTES);
  private buf: Uint8Array = this.small;
  private view = new DataView(this.buf.buffer);
  private len = 0;
  private fds: number[] = [];

  get empty(): boolean {
    return this.len === 0;
  }

  /** Bytes of the packet being filled (0 when empty). */
  get bytes(): number {
    return this.len;
  }

  /** Whether a record of this size and descriptor count still fits in the current packet. */
  fits(bytes: number, fdCount: number): boolean {
    const base = this.len === 0 ? PACKET_HEADER : this.len;
    return base + RECORD_HEADER + pad8(bytes) <= MAX_PACKET_BYTES && this.fds.length + fdCount <= MAX_FDS_PER_PACKET;
  }

  add(parts: Uint8Array[], bytes: number, fds: number[]): void {
    if (this.len === 0) this.len = PACKET_HEADER;
    const need = this.len + RECORD_HEADER + pad8(bytes);
    if (need > this.buf.length) this.use(acquirePacketBuffer());
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

  /** Continues the packet built so far in `next`. */
  private use(next: Uint8Array): void {
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** The packet built so far, without copying (valid until the next add/reset/take). */
  current(): { bytes: Uint8Array; fds: number[] } {
    this.buf.set(RECORDS_HEADER, 0);
    return { bytes: this.buf.subarray(0, this.len), fds: this.fds };
  }

  /** Drops the packet built so far (after it was written from `current()`). */
  reset(): void {
    this.len = 0;
    if (this.fds.length > 0) this.fds = [];
  }

  /**
   * Takes the packet built so far (undefined when empty) and starts a new one. A full-size
   * buffer is handed over as is (`pooled`: release it once written); a small one is copied.
   */
  take(): OutPacket | undefined {
    if (this.len === 0) return undefined;
    let out: OutPacket;
    this.buf.set(RECORDS_HEADER, 0);
    if (this.buf === this.small) {
      out = { parts: [this.buf.slice(0, this.len)], fds: this.fds };
    } else {
      out = { parts: [this.buf.subarray(0, this.len)], fds: this.fds, pooled: this.buf };
      // A sender that queues a full batch is in a burst: the next batch gets a full-size buffer too.
      this.buf = acquirePacketBuffer();
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    this.len = 0;
    this.fds = [];
    return out;
  }

  /** Once nothing waits: an empty full-size buffer goes back to the thread's pool. */
  idle(): void {
    if (this.len !== 0 || this.buf === this.small) return;
    releasePacketBuffer(this.buf);
    this.buf = this.small;
    this.view = new DataView(this.small.buffer);
  }
}

/** One fragment of a message: its header, and which bytes and descriptors it carries. */
export interface Fragment {
  header: Uint8Array;
  /** Offset of its bytes in the message body. */
  offset: number;
  bytes: number;
  /** Index of its first descriptor in the message's descriptor list, and how many it carries. */
  fdStart: number;
  fdCount: number;
}

/**
 * Plans the FRAGMENT packets of one message: at most MAX_PACKET_BYTES and MAX_FDS_PER_PACKET
 * descriptors each, descriptors in the first packets.
 */
export function planFragments(streamId: bigint, seq: number, bytes: number, fdCount: number, packetBytes = MAX_PACKET_BYTES): Fragment[] {
  const chunk = packetBytes - FRAGMENT_HEADER;
  const out: Fragment[] = [];
  let offset = 0;
  let fdAt = 0;
  for (;;) {
    const n = Math.min(chunk, bytes - offset);
    const nfds = Math.min(MAX_FDS_PER_PACKET, fdCount - fdAt);
    const header = new Uint8Array(new ArrayBuffer(FRAGMENT_HEADER));
    const v = new DataView(header.buffer);
    v.setUint32(0, MAGIC, true);
    header[4] = TYPE_FRAGMENT;
    header[5] = VERSION;
    v.setBigUint64(8, streamId, true);
    v.setUint32(16, seq, true);
    v.setUint32(20, nfds, true);
    v.setBigUint64(24, BigInt(bytes), true);
    v.setBigUint64(32, BigInt(offset), true);
    v.setUint32(40, fdCount, true);
    const last = offset + n >= bytes && fdAt + nfds >= fdCount;
    v.setUint32(44, (offset === 0 ? FRAG_FIRST : 0) | (last ? FRAG_LAST : 0), true);
    out.push({ header, offset, bytes: n, fdStart: fdAt, fdCount: nfds });
    offset += n;
    fdAt += nfds;
    if (last) return out;
  }
}

/** Views of bytes [offset, offset + n) of the concatenation of `parts` (no copy). */
export function sliceParts(parts: Uint8Array[], offset: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of parts) {
    const end = at + p.byteLength;
    if (end > offset && n > 0) {
      const from = Math.max(0, offset - at);
      const take = Math.min(p.byteLength - from, n);
      out.push(p.subarray(from, from + take));
      offset += take;
      n -= take;
    }
    at = end;
    if (n === 0) break;
  }
  return out;
}

/** A copy of bytes [offset, offset + n) of the concatenation of `parts`, in one buffer. */
export function copyParts(parts: Uint8Array[], offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const v of sliceParts(parts, offset, n)) {
    out.set(v, at);
    at += v.byteLength;
  }
  return out;
}

/**
 * The FRAGMENT packets of one message, with its bytes copied (so the caller's memory may
 * change afterwards) into one buffer that the packets view.
 */
export function fragmentPackets(streamId: bigint, seq: number, parts: Uint8Array[], bytes: number, fds: number[]): OutPacket[] {
  const copy = copyParts(parts, 0, bytes);
  return planFragments(streamId, seq, bytes, fds.length).map((f) => ({
    parts: [f.header, copy.subarray(f.offset, f.offset + f.bytes)],
    fds: fds.slice(f.fdStart, f.fdStart + f.fdCount),
  }));
}
