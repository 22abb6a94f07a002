// Format 3 (JSON with handles) on the codec's cheaper paths (issue 15 §2, codec5): the body
// written in place by encodeMessageInto (the table reserved before the text, a view per table
// size kept), the walk's position table reused from value to value (words overwritten, a length
// kept), the first handle's arrays made as literals, and the decoder reading its own header and
// decoding the text with the whole body when every byte before the text is ASCII. What those
// could get wrong: stale bytes of an earlier body or table, a view at the wrong offset or of
// the wrong `into`, a table word left from an earlier value, a slice off by one, a table byte of
// 0x80 or more decoded as text, padding not checked.
import { describe, expect, it } from 'vitest';
import { encodeMessageInto } from '../src/shared/codec.js';
import { BODY_FORMAT_JSON_HANDLES, decodeMessage, DEFAULT_LIMITS, encodeMessage, joinParts } from '../src/shared/index.js';
import type { DecodeHooks } from '../src/shared/index.js';
import { expectIpcError, format3, Handle, handleHooks as plainHooks } from './codec-helpers.js';
import type { EncodeHooks } from '../src/shared/index.js';

/** Hooks that allow format 3 in place for every kind but 'NO' (see EncodeHooks.inPlace). */
const handleHooks: EncodeHooks = { handleKind: plainHooks.handleKind, inPlace: (kind) => kind !== 'NO' };

const LIMITS = DEFAULT_LIMITS;

/** Revive hooks that revive handle i of kind k to `{ k, i }`. */
const revive: DecodeHooks = { reviveHandle: (kind, index) => ({ k: kind, i: index }) };

/** The value as decoding it with {@link revive} gives it back. */
function revived(value: unknown, handles: object[]): unknown {
  if (value instanceof Handle) return { k: value.kind, i: handles.indexOf(value) };
  if (Array.isArray(value)) return value.map((e) => revived(e, handles));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, e]) => [k, revived(e, handles)]));
  }
  return value;
}

const a = new Handle('F');
const b = new Handle('S');
const c = new Handle('R.abcdefgh');

/** Values with handles whose tables (and so text offsets) and text paddings all differ. */
const VALUES: unknown[] = [
  { fh: a },
  a,
  { fh: a, s: 'x' },
  { fh: a, s: 'xy' },
  { fh: a, s: 'xyz' },
  { fh: a, s: 'wxyz' },
  { fh: a, s: 'vwxyz' },
  { fh: a, s: 'uvwxyz' },
  { fh: a, s: 'tuvwxyz' },
  [a, b, { c }],
  { one: { deep: [1, { b }] }, two: a, three: [b, a], four: { n: null, s: 'é€😀' } },
  { k: [[[[c]]]], a, list: [1, 2, 3] },
  { kind: new Handle('K'.repeat(9)) },
  { x: new Handle('ABCD'), y: a, z: new Handle('EFGHIJKL') },
  [new Handle('ABCDEFGH'), new Handle('IJKLMNOP'), new Handle('QRS'), b],
  { x: new Handle('ABCDEFG'), y: b },
  { kind: new Handle('Q'.repeat(4096)) },
];

