// Several senders of one channel, on every transport (a contract file: the stream project runs it
// too). On seqpacket senders share the socket; on stream (one writer per socket) every further
// sender gets a socket of its own, announced by an ATTACH packet (src/main/writers.ts). Either way
// the public behaviour is the same: each sender's messages arrive in its order, and the receiver is
// disconnected only once every sender is closed, also when senders and the receiver move between
// processes.
import { describe, expect, it } from 'vitest';
import { IpcReceiver, IpcSender, channel } from '../src/main/index.js';
import { receiverCore } from '../src/main/channel.js';
import { transport } from '../src/main/transport/index.js';
import { fdCount, rejectsWith, settledFdCount, startPeer, skipOnWin32 } from './helpers.js';

const singleWriter = transport().singleWriter === true;

/** Receives `n` messages (with a timeout each). */
async function take<T>(rx: IpcReceiver<T>, n: number): Promise<T[]> {
  const got: T[] = [];
  for (let i = 0; i < n; i++) got.push(await rx.recv({ timeout: 10_000 }));
  return got;
}

/** Checks that, per `from`, the `i` values come in increasing order and all of 0..count-1 are there. */
function perSenderOrder(got: Array<{ from: string | number; i: number }>, count: number): void {
  const bySender = new Map<string | number, number[]>();
  for (const m of got) {
    if (!bySender.has(m.from)) bySender.set(m.from, []);
    bySender.get(m.from)!.push(m.i);
  }
  for (const seq of bySender.values()) expect(seq).toEqual(Array.from({ length: count }, (_, i) => i));
}

describe('several senders of one channel', () => {
  it('clones interleave freely, each keeps its order (and this thread\'s order across them), and DISCONNECTED comes after the last one closes', async () => {
    const before = fdCount();
    const [a, rx] = channel<{ from: string; i: number }>();
    const b = a.clone();
    const c = b.clone();
    for (let i = 0; i < 300; i++) {
      a.send({ from: 'a', i });
      b.send({ from: 'b', i });
      c.send({ from: 'c', i });
    }
    const got = await take(rx, 900);
    perSenderOrder(got, 300);
    // One thread's sends through clones arrive in the order it made them.
    expect(got.map((m) => m.from + m.i)).toEqual(Array.from({ length: 300 }, (_, i) => ['a' + i, 'b' + i, 'c' + i]).flat());
    // Clones in one process write through one socket (stream: one shared queue).
    expect(receiverCore(rx).readFds).toBeTypeOf('number');
    a.close();
    b.close();
    c.send({ from: 'c', i: 300 });
    expect(await rx.recv({ timeout: 5000 })).toEqual({ from: 'c', i: 300 });
    c.close();
    await rejectsWith(rx.recv({ timeout: 5000 }), 'DISCONNECTED');
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('a receiver whose first sender closed keeps reading the others (the next socket takes its place)', async () => {
    const [a, rx] = channel<number>();
    const b = a.clone();
    a.send(1);
    a.close();
    expect(await rx.recv({ timeout: 5000 })).toBe(1);
    b.send(2);
    expect(await rx.recv({ timeout: 5000 })).toBe(2);
    // recvSync and tryRecv read the remaining socket too.
    b.send(3);
    expect(rx.recvSync({ timeout: 5000 })).toBe(3);
    b.close();
    expect(() => rx.recvSync({ timeout: 5000 })).toThrow(/every sender/);
    rx.close();
  });

  it('a clone of a closed sender is refused; a clone made after the receiver closed is disconnected', async () => {
    const [a, rx] = channel<number>();
    const b = a.clone();
    b.close();
    expect(() => b.clone()).toThrow(/closed/);
    rx.close();
    // The first send may still be taken by the kernel; a later one must see the closed receiver.
    let code: string | undefined;
    const c = a.clone();
    for (let i = 0; i < 50 && code === undefined; i++) {
      try {
        c.send(i);
        await c.flush();
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(code).toBe('DISCONNECTED');
    a.close();
    c.close();
  });

  it('senders handed to other processes write beside the original; all arrive in order per sender', async () => {
    const [tx, rx] = channel<{ from: number; i: number } | { done: true }>();
    const writers = await Promise.all([startPeer<{ done: true }, { sender: IpcSender<unknown>; count: number }>('relay-writer'), startPeer<{ done: true }, { sender: IpcSender<unknown>; count: number }>('relay-writer')]);
    const count = 2000;
    for (const w of writers) w.tx.send({ sender: tx as IpcSender<unknown>, count });
    for (let i = 0; i < count; i++) tx.send({ from: process.pid, i });
    tx.close();
    const got: Array<{ from: number; i: number }> = [];
    for await (const m of rx) if (!('done' in m)) got.push(m);
    expect(got.length).toBe(3 * count);
    perSenderOrder(got, count);
    for (const w of writers) {
      expect(await w.rx.recv({ timeout: 10_000 })).toEqual({ done: true });
      w.tx.close();
      w.rx.close();
      await w.spawned.done;
    }
    rx.close();
  });

  it('a receiver moved to another process after clones were attached reads every sender there', async () => {
    const reader = await startPeer<{ got: Array<{ from: string; i: number }> }, { receiver: IpcReceiver<unknown> }>('relay-reader');
    const [a, rx] = channel<{ from: string; i: number }>();
    const b = a.clone();
    a.send({ from: 'a', i: 0 });
    b.send({ from: 'b', i: 0 });
    // Read both, so that on stream the receiver holds b's socket when it moves.
    await take(rx, 2);
    b.send({ from: 'b', i: 1 }); // read ahead or not, it must arrive
    reader.tx.send({ receiver: rx as IpcReceiver<unknown> });
    expect(rx.closed).toBe(true);
    for (let i = 1; i < 100; i++) a.send({ from: 'a', i });
    for (let i = 2; i < 100; i++) b.send({ from: 'b', i });
    a.close();
    b.close();
    const { got } = await reader.rx.recv({ timeout: 15_000 });
    // What the reader got: a's 1..99 and b's 1..99, in order per sender.
    perSenderOrder(
      got.map((m) => ({ from: m.from, i: m.i - 1 })),
      99,
    );
    reader.tx.close();
    reader.rx.close();
    await reader.spawned.done;
  });

  it.skipIf(!singleWriter)(
    `a sender handed over with a backlog queued: the new holder's messages come after the backlog${singleWriter ? '' : ' (stream only: on seqpacket senders share one socket, and a backlog queued in one process may be overtaken)'}`,
    async () => {
      const writer = await startPeer<{ done: true }, { sender: IpcSender<unknown>; count: number }>('relay-writer');
      const [tx, rx] = channel<{ from: number; i: number; pad?: string } | { done: true }>();
      // Nobody reads yet: the socket fills and the rest queues in this process.
      const backlog = 4000;
      for (let i = 0; i < backlog; i++) tx.send({ from: process.pid, i, pad: 'x'.repeat(200) });
      writer.tx.send({ sender: tx as IpcSender<unknown>, count: 10 });
      expect(await writer.rx.recv({ timeout: 10_000 })).toEqual({ done: true });
      tx.close();
      const got: Array<{ from: number; i: number }> = [];
      for await (const m of rx) if (!('done' in m)) got.push(m);
      expect(got.length).toBe(backlog + 10);
      expect(got.slice(0, backlog).every((m) => m.from === process.pid)).toBe(true);
      expect(got.slice(backlog).every((m) => m.from === writer.spawned.child.pid)).toBe(true);
      writer.tx.close();
      writer.rx.close();
      await writer.spawned.done;
      rx.close();
    },
  );
});
