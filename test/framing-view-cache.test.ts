// The receive loop's record view is reused (issue 15 §1, view6): after the arena gives a
// decoded message's bytes back, the next one mostly lands at the same offset with the same
// length, and parseSingleRecord hands out the same view instead of a new one. It must be a view
// of exactly the bytes the new record occupies: the same buffer object, offset and length.
import { describe, expect, it } from 'vitest';
import { NO_FDS, PacketParser, singleRecordPacket } from '../src/main/framing.js';
import type { ParsedItem, WireRecord } from '../src/main/framing.js';
import { channel } from '../src/main/index.js';

const LIMITS = { maxMessageBytes: 1 << 16, maxHandles: 2 };

/** One packet of the sender's framing holding `body`, written into `buf` at `off`; returns its length. */
function place(buf: Uint8Array, off: number, body: Uint8Array): number {
  const p = singleRecordPacket([body], body.byteLength, []);
  let at = off;
  for (const x of p.parts) {
    buf.set(x, at);
    at += x.byteLength;
  }
  return at - off;
}

function take(parser: PacketParser, buf: Uint8Array, off: number, len: number): Uint8Array {
  const out: ParsedItem[] = [];
  expect(parser.parseSingleRecord(buf, off, len, NO_FDS, out)).toBe(true);
  expect(out).toHaveLength(1);
  return (out[0] as WireRecord).body;
}

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

describe('the record view of the single-record fast path', () => {
  it('is a view of the buffer the packet is in, not of the last one at the same offset', () => {
    const parser = new PacketParser(LIMITS, () => {});
    const a = new Uint8Array(4096);
    const b = new Uint8Array(4096);
    const first = take(parser, a, 64, place(a, 64, bytes(40, 1)));
    const second = take(parser, b, 64, place(b, 64, bytes(40, 2)));
    expect(second.buffer).toBe(b.buffer);
    expect(Array.from(second)).toEqual(Array.from(bytes(40, 2)));
    expect(Array.from(first)).toEqual(Array.from(bytes(40, 1)));
  });

  it('has the new record length at the same offset', () => {
    const parser = new PacketParser(LIMITS, () => {});
    const a = new Uint8Array(4096);
    take(parser, a, 128, place(a, 128, bytes(40, 3)));
    const longer = take(parser, a, 128, place(a, 128, bytes(48, 4)));
    expect(longer.byteLength).toBe(48);
    expect(Array.from(longer)).toEqual(Array.from(bytes(48, 4)));
    const shorter = take(parser, a, 128, place(a, 128, bytes(8, 5)));
    expect(Array.from(shorter)).toEqual(Array.from(bytes(8, 5)));
  });

  it('is at the new offset for the same length', () => {
    const parser = new PacketParser(LIMITS, () => {});
    const a = new Uint8Array(4096);
    take(parser, a, 0, place(a, 0, bytes(40, 6)));
    const moved = take(parser, a, 512, place(a, 512, bytes(40, 7)));
    expect(Array.from(moved)).toEqual(Array.from(bytes(40, 7)));
  });

  it('may be the same object for the same place, showing the bytes now there', () => {
    const parser = new PacketParser(LIMITS, () => {});
    const a = new Uint8Array(4096);
    const one = take(parser, a, 256, place(a, 256, bytes(40, 8)));
    const two = take(parser, a, 256, place(a, 256, bytes(40, 9)));
    expect(Array.from(two)).toEqual(Array.from(bytes(40, 9)));
    expect(two.byteOffset).toBe(one.byteOffset);
  });

  it('messages of changing sizes through a channel (each read lands where the last decoded one did)', () => {
    const [tx, rx] = channel<{ s: string }>();
    for (let i = 0; i < 300; i++) {
      const m = { s: 'abcdefgh'.slice(0, i % 8) + String(i).repeat(1 + (i % 5)) };
      tx.send(m);
      expect(rx.tryRecv()?.message).toEqual(m);
    }
    tx.close();
    rx.close();
  });
});
