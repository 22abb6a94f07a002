// The encoder's single-pass walk of plain data (src/shared/codec/snapshot.ts, SnapshotWalk.fast):
// an object's values are taken from its copy in Object.keys order (Object.values, no lookup per
// key), and the root is not looked up among the objects already met. These pin what each of
// those shortcuts must keep: every value where its key is, read once, shared and cyclic
// references still found from the root down.
import { describe, expect, it } from 'vitest';
import { BODY_FORMAT_JSON, BODY_FORMAT_JSON_HANDLES, decodeMessage, encodeMessage, joinParts } from '../src/shared/index.js';
import type { DecodeHooks } from '../src/shared/index.js';
import { Handle, expectIpcError, handleHooks } from './codec-helpers.js';

const LIMITS = { maxMessageBytes: 1 << 26, maxDepth: 64, maxElements: 1e6, maxHandles: 1024 };

function roundTrip(value: unknown, hooks = handleHooks, revive?: DecodeHooks): { format: number; out: unknown } {
  const enc = encodeMessage(value, hooks);
  const body = joinParts(enc);
  return { format: body[0], out: decodeMessage(body, enc.handles.length, revive, LIMITS) };
}

describe('the walk of plain data (values from the copy, in key order)', () => {
  it('keeps each value at its key when integer-like keys come first and children are containers', () => {
    // Object.keys order puts '2' and '10' before 'b' and 'a': a value list that does not follow
    // the same order would swap them.
    const value = { b: { x: [1, { y: 'deep' }] }, 10: 'ten', a: [true, null, { z: 2.5 }], 2: { two: 2 }, s: 's' };
    const { format, out } = roundTrip(value);
    expect(format).toBe(BODY_FORMAT_JSON);
    expect(out).toEqual(value);
    expect(Object.keys(out as object)).toEqual(Object.keys(value));
  });

  it('puts each handle where it was in an object with integer-like keys (format 3 positions)', () => {
    const f = new Handle('F');
    const g = new Handle('G');
    const value = { z: { 1: g, k: 'v' }, 7: f, m: [0, { 3: 'x', h: g }] };
    const seen: string[] = [];
    const revive: DecodeHooks = { reviveHandle: (kind, i) => (seen.push(`${kind}${i}`), { kind, i }) };
    const { format, out } = roundTrip(value, handleHooks, revive);
    expect(format).toBe(BODY_FORMAT_JSON_HANDLES);
    const o = out as { z: Record<string, unknown>; 7: unknown; m: [number, Record<string, unknown>] };
    expect(o[7]).toEqual({ kind: 'F', i: 0 });
    expect(o.z[1]).toEqual({ kind: 'G', i: 1 });
    expect(o.z.k).toBe('v');
    expect(o.m[1].h).toBe(o.z[1]);
    expect(o.m[1][3]).toBe('x');
    expect(seen).toEqual(['F0', 'G1']);
  });

  it('reads an object-valued getter once and sends the object it returned, beside other keys', () => {
    let reads = 0;
    const value = {
      5: 'five',
      get child() {
        reads++;
        return reads === 1 ? { first: [1, 2] } : { later: true };
      },
      after: 'a',
    };
    const { format, out } = roundTrip(value);
    expect(reads).toBe(1);
    expect(format).toBe(BODY_FORMAT_JSON);
    expect(out).toEqual({ 5: 'five', child: { first: [1, 2] }, after: 'a' });
  });

  it('runs a proxy\'s get trap once per key and sends what it returned', () => {
    const gets: string[] = [];
    const target = { a: 1, inner: { b: [2] }, c: 'c' };
    const proxy = new Proxy(target, {
      get(t, key, receiver) {
        if (typeof key === 'string') gets.push(key);
        const v = Reflect.get(t, key, receiver) as unknown;
        return key === 'a' && gets.filter((k) => k === 'a').length > 1 ? 'second read' : v;
      },
    });
    const { out } = roundTrip({ p: proxy });
    expect(out).toEqual({ p: { a: 1, inner: { b: [2] }, c: 'c' } });
    expect(gets.filter((k) => k === 'a')).toEqual(['a']);
    expect(gets.filter((k) => k === 'inner')).toEqual(['inner']);
  });

  it('finds the root met again below itself, and an object shared by two keys', () => {
    const root: Record<string, unknown> = { n: 1 };
    root.self = root;
    const { format: f1, out: o1 } = roundTrip(root);
    expect(f1).not.toBe(BODY_FORMAT_JSON);
    expect((o1 as Record<string, unknown>).self).toBe(o1);

    const list = [1, 2];
    const rootArray: unknown[] = [list];
    rootArray.push(rootArray);
    const { out: o2 } = roundTrip(rootArray);
    expect((o2 as unknown[])[1]).toBe(o2);

    const shared = { s: 'x' };
    const { format: f3, out: o3 } = roundTrip({ a: shared, b: shared });
    expect(f3).not.toBe(BODY_FORMAT_JSON);
    expect((o3 as { a: unknown; b: unknown }).a).toBe((o3 as { a: unknown; b: unknown }).b);
  });

  it('still refuses an enumerable symbol key and a nested __proto__ key', () => {
    expectIpcError(() => encodeMessage({ a: { [Symbol('s')]: 1, b: 2 } }), 'UNSERIALIZABLE', /symbolic keys/);
    expectIpcError(() => encodeMessage(JSON.parse('{"k":[{"__proto__":{"x":1}}]}')), 'UNSERIALIZABLE', /__proto__/);
  });
});
