import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as devalue from 'devalue';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  DEFAULT_LIMITS,
  encodeMessage,
  IpcError,
  joinParts,
  peekHandleCount,
  type DecodeHooks,
  type DecodeLimits,
} from '../src/shared/index.js';

// Fixed seed, so a failure reproduces; override with FC_SEED to explore.
const SEED = Number(process.env.FC_SEED ?? 20_240_611);

class Handle {
  constructor(readonly kind: string) {}
}
const encodeHooks = { handleKind: (v: object) => (v instanceof Handle ? v.kind : undefined) };

/** Values made of every type devalue carries, plus binaries and handles. */
const { value: valueArb } = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.double(), // includes NaN, -0, ±Infinity
    fc.integer(),
    fc.string({ unit: 'binary' }), // includes lone surrogates
    fc.bigInt(),
    fc.date({ noInvalidDate: false }),
    fc.constantFrom(/a+/g, /[\u0000-\u001f]/u, /x/),
    fc.webUrl().map((u) => new URL(u)),
    fc.string().map((s) => new URLSearchParams(s)),
    fc.oneof(fc.double(), fc.string(), fc.boolean(), fc.bigInt()).map((p) => Object(p) as object),
    fc.uint8Array({ maxLength: 20 }),
    fc.float64Array({ maxLength: 5 }),
    fc.int16Array({ maxLength: 5 }),
    fc.bigInt64Array({ maxLength: 3 }),
    fc.uint8Array({ minLength: 1, maxLength: 20 }).chain((a) =>
      fc.nat(a.length - 1).map((start) => a.subarray(start)),
    ),
    fc.uint8Array({ maxLength: 12 }).map((a) => new DataView(a.buffer)),
    fc.uint8Array({ maxLength: 12 }).map((a) => a.buffer),
    fc.constantFrom('S', 'R', 'F', 'M').map((k) => new Handle(k)),
  ),
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.sparseArray(tie('value'), { maxLength: 8 }),
    fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 5 }),
    fc
      .dictionary(fc.string().filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 4 })
      .map((d) => Object.assign(Object.create(null) as object, d)),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((e) => new Map(e)),
    fc.array(tie('value'), { maxLength: 4 }).map((e) => new Set(e)),
    // repeated and cyclic references
    tie('value').map((v) => [v, v, { again: v }]),
    tie('value').map((v) => {
      const o: Record<string, unknown> = { v };
      o.self = o;
      return o;
    }),
  ),
}));

/** Handles in a value, replaced by what `reviveHooks` gives back, for comparison. */
function reviveHooks(handleCount: number): DecodeHooks & { seen: Set<number> } {
  const seen = new Set<number>();
  return {
    seen,
    reviveHandle(kind, index) {
      expect(index).toBeLessThan(handleCount);
      expect(seen.has(index)).toBe(false);
      seen.add(index);
      return new Handle(kind);
    },
  };
}

/** Expected result: devalue's own round trip, with handles standing in for themselves. */
function expected(value: unknown, handles: object[]): unknown {
  const index = new Map(handles.map((h, i) => [h, i]));
  const text = devalue.stringify(value, {
    H: (v: unknown) => (v instanceof Handle ? [v.kind, index.get(v)] : undefined),
  });
  return devalue.parse(text, { H: ([kind]: [string]) => new Handle(kind) });
}

const LIMITS: DecodeLimits = { ...DEFAULT_LIMITS, maxDepth: 1000 };

