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
    expect(seeds.length).toBeGreaterThanOrEqual(6);
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
      .tuple(fc.constantFrom(0, 1, 2), fc.constantFrom(1, 0), fc.nat(200), fc.nat(3), fc.nat(3))
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
      fc.integer({ min: -8, max: entries.length + 1 }),
      fc.constantFrom('b', 'h', 'Map', 'Set', 'Date', 'BigInt', 'Object', 'null', 'RegExp', 'URL', 'Uint8Array', '__proto__', 'x'),
      fc.constant(null),
      fc.double(),
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
