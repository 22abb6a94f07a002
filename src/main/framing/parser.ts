/**
 * The receiving side of the framing layer: packets in, records (or one error per bad message) out.
 */
import { getU32 } from '../../shared/codec/format.js';
import { IpcError } from '../../shared/errors.js';
import { PACKET_DESYNC } from '../native.js';
import {
  DIRECT_MIN_BYTES,
  PAD_SINK,
  SPLIT_MIN_BYTES,
  partialBudgets,
  partialPackets,
  scatter,
  sliceSegments,
  uninitialized,
} from './partial.js';
import type { FramingLimits, LayoutOf, Partial, PartialBudgets, Segment } from './partial.js';
import {
  FRAGMENT_HEADER,
  FRAG_FIRST,
  FRAG_LAST,
  MAGIC,
  MAX_PARTIAL_STREAMS,
  MAX_RECV_PACKET_BYTES,
  NO_FDS,
  PACKET_HEADER,
  RECORD_HEADER,
  STALE_MS,
  STALE_PACKETS,
  SWITCH_SECRET_BYTES,
  TYPE_FRAGMENT,
  TYPE_RECORDS,
  TYPE_SWITCH,
  VERSION,
  fdCount,
  fdSlice,
  malformed,
  pad8,
  tooLarge,
} from './wire.js';
import type { OutPacket, ParsedItem, RecordFds, SwitchItem } from './wire.js';

/**
 * The last body view {@link PacketParser.parseSingleRecord} made, and what of: the receive arena
 * gives a decoded message's bytes back (rewindArena in endpoint/receiver-reading.ts), so the next
 * small message mostly lands at the same offset with the same length, and the same view serves
 * (a new view costs ~400 instructions and 96 bytes). A view never changes, and two records alive
 * at once never hold the same bytes, so a record holding the view of a record already taken
 * holds exactly its own bytes.
 */
let lastView: Uint8Array | undefined;
let lastViewOf: Uint8Array | undefined;
let lastViewStart = -1;
let lastViewLength = -1;

/** `buf.subarray(start, start + length)`, or the same view as last time when it is one. */
function viewOf(buf: Uint8Array, start: number, length: number): Uint8Array {
  if (buf === lastViewOf && start === lastViewStart && length === lastViewLength) return lastView!;
  lastViewOf = buf;
  lastViewStart = start;
  lastViewLength = length;
  return (lastView = buf.subarray(start, start + length));
}

/** Messages whose remaining fragments are consumed silently (already reported), at most this many kept. */
const MAX_TOMBSTONES = 1024;

/** What an error about unfinished messages tells the application to do. */
const ADVICE =
  'Too many large fragmented messages are unfinished at once on this receiver (a peer may leave them unfinished on purpose): ' +
  'give each untrusted process its own channel rather than a clone of a shared sender';

/**
 * Turns packets into records. Every descriptor it is given ends up either in a yielded record
 * or in `close` (the caller closes those), so nothing leaks. Unfinished fragmented messages
 * (one per stream, at most MAX_PARTIAL_STREAMS) together hold at most the descriptors and bytes
 * of `partialBudgets(limits)`; see makeRoom for who gives way when a new one does not fit.
 */
export class PacketParser {
  /** Unfinished messages being reassembled, by stream: each holds its share of the budgets. */
  private partials = new Map<bigint, Partial>();
  /** Streams whose current message was reported already: its other fragments are dropped silently. */
  private tombstones = new Map<bigint, number>();
  /** Descriptors and bytes reserved by the messages in `partials`. */
  private heldFds = 0;
  private heldBytes = 0;
  /** Packets parsed so far (a clock for staleness that runs only while the peer sends). */
  private clock = 0;

  constructor(
    private readonly limits: FramingLimits,
    private readonly close: (fds: RecordFds) => void,
    private readonly layoutOf?: LayoutOf,
  ) {}