describe('codec fuzz', () => {
  it('round-trips arbitrary values exactly as devalue does', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const encoded = encodeMessage(value, encodeHooks, { maxDepth: 1000 });
        const body = joinParts(encoded);
        expect(peekHandleCount(body)).toBe(encoded.handles.length);
        const hooks = reviveHooks(encoded.handles.length);
        const decoded = decodeMessage(body, encoded.handles.length, hooks, LIMITS);
        expect(hooks.seen.size).toBe(encoded.handles.length);
        expect(decoded).toStrictEqual(expected(value, encoded.handles));
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  const seedDir = fileURLToPath(new URL('./fuzz-seeds/', import.meta.url));
  const seeds = readdirSync(seedDir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => Uint8Array.from(Buffer.from(readFileSync(seedDir + f, 'utf8').trim(), 'hex')));

  it('has seed bodies that decode', () => {
    expect(seeds.length).toBeGreaterThanOrEqual(8);
    for (const body of seeds) {
      const count = peekHandleCount(body);
      expect(() => decodeMessage(body, count, reviveHooks(count), DEFAULT_LIMITS)).not.toThrow();
    }
  });

  /** Decodes, accepting success or IpcError MALFORMED/TOO_LARGE only. */
  function decodesOrRejects(body: Uint8Array, handleCount?: number): void {
    let count = handleCount ?? 0;
    if (handleCount === undefined) {
      try {
        count = Math.min(peekHandleCount(body), 64);
      } catch (e) {
        expect(e).toBeInstanceOf(IpcError);
        expect((e as IpcError).code).toBe('MALFORMED');
      }
    }
    try {
      decodeMessage(body, count, reviveHooks(count), DEFAULT_LIMITS);
    } catch (e) {
      if (!(e instanceof IpcError)) throw e;
      expect(['MALFORMED', 'TOO_LARGE']).toContain(e.code);
      // Validation catches everything before devalue runs (and before any handle is revived).
      expect(e.message).not.toMatch(/does not describe a value/);
    }
  }

  it('only ever rejects random bytes with MALFORMED or TOO_LARGE', () => {
    const header = fc
      .tuple(fc.constantFrom(0, 1, 2, 3), fc.constantFrom(1, 0), fc.nat(200), fc.nat(3), fc.nat(3))
      .map(([format, version, textBytes, binaryCount, handleCount]) => {
        const h = new Uint8Array(16);
        const v = new DataView(h.buffer);
        v.setUint8(0, format);
        v.setUint8(1, version);
        v.setUint32(4, textBytes, true);
        v.setUint32(8, binaryCount, true);
        v.setUint32(12, handleCount, true);
        return h;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.tuple(header, fc.uint8Array({ maxLength: 300 })).map(([h, rest]) => {
            const b = new Uint8Array(h.length + rest.length);
            b.set(h);
            b.set(rest, h.length);
            return b;
          }),
        ),
        (body) => decodesOrRejects(body),
      ),
      { seed: SEED, numRuns: 4000 },
    );
  });

  it('only ever rejects mutated seed bodies with MALFORMED or TOO_LARGE', () => {
    const interesting = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x2c, 0x2d, 0x5c];
    const mutation = fc.oneof(
      // overwrite a byte
      fc.tuple(fc.constant('set' as const), fc.nat(), fc.oneof(fc.constantFrom(...interesting), fc.nat(255))),
      // overwrite a u32 (header and table fields are u32)
      fc.tuple(fc.constant('u32' as const), fc.nat(), fc.constantFrom(0, 1, 3, 8, 0xff, 0xffff, 0x7fffffff, 0xffffffff)),
      // truncate
      fc.tuple(fc.constant('cut' as const), fc.nat(), fc.constant(0)),
      // insert a byte
      fc.tuple(fc.constant('ins' as const), fc.nat(), fc.constantFrom(...interesting)),
    );
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (seedIndex, mutations, keepCount) => {
          let body = seeds[seedIndex].slice();
          const count = peekHandleCount(body);
          for (const [op, at, v] of mutations) {
            const i = body.length === 0 ? 0 : at % body.length;
            if (op === 'set' && body.length > 0) body[i] = v;
            else if (op === 'u32' && body.length >= 4) new DataView(body.buffer).setUint32(Math.min(i, body.length - 4) & ~3, v, true);
            else if (op === 'cut') body = body.slice(0, i);
            else if (op === 'ins') {
              const b = new Uint8Array(body.length + 1);
              b.set(body.subarray(0, i));
              b[i] = v;
              b.set(body.subarray(i), i + 1);
              body = b;
            }
          }
          decodesOrRejects(body, keepCount ? count : undefined);
        },
      ),
      { seed: SEED, numRuns: 6000 },
    );
  });

  it('only ever rejects mutated devalue texts with MALFORMED or TOO_LARGE', () => {
    // Structure-aware: mutate the JSON entries of a valid devalue text, keep the framing valid.
    const sample = joinParts(
      encodeMessage(
        { m: new Map([[1, new Set([new Date(0), 2n])]]), s: [1, , 3], r: /x/g, o: Object(1), n: Object.create(null), u: new Uint8Array([1]), h: new Handle('S') }, // eslint-disable-line no-sparse-arrays
        encodeHooks,
      ),
    );
    const textStart = 16 + 8;
    const textBytes = new DataView(sample.buffer).getUint32(4, true);
    const entries = JSON.parse(new TextDecoder().decode(sample.subarray(textStart, textStart + textBytes))) as unknown[];
    const section = sample.subarray(sample.length - 8);
    const atom = fc.oneof(
      { arbitrary: fc.integer({ min: -8, max: entries.length + 1 }), weight: 4 },
      {
        arbitrary: fc.constantFrom('b', 'h', 'Map', 'Set', 'Date', 'BigInt', 'Object', 'null', 'RegExp', 'URL', 'URLSearchParams', 'Uint8Array', '__proto__', 'x'),
        weight: 4,
      },
      { arbitrary: fc.constant(null), weight: 1 },
      { arbitrary: fc.double(), weight: 1 },
      // counts and texts that cost: lengths, pairs, digits, property escapes
      { arbitrary: fc.constantFrom(2 ** 32 - 1, 999_999, 1_000_000, 1e9), weight: 1 },
      { arbitrary: fc.constantFrom('9'.repeat(10_001), '\\p{RGI_Emoji}'.repeat(8), 'https://x/?a&b&c'), weight: 1 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(entries.length - 1), fc.nat(5), atom), { minLength: 1, maxLength: 3 }),
        (edits) => {
          const copy = structuredClone(entries) as unknown[];
          for (const [e, pos, v] of edits) {
            const entry = copy[e];
            if (Array.isArray(entry)) entry[pos % (entry.length + 1)] = v;
            else if (entry && typeof entry === 'object') {
              const keys = Object.keys(entry);
              (entry as Record<string, unknown>)[keys[pos % Math.max(keys.length, 1)] ?? 'k'] = v;
            } else copy[e] = v;
          }
          const text = new TextEncoder().encode(JSON.stringify(copy));
          const head = 16 + 8;
          const textEnd = (head + text.length + 7) & ~7;
          const body = new Uint8Array(textEnd + 8);
          body.set(sample.subarray(0, head));
          new DataView(body.buffer).setUint32(4, text.length, true);
          body.set(text, head);
          body.set(section, textEnd);
          decodesOrRejects(body, 1);
        },
      ),
      { seed: SEED, numRuns: 6000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Revivers (issue 11, item 2): hostile devalue texts with every built-in type and mutated counts
// and lengths decode to a value or MALFORMED/TOO_LARGE, and what a decoded value holds (what
// decoding built, counted as docs/wire-format.md counts it) never exceeds maxElements.

/** What a decoded value holds, counted as maxElements counts it (a lower bound: leaves count what they hold). */
function heldElements(root: unknown): number {
  let count = 1;
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'bigint') {
      const digits = (v < 0n ? -v : v).toString().length;
      count += Math.floor(digits / 64) + Math.floor((digits * digits) / 131_072);
      continue;
    }
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      count += v.length; // every slot, holes too
      for (const k of Object.keys(v)) stack.push(v[Number(k)]);
    } else if (v instanceof Map) {
      count += 2 * v.size;
      for (const [k, e] of v) stack.push(k, e);
    } else if (v instanceof Set) {
      count += v.size;
      for (const e of v) stack.push(e);
    } else if (v instanceof URLSearchParams) {
      count += 2 * [...v].length;
    } else if (v instanceof URL) {
      // reading searchParams builds the pairs: that is what the count is for
      count += 3 + 2 * [...v.searchParams].length;
    } else if (v instanceof RegExp) {
      count += 15;
    } else if (Object.prototype.toString.call(v) === '[object Object]' && !(v instanceof Date)) {
      const keys = Object.keys(v);
      count += keys.length;
      for (const k of keys) stack.push((v as Record<string, unknown>)[k]);
    } else if (typeof (v as { valueOf?: unknown }).valueOf === 'function') {
      stack.push((v as { valueOf(): unknown }).valueOf()); // a boxed BigInt
    }
  }
  return count;
}

