// Handles on the codec's fast paths (issue 15 §2): format 3 writes the handles' positions beside
// the JSON (recorded by the snapshot's walk; no marker in the text), the decoder follows them
// (no walk of the value), and decodeRecord revives through one object per record instead of
// closures. What those could get wrong.
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
import { IpcError } from '../src/shared/errors.js';
import { expectIpcError, format3, Handle, handleHooks } from './codec-helpers.js';

const LIMITS = DEFAULT_LIMITS;

const hooks = handleHooks;

/** Revive hooks that record each call and revive to a fresh object. */
function recording(): { hooks: DecodeHooks; calls: Array<[string, number]> } {
  const calls: Array<[string, number]> = [];
  return { calls, hooks: { reviveHandle: (kind, index) => (calls.push([kind, index]), { revived: kind, index }) } };
}

function textOf(body: Uint8Array): string {
  const v = new DataView(body.buffer, body.byteOffset);
  const start = 16 + 8 * (body[0] === BODY_FORMAT_JSON_HANDLES ? v.getUint32(8, true) : 0);
  return new TextDecoder().decode(body.subarray(start, start + v.getUint32(4, true)));
}

/**
 * What format 3 specifies for `value`, computed the simple way (a recursive copy in devalue's
 * order): the JSON of the value with each handle's index in its place, every place's position
 * (array indices, object keys' ranks in Object.keys order), the kinds by index.
 */
function reference(value: unknown): { body: Uint8Array; handles: object[] } {
  const handles: object[] = [];
  const kinds: string[] = [];
  const positions: number[][] = [];
  const copy = (v: unknown, path: number[]): unknown => {
    if (v instanceof Handle) {
      let i = handles.indexOf(v);
      if (i < 0) {
        i = handles.push(v) - 1;
        kinds.push(v.kind);
      }
      positions.push(path);
      return i;
    }
    if (Array.isArray(v)) return v.map((e, i) => copy(e, [...path, i]));
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(Object.keys(v).map((k, rank) => [k, copy((v as Record<string, unknown>)[k], [...path, rank])]));
    }
    return v;
  };
  const json = JSON.stringify(copy(value, []));
  return { body: format3(json, positions, kinds), handles };
}