describe('encodeMessageInto with handles (format 3 in place)', () => {
  it('writes what encodeMessage writes, byte for byte, into `into` from byte 0, whatever it held', () => {
    const into = new Uint8Array(4096 + 512);
    // Twice through, so that each table size's view is used again after others.
    for (const value of [...VALUES, ...VALUES.slice().reverse()]) {
      into.fill(0xee);
      const enc = encodeMessageInto(value, handleHooks, into);
      const want = encodeMessage(value, handleHooks);
      const body = joinParts(want);
      expect(body[0]).toBe(BODY_FORMAT_JSON_HANDLES);
      expect(enc.parts).toHaveLength(1);
      expect(enc.parts[0]).toBe(into);
      expect(enc.byteLength).toBe(body.length);
      expect([...into.subarray(0, enc.byteLength)]).toEqual([...body]);
      expect(enc.handles).toHaveLength(want.handles.length);
      enc.handles.forEach((h, i) => expect(h).toBe(want.handles[i]));
      const out = decodeMessage(into.subarray(0, enc.byteLength), enc.handles.length, revive, LIMITS);
      expect(out).toStrictEqual(revived(value, enc.handles));
    }
  });

  it('writes the same bytes into an `into` that does not start on a 4-byte boundary (written byte by byte), format 0 too', () => {
    const buffer = new ArrayBuffer(4096 + 8);
    for (const offset of [1, 2, 3, 4, 8]) {
      const into = new Uint8Array(buffer, offset, 4096);
      for (const value of [...VALUES.slice(0, 13), { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] }, 'x', { s: 'é€😀' }]) {
        into.fill(0xee);
        const enc = encodeMessageInto(value, handleHooks, into);
        expect(enc.parts[0]).toBe(into);
        expect([...into.subarray(0, enc.byteLength)]).toEqual([...joinParts(encodeMessage(value, handleHooks))]);
      }
    }
  });

  it('writes into each `into` it is given (the views kept are the last `into`\'s)', () => {
    const one = new Uint8Array(256);
    const two = new Uint8Array(512);
    for (let round = 0; round < 3; round++) {
      for (const [into, value] of [
        [one, { fh: a }],
        [two, { fh: a }],
        [two, [a, b, { c }]],
        [one, [a, b, { c }]],
      ] as Array<[Uint8Array, unknown]>) {
        into.fill(0xee);
        const enc = encodeMessageInto(value, handleHooks, into);
        expect(enc.parts[0]).toBe(into);
        expect([...into.subarray(0, enc.byteLength)]).toEqual([...joinParts(encodeMessage(value, handleHooks))]);
      }
    }
  });

  it('writes format 3 in place only when hooks.inPlace allows every kind of the body', () => {
    const into = new Uint8Array(512);
    const no = new Handle('NO');
    for (const [hooks, value, inPlace] of [
      [plainHooks, { fh: a }, false],
      [handleHooks, { fh: a }, true],
      [handleHooks, { fh: a, x: no }, false],
      [handleHooks, [no], false],
      [{ handleKind: plainHooks.handleKind, inPlace: () => 1 as unknown as boolean }, { fh: a }, false],
    ] as Array<[EncodeHooks, unknown, boolean]>) {
      into.fill(0xee);
      const enc = encodeMessageInto(value, hooks, into);
      expect(enc.parts[0] === into).toBe(inPlace);
      if (!inPlace) expect(into.every((b) => b === 0xee)).toBe(true);
      const body = inPlace ? into.subarray(0, enc.byteLength) : joinParts(enc);
      expect([...body]).toEqual([...joinParts(encodeMessage(value, hooks))]);
    }
  });

  it('falls back to a part of its own when the text does not fit after the table, leaving the result whole', () => {
    // { fh } with kind F: 16-byte header + 24-byte table, so 24 bytes of text fit in 64.
    const into = new Uint8Array(64);
    const fits = { fh: a, s: 'x'.repeat(7) }; // {"fh":0,"s":"xxxxxxx"}: 22 bytes
    expect(JSON.stringify({ fh: 0, s: 'x'.repeat(7) }).length).toBe(22);
    into.fill(0xee);
    const enc = encodeMessageInto(fits, handleHooks, into);
    expect(enc.parts[0]).toBe(into);
    expect(enc.byteLength).toBe(64);
    expect([...into]).toEqual([...joinParts(encodeMessage(fits, handleHooks))]);
    for (const value of [{ fh: a, s: 'x'.repeat(10) }, { fh: a, s: 'é'.repeat(6) }, { fh: a, s: 'x'.repeat(100) }, { fh: new Handle('K'.repeat(60)) }]) {
      into.fill(0xee);
      const out = encodeMessageInto(value, handleHooks, into);
      expect(out.parts[0]).not.toBe(into);
      expect(joinParts(out)).toEqual(joinParts(encodeMessage(value, handleHooks)));
      expect(out.handles).toHaveLength(1);
    }
  });
});