  /**
   * Parses one packet; `fds` are the descriptors that came with it (a record takes them in the
   * same form: none, one as a number, else an array). Returns a SwitchItem for a valid SWITCH
   * packet (which the caller acts on), else undefined.
   */
  parse(packet: Uint8Array, fds: RecordFds, flags: number, out: ParsedItem[]): SwitchItem | undefined {
    this.clock++;
    if (flags !== 0) {
      this.close(fds);
      // The stream transport's account of a stream out of step (its bytes are the addon's, not the peer's).
      out.push(malformed(flags & PACKET_DESYNC ? new TextDecoder().decode(packet) : flags & 1 ? `a packet larger than ${MAX_RECV_PACKET_BYTES} bytes was truncated` : 'descriptors that came with a packet were dropped on the way (MSG_CTRUNC: this process is out of descriptors, or on Windows handles it could not take)'));
      return;
    }
    if (packet.byteLength < PACKET_HEADER) {
      this.close(fds);
      out.push(malformed(packet.byteLength === 0 ? 'an empty packet' : `a packet of ${packet.byteLength} bytes is shorter than its header`));
      return;
    }
    if (getU32(packet, 0) !== MAGIC || packet[5] !== VERSION || packet[6] !== 0 || packet[7] !== 0) {
      this.close(fds);
      out.push(malformed('a packet with a bad magic number, version or reserved bytes'));
      return;
    }
    if (packet[4] === TYPE_RECORDS) this.parseRecords(packet, fds, out);
    else if (packet[4] === TYPE_FRAGMENT) this.parseFragment(packet, new DataView(packet.buffer, packet.byteOffset, packet.byteLength), fds, out);
    else if (packet[4] === TYPE_SWITCH) {
      if (packet.byteLength === PACKET_HEADER + SWITCH_SECRET_BYTES && fdCount(fds) === 1) {
        return { switchTo: typeof fds === 'number' ? fds : fds[0]!, secret: Buffer.from(packet.buffer, packet.byteOffset + PACKET_HEADER, SWITCH_SECRET_BYTES).toString('hex') };
      }
      this.close(fds);
      out.push(malformed(`a switch packet must be ${PACKET_HEADER + SWITCH_SECRET_BYTES} bytes with exactly one descriptor`));
    } else {
      this.close(fds);
      out.push(malformed(`a packet of unknown type ${packet[4]}`));
    }
  }

  /**
   * The common packet, taken where it landed: `len` bytes at `off` in `buf`, received without
   * flags, a RECORDS packet holding exactly one record. Pushes that record (or the TOO_LARGE
   * error it stands for) to `out` and returns true, exactly as parse() of the packet would; any
   * other packet returns false, touching nothing (the caller then calls parse()). Saves the
   * packet's view and the second pass over its records.
   */
  parseSingleRecord(buf: Uint8Array, off: number, len: number, fds: RecordFds, out: ParsedItem[]): boolean {
    if (len < PACKET_HEADER + RECORD_HEADER || buf[off + 4] !== TYPE_RECORDS || buf[off + 5] !== VERSION || buf[off + 6] !== 0 || buf[off + 7] !== 0) return false;
    if (getU32(buf, off) !== MAGIC) return false;
    const at = off + PACKET_HEADER;
    const recLen = getU32(buf, at);
    const nfds = getU32(buf, at + 4);
    // Exactly one record (a longer packet holds more, a shorter one is malformed: parse() says how).
    if (recLen > len - PACKET_HEADER - RECORD_HEADER || PACKET_HEADER + RECORD_HEADER + pad8(recLen) !== len || nfds !== fdCount(fds)) return false;
    this.clock++;
    if (recLen > this.limits.maxMessageBytes) {
      this.close(fds);
      out.push(tooLarge(`a message of ${recLen} bytes exceeds this receiver's maxMessageBytes (${this.limits.maxMessageBytes})`));
    } else if (nfds > this.limits.maxHandles) {
      this.close(fds);
      out.push(tooLarge(`a message with ${nfds} descriptors exceeds this receiver's maxHandles (${this.limits.maxHandles})`));
    } else {
      const bodyAt = at + RECORD_HEADER;
      out.push({ body: viewOf(buf, bodyAt, recLen), fds });
    }
    return true;
  }

