import { Buffer } from 'node:buffer';
import * as devalue from 'devalue';
import { describe, expect, it, vi } from 'vitest';
import {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON_HANDLES,
  BODY_FORMAT_JSON,
  decodeMessage,
  DEFAULT_LIMITS,
  encodeMessage,
  IpcError,
  joinParts,
  peekHandleCount,
  type DecodeHooks,
  type DecodeLimits,
  type EncodeHooks,
} from '../src/shared/index.js';
import { expectIpcError, format3 } from './codec-helpers.js';

const LIMITS: DecodeLimits = DEFAULT_LIMITS;

class Handle {
  constructor(readonly kind: string, readonly name: string) {}
}

const handleHooks: EncodeHooks = {
  handleKind: (v) => (v instanceof Handle ? v.kind : undefined),
};

function reviveHooks(): DecodeHooks & { calls: Array<[string, number]> } {
  const calls: Array<[string, number]> = [];
  return {
    calls,
    reviveHandle(kind, index) {
      calls.push([kind, index]);
      return { revived: kind, index };
    },
  };
}

function encode(value: unknown, hooks?: EncodeHooks): Uint8Array {
  return joinParts(encodeMessage(value, hooks));
}

function roundTrip(value: unknown, limits: DecodeLimits = LIMITS): unknown {
  return decodeMessage(encode(value), 0, undefined, limits);
}

/** What devalue itself gives back. */
function viaDevalue(value: unknown): unknown {
  return devalue.parse(devalue.stringify(value));
}

function formatOf(value: unknown): number {
  return encodeMessage(value).parts[0][0];
}

const align8 = (n: number) => (n + 7) & ~7;

/** A body with the given fields, laid out as docs/wire-format.md says (valid unless told). */
function rawBody(options: {
  format?: number;
  version?: number;
  text: string | Uint8Array;
  sections?: Array<{ kind: number; bytes: Uint8Array }>;
  handleCount?: number;
}): Uint8Array {
  const text = typeof options.text === 'string' ? new TextEncoder().encode(options.text) : options.text;
  const sections = options.sections ?? [];
  const head = 16 + 8 * sections.length;
  let length = align8(head + text.length);
  for (const s of sections) length += align8(s.bytes.length);
  const body = new Uint8Array(length);
  const view = new DataView(body.buffer);
  view.setUint8(0, options.format ?? 1);
  view.setUint8(1, options.version ?? 1);
  view.setUint32(4, text.length, true);
  view.setUint32(8, sections.length, true);
  view.setUint32(12, options.handleCount ?? 0, true);
  body.set(text, head);
  let offset = align8(head + text.length);
  sections.forEach((s, i) => {
    view.setUint32(16 + 8 * i, s.kind, true);
    view.setUint32(16 + 8 * i + 4, s.bytes.length, true);
    body.set(s.bytes, offset);
    offset += align8(s.bytes.length);
  });
  return body;
}

describe('round trips', () => {
  const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
  const verySparse: unknown[] = [];
  verySparse[900_000] = 'x'; // every slot counts against maxElements
  const nullProto = Object.assign(Object.create(null) as object, { a: 1, b: [2] });
  const cases: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['NaN', NaN],
    ['-0', -0],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['BigInt', 12345678901234567890123456789n],
    ['negative BigInt', -5n],
    ['Date', new Date(1_700_000_000_000)],
    ['invalid Date', new Date(NaN)],
    ['RegExp', /a+b[c]\/d/giu],
    ['Map', new Map<unknown, unknown>([[1, 'a'], [{ k: 1 }, new Set([1])]])],
    ['Set', new Set([1, 'a', { b: 2 }])],
    ['sparse array', sparse],
    ['very sparse array', verySparse],
    ['array with undefined', [undefined, 1]],
    ['object with undefined', { a: undefined }],
    ['boxed primitives', [Object(1), Object('s'), Object(true), Object(2n)]],
    ['null-prototype object', nullProto],
    ['URL', new URL('https://example.com/a?b=c#d')],
    ['URLSearchParams', new URLSearchParams('a=1&b=2')],
    ['nested in each other', new Map([['s', new Set([[new Date(0), { r: /x/ }], new Map([[-0, NaN]])])]])],
    ['unicode', { 'ключ': '値 😀', '\u2028': '<script>' }],
    ['lone surrogates', ['\ud800', 'a\udc00b', { ['\udbff']: 1 }, undefined]],
  ];
  for (const [name, value] of cases) {
    it(`${name} round-trips exactly as devalue`, () => {
      const decoded = roundTrip(value);
      expect(decoded).toStrictEqual(viaDevalue(value));
      expect(decoded).toStrictEqual(value);
    });
  }

  it('keeps -0 and NaN as such', () => {
    const decoded = roundTrip({ z: -0, n: NaN }) as { z: number; n: number };
    expect(Object.is(decoded.z, -0)).toBe(true);
    expect(Number.isNaN(decoded.n)).toBe(true);
  });

  it('preserves repeated and cyclic references', () => {
    const shared = { s: 1 };
    const cyclic: Record<string, unknown> = { shared, list: [shared, shared] };
    cyclic.self = cyclic;
    const map = new Map<unknown, unknown>();
    map.set('me', map);
    cyclic.map = map;
    const decoded = roundTrip(cyclic) as typeof cyclic & { list: unknown[]; map: Map<unknown, unknown> };
    expect(decoded.self).toBe(decoded);
    expect(decoded.list[0]).toBe(decoded.shared);
    expect(decoded.list[1]).toBe(decoded.shared);
    expect(decoded.map.get('me')).toBe(decoded.map);
  });

  it('round-trips plain JSON data through the JSON fast path', () => {
    const value = { id: 1, name: 'n', tags: ['a', 'b'], ok: true, nested: { x: null, y: [1.5, -2, [[]]] } };
    expect(formatOf(value)).toBe(BODY_FORMAT_JSON);
    expect(roundTrip(value)).toStrictEqual(value);
    for (const v of [0, 'str', true, null, [], {}]) {
      expect(formatOf(v)).toBe(BODY_FORMAT_JSON);
      expect(roundTrip(v)).toStrictEqual(v);
    }
  });

  it('leaves the JSON fast path for anything JSON would change', () => {
    const shared = [1];
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    const withSymbolKey = { a: 1 };
    Object.defineProperty(withSymbolKey, Symbol('hidden'), { value: 1, enumerable: false });
    for (const v of [
      -0,
      { a: -0 },
      undefined,
      { a: undefined },
      [undefined],
      [1, , 2], // eslint-disable-line no-sparse-arrays
      NaN,
      [Infinity],
      [shared, shared],
      cyclic,
      Object.create(null),
      new Date(0),
      1n,
      new Uint8Array(1),
    ]) {
      expect(formatOf(v)).toBe(BODY_FORMAT_DEVALUE);
    }
    // Non-enumerable symbol keys are ignored by devalue and JSON alike; the fast path is cautious.
    expect(roundTrip(withSymbolKey)).toStrictEqual({ a: 1 });
  });

  it('sends JSON data with handles as JSON with handle positions, and anything more through devalue', () => {
    const h = new Handle('S', 'x');
    expect(encodeMessage({ h }, handleHooks).parts[0][0]).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(encodeMessage([1, 'two', { h, n: null }], handleHooks).parts[0][0]).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(encodeMessage(h, handleHooks).parts[0][0]).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(encodeMessage({ h, m: new Map() }, handleHooks).parts[0][0]).toBe(BODY_FORMAT_DEVALUE);
    expect(encodeMessage({ h, u: undefined }, handleHooks).parts[0][0]).toBe(BODY_FORMAT_DEVALUE);
    // What looked like a marker in format 2 is plain data now, and comes back as it was.
    const lookalike = { '\u0000h': [0, 'S'] };
    const encoded = encodeMessage({ h, lookalike }, handleHooks);
    expect(encoded.parts[0][0]).toBe(BODY_FORMAT_JSON_HANDLES);
    const d = decodeMessage(joinParts(encoded), 1, reviveHooks(), LIMITS) as { lookalike: unknown };
    expect(d.lookalike).toStrictEqual({ '\u0000h': [0, 'S'] });
  });

  it('rejects bad handle tables and positions in a JSON body with handles', () => {
    const good = format3('{"a":0}', [[0]], ['S']);
    expect(decodeMessage(good, 1, reviveHooks(), LIMITS)).toEqual({ a: { revived: 'S', index: 0 } });
    const cases: Array<[Uint8Array, number, RegExp]> = [
      [format3('{"a":1}', [[0]], ['S']), 1, /position 0 is not at a handle index/],
      [format3('{"a":0}', [[0], [0]], ['S']), 1, /position 1 is not at a handle index \(or is repeated\)/],
      [format3('{"a":0.5}', [[0]], ['S']), 1, /position 0 is not at a handle index/],
      [format3('{"a":"0"}', [[0]], ['S']), 1, /position 0 is not at a handle index/],
      [format3('{"a":0}', [[1]], ['S']), 1, /key rank out of range/],
      [format3('{"a":0}', [[0]], ['']), 1, /kind of handle 0 is empty/],
      [format3('{"a":0}', [], ['S']), 1, /0 handle positions for 1 handles/],
      [format3('{"a":0,"b":0}', [[0], [1]], ['S', 'S']), 2, /handle 1 is never referenced/],
      [format3('{"a":0}', [[0]], ['S'], 0), 0, /names no handle/],
    ];
    for (const [body, handles, message] of cases) {
      expectIpcError(() => decodeMessage(body, handles, reviveHooks(), LIMITS), 'MALFORMED', message);
    }
  });

  it('encodes a huge sparse array quickly; every slot counts against maxElements', () => {
    const a: unknown[] = [];
    a[4_000_000_000] = { x: 1 };
    const start = performance.now();
    const body = encode(a);
    expectIpcError(() => decodeMessage(body, 0, undefined, LIMITS), 'TOO_LARGE', /maxElements/);
    const decoded = decodeMessage(body, 0, undefined, { ...LIMITS, maxElements: 5e9 }) as unknown[];
    expect(performance.now() - start).toBeLessThan(1000);
    expect(decoded.length).toBe(4_000_000_001);
    expect(decoded[4_000_000_000]).toStrictEqual({ x: 1 });
  });
});