describe('encodeMessage with handles: the header and table written a word at a time into a slab part, byte by byte into a part of its own', () => {
  it('writes the format\'s bytes for small and large bodies', () => {
    for (const n of [0, 1, 5, 100, 4000, 4100, 9000]) {
      const s = 'x'.repeat(n);
      for (const [value, json, positions, kinds] of [
        [{ fh: a, s }, JSON.stringify({ fh: 0, s }), [[0]], ['F']],
        [[s, b, { c }], JSON.stringify([s, 0, { c: 1 }]), [[1], [2, 0]], ['S', 'R.abcdefgh']],
      ] as Array<[unknown, string, number[][], string[]]>) {
        const body = joinParts(encodeMessage(value, handleHooks));
        expect([...body]).toEqual([...format3(json, positions, kinds)]);
      }
      // Format 0 beside it: its header as the decoder checks it.
      expect(decodeMessage(joinParts(encodeMessage({ s })), 0, undefined, LIMITS)).toStrictEqual({ s });
    }
  });
});

describe('the walk\'s position table, reused from value to value', () => {
  it('holds only the current value\'s positions: long tables, then short ones', () => {
    const many = Array.from({ length: 600 }, (_, i) => (i % 2 ? { h: new Handle('F') } : new Handle('S')));
    const deep = { x: [[[[[[[[a]]]]]]]], y: [b, b, b, { z: [c, a] }] };
    for (const value of [deep, { fh: a }, many, { fh: a }, deep, [a], many, a, { fh: a }]) {
      const enc = encodeMessage(value, handleHooks);
      const body = joinParts(enc);
      expect(body[0]).toBe(BODY_FORMAT_JSON_HANDLES);
      expect(decodeMessage(body, enc.handles.length, revive, LIMITS)).toStrictEqual(revived(value, enc.handles));
    }
    // The short one against the format's own layout: one position, one key (rank 0), kind F.
    expect([...joinParts(encodeMessage({ fh: a }, handleHooks))]).toEqual([...format3('{"fh":0}', [[0]], ['F'])]);
  });

  it('starts empty after a walk that threw with positions recorded', () => {
    const tooDeep = { fh: a, list: [b, [[[[{}]]]]] };
    expectIpcError(() => encodeMessage(tooDeep, handleHooks, { maxDepth: 4 }), 'UNSERIALIZABLE', /deeper than maxDepth 4/);
    const hooks = {
      handleKind: (v: object) => {
        if (v === c) throw new Error('hook failed');
        return handleHooks.handleKind(v);
      },
    };
    expectIpcError(() => encodeMessage({ x: [a, b], y: c }, hooks), 'UNSERIALIZABLE', /hook failed/);
    expect([...joinParts(encodeMessage({ fh: a }, handleHooks))]).toEqual([...format3('{"fh":0}', [[0]], ['F'])]);
  });

  it('keeps each value\'s table when a getter encodes another value while the first is read', () => {
    let inner: Uint8Array | undefined;
    const value = {
      first: [b, b],
      get g() {
        inner = joinParts(encodeMessage({ x: [1, c], y: a }, handleHooks));
        return a;
      },
    };
    const outer = joinParts(encodeMessage(value, handleHooks));
    expect([...inner!]).toEqual([...format3('{"x":[1,0],"y":1}', [[0, 1], [1]], ['R.abcdefgh', 'F'])]);
    expect([...outer]).toEqual([...format3('{"first":[0,0],"g":1}', [[0, 0], [0, 1], [1]], ['S', 'F'])]);
  });
});

