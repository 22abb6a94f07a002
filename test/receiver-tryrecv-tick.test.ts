// tryRecv() reading the socket begins a tick, as a readiness callback does: in a synchronous
// `send(); tryRecv()` loop every message is written at once (none waits in a batch), while a
// burst of sends with no read in between is still batched (see thread-state.ts, "ticks").
import { describe, expect, it } from 'vitest';
import { channel } from '../src/main/index.js';

describe('tryRecv() and batching', () => {
  it('a send after a tryRecv() that read the socket is written at once', () => {
    const [tx, rx] = channel<number>();
    for (let i = 0; i < 5; i++) {
      tx.send(i);
      expect(tx.queuedBytes).toBe(0);
      expect(rx.tryRecv()).toEqual({ message: i });
    }
    expect(rx.tryRecv()).toBeUndefined();
    tx.close();
    rx.close();
  });

  it('a burst without reads is still batched, and tryRecv() takes it in order', () => {
    const [tx, rx] = channel<number>();
    expect(rx.tryRecv()).toBeUndefined(); // begins a tick
    for (let i = 0; i < 5; i++) tx.send(i);
    expect(tx.queuedBytes).toBeGreaterThan(0); // the first written at once, the rest batched
    for (let i = 0; i < 5; i++) expect(rx.tryRecv()).toEqual({ message: i });
    expect(tx.queuedBytes).toBe(0);
    tx.close();
    rx.close();
  });
});