describe('binaries', () => {
  const F16 = (globalThis as Record<string, unknown>).Float16Array as (new (n: number[]) => ArrayBufferView) | undefined;
  const views: Array<[string, ArrayBufferView | ArrayBuffer]> = [
    ['Int8Array', new Int8Array([-1, 2, -3])],
    ['Uint8Array', new Uint8Array([1, 2, 255])],
    ['Uint8ClampedArray', new Uint8ClampedArray([0, 128, 255])],
    ['Int16Array', new Int16Array([-300, 300])],
    ['Uint16Array', new Uint16Array([65535, 1])],
    ['Int32Array', new Int32Array([-(2 ** 31), 7])],
    ['Uint32Array', new Uint32Array([2 ** 32 - 1])],
    ['Float32Array', new Float32Array([1.5, -0, NaN])],
    ['Float64Array', new Float64Array([Math.PI, -Infinity])],
    ['BigInt64Array', new BigInt64Array([-(2n ** 63n), 5n])],
    ['BigUint64Array', new BigUint64Array([2n ** 64n - 1n])],
    ['DataView', new DataView(new Uint8Array([9, 8, 7, 6]).buffer)],
    ['ArrayBuffer', new Uint8Array([4, 5, 6]).buffer],
    ['empty Uint8Array', new Uint8Array(0)],
    ...(F16 ? ([['Float16Array', new F16([1.5, 2])]] as Array<[string, ArrayBufferView]>) : []),
  ];
  for (const [name, value] of views) {
    it(`${name} round-trips as raw bytes`, () => {
      const encoded = encodeMessage({ v: value });
      const body = joinParts(encoded);
      const decoded = (decodeMessage(body, 0, undefined, LIMITS) as { v: unknown }).v;
      expect(Object.prototype.toString.call(decoded)).toBe(Object.prototype.toString.call(value));
      expect(decoded).toStrictEqual(value);
      // Raw, not base64: the section is in the body and the text does not hold the bytes.
      const n = value.byteLength;
      const textBytes = new DataView(body.buffer).getUint32(4, true);
      expect(textBytes).toBeLessThan(40);
      expect(body.length).toBe(align8(16 + 8 + textBytes) + align8(n));
    });
  }

  it('sends only the own bytes of a view of a bigger buffer, aligned', () => {
    const big = new ArrayBuffer(1 << 20);
    new Uint8Array(big).fill(0xee);
    const f64 = new Float64Array(big, 8 * 1001, 3);
    f64.set([1.25, -2.5, 1e300]);
    const odd = new Uint8Array(big, 3, 5);
    const encoded = encodeMessage({ f64, odd });
    expect(encoded.byteLength).toBeLessThan(200);
    expect(encoded.parts.reduce((a, p) => a + p.length, 0)).toBe(encoded.byteLength);
    // Zero-copy: the section parts are views of the caller's memory.
    expect(encoded.parts.some((p) => p.buffer === big && p.byteOffset === 8 * 1001)).toBe(true);
    const body = joinParts(encoded);
    const decoded = decodeMessage(body, 0, undefined, LIMITS) as { f64: Float64Array; odd: Uint8Array };
    expect([...decoded.f64]).toEqual([1.25, -2.5, 1e300]);
    expect(decoded.f64.byteOffset).toBe(0);
    expect(decoded.f64.buffer.byteLength).toBe(24);
    expect([...decoded.odd]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
    // Every section starts at a multiple of 8 in the body.
    let offset = 0;
    for (const part of encoded.parts) {
      if (part.buffer === big) expect(offset % 8).toBe(0);
      offset += part.length;
    }
  });

  it('keeps repeated references to one typed array as one object', () => {
    const u8 = new Uint8Array([1, 2, 3]);
    const encoded = encodeMessage({ a: u8, b: [u8], c: new Map([[u8, u8]]) });
    expect(new DataView(encoded.parts[0].buffer, encoded.parts[0].byteOffset).getUint32(8, true)).toBe(1);
    const d = decodeMessage(joinParts(encoded), 0, undefined, LIMITS) as { a: Uint8Array; b: Uint8Array[]; c: Map<unknown, unknown> };
    expect(d.b[0]).toBe(d.a);
    expect(d.c.get(d.a)).toBe(d.a);
  });

  it('gives each binary its own buffer, never aliasing the body', () => {
    const ab = new Uint8Array([1, 2, 3, 4]).buffer;
    const view = new Uint8Array(ab, 1, 2);
    const body = encode({ ab, view });
    const d = decodeMessage(body, 0, undefined, LIMITS) as { ab: ArrayBuffer; view: Uint8Array };
    expect(d.view.buffer).not.toBe(d.ab);
    body.fill(0);
    expect([...new Uint8Array(d.ab)]).toEqual([1, 2, 3, 4]);
    expect([...d.view]).toEqual([2, 3]);
  });

  it('sends a Node Buffer (a pooled slice) as its own bytes, arriving as a Uint8Array', () => {
    const buf = Buffer.from('hello');
    expect(buf.buffer.byteLength).toBeGreaterThan(5); // pooled
    const encoded = encodeMessage([buf]);
    expect(encoded.byteLength).toBeLessThan(64);
    const [d] = decodeMessage(joinParts(encoded), 0, undefined, LIMITS) as [Uint8Array];
    expect(Object.getPrototypeOf(d)).toBe(Uint8Array.prototype);
    expect(new TextDecoder().decode(d)).toBe('hello');
  });

  it('accepts a decode body that is a Node Buffer view at an odd offset', () => {
    const body = encode({ f: new Float64Array([1, 2]) });
    const holder = Buffer.alloc(body.length + 3);
    holder.set(body, 3);
    const d = decodeMessage(holder.subarray(3), 0, undefined, LIMITS) as { f: Float64Array };
    expect([...d.f]).toEqual([1, 2]);
  });
});

describe('handles', () => {
  it('lists handles in index order, deduplicated, and revives each once', () => {
    const s = new Handle('S', 's');
    const r = new Handle('R', 'r');
    const f = new Handle('F', 'f');
    const value = { first: s, list: [r, s, f], again: r };
    const encoded = encodeMessage(value, handleHooks);
    expect(encoded.handles).toEqual([s, r, f]);
    const body = joinParts(encoded);
    expect(peekHandleCount(body)).toBe(3);
    const hooks = reviveHooks();
    const d = decodeMessage(body, 3, hooks, LIMITS) as Record<string, unknown> & { list: unknown[] };
    expect(hooks.calls).toEqual([
      ['S', 0],
      ['R', 1],
      ['F', 2],
    ]);
    expect(d.first).toEqual({ revived: 'S', index: 0 });
    expect(d.list[1]).toBe(d.first);
    expect(d.again).toBe(d.list[0]);
  });

  it('passes an exception of reviveHandle through unchanged', () => {
    const body = encode([new Handle('S', 'x')], handleHooks);
    const error = new Error('hook failed');
    expect(() =>
      decodeMessage(body, 1, { reviveHandle: () => { throw error; } }, LIMITS),
    ).toThrow(error);
  });

  const handleBody = (text: string, handleCount: number) => rawBody({ text, handleCount });

  it('rejects a body that references one handle index twice, before reviving any', () => {
    // two distinct h entries, both index 0
    const body = handleBody('[[1,4],["h",2],[3,5],"S",["h",6],0,[3,5]]', 1);
    const hooks = reviveHooks();
    expectIpcError(() => decodeMessage(body, 1, hooks, LIMITS), 'MALFORMED', /handle 0 is referenced twice/);
    expect(hooks.calls).toEqual([]);
  });

  it('rejects handle indexes out of range, unreferenced handles and count mismatches', () => {
    const hooks = reviveHooks();
    const one = handleBody('[["h",1],[2,3],"S",1]', 1);
    expectIpcError(() => decodeMessage(one, 1, hooks, LIMITS), 'MALFORMED', /absent handle 1/);
    const neg = handleBody('[["h",1],[2,3],"S",-1]', 1);
    expectIpcError(() => decodeMessage(neg, 1, hooks, LIMITS), 'MALFORMED');
    const unused = handleBody('[["h",1],[2,3],"S",0]', 2);
    expectIpcError(() => decodeMessage(unused, 2, hooks, LIMITS), 'MALFORMED', /handle 1 is never referenced/);
    const good = handleBody('[["h",1],[2,3],"S",0]', 1);
    expectIpcError(() => decodeMessage(good, 0, hooks, LIMITS), 'MALFORMED', /announces 1 handles but 0/);
    expectIpcError(() => decodeMessage(good, 1, undefined, LIMITS), 'MALFORMED', /cannot take any/);
    const emptyKind = handleBody('[["h",1],[2,3],"",0]', 1);
    expectIpcError(() => decodeMessage(emptyKind, 1, hooks, LIMITS), 'MALFORMED', /handle kind/);
    expect(hooks.calls).toEqual([]);
    expect(decodeMessage(good, 1, hooks, LIMITS)).toEqual({ revived: 'S', index: 0 });
  });

  it('rejects a kind that is not a non-empty string as misuse', () => {
    expect(() => encodeMessage([new Handle('', 'x')], handleHooks)).toThrow(TypeError);
  });
});

describe('unserializable values', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['function', { a: { b: [1, function named() {}] } }, /function named at value\.a\.b\[1\]/],
    ['symbol', { s: Symbol('x') }, /symbol Symbol\(x\) at value\.s/],
    ['class instance', { m: new Map([['k', new Handle('S', 'x')]]) }, /instance of Handle at value\.m\.get\("k"\)/],
    ['promise', [Promise.resolve(1)], /Promise/],
    ['error', new Error('x'), /instance of Error at the value itself/],
    ['SharedArrayBuffer', { sab: new SharedArrayBuffer(8) }, /SharedArrayBuffer at value\.sab/],
    ['__proto__ key', JSON.parse('{"__proto__": 1}'), /__proto__/],
    ['enumerable symbol key', { [Symbol('k')]: 1 }, /symbolic keys/],
    ['huge BigInt', 10n ** 10_001n, /10000 digits/],
  ];
  for (const [name, value, message] of cases) {
    it(`throws UNSERIALIZABLE for a ${name}, naming it and its path`, () => {
      const handleKind = vi.fn(() => undefined);
      expectIpcError(() => encodeMessage(value, { handleKind }), 'UNSERIALIZABLE', message);
    });
  }

  it('wraps an exception of a getter as UNSERIALIZABLE with the cause', () => {
    const boom = new Error('getter');
    const value = { get x() { throw boom; } };
    const error = expectIpcError(() => encodeMessage(value), 'UNSERIALIZABLE', /getter/);
    expect(error.cause).toBe(boom);
  });

  it('has no side effects: a failed encode leaves the value alone and the next encode works', () => {
    const value = { ok: [1, 2], bad: () => 1 };
    expectIpcError(() => encodeMessage(value), 'UNSERIALIZABLE');
    expect(Object.keys(value)).toEqual(['ok', 'bad']);
    expect(roundTrip({ ok: [1, 2] })).toEqual({ ok: [1, 2] });
  });

  it('refuses values deeper than maxDepth at encode, on both paths, and accepts exactly maxDepth', () => {
    const nest = (depth: number, leaf: unknown) => {
      let v: unknown = leaf;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    };
    const limits = { ...LIMITS, maxDepth: 50 };
    for (const leaf of [1, undefined]) {
      const ok = nest(50, leaf);
      expect(decodeMessage(joinParts(encodeMessage(ok, undefined, { maxDepth: 50 })), 0, undefined, limits)).toStrictEqual(ok);
      expectIpcError(() => encodeMessage(nest(51, leaf), undefined, { maxDepth: 50 }), 'UNSERIALIZABLE', /maxDepth 50/);
      expectIpcError(() => decodeMessage(encode(nest(51, leaf)), 0, undefined, limits), 'TOO_LARGE', /maxDepth 50/);
    }
    // A Date or a binary counts as one level too.
    expect(() => encodeMessage(nest(49, new Date(0)), undefined, { maxDepth: 50 })).not.toThrow();
    expectIpcError(() => encodeMessage(nest(50, new Uint8Array(1)), undefined, { maxDepth: 50 }), 'UNSERIALIZABLE');
    // The default is DEFAULT_LIMITS.maxDepth, deep values never overflow the stack.
    expectIpcError(() => encodeMessage(nest(100_000, 1)), 'UNSERIALIZABLE', /maxDepth 256/);
    expectIpcError(() => encodeMessage(nest(100_000, undefined)), 'UNSERIALIZABLE', /maxDepth 256/);
  });

  it('measures depth in devalue order through shared objects, as the receiver does', () => {
    // `shared` is first reached deep inside `a`, so devalue nests it there.
    const shared = [[[[[1]]]]];
    const value = { a: [[[shared]]], b: shared };
    const limits = { ...LIMITS, maxDepth: 9 };
    expect(() => encodeMessage(value, undefined, { maxDepth: 9 })).not.toThrow();
    expect(decodeMessage(encode(value), 0, undefined, limits)).toStrictEqual(value);
    expectIpcError(() => encodeMessage(value, undefined, { maxDepth: 8 }), 'UNSERIALIZABLE');
    expectIpcError(() => decodeMessage(encode(value), 0, undefined, { ...LIMITS, maxDepth: 8 }), 'TOO_LARGE');
  });
});

