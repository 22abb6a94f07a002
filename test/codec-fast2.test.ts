// Handles on the codec's fast paths (issue 15 §2): the snapshot's walk writes each handle's
// format-2 marker into the copy (no second JSON.stringify pass with a replacer), the decoder
// finds markers and __proto__ keys in one walk, and decodeRecord revives through one object per
// record instead of closures. What those could get wrong.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeRecord } from '../src/main/endpoint/decode.js';
import { IpcFileHandle } from '../src/main/files.js';
import { native } from '../src/main/native.js';
import {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON_HANDLES,
  decodeMessage,
  DEFAULT_LIMITS,
  encodeMessage,
  joinParts,
  type DecodeHooks,
} from '../src/shared/index.js';
import { expectIpcError, Handle, handleHooks } from './codec-helpers.js';

const LIMITS = DEFAULT_LIMITS;

const hooks = handleHooks;

/** Revive hooks that record each call and revive to a fresh object. */
function recording(): { hooks: DecodeHooks; calls: Array<[string, number]> } {
  const calls: Array<[string, number]> = [];
  return { calls, hooks: { reviveHandle: (kind, index) => (calls.push([kind, index]), { revived: kind, index }) } };
}

function textOf(body: Uint8Array): string {
  const n = body[4] | (body[5] << 8) | (body[6] << 16) | (body[7] << 24);
  return new TextDecoder().decode(body.subarray(16, 16 + n));
}

/** A format-2 body around `text` (header, text, zero padding), as a peer could write it. */
function format2(text: string, handleCount: number): Uint8Array {
  const t = new TextEncoder().encode(text);
  const body = new Uint8Array((16 + t.length + 7) & ~7);
  body[0] = BODY_FORMAT_JSON_HANDLES;
  body[1] = 1;
  new DataView(body.buffer).setUint32(4, t.length, true);
  new DataView(body.buffer).setUint32(12, handleCount, true);
  body.set(t, 16);
  return body;
}

/** The text the encoder wrote before markers came from the walk: JSON.stringify with a replacer. */
function replacerText(value: unknown): { text: string; handles: object[] } {
  const handles: object[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (!(v instanceof Handle)) return v;
    let i = handles.indexOf(v);
    if (i < 0) i = handles.push(v) - 1;
    return { '\u0000h': [i, v.kind] };
  });
  return { text, handles };
}

describe('format 2 from the walk\'s markers', () => {
  it('writes exactly the text and handle list the replacer pass wrote', () => {
    const a = new Handle('F');
    const b = new Handle('S');
    const values: unknown[] = [
      { fh: a },
      a,
      [a, { x: a }, 'y'],
      { one: { deep: [1, { b }] }, two: a, three: [b, a], four: { n: null, s: 'é' } },
      { k: [[[[b]]]], a },
    ];
    for (const value of values) {
      const encoded = encodeMessage(value, hooks);
      const body = joinParts(encoded);
      const expected = replacerText(value);
      expect(body[0]).toBe(BODY_FORMAT_JSON_HANDLES);
      expect(textOf(body)).toBe(expected.text);
      expect(encoded.handles.length).toBe(expected.handles.length);
      encoded.handles.forEach((h, i) => expect(h).toBe(expected.handles[i]));
    }
  });

  it('keeps a handle met twice in format 2, one object at both places; a plain object met twice goes to devalue', () => {
    const h = new Handle('F');
    const value = { a: h, b: [h, { c: h }] };
    const encoded = encodeMessage(value, hooks);
    const body = joinParts(encoded);
    expect(body[0]).toBe(BODY_FORMAT_JSON_HANDLES);
    expect(encoded.handles).toHaveLength(1);
    expect(encoded.handles[0]).toBe(h);
    const { hooks: revive, calls } = recording();
    const out = decodeMessage(body, 1, revive, LIMITS) as { a: object; b: [object, { c: object }] };
    expect(calls).toEqual([['F', 0]]);
    expect(out.b[0]).toBe(out.a);
    expect(out.b[1].c).toBe(out.a);

    const shared = { x: 1 };
    const twice = joinParts(encodeMessage({ h, p: shared, q: shared }, hooks));
    expect(twice[0]).toBe(BODY_FORMAT_DEVALUE);
    const back = decodeMessage(twice, 1, recording().hooks, LIMITS) as { p: object; q: object };
    expect(back.p).toBe(back.q);
  });

  it('on the devalue path, sends the caller\'s handles in devalue\'s order and never a marker', () => {
    const h1 = new Handle('F');
    const h2 = new Handle('S');
    // A Map and a Date make it devalue; h2 is met first in the walk's order too.
    const value = { list: [h2, h1], m: new Map<unknown, unknown>([[h1, h2]]), d: new Date(0), s: new Set([h2]) };
    const encoded = encodeMessage(value, hooks);
    const body = joinParts(encoded);
    expect(body[0]).toBe(BODY_FORMAT_DEVALUE);
    expect(encoded.handles).toHaveLength(2);
    expect(encoded.handles[0]).toBe(h2);
    expect(encoded.handles[1]).toBe(h1);
    expect(new TextDecoder().decode(body)).not.toContain('\\u0000h');
    const { hooks: revive, calls } = recording();
    const out = decodeMessage(body, 2, revive, LIMITS) as { list: object[]; m: Map<unknown, unknown>; d: Date; s: Set<unknown> };
    expect(calls).toEqual([['S', 0], ['F', 1]]);
    expect(out.list[0]).toStrictEqual({ revived: 'S', index: 0 });
    expect(out.list[1]).toStrictEqual({ revived: 'F', index: 1 });
    expect([...out.m]).toEqual([[out.list[1], out.list[0]]]);
    expect([...out.m][0][0]).toBe(out.list[1]);
    expect([...out.s][0]).toBe(out.list[0]);
    expect(out.d.getTime()).toBe(0);
    // A handle at the root, on the devalue path (a bare handle is format 2; beside a Date it is not).
    const root = encodeMessage([new Date(1), h1], hooks);
    expect(root.handles).toEqual([h1]);
    expect(joinParts(root)[0]).toBe(BODY_FORMAT_DEVALUE);
  });

  it('takes devalue when a handle\'s marker would nest deeper than maxDepth, format 2 when it fits', () => {
    const h = new Handle('F');
    const value = [[h]]; // the handle at level 3, its marker's array at level 4
    const deep = encodeMessage(value, hooks, { maxDepth: 3 });
    expect(joinParts(deep)[0]).toBe(BODY_FORMAT_DEVALUE);
    const fits = encodeMessage(value, hooks, { maxDepth: 4 });
    expect(joinParts(fits)[0]).toBe(BODY_FORMAT_JSON_HANDLES);
    for (const e of [deep, fits]) {
      const out = decodeMessage(joinParts(e), 1, recording().hooks, { ...LIMITS, maxDepth: 4 }) as unknown[][];
      expect(out[0][0]).toStrictEqual({ revived: 'F', index: 0 });
    }
  });
});

