// The queue budget of IpcMux's logical receivers (src/main/mux/mux.ts, `Chan.queueMeta`: per
// queued message its bytes, and its descriptors with a flag for "holds handles or endpoints";
// docs/multiplexing.md "Fifth round"): what the peer queued is counted in stats as it arrives,
// released as it is taken, and a queue dropped with its receiver closes exactly the messages
// that hold something.
import { describe, expect, it } from 'vitest';
import { IpcMux, channel } from '../src/main/index.js';
import type { IpcReceiver, IpcSender, MuxFrame, MuxReceiver } from '../src/main/index.js';
import { fdCount, settledFdCount } from './helpers.js';

function localPair(): { a: IpcMux; b: IpcMux } {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return { a: IpcMux.open(aTx, aRx), b: IpcMux.open(bTx, bRx) };
}

const settle = async (mux: IpcMux, queued: number): Promise<void> => {
  for (let i = 0; i < 200 && mux.stats.queued < queued; i++) await new Promise((r) => setTimeout(r, 10));
};

type Msg = { n: number; s?: IpcSender<number>; r?: MuxReceiver<number> };

describe('IpcMux queue budget', () => {
  it('counts queued bytes and descriptors as they arrive and releases them as each is taken', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<Msg>();
    a.sender.send({ s } as never);
    s.close();
    const { s: bs } = (await b.receiver.recv({ timeout: 5000 })) as unknown as { s: { send(m: unknown): void; close(): void } };
    const plain: Array<IpcReceiver<number>> = [];
    // 1: a number; 2: a plain sender (one descriptor); 3: two plain senders; 4: nothing again.
    bs.send({ n: 1 });
    const [p1, q1] = channel<number>();
    plain.push(q1);
    bs.send({ n: 2, s: p1 });
    const [p2, q2] = channel<number>();
    const [p3, q3] = channel<number>();
    plain.push(q2, q3);
    bs.send({ n: 3, s: p2, t: p3 });
    bs.send({ n: 4 });
    for (const p of [p1, p2, p3]) p.close();
    await settle(a, 4);
    expect(a.stats.queued).toBe(4);
    expect(a.stats.queuedHandles).toBe(3);
    const total = a.stats.queuedBytes;
    expect(total).toBeGreaterThan(0);
    const first = (await r.recv()) as Msg;
    expect(first.n).toBe(1);
    expect(a.stats.queuedHandles).toBe(3);
    const afterOne = a.stats.queuedBytes;
    expect(afterOne).toBeLessThan(total);
    const second = (await r.recv()) as Msg;
    expect(second.n).toBe(2);
    expect(a.stats.queuedHandles).toBe(2);
    const third = (await r.recv()) as Msg & { t: IpcSender<number> };
    expect(a.stats.queuedHandles).toBe(0);
    expect(a.stats.queued).toBe(1);
    expect(((await r.recv()) as Msg).n).toBe(4);
    expect(a.stats).toMatchObject({ queued: 0, queuedBytes: 0, queuedHandles: 0 });
    for (const x of [second.s!, third.s!, third.t, ...plain]) x.close();
    bs.close();
    r.close();
    a.close();
    b.close();
  });

  it('a receiver closed with a queue closes the queued descriptors and endpoints, and only those', async () => {
    const before = await settledFdCount();
    const { a, b } = localPair();
    const [s, r] = a.channel<unknown>();
    a.sender.send({ s } as never);
    s.close();
    const { s: bs } = (await b.receiver.recv({ timeout: 5000 })) as unknown as { s: { send(m: unknown): void; close(): void } };
    const plain: Array<IpcReceiver<number>> = [];
    const [ls, lr] = b.channel<number>(); // a logical sender travels inside too
    for (let i = 0; i < 6; i++) {
      if (i % 2 === 0) bs.send({ n: i });
      else {
        const [p, q] = channel<number>();
        plain.push(q);
        bs.send({ n: i, s: p, l: ls });
        p.close();
      }
    }
    ls.close();
    await settle(a, 6);
    expect(a.stats.queuedHandles).toBe(3);
    expect(fdCount()).toBeGreaterThan(before);
    r.close();
    expect(a.stats).toMatchObject({ queued: 0, queuedBytes: 0, queuedHandles: 0 });
    // Every plain sender that was queued is closed: their receivers see DISCONNECTED.
    for (const q of plain) await expect(q.recv({ timeout: 5000 })).rejects.toMatchObject({ code: 'DISCONNECTED' });
    // And the logical senders too: lr ends once the closed queue dropped them.
    await expect(lr.recv({ timeout: 5000 })).rejects.toMatchObject({ code: 'DISCONNECTED' });
    for (const q of plain) q.close();
    bs.close();
    a.close();
    b.close();
    expect(await settledFdCount()).toBe(before);
  });
});