describe('reading the value once (issue 11, item 17)', () => {
  /** `x` reads 1 the first time and a Map after: read twice, the JSON path sent `{}` for it. */
  function changing(first: unknown, later: unknown): { value: { x: unknown }; reads: { n: number } } {
    const reads = { n: 0 };
    const value = {
      get x() {
        reads.n++;
        return reads.n === 1 ? first : later;
      },
    };
    return { value, reads };
  }

  const paths: Array<[string, (v: unknown) => unknown, number]> = [
    ['JSON', (v) => ({ v }), BODY_FORMAT_JSON],
    ['devalue', (v) => ({ v, d: new Date(0) }), BODY_FORMAT_DEVALUE],
    ['JSON with handles', (v) => ({ v, h: new Handle('S', 'x') }), BODY_FORMAT_JSON_HANDLES],
  ];
  for (const [name, wrap, format] of paths) {
    it(`reads a getter once on the ${name} path and sends what it read`, () => {
      for (const [first, later] of [
        [1, new Map([[1, 2]])],
        [new Map([[1, 2]]), 1],
        ['a', undefined],
      ]) {
        const { value, reads } = changing(first, later);
        const encoded = encodeMessage(wrap(value), handleHooks);
        expect(reads.n).toBe(1);
        if (typeof first !== 'object') expect(encoded.parts[0][0]).toBe(format);
        const decoded = decodeMessage(joinParts(encoded), encoded.handles.length, reviveHooks(), LIMITS) as { v: { x: unknown } };
        expect(decoded.v.x).toStrictEqual(first);
      }
    });
  }

  it('reads an item of an array, a sparse array, a Map and a Set once', () => {
    const reads = { n: 0 };
    const getter = { get: () => (++reads.n === 1 ? 'first' : 'later'), enumerable: true, configurable: true };
    const dense = [0, 1, 2];
    Object.defineProperty(dense, 1, getter);
    const sparse: unknown[] = [];
    sparse[50_000] = 1;
    Object.defineProperty(sparse, 7, getter);
    const inner = Object.defineProperty({}, 'k', getter);
    for (const value of [dense, sparse, new Map([['m', inner]]), new Set([inner]), [new Date(0), dense]]) {
      reads.n = 0;
      const decoded = decodeMessage(encode(value), 0, undefined, { ...LIMITS, maxElements: 10_000_000 });
      expect(reads.n).toBe(1);
      expect(JSON.stringify(decoded, (_k, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v))).toContain('first');
    }
  });

  it('reads every property of a proxied value once, and asks handleKind once per object', () => {
    const counts = new Map<string, number>();
    let id = 0;
    const watch = <T extends object>(target: T): T => {
      const name = `#${id++}`;
      for (const k of Object.keys(target)) {
        const v = (target as Record<string, unknown>)[k];
        if (typeof v === 'object' && v !== null && !(v instanceof Handle) && !(v instanceof Date)) {
          (target as Record<string, unknown>)[k] = watch(v);
        }
      }
      return new Proxy(target, {
        get(t, key, receiver) {
          if (typeof key === 'string' && key !== 'length') counts.set(`${name}.${key}`, (counts.get(`${name}.${key}`) ?? 0) + 1);
          return Reflect.get(t, key, receiver) as unknown;
        },
      });
    };
    const h = new Handle('S', 'x');
    const shapes: unknown[] = [
      { a: 1, b: [1, 2, { c: 'x' }], d: { e: null } },
      { a: 1, b: [1, 2, { c: 'x' }], h },
      { a: 1, b: [1, 2, { c: 'x' }], d: new Date(0), u: undefined },
    ];
    for (const shape of shapes) {
      counts.clear();
      const asked = new Map<object, number>();
      const hooks: EncodeHooks = {
        handleKind: (v) => {
          asked.set(v, (asked.get(v) ?? 0) + 1);
          return handleHooks.handleKind(v);
        },
      };
      const value = watch(structuredCloneWithHandle(shape, h) as object);
      const encoded = encodeMessage(value, hooks);
      expect(counts.size).toBeGreaterThan(3);
      for (const [key, n] of counts) expect(n, key).toBe(1);
      for (const [, n] of asked) expect(n).toBe(1);
      const decoded = decodeMessage(joinParts(encoded), encoded.handles.length, reviveHooks(), LIMITS) as Record<string, unknown>;
      expect((decoded.b as unknown[])[2]).toStrictEqual({ c: 'x' });
    }
  });
});