describe('the decoder\'s one walk of a format-2 body', () => {
  const M = '{"\\u0000h":[0,"F"]}';

  it('refuses __proto__ keys anywhere (plain, escaped, in arrays, beside and below markers) before any hook runs', () => {
    for (const text of [
      `{"__proto__":{"x":1},"h":${M}}`,
      `{"h":${M},"a":[1,{"\\u005f_proto__":2}]}`,
      `[${M},[[{"b":{"__proto__":null}}]]]`,
      `{"a":{"b":{"c":{"__pr\\u006fto__":[]}}},"h":${M}}`,
    ]) {
      const { hooks: revive, calls } = recording();
      expectIpcError(() => decodeMessage(format2(text, 1), 1, revive, LIMITS), 'MALFORMED', /__proto__ key/);
      expect(calls).toEqual([]);
    }
  });

  it('refuses bad markers and unreferenced handles before any hook runs', () => {
    const cases: Array<[string, number, RegExp]> = [
      [`{"\\u0000h":[0,"F"],"x":1}`, 1, /handle marker that is not/],
      [`{"\\u0000h":[0,""]}`, 1, /handle marker that is not/],
      [`{"\\u0000h":[0]}`, 1, /handle marker that is not/],
      [`[{"\\u0000h":[1,"F"]}]`, 1, /refers to handle 1 of 1/],
      [`[{"\\u0000h":[0.5,"F"]}]`, 1, /refers to handle 0.5 of 1/],
      [`[{"\\u0000h":[0,"F"]},{"\\u0000h":[0,"S"]}]`, 1, /handle 0 is referred to with two kinds/],
      [`{"a":{"\\u0000h":[1,"F"]}}`, 2, /handle 0 is never referenced/],
      [`{"a":1}`, 1, /handle 0 is never referenced/],
    ];
    for (const [text, n, message] of cases) {
      const { hooks: revive, calls } = recording();
      expectIpcError(() => decodeMessage(format2(text, n), n, revive, LIMITS), 'MALFORMED', message);
      expect(calls).toEqual([]);
    }
  });

  it('revives each index once, puts it at every marker of it, the root included', () => {
    const { hooks: revive, calls } = recording();
    const out = decodeMessage(
      format2(`{"a":{"\\u0000h":[1,"S"]},"b":[{"\\u0000h":[0,"F"]},{"\\u0000h":[1,"S"]}],"c":{"d":{"\\u0000h":[0,"F"]}}}`, 2),
      2,
      revive,
      LIMITS,
    ) as { a: object; b: object[]; c: { d: object } };
    expect(calls).toEqual([['S', 1], ['F', 0]]);
    expect(out.b[1]).toBe(out.a);
    expect(out.c.d).toBe(out.b[0]);
    expect(out.b[0]).toStrictEqual({ revived: 'F', index: 0 });
    const root = decodeMessage(format2(M, 1), 1, recording().hooks, LIMITS);
    expect(root).toStrictEqual({ revived: 'F', index: 0 });
  });
});

