// The encoder's single-pass copy of plain data (snapshot.ts `fast`) and its hand-over to the
// iterative walk, the JSON body's scratch encoding (encode.ts `writeText`), and the decoder's
// path for JSON bodies: what a fast path could get wrong.
import vm from 'node:vm';
import * as devalue from 'devalue';
import { describe, expect, it } from 'vitest';
import {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  decodeMessage,
  DEFAULT_LIMITS,
  encodeMessage,
  joinParts,
  type EncodeHooks,
} from '../src/shared/index.js';
import { expectIpcError, Handle, handleHooks, roundTrip } from './codec-helpers.js';

const LIMITS = DEFAULT_LIMITS;



function viaDevalue(value: unknown): unknown {
  return devalue.parse(devalue.stringify(value));
}

/** An object whose property `key` is a getter counting its reads, returning `first` then `later`. */
function counted(reads: Map<string, number>, name: string, first: unknown, later: unknown = 'changed', extra: object = {}): object {
  return Object.defineProperty({ ...extra }, name, {
    get() {
      const n = (reads.get(name) ?? 0) + 1;
      reads.set(name, n);
      return n === 1 ? first : later;
    },
    enumerable: true,
    configurable: true,
  });
}

const nest = (depth: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('reading once on the fast path and across the hand-over', () => {
  it('reads each getter of plain JSON data once and sends what it read', () => {
    const reads = new Map<string, number>();
    const value = { a: 1, inner: counted(reads, 'x', 'first'), list: [counted(reads, 'y', 2, 3)], top: 0 };
    Object.defineProperty(value, 'top', { get: () => counted(reads, 'z', true, false), enumerable: true });
    const { format, value: decoded } = roundTrip(value);
    expect(format).toBe(BODY_FORMAT_JSON);
    expect(decoded).toStrictEqual({ a: 1, inner: { x: 'first' }, list: [{ y: 2 }], top: { z: true } });
    expect([...reads]).toStrictEqual([['x', 1], ['y', 1], ['z', 1]]);
  });

  it('hands over in the middle of a value without reading anything twice', () => {
    const reads = new Map<string, number>();
    const nullProto = Object.assign(Object.create(null) as object, { n: counted(reads, 'n', 'in null') });
    const value = {
      before: counted(reads, 'b', 'b1'),
      deep: [1, { map: new Map<unknown, unknown>([['k', counted(reads, 'm', 'in map')]]), after: counted(reads, 'a', 'a1') }],
      set: new Set([counted(reads, 's', 's1')]),
      nullProto,
      sparse: Object.assign([1, , 3], { 5: counted(reads, 'p', 'in sparse') }) as unknown[],
      last: counted(reads, 'l', 'l1'),
    };
    const { format, value: decoded } = roundTrip(value);
    expect(format).toBe(BODY_FORMAT_DEVALUE);
    for (const k of ['b', 'm', 'a', 's', 'n', 'p', 'l']) expect(reads.get(k), k).toBe(1);
    const d = decoded as typeof value;
    expect(d.before).toStrictEqual({ b: 'b1' });
    expect((d.deep[1] as { map: Map<string, unknown> }).map.get('k')).toStrictEqual({ m: 'in map' });
    expect((d.deep[1] as { after: unknown }).after).toStrictEqual({ a: 'a1' });
    expect([...d.set]).toStrictEqual([{ s: 's1' }]);
    expect({ ...(d.nullProto as object) }).toStrictEqual({ n: { n: 'in null' } });
    expect(d.sparse[5]).toStrictEqual({ p: 'in sparse' });
    expect(1 in d.sparse).toBe(false);
    expect(d.last).toStrictEqual({ l: 'l1' });
  });

  it('counts every proxy trap: each property read once, each prototype asked once, on both paths', () => {
    const counts = new Map<string, number>();
    const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    let id = 0;
    const watch = <T extends object>(target: T): T => {
      const name = `#${id++}`;
      return new Proxy(target, {
        get(t, key, receiver) {
          if (typeof key === 'string' && key !== 'length') bump(`${name}.get.${key}`);
          return Reflect.get(t, key, receiver) as unknown;
        },
        getPrototypeOf(t) {
          bump(`${name}.getPrototypeOf`);
          return Reflect.getPrototypeOf(t);
        },
      });
    };
    const hooks: EncodeHooks = { handleKind: () => undefined };
    for (const odd of [1, new Date(0), new Map([[1, 2]])]) {
      counts.clear();
      id = 0;
      const value = watch({ a: watch({ b: 1, c: watch([1, watch({ d: 'x' })]) }), odd, e: watch({ f: null }) });
      const { value: decoded } = roundTrip(value, hooks);
      expect(decoded).toStrictEqual({ a: { b: 1, c: [1, { d: 'x' }] }, odd, e: { f: null } });
      for (const [key, n] of counts) expect(n, key).toBe(1);
      // (the array's slice asks its constructor, as it did before the fast path)
      const kinds = [...counts.keys()].map((k) => k.replace(/^#\d+\./, '')).sort();
      expect(kinds).toStrictEqual(['get.0', 'get.1', 'get.a', 'get.b', 'get.c', 'get.constructor', 'get.d', 'get.e', 'get.f', 'get.odd', ...Array(5).fill('getPrototypeOf')]);
    }
  });

  it('asks handleKind once per object, handles on the fast path included', () => {
    const asked = new Map<object, number>();
    const hooks: EncodeHooks = {
      handleKind: (v) => {
        asked.set(v, (asked.get(v) ?? 0) + 1);
        return handleHooks.handleKind(v);
      },
    };
    const h = new Handle('F');
    const inner = { x: [h, { y: 1 }] };
    const { format, value } = roundTrip({ fh: h, inner, again: h }, hooks);
    expect(format).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(value).toStrictEqual({ fh: { revived: 'F', index: 0 }, inner: { x: [{ revived: 'F', index: 0 }, { y: 1 }] }, again: { revived: 'F', index: 0 } });
    expect(asked.size).toBe(5); // the root, inner, its array, { y: 1 }, the handle
    for (const [, n] of asked) expect(n).toBe(1);
  });

  it('a getter that sends while the value is read (a nested encode) gets its own walk', () => {
    let nested: unknown;
    const shared = { s: 1 };
    const value = {
      a: [undefined, shared], // not JSON, and `shared` met, before the nested encode
      later: {
        get c() {
          nested = decodeMessage(joinParts(encodeMessage({ n: [1, { m: 2 }] })), 0, undefined, LIMITS);
          return [3];
        },
      },
      d: shared,
    };
    const { format, value: decoded } = roundTrip(value);
    expect(format).toBe(BODY_FORMAT_DEVALUE);
    expect(decoded).toStrictEqual({ a: [undefined, { s: 1 }], later: { c: [3] }, d: { s: 1 } });
    expect((decoded as { d: object }).d).toBe((decoded as { a: object[] }).a[1]);
    expect(nested).toStrictEqual({ n: [1, { m: 2 }] });
  });

  it('forgets a failed walk: what it met is new to the next one', () => {
    const shared = { s: 1 };
    const failing = { shared, get boom(): unknown {
      throw new Error('boom');
    } };
    expectIpcError(() => encodeMessage({ x: shared, y: failing }), 'UNSERIALIZABLE', /boom/);
    expectIpcError(() => encodeMessage(nest(300, shared)), 'UNSERIALIZABLE', /maxDepth 256/);
    // Were `shared` still remembered, this would be a second reference: devalue, not JSON.
    const { format, value } = roundTrip({ again: shared });
    expect(format).toBe(BODY_FORMAT_JSON);
    expect(value).toStrictEqual({ again: { s: 1 } });
  });
});

describe('what the fast path must not take for JSON', () => {
  const odd: Array<[string, unknown]> = [
    ['a Map', new Map([[1, 'one']])],
    ['a Set', new Set([1])],
    ['undefined', undefined],
    ['-0', -0],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a BigInt', 12n],
    ['a Date', new Date(1)],
    ['a RegExp', /x/g],
    ['a boxed string', Object('s')],
    ['a null-prototype object', Object.assign(Object.create(null) as object, { k: 1 })],
    ['a sparse array', [1, , 3]],
    ['a binary', new Uint8Array([1, 2])],
  ];
  for (const [name, leaf] of odd) {
    it(`sends JSON-exact data with ${name} deep inside as devalue would`, () => {
      for (const value of [
        { a: { b: { c: [1, 2, { d: leaf }] } }, z: 'after' },
        [{ x: 1 }, [[leaf]], { y: [2] }],
        { first: leaf, then: { more: [1, { deeper: true }] } },
      ]) {
        const { format, value: decoded } = roundTrip(value);
        expect(format).toBe(BODY_FORMAT_DEVALUE);
        expect(decoded).toStrictEqual(viaDevalue(value));
      }
    });
  }

  it('refuses a class instance, a function and an enumerable symbol key deep inside, with the path', () => {
    class Point {
      x = 1;
    }
    expectIpcError(() => encodeMessage({ a: [0, { p: new Point() }] }), 'UNSERIALIZABLE', /value\.a\[1\]\.p/);
    expectIpcError(() => encodeMessage({ a: { f: () => 1 } }), 'UNSERIALIZABLE', /value\.a\.f/);
    expectIpcError(() => encodeMessage({ a: [{ [Symbol('s')]: 1 }] }), 'UNSERIALIZABLE', /symbolic keys/);
    // A non-enumerable symbol key is ignored, as devalue ignores it.
    const hidden = Object.defineProperty({ k: 1 }, Symbol('h'), { value: 1, enumerable: false });
    expect(roundTrip({ hidden })).toStrictEqual({ format: BODY_FORMAT_JSON, value: { hidden: { k: 1 } } });
  });

  it('takes another realm\'s plain objects and arrays as devalue does, an Array subclass as devalue does', () => {
    const foreign = vm.runInNewContext('({ a: [1, { b: 2 }], c: "x" })') as object;
    expect(roundTrip({ foreign }).value).toStrictEqual(viaDevalue({ foreign }));
    class List extends Array {}
    const list = List.from([1, 2]);
    expect(roundTrip({ list }).value).toStrictEqual(viaDevalue({ list }));
  });

  it('sends shared references and cycles as devalue (shared on arrival), not as JSON copies', () => {
    const x = { v: 1 };
    const shared = roundTrip({ a: x, b: [x] });
    expect(shared.format).toBe(BODY_FORMAT_DEVALUE);
    const s = shared.value as { a: object; b: object[] };
    expect(s.a).toBe(s.b[0]);
    const cycle: Record<string, unknown> = { n: 1 };
    cycle.self = [cycle];
    const c = roundTrip(cycle).value as { self: unknown[] };
    expect(c.self[0]).toBe(c);
    // More objects than the short seen-list holds, one shared at the end.
    const many = Array.from({ length: 40 }, (_, i) => ({ i }));
    const m = roundTrip({ many, last: many[3] }).value as { many: object[]; last: object };
    expect(m.last).toBe(m.many[3]);
  });

  it('marks __proto__ keys as the walk does; format 2\'s marker key is plain data now', () => {
    // Not JSON: devalue refuses it (the receiver would refuse a JSON body with one).
    const proto = JSON.parse('{"a":{"__proto__":{"x":1}}}') as object;
    expectIpcError(() => encodeMessage(proto), 'UNSERIALIZABLE', /value\.a: devalue says "Cannot stringify objects with __proto__ keys"/);
    const protoWithHandle = JSON.parse('{"a":{"__proto__":{"x":1}}}') as { h?: Handle };
    protoWithHandle.h = new Handle('S');
    expectIpcError(() => encodeMessage(protoWithHandle, handleHooks), 'UNSERIALIZABLE', /__proto__ keys/);
    const marker = { m: { '\u0000h': 1 }, h: new Handle('S') };
    const mk = roundTrip(marker, handleHooks);
    expect(mk.format).toBe(BODY_FORMAT_JSON_HANDLES);
    expect((mk.value as { m: object }).m).toStrictEqual({ '\u0000h': 1 });
  });
});

describe('shape, size and depth', () => {
  it('keeps key order, integer-like keys included', () => {
    const value = { b: 1, a: { z: 1, y: [2, { q: 0, p: 1 }] }, 10: 'ten', 2: 'two', c: null };
    const decoded = roundTrip(value).value as Record<string, unknown>;
    expect(Object.keys(decoded)).toStrictEqual(['2', '10', 'b', 'a', 'c']);
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(value));
  });

  it('encodes texts around the scratch size, multi-byte and lone surrogates, exactly', () => {
    for (const text of [
      'x'.repeat(4070), // fits the scratch and a slab part
      'x'.repeat(4090), // fits the scratch, its part is over the slab's largest
      'x'.repeat(5000), // longer than the scratch
      'é'.repeat(2000), // two bytes a character, in the scratch
      'é'.repeat(3000), // fits the scratch in characters, not in bytes
      '\u{1F600}'.repeat(1500),
      'a\uD800b\uDC00c',
      '',
    ]) {
      const { format, value } = roundTrip({ text });
      expect(format).toBe(BODY_FORMAT_JSON);
      expect((value as { text: string }).text).toBe(text);
    }
  });

  it('never lets a later message overwrite an earlier one kept unsent (slab parts and scratch)', () => {
    const kept: Array<[Uint8Array, unknown]> = [];
    for (let i = 0; i < 400; i++) {
      const value = { i, text: String(i).repeat(1 + ((i * 37) % 700)), list: [i, i + 0.5] };
      kept.push([encodeMessage(value).parts[0], value]);
    }
    for (const [part, value] of kept) expect(decodeMessage(part.slice(), 0, undefined, LIMITS)).toStrictEqual(value);
  });

  it('encodes after a part\'s buffer was transferred away', () => {
    const part = encodeMessage({ a: 1 }).parts[0];
    structuredClone(part.buffer, { transfer: [part.buffer] });
    expect(part.buffer.byteLength).toBe(0);
    expect(roundTrip({ b: [2] }).value).toStrictEqual({ b: [2] });
  });

  it('checks depth on the fast path, beyond its recursion, and after a hand-over, with the path', () => {
    for (const maxDepth of [1, 5, 64, 65, 100]) {
      expect(() => encodeMessage(nest(maxDepth, 1), undefined, { maxDepth })).not.toThrow();
      const error = expectIpcError(() => encodeMessage(nest(maxDepth + 1, 1), undefined, { maxDepth }), 'UNSERIALIZABLE', new RegExp(`maxDepth ${maxDepth}\\b`));
      if (maxDepth < 50) expect(error.message).toContain(`value${'[0]'.repeat(maxDepth)}:`);
    }
    const limits = { ...LIMITS, maxDepth: 300 };
    const deep = nest(298, { k: [1] }); // 300 levels, the last two below the fast recursion
    expect(decodeMessage(joinParts(encodeMessage(deep, undefined, { maxDepth: 300 })), 0, undefined, limits)).toStrictEqual(deep);
    // Handed over at a Map at level 3; the depth and the path go on from there.
    const value = { a: { m: new Map([['k', nest(3, 1)]]) } };
    expect(() => encodeMessage(value, undefined, { maxDepth: 6 })).not.toThrow();
    expectIpcError(() => encodeMessage(value, undefined, { maxDepth: 5 }), 'UNSERIALIZABLE', /value\.a\.m\.get\("k"\)\[0\]\[0\]: it nests deeper than maxDepth 5/);
    // A handle is a leaf at its own level: at the limit, still format 3; beyond it, refused.
    const h = new Handle('S');
    expect(roundTrip({ a: { h } }, handleHooks).format).toBe(BODY_FORMAT_JSON_HANDLES);
    const atLimit = encodeMessage({ a: { h } }, handleHooks, { maxDepth: 3 });
    expect(atLimit.parts[0][0]).toBe(BODY_FORMAT_JSON_HANDLES);
    expectIpcError(() => encodeMessage({ a: { h } }, handleHooks, { maxDepth: 2 }), 'UNSERIALIZABLE', /value\.a\.h: it nests deeper than maxDepth 2/);
  });
});

describe('the decoder\'s path for JSON bodies', () => {
  const body = () => joinParts(encodeMessage({ ab: 'cd', e: [1] }));

  it('refuses what the general checks refuse, with the same errors', () => {
    const padded = body();
    expect(padded.length % 8).toBe(0);
    const textEnd = 16 + (padded[4] | (padded[5] << 8));
    expect(textEnd).toBeLessThan(padded.length);
    padded[padded.length - 1] = 1;
    expectIpcError(() => decodeMessage(padded, 0, undefined, LIMITS), 'MALFORMED', /padding byte/);
    expectIpcError(() => decodeMessage(body(), 1, undefined, LIMITS), 'MALFORMED', /announces 0 handles but 1/);
    const longer = new Uint8Array(body().length + 8);
    longer.set(body());
    expectIpcError(() => decodeMessage(longer, 0, undefined, LIMITS), 'MALFORMED', /follow the last section/);
    const withHandle = body();
    withHandle[12] = 1;
    expectIpcError(() => decodeMessage(withHandle, 1, undefined, LIMITS), 'MALFORMED', /JSON body cannot have binaries or handles/);
    const tooLong = body();
    tooLong[4] = 0xff;
    expectIpcError(() => decodeMessage(tooLong, 0, undefined, LIMITS), 'MALFORMED', /does not fit/);
    const reserved = body();
    reserved[2] = 1;
    expectIpcError(() => decodeMessage(reserved, 0, undefined, LIMITS), 'MALFORMED', /reserved/);
  });

  it('still refuses __proto__ keys (plain or escaped) and bad UTF-8, and checks the limits', () => {
    const withText = (text: string): Uint8Array => {
      const bytes = new TextEncoder().encode(text);
      const b = new Uint8Array((16 + bytes.length + 7) & ~7);
      b[1] = 1;
      b[4] = bytes.length & 0xff;
      b[5] = bytes.length >> 8;
      b.set(bytes, 16);
      return b;
    };
    expect(decodeMessage(withText('{"a":[1]}'), 0, undefined, LIMITS)).toStrictEqual({ a: [1] });
    expectIpcError(() => decodeMessage(withText('{"a":{"__proto__":1}}'), 0, undefined, LIMITS), 'MALFORMED', /__proto__/);
    expectIpcError(() => decodeMessage(withText('{"__pr\\u006fto__":1}'), 0, undefined, LIMITS), 'MALFORMED', /__proto__/);
    const bad = withText('"xx"');
    bad[17] = 0xff;
    expectIpcError(() => decodeMessage(bad, 0, undefined, LIMITS), 'MALFORMED', /UTF-8/);
    expectIpcError(() => decodeMessage(withText(JSON.stringify(nest(10, 1))), 0, undefined, { ...LIMITS, maxDepth: 9 }), 'TOO_LARGE', /maxDepth 9/);
    expectIpcError(() => decodeMessage(withText(JSON.stringify(Array(50).fill(1))), 0, undefined, { ...LIMITS, maxElements: 20 }), 'TOO_LARGE', /maxElements 20/);
  });
});
