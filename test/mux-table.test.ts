// The channel table of IpcMux (src/main/mux/table.ts, docs/multiplexing.md "Fifth round"): an
// array by the key's low bits with a Map for keys whose slot is taken. Keys that share a slot
// (this side's k and k + 512 with 1024 slots; the peer's -j and -(j + 512)) must each find their
// own channel, never the other's.
import { describe, expect, it } from 'vitest';
import { Chan } from '../src/main/mux/endpoints.js';
import { ChanTable } from '../src/main/mux/table.js';

const chan = (key: number): Chan => new Chan(key, key > 0, 16);

describe('ChanTable', () => {
  it('keys sharing a slot each find their own channel, also after the slot holder leaves', () => {
    const t = new ChanTable();
    const a = chan(2);
    const b = chan(2 + 512); // same slot as 2
    const c = chan(2 + 1024);
    const p = chan(-5);
    const q = chan(-(5 + 512)); // same slot as -5
    for (const x of [a, b, c, p, q]) t.add(x);
    expect(t.size).toBe(5);
    for (const x of [a, b, c, p, q]) expect(t.get(x.key)).toBe(x);
    expect(t.get(2 + 1536)).toBeUndefined();
    expect(t.get(-2)).toBeUndefined();
    expect(t.has(-(5 + 1024))).toBe(false);
    t.delete(a);
    expect(t.get(2)).toBeUndefined();
    expect(t.get(2 + 512)).toBe(b);
    expect(t.get(2 + 1024)).toBe(c);
    // A new key of that slot takes it; the ones in the overflow are still found.
    const d = chan(2 + 2048);
    t.add(d);
    expect(t.get(2 + 2048)).toBe(d);
    expect(t.get(2 + 512)).toBe(b);
    t.delete(b);
    t.delete(b); // twice: no effect
    expect(t.get(2 + 512)).toBeUndefined();
    expect(t.get(2 + 1024)).toBe(c);
    expect(t.size).toBe(4);
    // Deleting a channel no longer tracked under its key leaves the tracked one.
    const c2 = chan(2 + 1024);
    t.add(c2);
    expect(t.size).toBe(4);
    t.delete(c);
    expect(t.get(2 + 1024)).toBe(c2);
    expect(new Set(t.values())).toEqual(new Set([d, c2, p, q]));
  });

  it('grows past half full and keeps every channel; large and negative keys', () => {
    const t = new ChanTable();
    const all: Chan[] = [];
    for (let i = 1; i <= 3000; i++) all.push(chan(i % 3 === 0 ? -(i * 1024 + 1) : i * 7));
    all.push(chan(2 ** 48 - 1), chan(-(2 ** 48 - 1)), chan(2 ** 31), chan(-(2 ** 31)));
    for (const x of all) t.add(x);
    expect(t.size).toBe(all.length);
    for (const x of all) expect(t.get(x.key)).toBe(x);
    expect(t.values().length).toBe(all.length);
    for (const x of all.slice(0, 2000)) t.delete(x);
    expect(t.size).toBe(all.length - 2000);
    for (const x of all.slice(0, 2000)) expect(t.get(x.key)).toBeUndefined();
    for (const x of all.slice(2000)) expect(t.get(x.key)).toBe(x);
  });
});
