/**
 * Unfinished fragmented messages: the budgets they share, where their bytes go (split by the
 * codec's layout for big ones), and the packets that re-create one for another process.
 */
import { readFileSync } from 'node:fs';
import type { Limits } from '../../shared/limits.js';
import {
  FRAGMENT_HEADER,
  FRAG_FIRST,
  MAGIC,
  MAX_FDS_PER_PACKET,
  MAX_PACKET_BYTES,
  PARTIAL_BYTES_BUDGET,
  PARTIAL_FDS_BUDGET,
  TYPE_FRAGMENT,
  VERSION,
} from './wire.js';
import type { OutPacket } from './wire.js';

/** Limits the packet parser enforces while reassembling: two of the receiver's {@link Limits}, and the budgets. */
export interface FramingLimits extends Pick<Limits, 'maxMessageBytes' | 'maxHandles'> {
  /** Descriptors kept for unfinished fragmented messages together; default from {@link partialBudgets}. */
  maxPartialHandles?: number;
  /** Bytes kept for unfinished fragmented messages together; default from {@link partialBudgets}. */
  maxPartialBytes?: number;
}

/** What a receiver keeps for its unfinished fragmented messages, all of them together. */
export interface PartialBudgets {
  fds: number;
  bytes: number;
}

let openFileLimitCache: number | undefined;

/**
 * The soft RLIMIT_NOFILE of this process, read once (from /proc/self/limits); Infinity when it
 * is unlimited or cannot be read.
 */
export function openFileLimit(): number {
  if (openFileLimitCache === undefined) {
    openFileLimitCache = Infinity;
    try {
      const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      if (m) openFileLimitCache = Number(m[1]);
    } catch {
      // No /proc (or no access): the default budget alone applies.
    }
  }
  return openFileLimitCache;
}

/**
 * The budgets of unfinished fragmented messages for a receiver with these limits (read at each
 * new message, so limits changed later apply): descriptors `maxPartialHandles`, else
 * max(PARTIAL_FDS_BUDGET, maxHandles) but at most a quarter of RLIMIT_NOFILE; bytes
 * `maxPartialBytes`, else max(PARTIAL_BYTES_BUDGET, 2 × maxMessageBytes).
 */
export function partialBudgets(limits: FramingLimits): PartialBudgets {
  const fds = limits.maxPartialHandles ?? Math.max(1, Math.min(Math.max(PARTIAL_FDS_BUDGET, limits.maxHandles), Math.floor(openFileLimit() / 4)));
  const bytes = limits.maxPartialBytes ?? Math.max(PARTIAL_BYTES_BUDGET, 2 * limits.maxMessageBytes);
  return { fds, bytes };
}

/**
 * Fragments that re-create the first `received` bytes of a partial message (for handing a
 * receiver with a message half read to another process); the rest follows from the sender.
 */
export function partialPackets(stream: bigint, p: { seq: number; total: number; totalFds: number; received: number; segs?: Segment[]; fds: number[] }): OutPacket[] {
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
    let at = FRAGMENT_HEADER;
    for (const v of sliceSegments(p.segs!, offset, n)) {
      pkt.set(v, at);
      at += v.byteLength;
    }
    out.push({ parts: [pkt], fds: p.fds.slice(fdAt, fdAt + nfds) });
    offset += n;
    fdAt += nfds;
  } while (offset < p.received || fdAt < p.fds.length);
  return out;
}

/** A run of body bytes [start, end) and the buffer that holds them. */
export interface Segment {
  start: number;
  end: number;
  dest: Uint8Array;
}

/** An unfinished fragmented message being reassembled. */
export interface Partial {
  seq: number;
  total: number;
  totalFds: number;
  received: number;
  /** Where the body's bytes go. */
  segs?: Segment[];
  /** Split mode: the head and the sections the segments point into; else the whole body. */
  head?: Uint8Array;
  sections?: Uint8Array[];
  body?: Uint8Array;
  fds: number[];
  /** Its share of the budgets, reserved from its announced totals on its first fragment. */
  heldFds: number;
  heldBytes: number;
  /** The parser's packet count and the time when its last fragment came (to find stale ones). */
  touched: number;
  touchedAt: number;
  /** Made from a peeked first fragment (prepareFirst): that fragment itself is still to come. */
  awaitingFirst?: boolean;
}

/** Where the codec puts binary sections in a body (codec.bodyLayout), for split reassembly. */
export type LayoutOf = (prefix: Uint8Array, total: number) => { headBytes: number; sections: Array<{ offset: number; length: number }> } | undefined;

/** Messages at least this big are reassembled split by their layout. */
export const SPLIT_MIN_BYTES = 64 * 1024;
/** Receiving in place is worth it while at least this much of a message is still to come. */
export const DIRECT_MIN_BYTES = 16 * 1024;
/** Padding bytes between sections go nowhere in particular (at most 7 at a time). */
export const PAD_SINK = new Uint8Array(8);

/**
 * A buffer of its own for `n` bytes that will all be overwritten before anyone sees them (a
 * message is delivered only when every byte arrived), so it is not zeroed first: zeroing a big
 * buffer costs as much as filling it.
 */
export function uninitialized(n: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
}

/** Views of body bytes [offset, offset + n) in the segments' buffers. */
export function sliceSegments(segs: Segment[], offset: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of segs) {
    if (n <= 0) break;
    if (s.end <= offset) continue;
    const from = offset - s.start;
    const take = Math.min(s.end - offset, n);
    out.push(s.dest.subarray(from, from + take));
    offset += take;
    n -= take;
  }
  return out;
}

/** Copies `chunk` into the segments from body offset `offset`. */
export function scatter(segs: Segment[], offset: number, chunk: Uint8Array): void {
  let at = 0;
  for (const v of sliceSegments(segs, offset, chunk.byteLength)) {
    v.set(chunk.subarray(at, at + v.byteLength));
    at += v.byteLength;
  }
}
