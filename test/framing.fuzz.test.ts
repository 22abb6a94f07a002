// Property tests of the packet parser plus body decoding: whatever packets and descriptors a
// peer sends, the parser yields only records or IpcError MALFORMED/TOO_LARGE, decoding a record
// yields a value or MALFORMED/TOO_LARGE, and every descriptor handed in ends up either in a
// yielded record or closed. Real descriptors (socketpairs and /dev/null) are used and the
// process's /proc/self/fd count is checked at the end.
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpcError, decodeMessage, encodeMessage, joinParts, peekHandleCount } from '../src/shared/index.js';
import {
  FRAGMENT_HEADER,
  PACKET_HEADER,
  PacketParser,
  RecordBatcher,
  fragmentPackets,
  singleRecordPacket,
} from '../src/main/framing.js';
import type { OutPacket, ParsedItem } from '../src/main/framing.js';
import { native } from '../src/main/native.js';
import { fdCount } from './helpers.js';

const SEED = Number(process.env.FC_SEED ?? 20_251_121);
const LIMITS = { maxMessageBytes: 64 * 1024, maxHandles: 16 };
const DECODE_LIMITS = { maxDepth: 32, maxElements: 10_000, maxBinaries: 64 };

/** Real descriptors: socketpair ends and /dev/null, closed by whoever ends up owning them. */
class FdPool {
  readonly live = new Set<number>();
  take(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (out.length % 3 === 2) {
        const fd = openSync('/dev/null', 'r');
        native().adopt(fd);
        out.push(fd);
      } else {
        const [a, b] = native().socketpair();
        native().close(b);
        out.push(a);
      }
    }
    for (const fd of out) this.live.add(fd);
    return out;
  }
  close(fds: number[]): void {
    for (const fd of fds) {
      if (!this.live.delete(fd)) throw new Error(`descriptor ${fd} closed twice or never given`);
      native().close(fd);
    }
  }
}

const allowed = (e: unknown): boolean => e instanceof IpcError && (e.code === 'MALFORMED' || e.code === 'TOO_LARGE');

/** Feeds packets to a fresh parser; checks every item and that every descriptor is accounted for. */
function feed(_shared: FdPool, packets: Array<{ bytes: Uint8Array; fds: number; flags?: number }>): ParsedItem[] {
  const pool = new FdPool();
  try {
    return feedInto(pool, packets);
  } finally {
    const leaked = [...pool.live];
    if (leaked.length) pool.close(leaked);
  }
}

function feedInto(pool: FdPool, packets: Array<{ bytes: Uint8Array; fds: number; flags?: number }>): ParsedItem[] {
  const parser = new PacketParser(LIMITS, (fds) => pool.close(fds));
  const out: ParsedItem[] = [];
  for (const p of packets) {
    const fds = pool.take(p.fds);
    try {
      // A valid SWITCH hands its descriptor to the caller (the receiver), which owns it then.
      const sw = parser.parse(p.bytes, fds, p.flags ?? 0, out);
      if (sw) pool.close([sw.switchTo]);
    } catch (e) {
      throw new Error(`the parser threw instead of yielding an error: ${String(e)}`);
    }
  }
  parser.reset();
  for (const item of out) {
    if (item instanceof Error) {
      expect(allowed(item), String(item)).toBe(true);
      continue;
    }
    expect(item.body.byteLength).toBeLessThanOrEqual(LIMITS.maxMessageBytes);
    expect(item.fds.length).toBeLessThanOrEqual(LIMITS.maxHandles);
    decodeOrReject(item.body, item.fds.length);
    pool.close(item.fds);
  }
  // Everything handed to the parser was either yielded (and closed above) or closed by it.
  expect(pool.live.size).toBe(0);
  return out;
}

