// The immediate send path's framing (immediateRecordParts): a small packet is copied whole into
// one reused scratch, a bigger one goes out as parts. Either way the bytes handed to sendmsg must
// be exactly the packet singleRecordPacket describes: header, the body's bytes in order, and zero
// padding, never what an earlier, longer packet left in the scratch.
import { describe, expect, it } from 'vitest';
import { immediateRecordParts, singleRecordPacket } from '../src/main/framing.js';
import { bytesChannel, channel } from '../src/main/index.js';

/** The parts' bytes in order, as sendmsg would write them. */
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** The packet as the general framing builds it (the reference). */
function reference(parts: Uint8Array[], bytes: number, nfds: number): Uint8Array {
  return concat(singleRecordPacket(parts, bytes, new Array<number>(nfds).fill(-1)).parts);
}

/** `n` bytes of `fill`, as a view in the middle of a bigger buffer (as the codec's slab hands them). */
function bodyOf(n: number, fill: number): Uint8Array {
  const buf = new Uint8Array(n + 64).fill(0x5a);
  const v = buf.subarray(32, 32 + n);
  for (let i = 0; i < n; i++) v[i] = (fill + i * 13) & 255;
  return v;
}

describe('immediateRecordParts', () => {
  it('frames exactly what singleRecordPacket frames, whatever came before (no stale bytes in the padding)', () => {
    // Long then short, around the 8-byte padding and the copy threshold (4096 bytes with headers).
    const sizes = [4080, 1, 4072, 7, 2000, 9, 0, 4073, 4081, 4000, 3, 80, 4079, 5];
    for (const [k, n] of sizes.entries()) {
      for (const nfds of [0, 2]) {
        const body = bodyOf(n, k + nfds);
        const got = concat(immediateRecordParts([body], n, nfds));
        expect(got).toEqual(reference([body], n, nfds));
      }
    }
  });

  it('copies several parts in order, and sends a packet over the threshold as parts', () => {
    const a = bodyOf(5, 1);
    const b = bodyOf(0, 2);
    const c = bodyOf(700, 3);
    const d = bodyOf(3, 4);
    for (const parts of [[a, b, c, d], [d, c], [bodyOf(3000, 5), bodyOf(1100, 6)], [bodyOf(4200, 7)]]) {
      const bytes = parts.reduce((n, p) => n + p.byteLength, 0);
      const got = immediateRecordParts(parts, bytes, 1);
      expect(concat(got)).toEqual(reference(parts, bytes, 1));
      // Copied (one part) exactly when the whole packet fits the scratch.
      expect(got.length === 1).toBe(16 + Math.ceil(bytes / 8) * 8 <= 4096);
    }
  });

  it('a byte count that does not match the parts is not copied (the parts go as they are)', () => {
    const body = bodyOf(40, 9);
    const got = immediateRecordParts([body], 24, 0);
    expect(got.length).toBeGreaterThan(1);
    expect(got).toContain(body);
  });
});

describe('small messages sent at once, through a channel', () => {
  it('arrive intact after longer ones, each size in turn', async () => {
    const [tx, rx] = bytesChannel();
    const sizes = [4000, 1, 33, 4070, 8, 0, 17, 4079, 2, 4200, 5];
    for (const [k, n] of sizes.entries()) {
      const sent = bodyOf(n, k);
      tx.send(sent);
      // One per tick: each is written at once (the immediate path), not batched.
      const got = await rx.recv();
      expect(got).toEqual(sent);
    }
    const [ttx, trx] = channel<{ s: string }>();
    for (const n of [3000, 1, 100, 7, 2500, 0]) {
      ttx.send({ s: 'y'.repeat(n) });
      expect(await trx.recv()).toEqual({ s: 'y'.repeat(n) });
    }
    tx.close();
    rx.close();
    ttx.close();
    trx.close();
  });
});
