// The frames the mux reads straight from a record's body bytes (src/main/mux/raw.ts, parseFrame;
// docs/multiplexing.md "Sixth round"). parseFrame must take the frames the mux writes (replies,
// flat requests, control frames) and, for ANY body, either give up (undefined: the codec's
// general decode takes the record) or return exactly what the codec decodes; a body the codec
// refuses must never be read here. Checked on the mux's frames, on values outside what it reads,
// and on every one-byte change and every cut of a set of frames (hostile bodies).
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../src/shared/codec.js';
import { DEFAULT_LIMITS } from '../src/shared/limits.js';
import type { DecodeLimits } from '../src/shared/limits.js';
import { parseFrame } from '../src/main/mux/raw.js';

const LIMITS: DecodeLimits = DEFAULT_LIMITS;

/** The codec's body of `value`. */
function bodyOf(value: unknown): Uint8Array {
  const enc = encodeMessage(value);
  expect(enc.parts.length).toBe(1);
  return enc.parts[0]!.slice();
}

/** A format-0 body around `text` (raw bytes, any content), as the codec lays one out. */
function bodyOfText(text: string | Uint8Array): Uint8Array {
  const t = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  const size = (16 + t.length + 7) & ~7;
  const b = new Uint8Array(size);
  b[1] = 1; // BODY_VERSION
  new DataView(b.buffer).setUint32(4, t.length, true);
  b.set(t, 16);
  return b;
}

const FAILED = Symbol('the codec refused it');

/** What the codec decodes from `body`, or FAILED. */
function decoded(body: Uint8Array, limits: DecodeLimits = LIMITS): unknown {
  try {
    return decodeMessage(body, 0, undefined, limits);
  } catch {
    return FAILED;
  }
}

/** parseFrame's answer agrees with the codec's: undefined, or the same value (refused bodies: undefined). */
function agrees(body: Uint8Array, limits: DecodeLimits = LIMITS): unknown[] | undefined {
  const want = decoded(body, limits);
  const got = parseFrame(body, limits);
  if (want === FAILED) expect(got, `a body the codec refuses was read: ${Buffer.from(body).toString('latin1')}`).toBeUndefined();
  else if (got !== undefined) expect(got, Buffer.from(body).toString('latin1')).toStrictEqual(want);
  return got;
}

/** The frames the mux writes itself (writer.ts): each must be read here. */
const MUX_FRAMES: unknown[][] = [
  [5, 1],
  [-5, 0],
  [7, -123456789012345],
  [7, 999999999999999],
  [3, null],
  [3, true],
  [3, false],
  [3, ''],
  [3, 'sensor-7'],
  [3, 'x'.repeat(64)],
  [3, 'a longer string of printable ascii ~!@#$%^&*()_+{}|:<>?'],
  [-1, { op: 'get', key: 'k1', n: 3, reply: null }, 's', 12, 'reply'],
  [-1, { tx: null }, 's', 2, 'tx'],
  [-1, { op: 'first', tx: null }, 's', 281474976710655, 'tx'],
  [-1, { a: 1, b: true, c: null, d: 'x', '': 0, '0': 7 }],
  [-1, {}],
  [-1, { r: null }, 'r', -3, 'r'],
  [0, 1, 5, 1],
  [0, 1, 5, 1, 2, -7, 0, 1, 99, 3],
  [0, ...Array.from({ length: 3 * 100 }, (_, i) => (i % 3 === 0 ? 1 : i))],
];

