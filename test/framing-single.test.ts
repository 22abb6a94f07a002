// The receive loop's fast path for the common packet (one RECORDS packet holding one record,
// taken where it landed in the arena, PacketParser.parseSingleRecord) against the general
// parse(): for any bytes, it either declines and touches nothing, or yields exactly what parse()
// yields (the same record bytes and descriptors, or the same error), and accepts the ordinary
// packets the sender writes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpcError } from '../src/shared/index.js';
import { NO_FDS, PacketParser, copyParts, fdList, singleRecordPacket } from '../src/main/framing.js';
import type { ParsedItem } from '../src/main/framing.js';

const SEED = Number(process.env.FC_SEED ?? 20_261_204);
const LIMITS = { maxMessageBytes: 200, maxHandles: 2 };

/** What an item is, comparably: a record's body bytes and descriptors, or an error's code and message. */
function describeItem(it: ParsedItem): unknown {
  if (it instanceof IpcError) return { code: it.code, message: it.message };
  if (it instanceof Error) return { error: it.message };
  return { body: Array.from(it.body), fds: [...fdList(it.fds)], sections: it.sections };
}

/** The bytes of one packet of the sender's own framing (one record of `body`). */
function packetOf(body: Uint8Array, nfds: number): Uint8Array {
  const p = singleRecordPacket([body], body.byteLength, new Array<number>(nfds).fill(-1));
  return copyParts(p.parts, 0, p.parts.reduce((n, x) => n + x.byteLength, 0));
}

/** Runs the fast path on `packet` placed at `off` in a bigger buffer, and parse() on a copy. */
function both(packet: Uint8Array, off: number, nfds: number) {
  const closedFast: number[] = [];
  const closedSlow: number[] = [];
  const fast = new PacketParser(LIMITS, (fds) => closedFast.push(...fdList(fds)));
  const slow = new PacketParser(LIMITS, (fds) => closedSlow.push(...fdList(fds)));
  const buf = new Uint8Array(off + packet.byteLength + 16).fill(0xee);
  buf.set(packet, off);
  const fds = nfds === 0 ? NO_FDS : Array.from({ length: nfds }, (_, i) => 100 + i);
  const fastOut: ParsedItem[] = [];
  const took = fast.parseSingleRecord(buf, off, packet.byteLength, nfds === 0 ? fds : [...fds], fastOut);
  const slowOut: ParsedItem[] = [];
  slow.parse(packet.slice(), nfds === 0 ? fds : [...fds], 0, slowOut);
  return { took, fast: fastOut.map(describeItem), slow: slowOut.map(describeItem), closedFast, closedSlow };
}

describe('the single-record fast path of the receive loop', () => {
  it('takes the packets the sender writes, yielding what parse() yields', () => {
    for (const len of [0, 1, 7, 8, 9, 80, 199, 200, 201, 1000]) {
      for (const nfds of [0, 1, 2, 3]) {
        const body = Uint8Array.from({ length: len }, (_, i) => (i * 7) & 255);
        const r = both(packetOf(body, nfds), 24, nfds);
        expect(r.took).toBe(true);
        expect(r.fast).toEqual(r.slow);
        expect(r.closedFast).toEqual(r.closedSlow);
      }
    }
    // Over the limits: one TOO_LARGE each, its descriptors closed.
    expect(both(packetOf(new Uint8Array(201), 0), 0, 0).fast).toEqual([expect.objectContaining({ code: 'TOO_LARGE' })]);
    const many = both(packetOf(new Uint8Array(8), 3), 0, 3);
    expect(many.fast).toEqual([expect.objectContaining({ code: 'TOO_LARGE' })]);
    expect(many.closedFast).toEqual([100, 101, 102]);
  });

  it('declines, touching nothing, or yields exactly what parse() yields, for any bytes', () => {
    // Packets near the valid shape: a sender's packet with bytes changed, cut or extended.
    const mutated = fc
      .record({
        len: fc.integer({ min: 0, max: 260 }),
        nfds: fc.integer({ min: 0, max: 3 }),
        claimedFds: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
        pokes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        cut: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: -20, max: 20 }), weight: 1 }),
        off: fc.integer({ min: 0, max: 64 }),
      })
      .map(({ len, nfds, claimedFds, pokes, cut, off }) => {
        let p = packetOf(new Uint8Array(len).fill(5), claimedFds ?? nfds);
        for (const [at, v] of pokes) p[at % 24] = v; // the packet and record headers
        if (cut < 0) p = p.subarray(0, Math.max(0, p.byteLength + cut));
        else if (cut > 0) {
          const longer = new Uint8Array(p.byteLength + cut);
          longer.set(p);
          p = longer;
        }
        return { p, nfds, off };
      });
    const random = fc.record({ p: fc.uint8Array({ maxLength: 64 }), nfds: fc.integer({ min: 0, max: 2 }), off: fc.integer({ min: 0, max: 8 }) });
    fc.assert(
      fc.property(fc.oneof(mutated, random), ({ p, nfds, off }) => {
        const r = both(p, off, nfds);
        if (!r.took) {
          expect(r.closedFast).toEqual([]);
          return;
        }
        expect(r.fast).toEqual(r.slow);
        expect(r.closedFast).toEqual(r.closedSlow);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('declines packets of two records and other packet types, which parse() handles', () => {
    const a = packetOf(Uint8Array.of(1, 2, 3), 0);
    const b = packetOf(Uint8Array.of(4), 0);
    const two = new Uint8Array(a.byteLength + b.byteLength - 8);
    two.set(a);
    two.set(b.subarray(8), a.byteLength); // b's record after a's, under a's packet header
    const r = both(two, 0, 0);
    expect(r.took).toBe(false);
    expect(r.slow).toHaveLength(2);
    // A record claiming 2^32 - 7 bytes, whose padded length wraps to 0 in 32-bit arithmetic.
    const huge = packetOf(new Uint8Array(0), 0);
    new DataView(huge.buffer).setUint32(8, 0xfffffff9, true);
    const h = both(huge, 0, 0);
    expect(h.took).toBe(false);
    expect(h.slow).toEqual([expect.objectContaining({ code: 'MALFORMED' })]);
    const fragment = packetOf(Uint8Array.of(1), 0);
    fragment[4] = 2; // another packet type
    expect(both(fragment, 0, 0).took).toBe(false);
  });
});