/** V8's bucket for a BigInt: every BigInt with the same lowest 64 bits (of |n|) shares it. */
function collidingPairs(root: unknown): { keys: number; pairs: number } {
  let keys = 0;
  let pairs = 0;
  const stack: unknown[] = [root];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    const members = v instanceof Map ? [...v.keys()] : v instanceof Set ? [...v] : undefined;
    if (members !== undefined) {
      keys += members.length;
      const groups = new Map<string, number>();
      for (const m of members) {
        if (typeof m !== 'bigint' || m === 0n) continue;
        const low = BigInt.asUintN(64, m < 0n ? -m : m).toString();
        groups.set(low, (groups.get(low) ?? 0) + 1);
      }
      for (const c of groups.values()) pairs += (c * (c - 1)) / 2;
    }
    if (Array.isArray(v)) stack.push(...v);
    else if (v instanceof Map) for (const [k, e] of v) stack.push(k, e);
    else if (v instanceof Set) stack.push(...v);
    else stack.push(...Object.values(v));
  }
  return { keys, pairs };
}

describe('codec fuzz: revivers', () => {
  const LIMITS_SMALL: DecodeLimits = { maxDepth: 32, maxElements: 4000, maxBinaries: 8 };

  /** A random entry of a devalue text of `n` entries, of any type, with costly counts. */
  const entryArb = (n: number) => {
    const ref = fc.integer({ min: -7, max: n - 1 });
    const refs = fc.array(ref, { maxLength: 12 });
    const costly = fc.constantFrom(0, 1, 5, 1000, 3999, 4000, 100_000, 2 ** 32 - 1);
    const text = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.tuple(fc.constantFrom('a&', '&', 'a=b&', '=&', '%41&', '+&'), fc.constantFrom(1, 10, 2000, 5000, 70_000)).map(([u, k]) => u.repeat(k)),
    );
    const regExp = fc.tuple(
      fc.oneof(
        fc.constantFrom('a', '(', '[a-z]+', '^\\p{L}+$', '\\p{RGI_Emoji}', '[\\p{L}--\\p{N}]', '[a-zA-Z\\u0100-\\uffff]', '\\p{'),
        fc.string({ maxLength: 8 }),
      ),
      fc.integer({ min: 1, max: 300 }),
      fc.constantFrom(undefined, '', 'g', 'iu', 'v', 'iv', 'gg', 'x'),
    );
    return fc.oneof(
      fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null)),
      fc.dictionary(fc.string({ maxLength: 4 }), ref, { maxKeys: 6 }),
      refs.map((r) => r.map((x) => (x === -7 ? -2 : x))), // dense, -2 holes
      fc.tuple(costly, fc.array(fc.tuple(fc.nat(5000), ref), { maxLength: 6 })).map(([len, pairs]) => [
        -7,
        len,
        ...pairs.sort((a, b) => a[0] - b[0]).flat(),
      ]),
      refs.map((r) => ['Set', ...r]),
      refs.map((r) => ['Map', ...r, ...(r.length % 2 ? [0] : [])]),
      fc.array(fc.tuple(fc.string({ maxLength: 4 }), ref), { maxLength: 5 }).map((kv) => ['null', ...kv.flat()]),
      fc.oneof(fc.constant('1970-01-01T00:00:00.000Z'), fc.constant(''), fc.string({ maxLength: 30 })).map((t) => ['Date', t]),
      regExp.map(([src, times, flags]) => (flags === undefined ? ['RegExp', src.repeat(times)] : ['RegExp', src.repeat(times), flags])),
      fc.tuple(fc.constantFrom('', '-'), fc.constantFrom(1, 19, 64, 1000, 5000, 10_000, 10_001)).map(([sign, d]) => ['BigInt', sign + '7'.repeat(d)]),
      fc.tuple(fc.nat(2000), fc.nat(3)).map(([k, c]) => ['BigInt', ((BigInt(k + 1) << 64n) + BigInt(c)).toString()]),
      text.map((t) => ['URLSearchParams', t]),
      text.map((t) => ['URL', `https://x/?${t}`]),
      ref.map((r) => ['Object', r]),
      fc.constantFrom(['Temporal.PlainDate', '2020-01-01'], ['Nope', 1], ['ArrayBuffer', 'AAEC'], ['b', 1], ['h', 1]),
    );
  };

  /** A devalue text whose entry 0 is a container referring to every entry, so that most are used. */
  const textArb = fc.integer({ min: 1, max: 24 }).chain((n) =>
    fc.tuple(fc.array(entryArb(n + 1), { minLength: n, maxLength: n }), fc.constantFrom('array', 'Set', 'Map')).map(([entries, root]) => {
      const refs = entries.map((_, i) => i + 1);
      const head = root === 'array' ? refs : root === 'Set' ? ['Set', ...refs] : ['Map', ...refs, ...(refs.length % 2 ? [1] : [])];
      return JSON.stringify([head, ...entries]);
    }),
  );

  it('decodes hostile devalue texts of every type to a value within maxElements, or MALFORMED/TOO_LARGE', () => {
    let decoded = 0;
    let slowest = 0;
    fc.assert(
      fc.property(textArb, (text) => {
        const bytes = new TextEncoder().encode(text);
        const body = new Uint8Array(16 + ((bytes.length + 7) & ~7));
        body[0] = 1;
        body[1] = 1;
        new DataView(body.buffer).setUint32(4, bytes.length, true);
        body.set(bytes, 16);
        const start = performance.now();
        let value: unknown;
        try {
          value = decodeMessage(body, 0, undefined, LIMITS_SMALL);
        } catch (e) {
          if (!(e instanceof IpcError)) throw e;
          expect(['MALFORMED', 'TOO_LARGE']).toContain(e.code);
          expect(e.message).not.toMatch(/does not describe a value/);
          return;
        } finally {
          slowest = Math.max(slowest, performance.now() - start);
        }
        decoded++;
        // Work by counts: what was built is within the limit it was counted against.
        expect(heldElements(value)).toBeLessThanOrEqual(LIMITS_SMALL.maxElements);
        const { keys, pairs } = collidingPairs(value);
        expect(pairs).toBeLessThanOrEqual(2 ** 20 + 8 * keys);
      }),
      { seed: SEED, numRuns: 3000 },
    );
    // Not all rejected (the generator reaches the revivers), none slow (a coarse bound: the
    // costliest cases refused are 100 ms and more each when built).
    expect(decoded).toBeGreaterThan(100);
    expect(slowest).toBeLessThan(1000);
  });
});
