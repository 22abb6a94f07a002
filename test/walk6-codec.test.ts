// The walk6 fast paths (issue 15 §1): the encoder's object loop by for-in (snapshot.ts `fast`),
// its objects claimed with one Set operation past the first 16 (`claim`, `toMap`), and the
// decoder's limits scan of a long JSON body on its bytes (scan.ts `checkJsonBytes`), with the
// __proto__ and `\u` detection folded into it. Each test below fails when its path is broken.
import * as devalue from 'devalue';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  decodeMessage,
  DEFAULT_LIMITS,
  encodeMessage,
  joinParts,
} from '../src/shared/index.js';
import { expectIpcError, Handle, handleHooks, roundTrip } from './codec-helpers.js';

const LIMITS = DEFAULT_LIMITS;


/** `n` distinct small objects (so that a value holding them is past the walk's short lists). */
const filler = (n: number): object[] => Array.from({ length: n }, (_, i) => ({ i }));

describe('the object loop (for-in over the copy)', () => {
  afterEach(() => {
    delete (Object.prototype as Record<string, unknown>).polluted;
    delete (Object.prototype as Record<string, unknown>).pollutedScalar;
  });

  it('copies only own keys when Object.prototype has an enumerable key (an object, a scalar)', () => {
    // for-in yields inherited keys after the own ones: without the own-key check the inherited
    // object would be copied into the copy as an own key.
    (Object.prototype as Record<string, unknown>).polluted = { x: 1 };
    (Object.prototype as Record<string, unknown>).pollutedScalar = 7;
    const value = { a: 1, b: { c: [1, 2] }, d: 'x' };
    const encoded = encodeMessage(value);
    const body = joinParts(encoded);
    delete (Object.prototype as Record<string, unknown>).polluted;
    delete (Object.prototype as Record<string, unknown>).pollutedScalar;
    const back = decodeMessage(body, 0, undefined, LIMITS) as Record<string, unknown>;
    expect(back).toStrictEqual({ a: 1, b: { c: [1, 2] }, d: 'x' });
    expect(Object.keys(back)).toStrictEqual(['a', 'b', 'd']);
    expect(Object.keys(back.b as object)).toStrictEqual(['c']);
  });

  it('reads every getter once and sends what it read, for integer and string keys in Object.keys order', () => {
    let reads = 0;
    let n = 0;
    const value = {
      b: 1,
      get g() {
        reads++;
        return { n: ++n };
      },
      2: 'two',
      1: { one: true },
      get s() {
        reads++;
        return 'S' + n;
      },
    };
    const { format, value: back } = roundTrip(value);
    expect(format).toBe(BODY_FORMAT_JSON);
    expect(reads).toBe(2);
    expect(back).toStrictEqual({ 1: { one: true }, 2: 'two', b: 1, g: { n: 1 }, s: 'S1' });
    expect(Object.keys(back as object)).toStrictEqual(['1', '2', 'b', 'g', 's']);
  });

  it('sends what was read when a getter changes the value mid-walk (values from the copy, not the caller)', () => {
    const parent: Record<string, unknown> = {
      c: {
        get g() {
          parent.x = 2;
          (parent.d as Record<string, unknown>).y = 'after';
          parent.d = { y: 'replaced' };
          parent.z = 'added';
          return 0;
        },
      },
      x: 1,
      d: { y: 'before' },
    };
    const { format, value: back } = roundTrip(parent);
    expect(format).toBe(BODY_FORMAT_JSON);
    // x and d were read (as the parent was copied) before the getter ran, though the loop looks
    // at them after c's subtree; d's own keys are read when it is visited, after the getter; z
    // did not exist when the parent was read.
    expect(back).toStrictEqual({ c: { g: 0 }, x: 1, d: { y: 'after' } });
    expect(parent.x).toBe(2);
  });

  it('puts handles at the right ranks (format 3) when keys are integers, strings and a nested object', () => {
    const h1 = new Handle('one');
    const h2 = new Handle('two');
    const value = { z: 0, 3: { k: h2 }, a: h1, 1: [h1, 5] };
    const { format, value: back } = roundTrip(value, handleHooks);
    expect(format).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(back).toStrictEqual({
      1: [{ revived: 'one', index: 0 }, 5],
      3: { k: { revived: 'two', index: 1 } },
      z: 0,
      a: { revived: 'one', index: 0 },
    });
    const b = back as Record<string, unknown>;
    expect(b.a).toBe((b[1] as unknown[])[0]);
  });

  it('still notices a __proto__ key, an enumerable symbol key and a non-JSON scalar among the values', () => {
    expectIpcError(() => encodeMessage({ x: 1, o: JSON.parse('{"y":2,"__proto__":{"x":1}}') }), 'UNSERIALIZABLE', /value\.o: devalue says "Cannot stringify objects with __proto__ keys"/);
    expectIpcError(() => encodeMessage({ x: 1, o: { y: 2, [Symbol('s')]: 1 } }), 'UNSERIALIZABLE', /symbolic keys/);
    for (const odd of [-0, NaN, Infinity, undefined, 10n]) {
      const { format, value: back } = roundTrip({ a: 1, b: odd, c: [1] });
      expect(format).toBe(BODY_FORMAT_DEVALUE);
      expect(back).toStrictEqual({ a: 1, b: odd, c: [1] });
    }
  });
});

