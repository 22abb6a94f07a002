// A big message's unsent rest is copied into one of the sender's spill buffers (a few are reused,
// so that a writer that waits for flush() every few messages copies into warm memory instead of
// paying a page fault per 4 KiB). What must never happen: a buffer reused while a queued
// message still points into it, or a message changed by the caller after send() returned.
import { describe, expect, it } from 'vitest';
import { channel } from '../src/main/index.js';

const SIZE = 1536 * 1024; // above the spill threshold (1 MiB) and above one fragment
const COUNT = 9; // more than the buffers kept (4), and more than the socket takes at once

/** The first offset where `bytes` is not all `fill`, or -1. */
function firstWrong(bytes: Uint8Array, fill: number): number {
  for (let i = 0; i < bytes.length; i += 1) if (bytes[i] !== fill) return i;
  return -1;
}

describe('spill buffers of big messages', () => {
  it('every queued message keeps its own bytes, also past the buffers kept', async () => {
    const [tx, rx] = channel<{ n: number; data: Uint8Array }>();
    for (let round = 0; round < 3; round++) {
      const src = new Uint8Array(SIZE);
      for (let n = 0; n < COUNT; n++) {
        src.fill(n + 1 + round * COUNT);
        tx.send({ n, data: src });
      }
      // The caller's buffer changes after send() returned: nothing queued may see it.
      src.fill(0xee);
      const flushed = tx.flush();
      for (let n = 0; n < COUNT; n++) {
        const m = await rx.recv();
        expect(m.n).toBe(n);
        expect(m.data.byteLength).toBe(SIZE);
        expect(firstWrong(m.data, n + 1 + round * COUNT)).toBe(-1);
      }
      await flushed;
    }
    tx.close();
    rx.close();
  }, 60_000);

  it('a message queued behind others is intact when the queue empties and refills in between', async () => {
    const [tx, rx] = channel<{ n: number; data: Uint8Array }>();
    const src = new Uint8Array(SIZE);
    let next = 0;
    for (let round = 0; round < 4; round++) {
      // Three, then nine: the buffers used by the short round are taken again by the long one.
      const count = round % 2 === 0 ? 3 : 9;
      const first = next;
      for (let k = 0; k < count; k++) {
        src.fill((next % 250) + 1);
        tx.send({ n: next++, data: src });
      }
      for (let k = 0; k < count; k++) {
        const m = await rx.recv();
        expect(m.n).toBe(first + k);
        expect(firstWrong(m.data, ((first + k) % 250) + 1)).toBe(-1);
      }
      await tx.flush();
    }
    tx.close();
    rx.close();
  }, 60_000);
});
