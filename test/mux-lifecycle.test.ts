/**
 * What the multiplexed channels' cheaper paths (issue 15, section 3) could get wrong: the GC
 * safety net of a receiver dropped without close() (its deferred registration, endpoints.ts),
 * RCLOSED decided when the control frame is written (left out only once the peer dropped every
 * sender), and the readiness hook that takes only what the receiver already read (a burst
 * larger than one read and than the pump's budget still arrives whole, in order).
 */
import { describe, expect, it } from 'vitest';
import { IpcError, IpcMux, channel } from '../src/main/index.js';
import type { MuxFrame, MuxSender } from '../src/main/index.js';
import { until } from './helpers.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Both sides of a mux in this process, over two real plain channels. */
function localPair(): [IpcMux, IpcMux] {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return [IpcMux.open(aTx, aRx), IpcMux.open(bTx, bRx)];
}

/** The code `fn` throws (an IpcError's), or undefined when it does not throw. */
function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e instanceof IpcError ? e.code : String(e);
  }
}

describe('IpcMux: lifecycle of logical channels', () => {
  it('a receiver collected without close() is released: its senders here and in the peer then see DISCONNECTED', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const [a, b] = localPair();
    const local = (() => {
      const [tx, rx] = a.channel<number>();
      void rx; // dropped without close()
      const forPeer = tx.clone();
      a.sender.send({ tx: forPeer });
      forPeer.close();
      return tx;
    })();
    const { tx: remote } = (await b.receiver.recv()) as { tx: MuxSender<number> };
    // Both still send while the receiver object is alive (or not yet released).
    expect(thrownCode(() => local.send(1))).toBeUndefined();
    expect(thrownCode(() => remote.send(1))).toBeUndefined();
    for (let i = 0; i < 100 && thrownCode(() => local.send(2)) === undefined; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(thrownCode(() => local.send(3))).toBe('DISCONNECTED');
    // The peer holds a sender: it is told (RCLOSED), and its sends fail from then on.
    await until(() => thrownCode(() => remote.send(4)) === 'DISCONNECTED', 5000);
    expect(thrownCode(() => remote.send(5))).toBe('DISCONNECTED');
    local.close();
    remote.close();
    await until(() => a.stats.channels === 2 && b.stats.channels === 2, 5000);
    expect([a.stats.channels, b.stats.channels]).toEqual([2, 2]);
    a.close();
    b.close();
  });

  it('a receiver closed while the peer holds a sender tells the peer, also when the peer closes it in the same turn or after', async () => {
    const [a, b] = localPair();
    const n = 200;
    const rxs = [];
    for (let i = 0; i < n; i++) {
      const [tx, rx] = a.channel<number>();
      a.sender.send({ tx, i });
      tx.close();
      rxs.push(rx);
    }
    const got: Array<{ tx: MuxSender<number>; i: number }> = [];
    for (let i = 0; i < n; i++) got.push((await b.receiver.recv()) as { tx: MuxSender<number>; i: number });
    // Every receiver closes while the peer still holds its sender.
    for (const rx of rxs) rx.close();
    // Half the peer's senders close now (their DROP crosses the RCLOSED); the rest stay open
    // and must learn that their receiver is gone.
    for (const g of got) if (g.i % 2 === 0) g.tx.close();
    const told = (): boolean => got.every((g) => g.i % 2 === 0 || thrownCode(() => g.tx.send(1)) === 'DISCONNECTED');
    await until(told, 5000);
    expect(told()).toBe(true);
    for (const g of got) g.tx.close();
    await until(() => a.stats.channels === 2 && b.stats.channels === 2, 5000);
    expect([a.stats.channels, b.stats.channels]).toEqual([2, 2]);
    expect(a.stats.errors + b.stats.errors).toBe(0);
    a.close();
    b.close();
  });

  it('reply channels closed as soon as answered: no channel entry left on either side, no error reported', async () => {
    const [a, b] = localPair();
    const served = (async () => {
      for await (const m of b.receiver as AsyncIterable<{ tx: MuxSender<number> } | 'exit'>) {
        if (m === 'exit') break;
        m.tx.send(1);
        m.tx.close();
      }
    })();
    for (let w = 0; w < 50; w++) {
      const rxs = [];
      for (let i = 0; i < 64; i++) {
        const [tx, rx] = a.channel<number>();
        a.sender.send({ tx });
        tx.close();
        rxs.push(rx);
      }
      for (const rx of rxs) {
        expect(await rx.recv()).toBe(1);
        rx.close();
      }
    }
    await until(() => a.stats.channels === 2 && b.stats.channels === 2, 5000);
    expect([a.stats.channels, b.stats.channels]).toEqual([2, 2]);
    expect(a.stats.errors + b.stats.errors).toBe(0);
    a.sender.send('exit');
    await served;
    a.close();
    b.close();
  });

  it('a burst far larger than one read and than the pump budget arrives whole and in order, on one channel and across many', async () => {
    const [a, b] = localPair();
    const n = 20_000;
    const [tx, rx] = a.channel<number>({ maxQueue: n });
    b.sender.send({ tx: null });
    await a.receiver.recv();
    // The peer's root receiver gets n frames written in one synchronous burst.
    for (let i = 0; i < n; i++) a.sender.send(i);
    for (let i = 0; i < n; i++) expect(await b.receiver.recv()).toBe(i);
    // And many channels' first messages, each awaited in the order sent.
    const chans = [];
    for (let i = 0; i < 2000; i++) {
      const [t, r] = a.channel<number>();
      a.sender.send({ t, i });
      t.close();
      chans.push(r);
    }
    for (let i = 0; i < 2000; i++) {
      const m = (await b.receiver.recv()) as { t: MuxSender<number>; i: number };
      expect(m.i).toBe(i);
      m.t.send(i);
      m.t.close();
    }
    for (let i = 0; i < 2000; i++) {
      expect(await chans[i]!.recv({ timeout: 5000 })).toBe(i);
      chans[i]!.close();
    }
    tx.close();
    rx.close();
    a.close();
    b.close();
  });
});