describe('objects past the first 16 (claimed in a Set)', () => {
  it('keeps shared references, met again in the Set and after it became a Map', () => {
    const shared = { s: 1 };
    const other = [1, 2];
    const items: unknown[] = [...filler(20), shared, ...filler(5), shared, other, ...filler(3), other, shared];
    const { format, value: back } = roundTrip({ items });
    expect(format).toBe(BODY_FORMAT_DEVALUE);
    const got = (back as { items: unknown[] }).items;
    expect(got).toStrictEqual(items);
    expect(got[20]).toBe(got[26]);
    expect(got[20]).toBe(got[32]);
    expect(got[27]).toBe(got[31]);
    expect(got[20]).not.toBe(got[27]);
  });

  it('keeps a cycle closed past the first 16 objects, and a JSON value past them stays format 0', () => {
    const node: Record<string, unknown> = { name: 'n' };
    const value = { pad: filler(30), node };
    node.self = node;
    node.up = value;
    const back = roundTrip(value).value as { pad: unknown[]; node: Record<string, unknown> };
    expect(back.node.self).toBe(back.node);
    expect(back.node.up).toBe(back);
    expect(back.pad).toStrictEqual(filler(30));
    const plain = { pad: filler(40), more: [filler(3), { a: [1, 2, { b: 'c' }] }] };
    const r = roundTrip(plain);
    expect(r.format).toBe(BODY_FORMAT_JSON);
    expect(r.value).toStrictEqual(plain);
  });

  it('records a handle met twice past the first 16 objects (format 3), and one object shared around a handle', () => {
    const h = new Handle('k');
    const value = { pad: filler(20), a: h, list: [...filler(4), h] };
    const { format, value: back } = roundTrip(value, handleHooks);
    expect(format).toBe(BODY_FORMAT_JSON_HANDLES);
    const b = back as { a: unknown; list: unknown[] };
    expect(b.a).toStrictEqual({ revived: 'k', index: 0 });
    expect(b.list[4]).toBe(b.a);
    const shared = { s: 2 };
    const mixed = { pad: filler(20), h, x: shared, y: [shared] };
    const m = roundTrip(mixed, handleHooks);
    expect(m.format).toBe(BODY_FORMAT_DEVALUE);
    const mb = m.value as { x: unknown; y: unknown[]; h: unknown };
    expect(mb.y[0]).toBe(mb.x);
    expect(mb.h).toStrictEqual({ revived: 'k', index: 0 });
  });

  it('reads each getter once past the first 16 objects, also for an object met twice', () => {
    let reads = 0;
    const shared = {
      get v() {
        reads++;
        return [reads];
      },
    };
    const value = [...filler(18), shared, { w: shared }, shared];
    const back = roundTrip(value).value as unknown[];
    expect(reads).toBe(1);
    expect(back[18]).toStrictEqual({ v: [1] });
    expect((back[19] as { w: unknown }).w).toBe(back[18]);
    expect(back[20]).toBe(back[18]);
  });

  it('hands a function and a value deeper than the recursion over to the iterative walk past 16 objects', () => {
    const f = (): void => undefined;
    expectIpcError(() => encodeMessage({ pad: filler(20), f }), 'UNSERIALIZABLE', /value\.f/);
    let deep: unknown = { leaf: true };
    for (let i = 0; i < 80; i++) deep = { d: deep };
    const shared = { s: 1 };
    let inner: Record<string, unknown> = deep as Record<string, unknown>;
    for (let i = 0; i < 70; i++) inner = inner.d as Record<string, unknown>;
    inner.shared = shared;
    const value = { pad: filler(20), shared, deep };
    const r = roundTrip(value, undefined, { ...LIMITS, maxDepth: 200 });
    expect(r.format).toBe(BODY_FORMAT_DEVALUE);
    const back = r.value as { shared: unknown; deep: unknown };
    let walk = back.deep as Record<string, unknown>;
    for (let i = 0; i < 70; i++) walk = walk.d as Record<string, unknown>;
    expect(walk.shared).toBe(back.shared);
    expect(devalue.stringify(back)).toBe(devalue.stringify(value));
  });

  it('names the path of a value deeper than maxDepth past the first 16 objects', () => {
    const value = { pad: filler(20), list: [0, { a: { b: [[{ c: 1 }]] } }] };
    expectIpcError(() => encodeMessage(value, undefined, { maxDepth: 5 }), 'UNSERIALIZABLE', /value\.list\[1\]\.a\.b\[0\]/);
    expectIpcError(() => encodeMessage(value, undefined, { maxDepth: 6 }), 'UNSERIALIZABLE', /value\.list\[1\]\.a\.b\[0\]\[0\]/);
    expect(roundTrip(value, undefined).value).toStrictEqual(value);
  });
});