describe('decodeRecord\'s revival of descriptors', () => {
  const isOpen = (fd: number): boolean => {
    try {
      fstatSync(fd);
      return true;
    } catch {
      return false;
    }
  };
  const bodyWith = (value: unknown): Uint8Array => joinParts(encodeMessage(value, hooks));
  /** A descriptor of /dev/null the addon owns (as it owns one received), so that it may close it. */
  const owned = (): number => {
    const raw = openSync('/dev/null', 'r');
    const fd = native().dup(raw);
    closeSync(raw);
    return fd;
  };

  it('revives one descriptor once for every place it is met, and keeps it open', () => {
    const h = new Handle('F');
    const fd = owned();
    const revived: Array<{ close(): void }> = [];
    const out = decodeRecord<{ a: IpcFileHandle; b: IpcFileHandle[] }>({ body: bodyWith({ a: h, b: [h] }), fds: [fd] }, LIMITS, revived);
    expect(out.a).toBeInstanceOf(IpcFileHandle);
    expect(out.b[0]).toBe(out.a);
    expect(revived).toEqual([out.a]);
    expect(isOpen(fd)).toBe(true);
    out.a.close();
    expect(isOpen(fd)).toBe(false);
  });

  it('on a failure, closes the handles already revived and every descriptor none took', () => {
    // Handle 0 revives (a file), handle 1 names a kind nobody registered: both descriptors close.
    const fds = [owned(), owned()];
    const revived: Array<{ close(): void }> = [];
    expectIpcError(
      () => decodeRecord({ body: bodyWith({ a: new Handle('F'), b: new Handle('Q') }), fds }, LIMITS, revived),
      'MALFORMED',
      /unknown handle kind "Q"/,
    );
    expect(revived).toHaveLength(1);
    expect((revived[0] as IpcFileHandle).closed).toBe(true);
    expect(fds.map(isOpen)).toEqual([false, false]);
  });

  it('still refuses secrets in a kind tag other than a receiver\'s, and closes the descriptor', () => {
    const fd = owned();
    expectIpcError(
      () => decodeRecord({ body: bodyWith({ a: new Handle(`F.${'0'.repeat(32)}`) }), fds: [fd] }, LIMITS),
      'MALFORMED',
      /carries secrets, which only receivers have/,
    );
    expect(isOpen(fd)).toBe(false);
  });
});

describe('a short JSON body decoded whole (no view of its text)', () => {
  /** A format-0 body around the UTF-8 bytes `t`, zero-padded. */
  const format0 = (t: Uint8Array): Uint8Array => {
    const body = new Uint8Array((16 + t.length + 7) & ~7);
    body[1] = 1;
    new DataView(body.buffer).setUint32(4, t.length, true);
    body.set(t, 16);
    return body;
  };
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('gives the same text around 128 bytes, with multi-byte characters and every padding length', () => {
    for (let n = 0; n < 140; n++) {
      for (const fill of ['a', 'é', '€', '😀']) {
        const s = fill.repeat(n).slice(0, n);
        const text = JSON.stringify({ s });
        const body = format0(utf8(text));
        expect(decodeMessage(body, 0, undefined, LIMITS)).toStrictEqual({ s });
        // The same body in a larger buffer, at an offset.
        const big = new Uint8Array(body.length + 24);
        big.set(body, 8);
        expect(decodeMessage(big.subarray(8, 8 + body.length), 0, undefined, LIMITS)).toStrictEqual({ s });
      }
    }
  });

  it('still refuses bad UTF-8 at the text\'s start, middle and end (a sequence cut by the padding), and bad padding', () => {
    for (const bad of [
      [0x80, 0x22, 0x22],
      [0x22, 0xc3, 0x28, 0x22],
      [0x22, 0x61, 0x22, 0xe2, 0x82],
      [0x22, 0xed, 0xa0, 0x80, 0x22],
      [0x22, 0xf0, 0x9f, 0x98],
    ]) {
      expectIpcError(() => decodeMessage(format0(new Uint8Array(bad)), 0, undefined, LIMITS), 'MALFORMED', /not valid UTF-8/);
    }
    const padded = format0(utf8('"ab"'));
    padded[padded.length - 1] = 0x20;
    expectIpcError(() => decodeMessage(padded, 0, undefined, LIMITS), 'MALFORMED', /padding byte/);
    // A NUL inside the text is the text's (JSON.parse refuses it), not taken for padding.
    expectIpcError(() => decodeMessage(format0(new Uint8Array([0x22, 0x00, 0x22])), 0, undefined, LIMITS), 'MALFORMED', /does not parse/);
    expect(decodeMessage(format0(utf8('"\\u0000"')), 0, undefined, LIMITS)).toBe('\u0000');
  });
});