/** A deep copy of plain data in which `h` stays itself. */
function structuredCloneWithHandle(value: unknown, h: Handle): unknown {
  if (value === h || value instanceof Date || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => structuredCloneWithHandle(v, h));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneWithHandle(v, h)]));
}

describe('malformed bodies', () => {
  const valid = encode({ a: [1, undefined], u: new Uint8Array([1, 2, 3]) });

  it('rejects a truncated header', () => {
    for (let n = 0; n < 16; n++) {
      expectIpcError(() => decodeMessage(valid.subarray(0, n), 0, undefined, LIMITS), 'MALFORMED', /header/);
      expectIpcError(() => peekHandleCount(valid.subarray(0, n)), 'MALFORMED');
    }
  });

  it('rejects every truncation and every extension', () => {
    for (let n = 16; n < valid.length; n++) {
      expectIpcError(() => decodeMessage(valid.subarray(0, n), 0, undefined, LIMITS), 'MALFORMED');
    }
    const longer = new Uint8Array(valid.length + 8);
    longer.set(valid);
    expectIpcError(() => decodeMessage(longer, 0, undefined, LIMITS), 'MALFORMED', /follow the last section/);
  });

  const patched = (offset: number, bytes: number[]) => {
    const b = valid.slice();
    b.set(bytes, offset);
    return b;
  };

  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['unknown format', patched(0, [4]), /unknown format 4/],
    ['format 2 (markers in the JSON, no longer read)', patched(0, [2]), /unknown format 2/],
    ['unknown version', patched(1, [0]), /unknown version 0/],
    ['non-zero reserved bytes', patched(3, [1]), /reserved/],
    ['text length beyond the body', patched(4, [0xff, 0xff, 0xff, 0x7f]), /does not fit/],
    ['binary table beyond the body', patched(8, [0xff, 0xff, 0xff, 0xff]), /binary table/],
    ['unknown binary kind', patched(16, [99]), /unknown kind 99/],
    ['section length beyond the body', patched(20, [0xff, 0xff, 0, 0]), /does not fit/],
    ['section not whole elements', patched(16, [10]), /whole number of Float64Array/],
    ['more handles announced', patched(12, [1]), /announces 1 handles/],
  ];
  for (const [name, body, message] of cases) {
    it(`rejects ${name}`, () => {
      expectIpcError(() => decodeMessage(body, 0, undefined, LIMITS), 'MALFORMED', message);
    });
  }

  it('rejects non-zero padding', () => {
    const textBytes = new DataView(valid.buffer).getUint32(4, true);
    const textEnd = 24 + textBytes;
    if (textEnd % 8 !== 0) {
      expectIpcError(() => decodeMessage(patched(textEnd, [1]), 0, undefined, LIMITS), 'MALFORMED', /padding/);
    }
    expectIpcError(() => decodeMessage(patched(valid.length - 1, [1]), 0, undefined, LIMITS), 'MALFORMED', /padding/);
  });

  it('rejects text that is not UTF-8, or starts with a byte order mark', () => {
    for (const bytes of [[0x5b, 0xff, 0x5d], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe2, 0x82]]) {
      for (const format of [0, 1]) {
        expectIpcError(() => decodeMessage(rawBody({ format, text: new Uint8Array(bytes) }), 0, undefined, LIMITS), 'MALFORMED', /UTF-8/);
      }
    }
    expectIpcError(() => decodeMessage(rawBody({ format: 0, text: '\ufeff1' }), 0, undefined, LIMITS), 'MALFORMED', /parse/);
  });

  const texts: Array<[string, number, string, RegExp]> = [
    ['JSON that does not parse', 0, '{"a":', /does not parse/],
    ['empty JSON text', 0, '', /does not parse/],
    ['JSON __proto__ key', 0, '{"a":{"__proto__":{"x":1}}}', /__proto__/],
    ['escaped JSON __proto__ key', 0, '[{"\\u005f_proto__":1}]', /__proto__/],
    ['devalue text that does not parse', 1, '[1,', /does not parse/],
    ['an empty devalue array', 1, '[]', /non-empty array/],
    ['a devalue string', 1, '"x"', /non-empty array/],
    ['a bare devalue number that is no special value', 1, '5', /special value/],
    ['a reference to an absent entry', 1, '[[7]]', /absent entry 7/],
    ['a fractional reference', 1, '[[0.5]]', /invalid reference/],
    ['a string reference', 1, '[{"a":"x"}]', /invalid reference/],
    ['HOLE outside an array', 1, '[{"a":-2}]', /absent entry -2/],
    ['an unknown type', 1, '[["Nope",1]]', /unknown or unsupported type/],
    ["devalue's own Uint8Array form", 1, '[["Uint8Array",1],["ArrayBuffer","AAEC"]]', /unknown or unsupported type/],
    ["devalue's own ArrayBuffer form", 1, '[["ArrayBuffer","AAEC"]]', /unknown or unsupported type/],
    ['a __proto__ key', 1, '[{"__proto__":1},2]', /__proto__/],
    ['a null-prototype __proto__ key', 1, '[["null","__proto__",1],2]', /__proto__/],
    ['a Map with an odd entry', 1, '[["Map",1],2]', /bad shape/],
    ['an invalid RegExp', 1, '[["RegExp","(","g"]]', /invalid RegExp/],
    ['an invalid BigInt', 1, '[["BigInt","0x10"]]', /invalid BigInt/],
    ['an invalid URL', 1, '[["URL","not a url"]]', /invalid URL/],
    ['a Date without a string', 1, '[["Date",5]]', /bad shape/],
    ['a boxed object', 1, '[["Object",1],{}]', /boxes a non-primitive/],
    ['a boxed null', 1, '[["Object",1],null]', /boxes null/],
    ['a bad sparse array', 1, '[[-7,2,5,1],0]', /sparse index/],
    ['a reference to an absent binary', 1, '[["b",1],[2],0]', /absent binary section 0/],
    ['a binary payload that is not an array', 1, '[["b",1],0]', /bad payload/],
    ['a handle payload pointing to an object', 1, '[["h",1],[0,2],0]', /non-primitive/],
    ['a self-referencing custom payload', 1, '[["b",0]]', /bad payload/],
  ];
  for (const [name, format, text, message] of texts) {
    it(`rejects ${name}`, () => {
      expectIpcError(() => decodeMessage(rawBody({ format, text }), 0, undefined, LIMITS), 'MALFORMED', message);
    });
  }

  it('rejects binaries referenced twice or never, and binaries in a JSON body', () => {
    const section = { kind: 3, bytes: new Uint8Array([1]) };
    const twice = rawBody({ text: '[[1,4],["b",2],[3],0,["b",5],[3]]', sections: [section] });
    expectIpcError(() => decodeMessage(twice, 0, undefined, LIMITS), 'MALFORMED', /referenced twice/);
    const never = rawBody({ text: '[1]', sections: [section] });
    expectIpcError(() => decodeMessage(never, 0, undefined, LIMITS), 'MALFORMED', /never referenced/);
    const json = rawBody({ format: 0, text: '[1]', sections: [section] });
    expectIpcError(() => decodeMessage(json, 0, undefined, LIMITS), 'MALFORMED', /JSON body/);
    // one entry referenced from two places is fine: it is one object
    const shared = rawBody({ text: '[[1,1],["b",2],[3],0]', sections: [section] });
    const d = decodeMessage(shared, 0, undefined, LIMITS) as Uint8Array[];
    expect(d[0]).toBe(d[1]);
  });

  it('never throws anything but IpcError on arbitrary bytes', () => {
    for (let i = 0; i < 200; i++) {
      const b = new Uint8Array(16 + (i % 40));
      for (let j = 0; j < b.length; j++) b[j] = (i * 131 + j * 71) & 0xff;
      b[0] = i % 2;
      b[1] = 1;
      b[2] = b[3] = 0;
      try {
        decodeMessage(b, peekHandleCount(b), reviveHooks(), LIMITS);
      } catch (e) {
        expect(e).toBeInstanceOf(IpcError);
      }
    }
  });
});