describe('format 3: the handles\' positions beside the JSON', () => {
  it('writes exactly the body and handle list the format specifies', () => {
    const a = new Handle('F');
    const b = new Handle('S');
    const values: unknown[] = [
      { fh: a },
      a,
      [a, { x: a }, 'y'],
      { one: { deep: [1, { b }] }, two: a, three: [b, a], four: { n: null, s: 'é' } },
      { k: [[[[b]]]], a },
      { '0': a, '': [b], 'k"\\\u0000h': { 'é': a }, 7: b },
      // Below the fast walk's recursion (hand-over to the iterative walk), and a handle met there twice.
      { deep: JSON.parse('['.repeat(70) + '{"x":1}' + ']'.repeat(70)) as unknown, a },
    ];
    let below: unknown = { z: [a, { y: b }, a] };
    for (let i = 0; i < 70; i++) below = [i, { n: below }];
    values.push(below);
    for (const value of values) {
      const encoded = encodeMessage(value, hooks, { maxDepth: 200 });
      const body = joinParts(encoded);
      const expected = reference(value);
      expect(body[0]).toBe(BODY_FORMAT_JSON_HANDLES);
      expect([...body]).toEqual([...expected.body]);
      expect(encoded.handles.length).toBe(expected.handles.length);
      encoded.handles.forEach((h, i) => expect(h).toBe(expected.handles[i]));
      // And it decodes to the value with each handle revived at every place, once per handle.
      const { hooks: revive, calls } = recording();
      const out = decodeMessage(body, expected.handles.length, revive, { ...LIMITS, maxDepth: 200 });
      expect(calls).toEqual(expected.handles.map((h, i) => [(h as Handle).kind, i]));
      const revivedOf = (v: unknown): unknown =>
        v instanceof Handle ? { revived: v.kind, index: expected.handles.indexOf(v) } : Array.isArray(v) ? v.map(revivedOf) : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, e]) => [k, revivedOf(e)])) : v;
      expect(out).toStrictEqual(revivedOf(value));
    }
  });

  it('does not change the caller\'s value, and a handle inside a getter-built object is where the getter put it', () => {
    const a = new Handle('F');
    const inner = { h: a };
    const value = { inner, list: [a] };
    encodeMessage(value, hooks);
    expect(value.inner).toBe(inner);
    expect(inner.h).toBe(a);
    expect(value.list[0]).toBe(a);
    let reads = 0;
    const getter = {
      get g() {
        reads++;
        return { h: a };
      },
    };
    const body = joinParts(encodeMessage(getter, hooks));
    expect(reads).toBe(1);
    expect(textOf(body)).toBe('{"g":{"h":0}}');
    expect([...body]).toEqual([...format3('{"g":{"h":0}}', [[0, 0]], ['F'])]);
  });

  it('keeps a handle met twice in format 3, one object at both places; a plain object met twice goes to devalue', () => {
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
    const { hooks: revive, calls } = recording();
    const out = decodeMessage(body, 2, revive, LIMITS) as { list: object[]; m: Map<unknown, unknown>; d: Date; s: Set<unknown> };
    expect(calls).toEqual([['S', 0], ['F', 1]]);
    expect(out.list[0]).toStrictEqual({ revived: 'S', index: 0 });
    expect(out.list[1]).toStrictEqual({ revived: 'F', index: 1 });
    expect([...out.m]).toEqual([[out.list[1], out.list[0]]]);
    expect([...out.m][0][0]).toBe(out.list[1]);
    expect([...out.s][0]).toBe(out.list[0]);
    expect(out.d.getTime()).toBe(0);
    // A handle at the root, on the devalue path (a bare handle is format 3; beside a Date it is not).
    const root = encodeMessage([new Date(1), h1], hooks);
    expect(root.handles).toEqual([h1]);
    expect(joinParts(root)[0]).toBe(BODY_FORMAT_DEVALUE);
  });

  it('measures a handle at its own level: format 3 up to maxDepth, refused beyond, on both sides', () => {
    const h = new Handle('F');
    const value = [[h]]; // the handle at level 3
    const fits = encodeMessage(value, hooks, { maxDepth: 3 });
    expect(joinParts(fits)[0]).toBe(BODY_FORMAT_JSON_HANDLES);
    const out = decodeMessage(joinParts(fits), 1, recording().hooks, { ...LIMITS, maxDepth: 3 }) as unknown[][];
    expect(out[0][0]).toStrictEqual({ revived: 'F', index: 0 });
    expectIpcError(() => encodeMessage(value, hooks, { maxDepth: 2 }), 'UNSERIALIZABLE', /value\[0\]\[0\]: it nests deeper than maxDepth 2/);
    const { hooks: revive, calls } = recording();
    expectIpcError(() => decodeMessage(joinParts(fits), 1, revive, { ...LIMITS, maxDepth: 2 }), 'TOO_LARGE', /deeper than maxDepth 2/);
    // maxDepth 1: only a handle at the root.
    expect(decodeMessage(joinParts(encodeMessage(h, hooks, { maxDepth: 1 })), 1, recording().hooks, { ...LIMITS, maxDepth: 1 })).toStrictEqual({ revived: 'F', index: 0 });
    expectIpcError(() => decodeMessage(format3('[0]', [[0]], ['F']), 1, revive, { ...LIMITS, maxDepth: 1 }), 'TOO_LARGE', /maxDepth 1/);
    expectIpcError(() => decodeMessage(format3('{"a":[0]}', [[]], ['F']), 1, revive, { ...LIMITS, maxDepth: 1 }), 'TOO_LARGE', /maxDepth 1/);
    // A position of more keys than maxDepth allows, whatever the value holds.
    expectIpcError(() => decodeMessage(format3('[[0]]', [[0, 0]], ['F']), 1, revive, { ...LIMITS, maxDepth: 2 }), 'TOO_LARGE', /deeper than maxDepth 2/);
    expectIpcError(() => decodeMessage(format3('0', [Array(5000).fill(0)], ['F']), 1, revive, LIMITS), 'TOO_LARGE', /deeper than maxDepth/);
    expect(calls).toEqual([]);
  });
});