function decodeOrReject(body: Uint8Array, handles: number): void {
  try {
    const count = peekHandleCount(body);
    if (count !== handles) return; // the receiver refuses this before decoding (MALFORMED)
    decodeMessage(body, handles, { reviveHandle: (kind, index) => ({ kind, index }) }, DECODE_LIMITS);
  } catch (e) {
    expect(allowed(e), String(e)).toBe(true);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const flat = (p: OutPacket): { bytes: Uint8Array; fds: number } => ({ bytes: concat(p.parts), fds: p.fds.length });

/** Packets from the seed files: `<fd count> <hex>` per line. */
function seedPackets(): Array<Array<{ bytes: Uint8Array; fds: number }>> {
  const dir = fileURLToPath(new URL('./fuzz-seeds/', import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.startsWith('framing-') && f.endsWith('.pkts'))
    .sort()
    .map((f) =>
      readFileSync(dir + f, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => {
          const [n, hex] = l.split(' ');
          return { fds: Number(n), bytes: Uint8Array.from(Buffer.from(hex!, 'hex')) };
        }),
    );
}

/** Valid packet sequences made by this library's own writer. */
const validSequence = fc
  .record({
    values: fc.array(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.uint8Array({ maxLength: 3000 })), { minLength: 1, maxLength: 4 }),
    handles: fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
    fragmentIt: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    batch: fc.boolean(),
  })
  .map(({ values, handles, fragmentIt, batch }) => {
    const packets: Array<{ bytes: Uint8Array; fds: number }> = [];
    const batcher = new RecordBatcher();
    values.forEach((v, i) => {
      const enc = encodeMessage(v);
      const fds = new Array<number>(handles[i]!).fill(-1);
      if (fragmentIt[i]) {
        // Small fragments: cut the body by hand into the documented layout via fragmentPackets.
        for (const p of fragmentPackets(BigInt(i + 1), i, enc.parts, enc.byteLength, fds)) packets.push(flat(p));
      } else if (batch && batcher.fits(enc.byteLength, fds.length)) {
        batcher.add(enc.parts, enc.byteLength, fds);
      } else packets.push(flat(singleRecordPacket(enc.parts, enc.byteLength, fds)));
    });
    const b = batcher.take();
    if (b) packets.push(flat(b));
    return packets;
  });

/** A mutation of one packet of a sequence. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('u32' as const),
    at: fc.constantFrom(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44),
    value: fc.constantFrom(0, 1, 2, 3, 7, 8, 48, 253, 254, 0x7fffffff, 0xffffffff, 65536, 65537),
  }),
  fc.record({ kind: fc.constant('fds' as const), n: fc.nat(20) }),
  fc.record({ kind: fc.constant('drop' as const) }),
  fc.record({ kind: fc.constant('duplicate' as const) }),
  fc.record({ kind: fc.constant('swap' as const), with: fc.nat() }),
  fc.record({ kind: fc.constant('flags' as const), flags: fc.constantFrom(1, 2, 3) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(seq: Array<{ bytes: Uint8Array; fds: number; flags?: number }>, which: number, m: Mutation): Array<{ bytes: Uint8Array; fds: number; flags?: number }> {
  if (seq.length === 0) return seq;
  const out = seq.map((p) => ({ ...p, bytes: p.bytes.slice() }));
  const i = which % out.length;
  const p = out[i]!;
  switch (m.kind) {
    case 'flip':
      if (p.bytes.length) p.bytes[m.at % p.bytes.length] ^= m.bits;
      break;
    case 'truncate':
      p.bytes = p.bytes.subarray(0, m.at % (p.bytes.length + 1));
      break;
    case 'u32':
      if (m.at + 4 <= p.bytes.length) new DataView(p.bytes.buffer).setUint32(m.at, m.value, true);
      break;
    case 'fds':
      p.fds = m.n;
      break;
    case 'drop':
      out.splice(i, 1);
      break;
    case 'duplicate':
      out.splice(i, 0, { ...p, bytes: p.bytes.slice() });
      break;
    case 'swap': {
      const j = m.with % out.length;
      [out[i], out[j]] = [out[j]!, out[i]!];
      break;
    }
    case 'flags':
      p.flags = m.flags;
      break;
  }
  return out;
}

describe('PacketParser + decode under random and mutated packets', () => {
  const baseline = fdCount();
  const pool = new FdPool();
  const seeds = seedPackets();
  const deadline = Date.now() + 10_000;
  const inBudget = (): boolean => Date.now() < deadline;

  it('reads the framing seeds (valid frames written from the docs) as records', () => {
    expect(seeds.length).toBeGreaterThanOrEqual(4);
    for (const seq of seeds) {
      // A SWITCH packet is handed back to the caller with its descriptor; the rest are records.
      const parser = new PacketParser(LIMITS, (fds) => pool.close(fds));
      const out: ParsedItem[] = [];
      for (const p of seq) {
        const sw = parser.parse(p.bytes, pool.take(p.fds), 0, out);
        if (sw) pool.close([sw.switchTo]);
      }
      for (const item of out) {
        expect(item).not.toBeInstanceOf(Error);
        if (!(item instanceof Error)) pool.close(item.fds);
      }
      expect(pool.live.size).toBe(0);
    }
  });

  it('random packets with random descriptors', () => {
    const header = fc.record({
      magic: fc.constantFrom(0x43504945, 0, 0x45495043),
      type: fc.constantFrom(1, 2, 3, 0, 255),
      version: fc.constantFrom(1, 1, 1, 0, 2),
    });
    fc.assert(
      fc.property(
        fc.array(fc.record({ header, rest: fc.uint8Array({ maxLength: 200 }), fds: fc.nat(6), raw: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        (pkts) => {
          if (!inBudget()) return;
          feed(
            pool,
            pkts.map(({ header: h, rest, fds, raw }) => {
              if (raw) return { bytes: rest, fds };
              const b = new Uint8Array(PACKET_HEADER + rest.length);
              const v = new DataView(b.buffer);
              v.setUint32(0, h.magic, true);
              b[4] = h.type;
              b[5] = h.version;
              b.set(rest, PACKET_HEADER);
              return { bytes: b, fds };
            }),
          );
        },
      ),
      { seed: SEED, numRuns: 6000 },
    );
  });

  it('valid sequences from the writer decode, and mutated ones yield only MALFORMED/TOO_LARGE', () => {
    fc.assert(
      fc.property(validSequence, fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 3 }), (seq, muts) => {
        if (!inBudget()) return;
        if (muts.length === 0) {
          const out = feed(pool, seq);
          for (const item of out) expect(item).not.toBeInstanceOf(Error);
          return;
        }
        let s = seq;
        for (const [which, m] of muts) s = mutate(s, which, m);
        feed(pool, s);
      }),
      { seed: SEED + 1, numRuns: 3000 },
    );
  });

  it('mutated seed packets yield only MALFORMED/TOO_LARGE', () => {
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 4 }), (k, muts) => {
        if (!inBudget()) return;
        let s = seeds[k]!.filter((p) => p.bytes[4] !== 3); // SWITCH packets are the caller's
        for (const [which, m] of muts) s = mutate(s, which, m);
        feed(pool, s.filter((p) => !(p.bytes.length === PACKET_HEADER && p.bytes[4] === 3 && p.fds === 1)));
      }),
      { seed: SEED + 2, numRuns: 6000 },
    );
  });

  it('fragment headers with hostile totals and offsets', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            stream: fc.constantFrom(1n, 2n, 0xffffffffffffffffn),
            seq: fc.constantFrom(0, 1, 2),
            nfds: fc.nat(3),
            total: fc.constantFrom(0n, 1n, 16n, 100n, 65536n, 65537n, 2n ** 53n, 2n ** 64n - 1n),
            offset: fc.constantFrom(0n, 8n, 16n, 100n, 2n ** 63n),
            totalFds: fc.constantFrom(0, 1, 3, 17, 0xffffffff),
            flags: fc.nat(4),
            chunk: fc.nat(120),
            carried: fc.nat(3),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        (frags) => {
          if (!inBudget()) return;
          feed(
            pool,
            frags.map((f) => {
              const b = new Uint8Array(FRAGMENT_HEADER + f.chunk);
              const v = new DataView(b.buffer);
              v.setUint32(0, 0x43504945, true);
              b[4] = 2;
              b[5] = 1;
              v.setBigUint64(8, f.stream, true);
              v.setUint32(16, f.seq, true);
              v.setUint32(20, f.nfds, true);
              v.setBigUint64(24, f.total, true);
              v.setBigUint64(32, f.offset, true);
              v.setUint32(40, f.totalFds, true);
              v.setUint32(44, f.flags, true);
              return { bytes: b, fds: f.carried };
            }),
          );
        },
      ),
      { seed: SEED + 3, numRuns: 6000 },
    );
  });

  it('leaves no descriptor open', () => {
    expect(pool.live.size).toBe(0);
    expect(fdCount()).toBe(baseline);
  });
});