  private parseRecords(packet: Uint8Array, fds: RecordFds, out: ParsedItem[]): void {
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
      const len = getU32(packet, at);
      const nfds = getU32(packet, at + 4);
      if (len > packet.byteLength - at - RECORD_HEADER) {
        problem = `a record claims ${len} bytes but its packet holds ${packet.byteLength - at - RECORD_HEADER}`;
        break;
      }
      fdSum += nfds;
      count++;
      at += RECORD_HEADER + pad8(len);
    }
    if (!problem && count === 0) problem = 'a packet with no records';
    if (!problem && fdSum !== fdCount(fds)) problem = `records name ${fdSum} descriptors but the packet carried ${fdCount(fds)}`;
    if (problem) {
      this.close(fds);
      out.push(malformed(problem));
      return;
    }
    at = PACKET_HEADER;
    let fdAt = 0;
    while (at < packet.byteLength) {
      const len = getU32(packet, at);
      const nfds = getU32(packet, at + 4);
      const recFds = fdSlice(fds, fdAt, nfds);
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

  private parseFragment(packet: Uint8Array, v: DataView, fds: RecordFds, out: ParsedItem[]): void {
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
    const dropped = this.tombstones.get(stream);
    if (dropped !== undefined) {
      // The rest of a message already reported (bad, over a limit, refused or dropped for room)
      // is consumed silently: one error per message.
      if (!(flags & FRAG_FIRST) && seq === dropped) {
        this.close(fds);
        return;
      }
      if (flags & FRAG_FIRST) this.tombstones.delete(stream);
    }
    const p = this.partials.get(stream);
    if (p && seq !== p.seq && !(flags & FRAG_FIRST)) {
      // Bad itself; the message in progress is left intact.
      this.close(fds);
      out.push(malformed('a fragment from another message interleaved with a fragmented message'));
      return;
    }
    if (nfds !== fdCount(fds)) return this.fail(stream, p, seq, fds, out, `a fragment names ${nfds} descriptors but carried ${fdCount(fds)}`);
    if (flags & ~(FRAG_FIRST | FRAG_LAST)) return this.fail(stream, p, seq, fds, out, 'a fragment with unknown flags');
    if (flags & FRAG_FIRST) {
      if (p) {
        // The previous message of this sender never ended: it is dropped (one error), and the
        // new one is read on its own merits.
        this.drop(stream, p);
        out.push(malformed('a new fragmented message started before the previous one from the same sender ended'));
      }
      if (offset !== 0n) return this.fail(stream, undefined, seq, fds, out, 'a first fragment at a non-zero offset');
      const refused = this.admit(total, totalFds, out);
      if (refused) {
        // Refused on its first fragment: one error now, the rest of it consumed silently.
        this.close(fds);
        this.tombstone(stream, seq);
        out.push(refused);
        return;
      }
      const np: Partial = { seq, total: Number(total), totalFds, received: 0, fds: [], heldFds: totalFds, heldBytes: Number(total), touched: this.clock, touchedAt: performance.now() };
      try {
        this.allocate(np, chunk);
      } catch {
        this.close(fds);
        this.tombstone(stream, seq);
        out.push(tooLarge(`cannot allocate ${np.total} bytes for a message`));
        return;
      }
      this.hold(stream, np);
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
   * Checks a new fragmented message (announcing `total` bytes and `totalFds` descriptors) against
   * the per-message limits and the budgets of unfinished messages, and makes room for it if it
   * must. Returns the one error that stands for the message when it is refused, else undefined
   * (the caller then holds it with `hold`).
   */
  private admit(total: bigint, totalFds: number, out: ParsedItem[]): IpcError | undefined {
    const { maxMessageBytes, maxHandles } = this.limits;
    if (total > BigInt(maxMessageBytes)) return tooLarge(`a message of ${total} bytes exceeds this receiver's maxMessageBytes (${maxMessageBytes})`);
    if (totalFds > maxHandles) return tooLarge(`a message with ${totalFds} descriptors exceeds this receiver's maxHandles (${maxHandles})`);
    const budget = partialBudgets(this.limits);
    if (totalFds > budget.fds) {
      return tooLarge(
        `a fragmented message with ${totalFds} descriptors exceeds the ${budget.fds} descriptors this receiver keeps for unfinished messages ` +
          `(a quarter of this process's RLIMIT_NOFILE at most): raise the process's descriptor limit, or send fewer descriptors per message`,
      );
    }
    if (Number(total) > budget.bytes) {
      return tooLarge(`a fragmented message of ${total} bytes exceeds the ${budget.bytes} bytes this receiver keeps for unfinished messages`);
    }
    return this.makeRoom(Number(total), totalFds, budget, out);
  }

  /**
   * Makes room for a new message needing a table slot, `fds` descriptors and `bytes` bytes, by
   * dropping unfinished messages in this order: those idle the longest, once idle for
   * STALE_PACKETS packets or STALE_MS; then (max-min fairness) the one holding the most of what
   * is short, while it holds more than the newcomer would. Nothing is dropped unless that makes
   * the newcomer fit; each dropped message yields one TOO_LARGE. Returns the newcomer's error
   * when it cannot fit.
   */
  private makeRoom(bytes: number, fds: number, budget: PartialBudgets, out: ParsedItem[]): IpcError | undefined {
    let slots = this.partials.size;
    let heldFds = this.heldFds;
    let heldBytes = this.heldBytes;
    const fits = (): boolean => slots < MAX_PARTIAL_STREAMS && heldFds + fds <= budget.fds && heldBytes + bytes <= budget.bytes;
    if (fits()) return undefined;
    const now = performance.now();
    const candidates = [...this.partials];
    const victims: Array<{ stream: bigint; p: Partial; why: string }> = [];
    const take = (i: number, why: string): void => {
      const [stream, p] = candidates[i]!;
      candidates.splice(i, 1);
      victims.push({ stream, p, why });
      slots--;
      heldFds -= p.heldFds;
      heldBytes -= p.heldBytes;
    };
    // Stale first: a message no fragment came for while others arrived (or for a while) is
    // the likeliest to be abandoned.
    while (!fits() && candidates.length > 0) {
      let at = 0;
      for (let i = 1; i < candidates.length; i++) if (candidates[i]![1].touched < candidates[at]![1].touched) at = i;
      const p = candidates[at]![1];
      const idlePackets = this.clock - p.touched;
      const idleMs = Math.round(now - p.touchedAt);
      if (idlePackets < STALE_PACKETS && idleMs < STALE_MS) break;
      take(at, `no fragment of it came while this receiver read ${idlePackets} packets over ${idleMs} ms`);
    }
    // Max-min fairness: the biggest holder of what is short gives way to a smaller newcomer.
    while (!fits() && candidates.length > 0) {
      const short = heldFds + fds > budget.fds ? 'descriptors' : heldBytes + bytes > budget.bytes ? 'bytes' : undefined;
      if (!short) break; // only a table slot is short, and no message is stale
      const size = (p: Partial): number => (short === 'descriptors' ? p.heldFds : p.heldBytes);
      let at = 0;
      for (let i = 1; i < candidates.length; i++) if (size(candidates[i]![1]) > size(candidates[at]![1])) at = i;
      const held = size(candidates[at]![1]);
      if (held <= (short === 'descriptors' ? fds : bytes)) break;
      take(at, `it held the most ${short} (${held}) of the unfinished messages, and a smaller one needed room`);
    }
    if (!fits()) {
      return tooLarge(
        `no room for a fragmented message of ${bytes} bytes with ${fds} descriptors: unfinished messages hold ${this.partials.size} of ${MAX_PARTIAL_STREAMS} places, ` +
          `${this.heldFds} of ${budget.fds} descriptors and ${this.heldBytes} of ${budget.bytes} bytes, and none of them is idle or holds more. ${ADVICE}`,
      );
    }
    for (const v of victims) {
      this.drop(v.stream, v.p);
      this.tombstone(v.stream, v.p.seq);
      out.push(tooLarge(`an unfinished fragmented message of ${v.p.total} bytes with ${v.p.totalFds} descriptors was dropped to make room for another: ${v.why}. ${ADVICE}`));
    }
    return undefined;
  }

  /** Keeps `p` as the unfinished message of `stream`, reserving its share of the budgets. */
  private hold(stream: bigint, p: Partial): void {
    this.partials.set(stream, p);
    this.heldFds += p.heldFds;
    this.heldBytes += p.heldBytes;
  }

  /** Forgets the unfinished message of `stream` (its descriptors are the caller's) and releases its share. */
  private forget(stream: bigint, p: Partial): void {
    if (this.partials.get(stream) !== p) return;
    this.partials.delete(stream);
    this.heldFds -= p.heldFds;
    this.heldBytes -= p.heldBytes;
  }

  /**
   * Remembers that the rest of message `seq` of `stream` is to be consumed silently (it was
   * already reported). At most MAX_TOMBSTONES are kept, the oldest forgotten first: those hold
   * nothing but their entry.
   */
  private tombstone(stream: bigint, seq: number): void {
    this.tombstones.delete(stream);
    this.tombstones.set(stream, seq);
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value as bigint);
  }

  /**
   * Reports one bad message: closes the packet's descriptors and what the message held, and
   * remembers the message as failed (a tombstone holding nothing, until the sender's next first
   * fragment) so that its other fragments are consumed without further errors.
   */
  private fail(stream: bigint, p: Partial | undefined, seq: number, fds: RecordFds, out: ParsedItem[], why: string): void {
    this.close(fds);
    if (p) this.drop(stream, p);
    this.tombstone(stream, seq);
    out.push(malformed(why));
  }

  private continueFragment(
    stream: bigint,
    p: Partial,
    offset: bigint,
    total: bigint,
    totalFds: number,
    flags: number,
    chunk: Uint8Array | number,
    fds: RecordFds,
    out: ParsedItem[],
  ): void {
    // A number: that many bytes were already received in place (readDirect).
    const n = typeof chunk === 'number' ? chunk : chunk.byteLength;
    const bad = (why: string): void => this.fail(stream, p, p.seq, fds, out, why);
    if (total !== BigInt(p.total)) return bad('fragments of one message disagree on its size');
    if (totalFds !== p.totalFds) return bad('fragments of one message disagree on its descriptor count');
    if (offset !== BigInt(p.received)) return bad('a fragment out of order (offset mismatch)');
    if (p.received + n > p.total) return bad('fragments carry more bytes than their message size');
    if (p.fds.length + fdCount(fds) > p.totalFds) return bad('fragments carry more descriptors than their message names');
    if (typeof chunk !== 'number') scatter(p.segs!, p.received, chunk);
    p.received += n;
    if (typeof fds === 'number') p.fds.push(fds);
    else for (const fd of fds) p.fds.push(fd);
    p.touched = this.clock;
    p.touchedAt = performance.now();
    if (flags & FRAG_LAST) {
      this.forget(stream, p);
      if (p.received !== p.total || p.fds.length !== p.totalFds) {
        this.close(p.fds);
        out.push(malformed('the last fragment arrived before the whole message'));
        return;
      }
      // The record's form (none, one as a number, else the array).
      const whole = p.fds.length === 0 ? NO_FDS : p.fds.length === 1 ? p.fds[0]! : p.fds;
      out.push(p.sections ? { body: p.head!, sections: p.sections, fds: whole } : { body: p.body!, fds: whole });
    }
  }

  /**
   * Allocates where a message's body goes: split by the codec's layout when the message is big
   * and its layout is known from the first fragment (each binary section then lands in a buffer
   * of its own, which decoding adopts without a copy), else one buffer for the whole body.
   */
  private allocate(p: Partial, first: Uint8Array): void {
    const layout = p.total >= SPLIT_MIN_BYTES ? this.layoutOf?.(first, p.total) : undefined;
    if (!layout) {
      p.body = uninitialized(p.total);
      p.segs = [{ start: 0, end: p.total, dest: p.body }];
      return;
    }
    p.head = new Uint8Array(layout.headBytes);
    p.sections = layout.sections.map((sec) => uninitialized(sec.length));
    const segs: Segment[] = [{ start: 0, end: layout.headBytes, dest: p.head }];
    let at = layout.headBytes;
    layout.sections.forEach((sec, i) => {
      if (sec.offset > at) segs.push({ start: at, end: sec.offset, dest: PAD_SINK.subarray(0, sec.offset - at) });
      if (sec.length > 0) segs.push({ start: sec.offset, end: sec.offset + sec.length, dest: p.sections![i]! });
      at = sec.offset + sec.length;
    });
    if (p.total > at) segs.push({ start: at, end: p.total, dest: PAD_SINK.subarray(0, p.total - at) });
    p.segs = segs;
  }

  /**
   * When exactly one message is being reassembled and much of it is still to come: where its
   * next `maxBytes` bytes go, so that they can be received in place (see parseDirect).
   */
  directTarget(maxBytes: number): { stream: bigint; regions: Uint8Array[] } | undefined {
    if (this.partials.size !== 1) return undefined;
    const [stream, p] = this.partials.entries().next().value as [bigint, Partial];
    if (!p.segs || p.total - p.received < DIRECT_MIN_BYTES) return undefined;
    return { stream, regions: sliceSegments(p.segs, p.received, Math.min(p.total - p.received, maxBytes)) };
  }

  /**
   * From the peeked start of the next packet (`header`, then the first bytes of its chunk):
   * when it is the first fragment of a big message and nothing else is being reassembled, sets
   * up that message so that the fragment itself can be received in place (readDirect).
   * Returns false, changing nothing, otherwise (the packet is then read the usual way).
   */
  prepareFirst(header: Uint8Array, prefix: Uint8Array): boolean {
    if (this.partials.size !== 0) return false;
    const v = new DataView(header.buffer, header.byteOffset, FRAGMENT_HEADER);
    if (v.getUint32(0, true) !== MAGIC || header[4] !== TYPE_FRAGMENT || header[5] !== VERSION || header[6] !== 0 || header[7] !== 0) return false;
    const flags = v.getUint32(44, true);
    const total = v.getBigUint64(24, true);
    const totalFds = v.getUint32(40, true);
    if (flags !== FRAG_FIRST && flags !== (FRAG_FIRST | FRAG_LAST)) return false;
    if (v.getBigUint64(32, true) !== 0n || total < BigInt(SPLIT_MIN_BYTES)) return false;
    if (total > BigInt(this.limits.maxMessageBytes) || totalFds > this.limits.maxHandles) return false;
    const budget = partialBudgets(this.limits);
    if (totalFds > budget.fds || Number(total) > budget.bytes) return false;
    const stream = v.getBigUint64(8, true);
    if (this.tombstones.has(stream)) return false;
    const p: Partial = {
      seq: v.getUint32(16, true),
      total: Number(total),
      totalFds,
      received: 0,
      fds: [],
      heldFds: totalFds,
      heldBytes: Number(total),
      touched: this.clock,
      touchedAt: performance.now(),
      awaitingFirst: true,
    };
    try {
      this.allocate(p, prefix);
    } catch {
      return false;
    }
    this.hold(stream, p);
    return true;
  }

  /** Forgets a message set up by prepareFirst whose first fragment did not come as peeked. */
  unprepare(stream: bigint): void {
    const p = this.partials.get(stream);
    if (p?.awaitingFirst) this.forget(stream, p);
  }

  /**
   * A packet received in place for `directTarget(stream)`: `header` holds its first 48 bytes and
   * `n` more bytes went to the regions. Returns false, touching nothing, unless it is the next
   * fragment of that message (the caller then rebuilds the packet and calls parse()).
   */
  parseDirect(stream: bigint, header: Uint8Array, n: number, regionBytes: number, fds: RecordFds, flags: number, out: ParsedItem[]): boolean {
    const p = this.partials.get(stream);
    if (!p || flags !== 0 || n > regionBytes) return false;
    const v = new DataView(header.buffer, header.byteOffset, FRAGMENT_HEADER);
    if (v.getUint32(0, true) !== MAGIC || header[4] !== TYPE_FRAGMENT || header[5] !== VERSION || header[6] !== 0 || header[7] !== 0) return false;
    if (v.getBigUint64(8, true) !== stream || v.getUint32(16, true) !== p.seq) return false;
    const fflags = v.getUint32(44, true);
    if (Boolean(fflags & FRAG_FIRST) !== Boolean(p.awaitingFirst)) return false;
    if (v.getBigUint64(32, true) !== BigInt(p.received) || v.getUint32(20, true) !== fdCount(fds)) return false;
    if (fflags & ~(FRAG_FIRST | FRAG_LAST)) return false;
    p.awaitingFirst = false;
    this.clock++;
    this.continueFragment(stream, p, v.getBigUint64(32, true), v.getBigUint64(24, true), v.getUint32(40, true), fflags, n, fds, out);
    return true;
  }

  /**
   * Moves every partial message out as packets that re-create it (the parser forgets them).
   * Over-limit messages being discarded are dropped.
   */
  exportPartials(): OutPacket[] {
    const out: OutPacket[] = [];
    for (const [stream, p] of this.partials) {
      if (!p.segs || p.awaitingFirst) this.close(p.fds);
      else out.push(...partialPackets(stream, p));
    }
    this.partials.clear();
    this.tombstones.clear();
    this.heldFds = 0;
    this.heldBytes = 0;
    return out;
  }

  /** Forgets the unfinished message of `stream` and closes the descriptors it held. */
  private drop(stream: bigint, p: Partial): void {
    this.forget(stream, p);
    this.close(p.fds);
    p.fds = [];
  }

  /**
   * What unfinished messages hold now (for tests and diagnostics): how many there are, the
   * descriptors and bytes they reserved, and the descriptors they actually hold.
   */
  holding(): { messages: number; reservedFds: number; reservedBytes: number; fds: number } {
    let fds = 0;
    for (const p of this.partials.values()) fds += p.fds.length;
    return { messages: this.partials.size, reservedFds: this.heldFds, reservedBytes: this.heldBytes, fds };
  }

  /** True when no message is being reassembled. */
  get idle(): boolean {
    return this.partials.size === 0;
  }

  /** Releases everything held for partial messages (on close, or at end of file). */
  reset(): boolean {
    const had = this.partials.size > 0;
    for (const [stream, p] of this.partials) this.drop(stream, p);
    this.tombstones.clear();
    return had;
  }
}