describe('the decoder of a format-3 body', () => {
  it('refuses __proto__ keys anywhere (plain, escaped, in arrays, on a position\'s way) before any hook runs', () => {
    for (const [json, position] of [
      ['{"__proto__":{"x":1},"h":0}', [1]],
      ['{"h":0,"a":[1,{"\\u005f_proto__":2}]}', [0]],
      ['[0,[[{"b":{"__proto__":null}}]]]', [0]],
      ['{"a":{"b":{"c":{"__pr\\u006fto__":[]}}},"h":0}', [1]],
      ['{"__proto__":{"h":0}}', [0, 0]],
    ] as Array<[string, number[]]>) {
      const { hooks: revive, calls } = recording();
      expectIpcError(() => decodeMessage(format3(json, [position], ['F']), 1, revive, LIMITS), 'MALFORMED', /__proto__ key/);
      expect(calls).toEqual([]);
    }
  });

  it('refuses bad tables, positions that lead anywhere but to a handle index once, and unreferenced handles, before any hook runs', () => {
    const malformedCases: Array<[string, Uint8Array, number, RegExp]> = [
      // The table's shape.
      ['no table', format3('0', [], [], 1).subarray(0, 16 + 8), 1, /./],
      ['fewer positions than handles', format3('[0,1]', [[0]], ['F', 'S']), 2, /1 handle positions for 2 handles/],
      ['a count the table cannot hold', format3('0', [[]], ['F'], 1, { count: 1000 }), 1, /do not fit in the handle table/],
      ['a count of keys the table cannot hold', format3('[0]', [[0]], ['F'], 1, { kindLengths: [1] }).map((b, i) => (i === 20 ? 50 : b)), 1, /position 0 does not fit/],
      ['bytes after the kinds', format3('0', [[]], ['F'], 1, { extra: [0, 0, 0, 0, 0, 0, 0, 0] }), 1, /bytes more than its entries/],
      ['non-zero padding in the table', format3('0', [[]], ['F'], 1, { extra: [1] }), 1, /padding byte/],
      // The kinds.
      ['an empty kind', format3('0', [[]], ['']), 1, /empty, too long or does not fit/],
      ['a kind longer than the table', format3('0', [[]], ['F'], 1, { kindLengths: [500] }), 1, /empty, too long or does not fit/],
      ['a kind of control characters', format3('0', [[]], ['F\n']), 1, /not printable ASCII/],
      ['a kind of non-ASCII bytes', format3('0', [[]], ['F\u00e9']), 1, /not printable ASCII/],
      ['a missing kind', format3('[0,1]', [[0], [1]], ['F'], 2), 2, /the kind of handle 1 (is empty|does not fit)/],
      // Where a position leads.
      ['an index past the array', format3('[0]', [[1]], ['F']), 1, /array index out of range/],
      ['a rank past the object\'s keys', format3('{"a":0}', [[1]], ['F']), 1, /key rank out of range/],
      ['through a number', format3('{"a":0}', [[0, 0]], ['F']), 1, /leads through a non-container/],
      ['through a string', format3('{"a":"x"}', [[0, 0]], ['F']), 1, /leads through a non-container/],
      ['through null', format3('{"a":null}', [[0, 0]], ['F']), 1, /leads through a non-container/],
      // What is there: a handle index, once.
      ['an index out of range', format3('{"a":1}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['a negative number', format3('{"a":-1}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['a fraction', format3('{"a":0.5}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['a string', format3('{"a":"0"}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['null', format3('{"a":null}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['true', format3('{"a":true}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['an object', format3('{"a":{}}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['an array', format3('{"a":[0]}', [[0]], ['F']), 1, /position 0 is not at a handle index/],
      ['the root object', format3('{"a":0}', [[]], ['F']), 1, /position 0 is not at a handle index/],
      ['a position twice', format3('{"a":0}', [[0], [0]], ['F']), 1, /position 1 is not at a handle index \(or is repeated\)/],
      ['the root twice', format3('0', [[], []], ['F']), 1, /position 1 is not at a handle index \(or is repeated\)/],
      ['a place twice among others', format3('[0,1]', [[0], [1], [0]], ['F', 'S']), 2, /position 2 is not at a handle index \(or is repeated\)/],
      // Every handle referenced.
      ['a handle at no place', format3('{"a":0,"b":0}', [[0], [1]], ['F', 'S']), 2, /handle 1 is never referenced/],
      ['the other handle at no place', format3('[1,1]', [[0], [1]], ['F', 'S']), 2, /handle 0 is never referenced/],
    ];
    for (const [name, body, n, message] of malformedCases) {
      const { hooks: revive, calls } = recording();
      let error: unknown;
      try {
        decodeMessage(body, n, revive, LIMITS);
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(IpcError);
      expect((error as IpcError).code, name).toBe('MALFORMED');
      expect((error as IpcError).message, name).toMatch(message);
      expect(calls, name).toEqual([]);
    }
    // Counts: more positions than maxElements.
    const many = format3('0', [[]], ['F'], 1, { count: 50, extra: Array(49 * 4).fill(0) });
    expectIpcError(() => decodeMessage(many, 1, recording().hooks, { ...LIMITS, maxElements: 40 }), 'TOO_LARGE', /50 handle positions, more than maxElements 40/);
    // No hooks, or no handle announced.
    expectIpcError(() => decodeMessage(format3('0', [[]], ['F']), 1, undefined, LIMITS), 'MALFORMED', /cannot take any/);
    expectIpcError(() => decodeMessage(format3('0', [[]], ['F'], 0), 0, recording().hooks, LIMITS), 'MALFORMED', /names no handle/);
    // The text is checked as format 0's: its padding, its parse.
    const padded = format3('0', [[]], ['F']);
    padded[padded.length - 1] = 1;
    expectIpcError(() => decodeMessage(padded, 1, recording().hooks, LIMITS), 'MALFORMED', /padding byte/);
    expectIpcError(() => decodeMessage(format3('{', [[]], ['F']), 1, recording().hooks, LIMITS), 'MALFORMED', /does not parse/);
  });

  it('revives each index once, puts it at every position of it, the root included', () => {
    const { hooks: revive, calls } = recording();
    const out = decodeMessage(
      format3('{"a":1,"b":[0,1],"c":{"d":0}}', [[0], [1, 0], [1, 1], [2, 0]], ['F', 'S']),
      2,
      revive,
      LIMITS,
    ) as { a: object; b: object[]; c: { d: object } };
    expect(calls).toEqual([['F', 0], ['S', 1]]);
    expect(out.b[1]).toBe(out.a);
    expect(out.c.d).toBe(out.b[0]);
    expect(out.b[0]).toStrictEqual({ revived: 'F', index: 0 });
    expect(out.a).toStrictEqual({ revived: 'S', index: 1 });
    const root = decodeMessage(format3('0', [[]], ['F']), 1, recording().hooks, LIMITS);
    expect(root).toStrictEqual({ revived: 'F', index: 0 });
    // Numbers at places no position names stay numbers, whatever their value.
    const kept = decodeMessage(format3('{"a":0,"b":0,"c":[0,1]}', [[1]], ['F']), 1, recording().hooks, LIMITS);
    expect(kept).toStrictEqual({ a: 0, b: { revived: 'F', index: 0 }, c: [0, 1] });
    // Ranks follow Object.keys order: integer-like keys first.
    const ranked = decodeMessage(format3('{"2":1,"10":0,"z":[1],"a":0}', [[0], [1], [2, 0], [3]], ['F', 'S']), 2, recording().hooks, LIMITS);
    expect(ranked).toStrictEqual({ 2: { revived: 'S', index: 1 }, 10: { revived: 'F', index: 0 }, z: [{ revived: 'S', index: 1 }], a: { revived: 'F', index: 0 } });
    // A receiver's kind with its secrets comes through as it was written.
    const secret = `R.${'ab'.repeat(16)}.${'cd'.repeat(16)}`;
    const r = recording();
    decodeMessage(format3('[0]', [[0]], [secret]), 1, r.hooks, LIMITS);
    expect(r.calls).toEqual([[secret, 0]]);
  });

  it('passes an exception of reviveHandle through, after the checks, with no later hook run', () => {
    const calls: number[] = [];
    const boom = new Error('boom');
    const hooksThatThrow: DecodeHooks = {
      reviveHandle: (_kind, index) => {
        calls.push(index);
        if (index === 1) throw boom;
        return {};
      },
    };
    let caught: unknown;
    try {
      decodeMessage(format3('[0,1,2]', [[0], [1], [2]], ['F', 'S', 'F']), 3, hooksThatThrow, LIMITS);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(boom);
    expect(calls).toEqual([0, 1]);
  });

  it('takes devalue for a kind format 3 cannot carry (not printable ASCII, or over 4,096 characters)', () => {
    for (const kind of ['F\n', 'é', 'x'.repeat(4097)]) {
      const encoded = encodeMessage({ h: new Handle(kind) }, hooks);
      expect(joinParts(encoded)[0]).toBe(BODY_FORMAT_DEVALUE);
      const r = recording();
      decodeMessage(joinParts(encoded), 1, r.hooks, LIMITS);
      expect(r.calls).toEqual([[kind, 0]]);
    }
    expect(joinParts(encodeMessage({ h: new Handle('x'.repeat(4096)) }, hooks))[0]).toBe(BODY_FORMAT_JSON_HANDLES);
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