describe('the JSON limits scan on the bytes (texts longer than 2 * maxDepth + 1)', () => {
  const withText = (text: string): Uint8Array => {
    const bytes = new TextEncoder().encode(text);
    const b = new Uint8Array((16 + bytes.length + 7) & ~7);
    b[1] = 1;
    new DataView(b.buffer).setUint32(4, bytes.length, true);
    b.set(bytes, 16);
    return b;
  };
  const limits = { ...LIMITS, maxDepth: 8 };
  const pad = 'x'.repeat(100);
  const decode = (text: string, l = limits): unknown => decodeMessage(withText(text), 0, undefined, l);

  it('refuses a __proto__ key written plainly or with \\u escapes, anywhere', () => {
    expectIpcError(() => decode(`{"p":"${pad}","a":{"__proto__":1}}`), 'MALFORMED', /__proto__/);
    expectIpcError(() => decode(`[{"p":"${pad}"},{"\\u005f_proto__":{}}]`), 'MALFORMED', /__proto__/);
    expectIpcError(() => decode(`{"p":"${pad}","__pr\\u006fto__":1}`), 'MALFORMED', /__proto__/);
    // at the very end of the text
    expectIpcError(() => decode(`[{"p":"${pad}"},{"__proto__":0}]`), 'MALFORMED', /__proto__/);
  });

  it('accepts __proto__ as a string value, inside longer keys, and after an escaped quote', () => {
    const texts = [
      `{"p":"${pad}","a":"__proto__","__proto__x":1,"x__proto__":2}`,
      `{"p":"${pad}","q":"\\"__proto__\\"","r":"\\\\"}`,
      `["${pad}","__proto__"]`,
    ];
    for (const text of texts) expect(decode(text)).toStrictEqual(JSON.parse(text));
  });

  it('counts depth and values as the text scan does, not fooled by strings, escapes or multi-byte characters', () => {
    const tricky = `"[[[[{{{{\\"[[[[é€😀,,,,"`;
    const ok = `{"p":"${pad}","s":${tricky},"a":[[[[[[[1]]]]]]]}`; // depth 8
    expect(decode(ok)).toStrictEqual(JSON.parse(ok));
    expectIpcError(() => decode(`{"p":"${pad}","s":${tricky},"a":[[[[[[[[1]]]]]]]]}`), 'TOO_LARGE', /maxDepth 8/);
    const many = `[${Array(60).fill(`"é${'é'.repeat(5)}"`).join(',')}]`; // 61 values
    expect(decode(many, { ...limits, maxElements: 61 })).toStrictEqual(JSON.parse(many));
    expectIpcError(() => decode(many, { ...limits, maxElements: 60 }), 'TOO_LARGE', /61 values, more than maxElements 60/);
    const empties = `[${Array(40).fill('[],{}').join(',')},"${pad}"]`; // 1 + 80 + 1 values
    expect(decode(empties, { ...limits, maxElements: 82 })).toStrictEqual(JSON.parse(empties));
    expectIpcError(() => decode(empties, { ...limits, maxElements: 81 }), 'TOO_LARGE', /82 values/);
  });

  it('reports bad UTF-8 before the limits, as the text path does', () => {
    const body = withText(`[[[[[[[[[["${pad}"]]]]]]]]]]`);
    body[30] = 0xff;
    expectIpcError(() => decodeMessage(body, 0, undefined, limits), 'MALFORMED', /UTF-8/);
  });
});