describe('decoding format 3: its own header checks, and the text decoded whole or through a view', () => {
  it('decodes texts of every padding, ASCII and not', () => {
    for (let n = 0; n < 20; n++) {
      for (const s of ['x'.repeat(n), 'é'.repeat(n), '😀'.repeat(n)]) {
        const json = JSON.stringify({ h: 0, s });
        const body = format3(json, [[0]], ['F']);
        expect(decodeMessage(body, 1, revive, LIMITS)).toStrictEqual({ h: { k: 'F', i: 0 }, s });
      }
    }
  });

  it('decodes a table with bytes of 0x80 and more (not valid UTF-8 as text): the text alone is decoded', () => {
    // A handle at index 200: the table word 200 is the byte 0xc8, then zeros.
    const list: unknown[] = Array.from({ length: 201 }, () => null);
    list[200] = 0;
    const body = format3(JSON.stringify(list), [[200]], ['F']);
    const out = decodeMessage(body, 1, revive, LIMITS) as unknown[];
    expect(out[200]).toStrictEqual({ k: 'F', i: 0 });
    expect(out[199]).toBe(null);
    // And a text of 128 bytes or more (its length's first byte is 0x80 or more).
    const long = { h: 0, s: 'y'.repeat(200) };
    expect(decodeMessage(format3(JSON.stringify(long), [[0]], ['F']), 1, revive, LIMITS)).toStrictEqual({ ...long, h: { k: 'F', i: 0 } });
  });

  it('refuses non-zero padding after the text, and text that is not UTF-8, on both ways of decoding it', () => {
    for (const tableByte of [0, 200]) {
      const list: unknown[] = Array.from({ length: tableByte + 1 }, () => 1);
      list[tableByte] = 0;
      const json = JSON.stringify(list);
      const body = format3(json, [[tableByte]], ['F']);
      const textBytes = new DataView(body.buffer).getUint32(4, true);
      const textEnd = body.length - ((8 - (textBytes % 8)) % 8);
      expect(textEnd).toBeLessThan(body.length);
      const padded = body.slice();
      padded[body.length - 1] = 0x20;
      expectIpcError(() => decodeMessage(padded, 1, revive, LIMITS), 'MALFORMED', /padding/);
      const bad = body.slice();
      bad[textEnd - 2] = 0xff; // inside the last number of the list
      expectIpcError(() => decodeMessage(bad, 1, revive, LIMITS), 'MALFORMED', /UTF-8/);
    }
  });

  it('refuses every non-zero byte of the table\'s padding, naming its offset, whatever the kind\'s length', () => {
    for (let n = 1; n <= 8; n++) {
      const good = format3('{"h":0}', [[0]], ['K'.repeat(n)]);
      expect(decodeMessage(good, 1, revive, LIMITS)).toStrictEqual({ h: { k: 'K'.repeat(n), i: 0 } });
      // The table: count, keyCount, key, kind length (16 bytes), the kind, padding to a multiple of 8.
      const tableEnd = 16 + 16 + n;
      const textStart = 16 + ((16 + n + 7) & ~7);
      for (let at = tableEnd; at < textStart; at++) {
        const bad = good.slice();
        bad[at] = 1;
        expectIpcError(() => decodeMessage(bad, 1, revive, LIMITS), 'MALFORMED', new RegExp(`padding byte at offset ${at} is not zero`));
      }
    }
  });

  it('checks the header as every other format does, with the same messages', () => {
    const good = format3('{"h":0}', [[0]], ['F']);
    const mut = (i: number, v: number): Uint8Array => {
      const b = good.slice();
      b[i] = v;
      return b;
    };
    expectIpcError(() => decodeMessage(mut(1, 2), 1, revive, LIMITS), 'MALFORMED', /unknown version 2/);
    expectIpcError(() => decodeMessage(mut(3, 1), 1, revive, LIMITS), 'MALFORMED', /reserved header bytes/);
    expectIpcError(() => decodeMessage(mut(8, 9), 1, revive, LIMITS), 'MALFORMED', /does not fit/);
    expectIpcError(() => decodeMessage(mut(4, 40), 1, revive, LIMITS), 'MALFORMED', /text of 40 bytes does not fit/);
    expectIpcError(() => decodeMessage(mut(4, 0), 1, revive, LIMITS), 'MALFORMED', /not the length/);
    expectIpcError(() => decodeMessage(good, 2, revive, LIMITS), 'MALFORMED', /announces 1 handles but 2/);
    expectIpcError(() => decodeMessage(mut(12, 0), 0, revive, LIMITS), 'MALFORMED', /names no handle/);
    expectIpcError(() => decodeMessage(good, 1, undefined, LIMITS), 'MALFORMED', /cannot take any/);
    expectIpcError(() => decodeMessage(good.subarray(0, 15), 1, revive, LIMITS), 'MALFORMED', /shorter than the 16-byte header/);
    expect(decodeMessage(good, 1, revive, LIMITS)).toStrictEqual({ h: { k: 'F', i: 0 } });
  });
});