describe('limits', () => {
  it('rejects a depth bomb of 100,000 nested arrays in JSON form without overflowing the stack', () => {
    const text = '['.repeat(100_000) + ']'.repeat(100_000);
    expectIpcError(() => decodeMessage(rawBody({ format: 0, text }), 0, undefined, LIMITS), 'TOO_LARGE', /maxDepth 256/);
    // also when the receiver raised its limit: then JSON.parse (iterative in V8) builds it
    expect(() => decodeMessage(rawBody({ format: 0, text }), 0, undefined, { ...LIMITS, maxDepth: 200_000 })).not.toThrow();
  });

  it('rejects a depth bomb of 100,000 nested arrays in devalue form without overflowing the stack', () => {
    const n = 100_000;
    const entries: string[] = [];
    for (let i = 0; i < n; i++) entries.push(`[${i + 1}]`);
    entries.push('-1');
    const text = `[${entries.join(',')}]`;
    expectIpcError(() => decodeMessage(rawBody({ text }), 0, undefined, LIMITS), 'TOO_LARGE', /maxDepth 256/);
    // A receiver that raises maxDepth past what the stack holds still gets TOO_LARGE, no crash.
    expectIpcError(() => decodeMessage(rawBody({ text }), 0, undefined, { ...LIMITS, maxDepth: 1e6 }), 'TOO_LARGE', /stack/);
    // a ring of 100,000 arrays is as deep for devalue's recursion; back-references are not
    const ring = `[${Array.from({ length: n }, (_, i) => `[${(i + 1) % n}]`).join(',')}]`;
    expectIpcError(() => decodeMessage(rawBody({ text: ring }), 0, undefined, LIMITS), 'TOO_LARGE');
    const wide = `[[${Array.from({ length: 1000 }, (_, i) => i + 1).join(',')}],${Array.from({ length: 1000 }, () => '[0]').join(',')}]`;
    const d = decodeMessage(rawBody({ text: wide }), 0, undefined, LIMITS) as unknown[][];
    expect(d.length).toBe(1000);
    expect(d[999][0]).toBe(d);
  });

  it('counts elements on both paths', () => {
    const value = Array.from({ length: 100 }, (_, i) => ({ i }));
    // root + 100 items + 100 properties
    expect(() => decodeMessage(encode(value), 0, undefined, { ...LIMITS, maxElements: 201 })).not.toThrow();
    expectIpcError(() => decodeMessage(encode(value), 0, undefined, { ...LIMITS, maxElements: 200 }), 'TOO_LARGE', /maxElements 200/);
    const dv = [...value, undefined];
    expect(() => decodeMessage(encode(dv), 0, undefined, { ...LIMITS, maxElements: 202 })).not.toThrow();
    expectIpcError(() => decodeMessage(encode(dv), 0, undefined, { ...LIMITS, maxElements: 201 }), 'TOO_LARGE', /maxElements 201/);
    // repeated references count as slots
    const s = 'shared';
    const many = [...Array.from({ length: 1000 }, () => s), undefined];
    expectIpcError(() => decodeMessage(encode(many), 0, undefined, { ...LIMITS, maxElements: 1000 }), 'TOO_LARGE');
  });

  it('enforces maxBinaries and the BigInt size bound', () => {
    const body = encode([new Uint8Array(1), new Uint8Array(1)]);
    expectIpcError(() => decodeMessage(body, 0, undefined, { ...LIMITS, maxBinaries: 1 }), 'TOO_LARGE', /maxBinaries 1/);
    expect(() => decodeMessage(body, 0, undefined, { maxDepth: 10, maxElements: 10 })).not.toThrow();
    const big = rawBody({ text: `[["BigInt","${'9'.repeat(10_001)}"]]` });
    expectIpcError(() => decodeMessage(big, 0, undefined, LIMITS), 'TOO_LARGE', /BigInt/);
    const ok = 10n ** 9_999n;
    expect(roundTrip(-ok)).toBe(-ok);
  });

  it('has documented defaults', () => {
    expect(DEFAULT_LIMITS).toMatchObject({ maxMessageBytes: 128 * 1024 * 1024, maxHandles: 1024, maxDepth: 256, maxElements: 1_000_000, maxQueue: 64 });
    expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// V8's unseeded hashes of numbers and BigInts in Map and Set tables, inverted, to make keys that
// share a bucket (what a hostile peer can do: the functions are public and unseeded).

const M32 = (1n << 32n) - 1n;
const M64 = (1n << 64n) - 1n;
/** Inverse of an odd number modulo 2^bits. */
const inverse = (a: bigint, bits: bigint): bigint => {
  const m = 1n << bits;
  let x = 1n;
  for (let i = 0; i < 7; i++) x = (x * (2n - a * x)) % m;
  return (x + m) % m;
};
/** Inverse of y = x ^ (x >> s). */
const unshift = (y: bigint, s: bigint, mask: bigint): bigint => {
  let x = y;
  for (let i = 0; i < 64; i++) x = y ^ (x >> s);
  return x & mask;
};
/** An int32 whose ComputeUnseededHash is `out`. */
function int32WithHash(out: number): number {
  let h = BigInt(out >>> 0);
  h = unshift(h, 16n, M32);
  h = (h * inverse(2057n, 32n)) & M32;
  h = unshift(h, 4n, M32);
  h = (h * inverse(5n, 32n)) & M32;
  h = unshift(h, 12n, M32);
  h = ((h + 1n) * inverse(32767n, 32n)) & M32;
  return Number(BigInt.asIntN(32, h));
}
/** The 64 bits whose ComputeLongHash is `out`. */
function bitsWithLongHash(out: bigint): bigint {
  let h = out & M64;
  h = unshift(h, 22n, M64);
  h = (h * inverse(65n, 64n)) & M64;
  h = unshift(h, 11n, M64);
  h = (h * inverse(21n, 64n)) & M64;
  h = unshift(h, 31n, M64);
  h = ((h + 1n) * inverse(262143n, 64n)) & M64;
  return h;
}
/** `count` keys of each kind that share their low 16 hash bits, so one bucket of any table up to 2^16 buckets. */
function collidingKeys(count: number): { ints: number[]; doubles: number[]; bigints: bigint[] } {
  const ints = Array.from({ length: count }, (_, j) => int32WithHash(((j << 16) | 0x1234) & 0x3fffffff));
  const doubles: number[] = [];
  const f = new Float64Array(1);
  const bits = new BigUint64Array(f.buffer);
  for (let j = 1; doubles.length < count; j++) {
    bits[0] = bitsWithLongHash((BigInt(j) << 16n) | 0x5678n);
    const x = f[0];
    if (x === x && (x | 0) !== x) doubles.push(x);
  }
  const bigints = Array.from({ length: count }, (_, j) => (BigInt(j + 1) << 64n) + 5n);
  return { ints, doubles, bigints };
}

describe('decode cost: everything a body builds counts before it is built (issue 11, item 2)', () => {
  const devalue = (text: string, limits: DecodeLimits = LIMITS) => decodeMessage(rawBody({ text }), 0, undefined, limits);
  const small = (maxElements: number): DecodeLimits => ({ ...LIMITS, maxElements });

  it('counts each URLSearchParams pair (and its text) before parsing it', () => {
    const usp = JSON.stringify([['URLSearchParams', 'a=1&&b=2&']]);
    // root + 2 pairs of 2 + 9 characters / 4
    expect(String(devalue(usp, small(7)))).toBe('a=1&b=2');
    expectIpcError(() => devalue(usp, small(6)), 'TOO_LARGE', /maxElements 6/);
    // 2 MiB of pairs (the reported bomb, smaller): refused before any is built
    const start = performance.now();
    expectIpcError(() => devalue(JSON.stringify([['URLSearchParams', 'a&'.repeat(1 << 20)]])), 'TOO_LARGE', /maxElements/);
    // 16 MiB of '&' (no pair at all): its text alone is over the limit
    expectIpcError(() => devalue(JSON.stringify([['URLSearchParams', '&'.repeat(1 << 24)]])), 'TOO_LARGE', /maxElements/);
    expect(performance.now() - start).toBeLessThan(3000);
  });

  it('counts a URL, its text and the pairs its searchParams would build', () => {
    const url = JSON.stringify([['URL', 'https://x/?a=1&b=2&c']]);
    // root + URL 4 - its slot + 3 pairs of 2 + 20 characters / 4
    expect(String(devalue(url, small(15)))).toBe('https://x/?a=1&b=2&c');
    expectIpcError(() => devalue(url, small(14)), 'TOO_LARGE');
    expectIpcError(() => devalue(JSON.stringify([['URL', `https://x/?${'a&'.repeat(1 << 20)}`]])), 'TOO_LARGE');
  });

  it('counts every slot of an array, holes and sparse lengths too, and refuses disordered sparse indices', () => {
    expectIpcError(() => devalue('[[-7,4294967295]]'), 'TOO_LARGE', /maxElements/);
    expectIpcError(() => devalue('[[-7,1000000,5,1],0]'), 'TOO_LARGE', /maxElements/);
    expect((devalue('[[-7,999999,5,1],0]') as unknown[]).length).toBe(999_999);
    expectIpcError(() => devalue(`[[${'-2,'.repeat(1_000_000)}-2]]`), 'TOO_LARGE', /maxElements/);
    expect((devalue('[[-2,-2,1],0]', small(4)) as unknown[]).length).toBe(3);
    expectIpcError(() => devalue('[[-2,-2,1],0]', small(3)), 'TOO_LARGE');
    expectIpcError(() => devalue('[[-7,10,5,1,5,1],0]'), 'MALFORMED', /sparse index/);
    expectIpcError(() => devalue('[[-7,10,5,1,4,1],0]'), 'MALFORMED', /sparse index/);
  });

  it('counts long BigInts by their quadratic parse', () => {
    const digits = '9'.repeat(10_000);
    const many = (count: number) => `[[${Array.from({ length: count }, (_, i) => i + 1).join(',')}],${Array.from({ length: count }, () => `["BigInt","${digits}"]`).join(',')}]`;
    expect((devalue(many(1000)) as unknown[]).length).toBe(1000);
    const start = performance.now();
    expectIpcError(() => devalue(many(1100)), 'TOO_LARGE', /maxElements/);
    expect(performance.now() - start).toBeLessThan(2000);
    expect(devalue(`[["BigInt","${digits}"]]`, small(1000))).toBe(10n ** 10_000n - 1n);
    expectIpcError(() => devalue(`[["BigInt","${digits}"]]`, small(900)), 'TOO_LARGE');
  });

  it('counts a RegExp by its source, its flags and its Unicode property escapes, before parsing it', () => {
    const re = (source: string, flags?: string) => JSON.stringify([flags === undefined ? ['RegExp', source] : ['RegExp', source, flags]]);
    expect(devalue(re('^[\\p{L}\\p{N}_-]{3,32}$', 'u'))).toStrictEqual(/^[\p{L}\p{N}_-]{3,32}$/u);
    // A property of strings costs up to 45 ms to build with `iv`: eight are over the default limit.
    const start = performance.now();
    expectIpcError(() => devalue(re('\\p{RGI_Emoji}'.repeat(8), 'iv')), 'TOO_LARGE', /maxElements/);
    // Case folding of big classes with `iv`, 214 µs each.
    expectIpcError(() => devalue(re('[a-zA-Z\\u0100-\\uffff]'.repeat(2000), 'iv')), 'TOO_LARGE', /maxElements/);
    // Many small ones (8 µs each).
    const many = 70_000;
    expectIpcError(
      () => devalue(`[[${Array.from({ length: many }, (_, i) => i + 1).join(',')}],${Array.from({ length: many }, (_, i) => `["RegExp","a${i}"]`).join(',')}]`),
      'TOO_LARGE',
      /maxElements/,
    );
    expect(performance.now() - start).toBeLessThan(2000);
    expectIpcError(() => devalue(re('a', 'iu'), small(16)), 'TOO_LARGE');
    expect(devalue(re('a', 'iu'), small(17 + 32))).toStrictEqual(/a/iu);
  });

  it('accepts only the Date text toISOString writes', () => {
    expect((devalue('[["Date","2020-01-02T03:04:05.678Z"]]') as Date).getTime()).toBe(Date.UTC(2020, 0, 2, 3, 4, 5, 678));
    expect((devalue('[["Date","+275760-09-13T00:00:00.000Z"]]') as Date).getTime()).toBe(8.64e15);
    expect(Number.isNaN((devalue('[["Date",""]]') as Date).getTime())).toBe(true);
    for (const text of ['2020-01-02', 'Tue Mar 01 2022', 'x'.repeat(1 << 20)]) {
      expectIpcError(() => devalue(JSON.stringify([['Date', text]])), 'MALFORMED', /ISO/);
    }
  });

  it('bounds Temporal texts, and builds each checked value once', () => {
    const from = vi.fn((text: string) => ({ text }));
    const g = globalThis as { Temporal?: unknown };
    const saved = g.Temporal;
    g.Temporal = { PlainDate: { from } };
    try {
      expect(devalue('[["Temporal.PlainDate","2020-01-02"]]')).toStrictEqual({ text: '2020-01-02' });
      expect(from).toHaveBeenCalledTimes(1);
      expectIpcError(() => devalue(JSON.stringify([['Temporal.PlainDate', '2'.repeat(300)]])), 'MALFORMED', /256/);
      expect(from).toHaveBeenCalledTimes(1);
    } finally {
      g.Temporal = saved;
    }
  });

  it('bounds what JSON.parse builds of a devalue text before it runs', () => {
    // 3,000 empty objects, of which only the first is used: over 2 containers per element allowed
    const text = `[${'{},'.repeat(3000)}0]`;
    expectIpcError(() => devalue(text, small(1000)), 'TOO_LARGE', /devalue text of 3002 JSON values in 3001 arrays or objects/);
    expectIpcError(() => devalue(`[${'0,'.repeat(20_000)}0]`, small(1000)), 'TOO_LARGE', /devalue text/);
    // What encodeMessage writes always fits: a boxed BigInt in a null-prototype object is the densest.
    const dense = Object.assign(Object.create(null) as Record<string, unknown>, Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, Object(BigInt(i) * 12345678901n)])));
    expect(Object.keys(decodeMessage(encode(dense), 0, undefined, small(501)) as object)).toHaveLength(500);
  });

  it('refuses Map and Set keys crafted to collide in V8 hash tables, and accepts ordinary ones', () => {
    const { ints, doubles, bigints } = collidingKeys(2048);
    for (const keys of [ints, doubles, bigints]) {
      // (building them here is slow: that is the point)
      const bodies = [encode(new Set<unknown>(keys)), encode(new Map<unknown, number>(keys.map((k) => [k, 1])))];
      const start = performance.now();
      for (const body of bodies) expectIpcError(() => decodeMessage(body, 0, undefined, LIMITS), 'TOO_LARGE', /collide/);
      expect(performance.now() - start).toBeLessThan(500);
    }
    // spread over many small Maps, they add up
    const maps = Array.from({ length: 300 }, (_, m) => new Map(Array.from({ length: 100 }, (_, j) => [(BigInt(m * 100 + j + 1) << 64n) + 5n, 0])));
    expectIpcError(() => decodeMessage(encode(maps), 0, undefined, LIMITS), 'TOO_LARGE', /collide/);
    const ordinary: Array<Set<unknown> | Map<unknown, unknown>> = [
      new Set(Array.from({ length: 50_000 }, (_, i) => i)),
      new Set(Array.from({ length: 30_000 }, (_, i) => 1.7e12 + i * 1000)),
      new Map(Array.from({ length: 30_000 }, (_, i) => [BigInt(i) << 32n, i])),
      new Set(Array.from({ length: 30_000 }, () => Math.random())),
      new Set(Array.from({ length: 1000 }, (_, i) => BigInt(i + 1) << 64n)), // a few colliding keys are fine
    ];
    for (const value of ordinary) {
      const decoded = decodeMessage(encode(value), 0, undefined, LIMITS) as Set<unknown> | Map<unknown, unknown>;
      expect(decoded.constructor).toBe(value.constructor);
      expect([...decoded.keys()]).toEqual([...value.keys()]);
    }
  });

  it('encodes numbers and BigInts chosen to collide in linear time, still sharing equal ones', () => {
    // devalue shares equal primitives through a Map: with these as keys it was quadratic (12 s).
    const keys = Array.from({ length: 30_000 }, (_, j) => (BigInt(j + 1) << 64n) + 5n);
    const start = performance.now();
    const body = encode([...keys, undefined]);
    expect(performance.now() - start).toBeLessThan(1000);
    expect((decodeMessage(body, 0, undefined, LIMITS) as unknown[]).length).toBe(30_001);
    const text = new TextDecoder().decode(encode([1.5, 1.5, 2n, 2n, '1.5', undefined]));
    expect(text.match(/1\.5/g)).toHaveLength(2); // the number once, the string once
    expect(text.match(/"2"/g)).toHaveLength(1);
  });

  it("has a model of V8's hashing that V8 agrees with: the crafted keys are slow to insert", () => {
    // If V8 changes how it hashes numbers or BigInts, this fails: update the model in codec.ts.
    const { ints, doubles, bigints } = collidingKeys(8192);
    // The least of a few runs: a preemption on a loaded machine only ever adds time, and one
    // during an ordinary run (well under 1 ms) made the ratio miss.
    const time = (keys: unknown[]): number => {
      let least = Infinity;
      for (let run = 0; run < 5; run++) {
        const start = performance.now();
        const s = new Set();
        for (const k of keys) s.add(k);
        least = Math.min(least, performance.now() - start);
      }
      return least;
    };
    const ordinaryInts = Array.from({ length: 8192 }, (_, i) => i * 7919);
    const ordinaryDoubles = Array.from({ length: 8192 }, (_, i) => i + 0.5);
    const ordinaryBigints = Array.from({ length: 8192 }, (_, i) => BigInt(i) * 7919n);
    for (const [crafted, ordinary] of [
      [ints, ordinaryInts],
      [doubles, ordinaryDoubles],
      [bigints, ordinaryBigints],
    ] as Array<[unknown[], unknown[]]>) {
      time(ordinary);
      expect(time(crafted)).toBeGreaterThan(10 * Math.max(time(ordinary), 1));
    }
  });
});
