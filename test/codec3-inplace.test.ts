// IpcSender.send encodes a small JSON body straight into the immediate scratch it is sent from
// (encodeMessageInto + IMMEDIATE_BODY, issue 15 §1): no part, no copy. What that could get wrong:
// stale bytes of a longer earlier body in the padding, a body the next send overwrites before
// it was written (batched sends in one tick, a send from a getter while the value is read), the
// fallback when the text does not fit or is not ASCII, and the header of the body in place.
import { describe, expect, it } from 'vitest';
import { IMMEDIATE_BODY, immediateRecordParts, inPlaceParts, singleRecordPacket } from '../src/main/framing/send.js';
import { channel } from '../src/main/index.js';
import { decodeMessage, DEFAULT_LIMITS, encodeMessage, joinParts } from '../src/shared/index.js';
import { encodeMessageInto } from '../src/shared/codec.js';

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

describe('encodeMessageInto', () => {
  it('writes the same body as encodeMessage, into `into`, whatever was there before', () => {
    const into = new Uint8Array(256).fill(0xee);
    for (const value of [{ s: 'x'.repeat(100) }, 1, 'a', { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] }, [], null, { k: 'é€😀' }]) {
      const enc = encodeMessageInto(value, undefined, into);
      expect(enc.parts).toHaveLength(1);
      expect(enc.parts[0]).toBe(into);
      expect(enc.handles).toEqual([]);
      const want = joinParts(encodeMessage(value));
      expect(enc.byteLength).toBe(want.length);
      expect([...into.subarray(0, enc.byteLength)]).toEqual([...want]);
      expect(decodeMessage(into.subarray(0, enc.byteLength), 0, undefined, DEFAULT_LIMITS)).toStrictEqual(value);
    }
  });

  it('falls back to parts of its own when the body does not fit or is not format 0, leaving `into` alone', () => {
    const into = new Uint8Array(64).fill(0xee);
    // 48 bytes of text fit exactly (16 + 48 = 64); one more does not.
    const fits = encodeMessageInto('x'.repeat(46), undefined, into);
    expect(fits.parts[0]).toBe(into);
    expect(fits.byteLength).toBe(64);
    for (const value of ['x'.repeat(47), 'é'.repeat(30), new Map([[1, 2]]), { d: new Date(0) }]) {
      into.fill(0xee);
      const enc = encodeMessageInto(value, undefined, into);
      expect(enc.parts[0]).not.toBe(into);
      expect(decodeMessage(joinParts(enc), 0, undefined, DEFAULT_LIMITS)).toStrictEqual(value);
      // What a failed attempt wrote there is never sent; the fallback's body is whole.
      expect(joinParts(enc)).toEqual(joinParts(encodeMessage(value)));
    }
  });
});

describe('immediateRecordParts of a body in place', () => {
  it('frames it as singleRecordPacket frames the same bytes, long then short', () => {
    for (const n of [4080, 8, 2000, 16, 0, 24, 4072]) {
      for (let i = 0; i < n; i++) IMMEDIATE_BODY[i] = (n + i * 7) & 255;
      const copy = IMMEDIATE_BODY.slice(0, n);
      const parts = inPlaceParts(n);
      expect(parts[0].byteLength).toBe(n);
      const got = concat(immediateRecordParts(parts, n, 0));
      expect(got).toEqual(concat(singleRecordPacket([copy], n, []).parts));
    }
  });
});

describe('IpcSender.send with bodies in place', () => {
  it('delivers every message whole, long then short (no stale bytes), sent one at a time', () => {
    const [tx, rx] = channel<unknown>();
    try {
      for (let n = 120; n >= 0; n--) {
        const value = { n, s: 'abcdefghij'.repeat(12).slice(0, n) };
        tx.send(value);
        expect(rx.tryRecv()).toStrictEqual({ message: value });
      }
    } finally {
      tx.close();
      rx.close();
    }
  });

  it('delivers a burst sent in one tick (batched, copied out of the scratch before the next send)', async () => {
    const [tx, rx] = channel<unknown>();
    try {
      const values = Array.from({ length: 50 }, (_, i) => ({ i, s: 'q'.repeat((i * 37) % 300) }));
      for (const v of values) tx.send(v);
      const got: unknown[] = [];
      for (let i = 0; i < values.length; i++) got.push(await rx.recv());
      expect(got).toStrictEqual(values);
    } finally {
      tx.close();
      rx.close();
    }
  });

  it('keeps a send made by a getter while the value is read apart from the outer one', async () => {
    const [tx, rx] = channel<unknown>();
    const [tx2, rx2] = channel<unknown>();
    try {
      let inner = 0;
      const value = {
        get g() {
          tx2.send({ inner: ++inner, pad: 'z'.repeat(200) });
          tx.send({ nested: true });
          return 'outer';
        },
        tail: 'y'.repeat(50),
      };
      tx.send(value);
      expect(await rx.recv()).toStrictEqual({ nested: true });
      expect(await rx.recv()).toStrictEqual({ g: 'outer', tail: 'y'.repeat(50) });
      expect(await rx2.recv()).toStrictEqual({ inner: 1, pad: 'z'.repeat(200) });
    } finally {
      tx.close();
      rx.close();
      tx2.close();
      rx2.close();
    }
  });

  it('sends what does not fit the scratch, or is not JSON, the general way', async () => {
    const [tx, rx] = channel<unknown>();
    try {
      const values: unknown[] = [{ big: 'b'.repeat(5000) }, { m: new Map([['k', 1]]) }, 's'.repeat(4064), 's'.repeat(4070), { u: 'é'.repeat(3000) }];
      for (const v of values) tx.send(v);
      for (const v of values) expect(await rx.recv()).toStrictEqual(v);
    } finally {
      tx.close();
      rx.close();
    }
  });
});