describe('parseFrame (the mux reads its own frames from the body bytes)', () => {
  it('reads every frame the mux writes, as the codec decodes it', () => {
    for (const f of MUX_FRAMES) {
      const body = bodyOf(f);
      const got = agrees(body);
      expect(got, JSON.stringify(f)).toStrictEqual(f);
      // Read twice (its string cache) gives the same.
      expect(parseFrame(body, LIMITS)).toStrictEqual(f);
    }
  });

  it('the objects it makes are plain objects, as JSON.parse makes them', () => {
    const got = parseFrame(bodyOf([-1, { op: 'x', reply: null }, 's', 2, 'reply']), LIMITS)!;
    expect(Object.getPrototypeOf(got[1])).toBe(Object.prototype);
    expect(Object.keys(got[1] as object)).toEqual(['op', 'reply']);
    expect(Array.isArray(got)).toBe(true);
  });

  it('leaves to the codec what it does not read: floats, escapes, non-ASCII, long strings, long digit runs, nesting', () => {
    const others: unknown[][] = [
      [3, 1.5],
      [3, -2.5e-7],
      [3, 1e21],
      [3, 2 ** 53],
      [3, 1234567890123456],
      [3, 'quote " and \\ backslash'],
      [3, 'tab\t'],
      [3, 'é'],
      [3, '漢字 😀'],
      [3, 'x'.repeat(65)],
      [3, [1, 2]],
      [3, { a: { b: 1 } }],
      [3, { a: [1] }],
      [-1, { a: null }, 's', 2, ['a']],
      [[1], 2],
      [],
    ];
    for (const f of others) expect(agrees(bodyOf(f)), JSON.stringify(f)).toBeUndefined();
    // Texts the codec never writes but decodes: whitespace, a leading +, exponent forms.
    for (const t of ['[ 1,2]', '[1, 2]', '[1,2 ]', '[1,2e0]', '[1,2.0]', '[1,2E1]', '[1,"a\\u0062"]', '[1,"a\\/"]']) {
      expect(decoded(bodyOfText(t))).not.toBe(FAILED);
      expect(agrees(bodyOfText(t)), t).toBeUndefined();
    }
  });

  it('never reads a body the codec refuses: a __proto__ key, bad JSON, bad UTF-8, huge digit runs, bad headers', () => {
    const texts: Array<string | Uint8Array> = [
      '[-1,{"__proto__":null},"s",2,"__proto__"]',
      '[-1,{"__proto__":1}]',
      '[1,01]',
      '[1,-]',
      '[1,-01]',
      '[1,00]',
      '[1,2,]',
      '[,1]',
      '[1,2]]',
      '[1,2]x',
      '[1,{"a":1,}]',
      '[1,{"a"}]',
      '[1,{"a":}]',
      '[1,{a:1}]',
      '[1,{"a":1]',
      '[1,"abc]',
      '[1,"ab\u0001c"]',
      '[1,nul]',
      '[1,nulll]',
      '[1,tru]',
      '[1,fals]',
      '[1,falsee]',
      '[1,NaN]',
      '[1,Infinity]',
      '[1,undefined]',
      `[1,${'9'.repeat(400)}]`,
      `[1,-${'9'.repeat(400)}]`,
      new Uint8Array([0x5b, 0x31, 0x2c, 0x22, 0xc3, 0x22, 0x5d]), // a cut UTF-8 sequence
      new Uint8Array([0x5b, 0x31, 0x2c, 0x22, 0xff, 0xfe, 0x22, 0x5d]),
      new Uint8Array([0x5b, 0x31, 0x2c, 0x22, 0xc3, 0xa9, 0x22, 0x5d]), // "é": decoded by the codec, not here
      '[]',
      '',
      '[',
      ']',
    ];
    for (const t of texts) expect(agrees(bodyOfText(t)), String(t)).toBeUndefined();
    // Huge digit runs the codec decodes (to a rounded double or Infinity): never read here.
    for (const d of ['9'.repeat(16), '12345678901234567890123', '9'.repeat(400), '1' + '0'.repeat(308)]) {
      const body = bodyOfText(`[1,${d}]`);
      expect(decoded(body)).toStrictEqual([1, JSON.parse(d)]);
      expect(parseFrame(body, LIMITS), d).toBeUndefined();
    }
    // Headers and lengths: another format, version, flags, a binary or handle count, a text
    // length past the body or not matching it, padding not zero, a body cut short.
    const good = bodyOf([5, 1]);
    expect(parseFrame(good, LIMITS)).toStrictEqual([5, 1]);
    for (let i = 0; i < 16; i++) {
      for (const x of [1, 2, 3, 0x80, 0xff]) {
        const b = good.slice();
        b[i] = b[i]! ^ x;
        agrees(b);
      }
    }
    for (let cut = 0; cut < good.length; cut++) agrees(good.subarray(0, cut));
    // Eight more zero bytes after the padding: the header's length no longer gives the body's.
    const longer = new Uint8Array(good.length + 8);
    longer.set(good);
    expect(decoded(longer)).toBe(FAILED);
    expect(agrees(longer)).toBeUndefined();
    const padded = good.slice();
    padded[padded.length - 1] = 0x20;
    expect(decoded(padded)).toBe(FAILED);
    expect(agrees(padded)).toBeUndefined();
  });

  it('every one-byte change and every shortened text of the mux frames: the codec\'s value or nothing', () => {
    const BYTES = [0x00, 0x09, 0x20, 0x22, 0x2b, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x39, 0x3a, 0x45, 0x5b, 0x5c, 0x5d, 0x61, 0x65, 0x6c, 0x6e, 0x7b, 0x7d, 0x7f, 0x80, 0xc3, 0xff];
    let read = 0;
    let total = 0;
    for (const f of MUX_FRAMES.slice(0, 19)) {
      const body = bodyOf(f);
      const textBytes = new DataView(body.buffer).getUint32(4, true);
      for (let i = 16; i < 16 + textBytes; i++) {
        for (const x of BYTES) {
          if (body[i] === x) continue;
          const b = body.slice();
          b[i] = x;
          total++;
          if (agrees(b) !== undefined) read++;
        }
      }
      // The text cut short (the header's length says so), and the same bytes under the old length.
      const text = body.subarray(16, 16 + textBytes);
      for (let cut = 0; cut < textBytes; cut++) {
        total++;
        if (agrees(bodyOfText(text.subarray(0, cut))) !== undefined) read++;
      }
    }
    // Many changes still make a frame it reads (another digit, another letter of a string).
    expect(read).toBeGreaterThan(100);
    expect(total).toBeGreaterThan(5000);
  });

  it('keeps the receiver\'s maxElements and maxDepth: a frame over them is the codec\'s (TOO_LARGE)', () => {
    const control = bodyOf([0, 1, 5, 1, 1, 6, 1]);
    expect(parseFrame(control, LIMITS)).toStrictEqual([0, 1, 5, 1, 1, 6, 1]);
    const few = { ...LIMITS, maxElements: 7 };
    expect(decoded(control, few)).toBe(FAILED);
    expect(agrees(control, few)).toBeUndefined();
    expect(agrees(control, { ...LIMITS, maxElements: 8 })).toStrictEqual([0, 1, 5, 1, 1, 6, 1]);
    const request = bodyOf([-1, { op: 'x', reply: null }, 's', 2, 'reply']);
    expect(agrees(request, { ...LIMITS, maxElements: 8 })).toBeDefined();
    expect(agrees(request, { ...LIMITS, maxElements: 7 })).toBeUndefined();
    const deep = bodyOf([-1, { op: 1, op2: 2, op3: 3, op4: 4, op5: 5 }]);
    expect(decoded(deep, { ...LIMITS, maxDepth: 1 })).toBe(FAILED);
    expect(agrees(deep, { ...LIMITS, maxDepth: 1 })).toBeUndefined();
    expect(agrees(deep, { ...LIMITS, maxDepth: 2 })).toBeDefined();
  });
});
