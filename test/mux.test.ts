// Multiplexed channels (issue 15, section 3): logical channels over one connection, between two
// real processes (test/fixtures/mux/peer.mjs) and in one process over a real socket pair.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpcError, IpcMux, IpcOneShotServer, IpcReceiver, IpcSender, MuxReceiver, MuxSender, channel } from '../src/main/index.js';
import type { MuxFrame, StandardSchemaV1 } from '../src/main/index.js';
import { fdCount, rejectsWith, settledFdCount, spawnFixture } from './helpers.js';
import type { Spawned } from './helpers.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Both sides of a mux in this process, over two real plain channels. */
function localPair(options = {}): [IpcMux, IpcMux] {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return [IpcMux.open(aTx, aRx, options), IpcMux.open(bTx, bRx, options)];
}

/** A child process with a plain connection to this one (its sender arrives first). */
async function connect(fixture: string): Promise<{ tx: IpcSender<unknown>; rx: IpcReceiver<unknown>; spawned: Spawned }> {
  const server = new IpcOneShotServer<IpcSender<unknown>>();
  const spawned = spawnFixture(`mux/${fixture}`, {}, 60_000, [server.name]);
  const [rx, tx] = await server.accept({ timeout: 15_000 });
  return { tx, rx: rx as IpcReceiver<unknown>, spawned };
}

type Op = Record<string, unknown>;

describe('IpcMux with a child process', () => {
  let mux: IpcMux<Op, unknown>;
  let child: Spawned;
  beforeAll(async () => {
    const c = await connect('peer.mjs');
    child = c.spawned;
    mux = IpcMux.open<Op, unknown>(c.tx as IpcSender<MuxFrame>, c.rx as IpcReceiver<MuxFrame>);
  });
  afterAll(async () => {
    mux.sender.send({ op: 'exit' });
    const r = await child.done;
    expect(r.code, r.stderr).toBe(0);
    mux.close();
  });

  /** Asks the child and awaits its one reply. */
  async function ask<R>(op: Op): Promise<R> {
    const [reply, answer] = mux.channel<R>();
    mux.sender.send({ ...op, reply });
    reply.close();
    return answer.recv({ timeout: 10_000 });
  }

  it('round-trips values in order on one logical channel, with nested senders both ways', async () => {
    expect(await ask({ op: 'echo', value: { a: [1, 'x', new Map([[1, 2]])] } })).toEqual({ a: [1, 'x', new Map([[1, 2]])] });
    const [tx, rx] = mux.channel<number>();
    const [back, backRx] = mux.channel<number>();
    mux.sender.send({ op: 'echo-loop', rx, tx: back });
    back.close();
    for (let i = 0; i < 500; i++) tx.send(i);
    const got: number[] = [];
    for (let i = 0; i < 500; i++) got.push(await backRx.recv({ timeout: 10_000 }));
    expect(got).toEqual([...Array(500).keys()]);
    tx.close();
    await rejectsWith(backRx.recv({ timeout: 10_000 }), 'DISCONNECTED');
  });

  it('moves receivers both ways: queued messages go first, then what follows', async () => {
    // Peer makes a channel, sends two messages, gives us the receiver, sends a third.
    const { rx } = await ask<{ rx: MuxReceiver<string> }>({ op: 'make', give: 'receiver' });
    expect(rx).toBeInstanceOf(MuxReceiver);
    const got: string[] = [];
    for await (const v of rx) got.push(v);
    expect(got).toEqual(['made-1', 'made-2', 'made-3']);
    // We make a channel, send into it, give the child the receiver.
    const [s, r] = mux.channel<string>();
    s.send('a');
    s.send('b');
    const drained = ask<unknown[]>({ op: 'drain', rx: r });
    expect(r.closed).toBe(true);
    // Through the relay a send still throws at once what cannot be sent, and nothing is lost.
    expect(() => s.send((() => 1) as never)).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
    s.send('c');
    s.close();
    expect(await drained).toEqual(['a', 'b', 'c', 'END']);
  });

  it('a sender given to us by the peer reaches its receiver there', async () => {
    const [done, doneRx] = mux.channel<string[]>();
    const { tx } = await ask<{ tx: MuxSender<string> }>({ op: 'make', give: 'sender', done });
    done.close();
    const c = tx.clone();
    tx.send('x');
    c.send('y');
    tx.close();
    c.close();
    expect(await doneRx.recv({ timeout: 10_000 })).toEqual(['made-1', 'made-2', 'x', 'y']);
  });

  it('disconnect: DISCONNECTED once every sender (clones, the peer\'s) is gone; send after the receiver closed throws', async () => {
    const [tx, rx] = mux.channel<number>();
    const clone = tx.clone();
    mux.sender.send({ op: 'send-n', tx, n: 3 });
    tx.close();
    expect([await rx.recv(), await rx.recv(), await rx.recv()]).toEqual([0, 1, 2]);
    await rejectsWith(rx.recv({ timeout: 100 }), 'TIMEOUT'); // the clone is still open
    clone.close();
    await rejectsWith(rx.recv({ timeout: 10_000 }), 'DISCONNECTED');
    // A receiver in the peer that closes: our sender learns it.
    const [s2, r2] = mux.channel<number>();
    const drained = ask<unknown[]>({ op: 'drain', rx: r2 });
    s2.send(1);
    s2.close();
    expect(await drained).toEqual([1, 'END']);
    const [s3, r3] = mux.channel<number>();
    r3.close();
    expect(() => s3.send(1)).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
  });

  it('recv honours timeout and abort; close and dispose reject pending receives', async () => {
    const [tx, rx] = mux.channel<number>();
    await rejectsWith(rx.recv({ timeout: 20 }), 'TIMEOUT');
    const ac = new AbortController();
    const p = rx.recv({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(rx.tryRecv()).toBeUndefined();
    tx.send(5);
    expect(rx.tryRecv()).toEqual({ message: 5 });
    const pending = rx.recv();
    {
      using _r = rx;
    }
    await rejectsWith(pending, 'CLOSED');
    expect(() => tx.send(1)).toThrow(IpcError);
    tx.close();
  });

  it('recvSync() on a logical receiver blocks until the peer sends; other channels\' messages wait in their queues, in order', async () => {
    const [tx, rx] = mux.channel<number>();
    const [otx, orx] = mux.channel<string>();
    mux.sender.send({ op: 'later', tx, other: otx, n: 3, ms: 300 });
    tx.close();
    otx.close();
    const t0 = performance.now();
    expect(rx.recvSync({ timeout: 10_000 })).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(150); // it waited for the child's timer
    expect(rx.recvSync({ timeout: 10_000 })).toBe(1);
    expect(rx.recvSync()).toBe(2);
    expect(() => rx.recvSync({ timeout: 10_000 })).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    // The other channel's message arrived while this thread was blocked: it waited, in its queue.
    expect(orx.tryRecv()).toEqual({ message: 'now' });
    expect(await orx.recv({ timeout: 10_000 }).catch((e: IpcError) => e.code)).toBe('DISCONNECTED');
    // A timeout with nothing sent.
    const [t2, r2] = mux.channel<number>();
    await ask({ op: 'hold', items: [t2] });
    t2.close();
    expect(() => r2.recvSync({ timeout: 50 })).toThrow(expect.objectContaining({ code: 'TIMEOUT' }) as unknown as Error);
    await ask({ op: 'release' });
    r2.close();
    rx.close();
    orx.close();
  });

  it('many channels cost no descriptor in either process', async () => {
    const before = fdCount();
    const childBefore = await ask<{ fds: number }>({ op: 'fds' });
    const N = 20_000;
    const keep: MuxReceiver<number>[] = [];
    const items: MuxSender<number>[] = [];
    for (let i = 0; i < N; i++) {
      const [s, r] = mux.channel<number>();
      keep.push(r);
      items.push(s);
    }
    for (let i = 0; i < N; i += 1000) expect(await ask<number>({ op: 'hold', items: items.slice(i, i + 1000) })).toBe(i + 1000);
    for (const s of items) s.close();
    expect(fdCount()).toBeLessThanOrEqual(before + 2);
    const childNow = await ask<{ fds: number; channels: number }>({ op: 'fds' });
    expect(childNow.fds).toBeLessThanOrEqual(childBefore.fds + 2);
    expect(childNow.channels).toBeGreaterThanOrEqual(N);
    expect(mux.stats.channels).toBeGreaterThanOrEqual(N);
    await ask({ op: 'release' });
    for (const r of keep) await rejectsWith(r.recv({ timeout: 10_000 }), 'DISCONNECTED');
    for (const r of keep) r.close();
    expect(mux.stats.channels).toBeLessThan(10);
    expect((await ask<{ channels: number }>({ op: 'fds' })).channels).toBeLessThan(10);
  });

  it('third process: a logical sender and a logical receiver sent on a plain channel keep working', async () => {
    const c = await connect('plain-peer.mjs');
    try {
      // A sender whose receiver is in this process, and one whose receiver is in the mux peer.
      const [s, r] = mux.channel<string>();
      c.tx.send({ op: 'send-on', tx: s, n: 3 });
      s.close();
      expect(await c.rx.recv({ timeout: 10_000 })).toBe('sent');
      expect([await r.recv(), await r.recv(), await r.recv()]).toEqual(['from-c-0', 'from-c-1', 'from-c-2']);
      await rejectsWith(r.recv({ timeout: 10_000 }), 'DISCONNECTED');

      const [s2, r2] = mux.channel<string>();
      const drained = ask<unknown[]>({ op: 'drain', rx: r2 });
      c.tx.send({ op: 'send-on', tx: s2, n: 2 });
      s2.close();
      expect(await c.rx.recv({ timeout: 10_000 })).toBe('sent');
      expect(await drained).toEqual(['from-c-0', 'from-c-1', 'END']);

      // A receiver: messages queued before it left go first; the mux peer's sends follow.
      const [s3, r3] = mux.channel<number>();
      s3.send(-1);
      c.tx.send({ op: 'recv-on', rx: r3 });
      expect(r3.closed).toBe(true);
      mux.sender.send({ op: 'send-n', tx: s3, n: 3 });
      s3.close();
      expect(await c.rx.recv({ timeout: 10_000 })).toEqual([-1, 0, 1, 2, 'END']);
    } finally {
      c.tx.send({ op: 'exit' });
      await c.spawned.done;
      c.tx.close();
      c.rx.close();
    }
  });
});

describe('IpcMux in one process (two real sockets)', () => {
  it('keeps per-channel order across interleaved channels and ends when the connection ends', async () => {
    const [a, b] = localPair();
    const chans = Array.from({ length: 10 }, () => a.channel<number>());
    a.sender.send({ rxs: chans.map(([, r]) => r) });
    const { rxs } = (await b.receiver.recv()) as { rxs: MuxReceiver<number>[] };
    expect(rxs).toHaveLength(10);
    for (let i = 0; i < 100; i++) for (const [s] of chans) s.send(i);
    for (const r of rxs) {
      const got: number[] = [];
      for (let i = 0; i < 100; i++) got.push(await r.recv());
      expect(got).toEqual([...Array(100).keys()]);
    }
    a.close();
    for (const r of rxs) await rejectsWith(r.recv({ timeout: 5000 }), 'DISCONNECTED');
    for (const [s] of chans) expect(() => s.send(1)).toThrow(IpcError);
    b.close();
  });

  it('recvSync() between two ends in this process (the loopback) and from the other mux of the pair', async () => {
    const [a, b] = localPair();
    const [tx, rx] = a.channel<{ n: number }>();
    tx.send({ n: 1 });
    tx.send({ n: 2 });
    expect(rx.recvSync({ timeout: 5000 })).toEqual({ n: 1 });
    expect(rx.recvSync({ timeout: 5000 })).toEqual({ n: 2 });
    b.sender.send({ from: 'b' } as never);
    expect(a.receiver.recvSync({ timeout: 5000 })).toEqual({ from: 'b' });
    tx.close();
    expect(() => rx.recvSync({ timeout: 5000 })).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    a.close();
    b.close();
  });

  it('a message between two ends in this process is a copy: endpoints in it are new objects, the sender may close its own', async () => {
    const [a, b] = localPair();
    const [s, r] = a.channel<{ reply: MuxSender<string>; data: number[]; rx?: MuxReceiver<number> }>();
    const [reply, replies] = a.channel<string>();
    const [inner, innerRx] = a.channel<number>();
    const data = [1, 2];
    s.send({ reply, data, rx: innerRx });
    reply.close(); // the receiver's copy stays open
    data.push(3); // not seen by the receiver
    expect(innerRx.closed).toBe(true); // moved
    expect(() => s.send({ reply, data } as never)).toThrow(expect.objectContaining({ code: 'CLOSED' }) as unknown as Error);
    expect(() => s.send({ f: () => 1 } as never)).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
    s.send(7 as never); // a primitive after an object: still in order
    const m = await r.recv();
    expect(m.data).toEqual([1, 2]);
    expect(m.reply).not.toBe(reply);
    expect(m.rx).not.toBe(innerRx);
    expect(await r.recv()).toBe(7);
    m.reply.send('ok');
    m.reply.close();
    expect(await replies.recv()).toBe('ok');
    await rejectsWith(replies.recv({ timeout: 5000 }), 'DISCONNECTED');
    inner.send(9);
    expect(await m.rx!.recv()).toBe(9);
    inner.close();
    await rejectsWith(m.rx!.recv({ timeout: 5000 }), 'DISCONNECTED');
    a.close();
    b.close();
  });

  it('finds endpoints in arrays, Map values and nested objects; one endpoint twice arrives as one object', async () => {
    const [a, b] = localPair();
    const [s1, r1] = a.channel<string>();
    const [s2, r2] = a.channel<string>();
    a.sender.send({ list: [1, s1], map: new Map<unknown, unknown>([['k', s2], [2, { deep: { s1 } }]]) });
    s1.close();
    s2.close();
    const m = (await b.receiver.recv()) as { list: [number, MuxSender<string>]; map: Map<unknown, any> };
    expect(m.list[1]).toBeInstanceOf(MuxSender);
    expect(m.map.get(2).deep.s1).toBe(m.list[1]);
    m.list[1].send('one');
    (m.map.get('k') as MuxSender<string>).send('two');
    expect(await r1.recv()).toBe('one');
    expect(await r2.recv()).toBe('two');
    m.list[1].close();
    (m.map.get('k') as MuxSender<string>).close();
    await rejectsWith(r1.recv({ timeout: 5000 }), 'DISCONNECTED');
    await rejectsWith(r2.recv({ timeout: 5000 }), 'DISCONNECTED');
    a.close();
    b.close();
  });

  it('an endpoint one key deep (its path travels as the key itself), as the value itself, or as a Map\'s only value arrives in its slot', async () => {
    const errors: unknown[] = [];
    const [a, b] = localPair({ onError: (e: IpcError) => errors.push(e) });
    const values: Array<(s: MuxSender<number>) => unknown> = [
      (s) => ({ reply: s }),
      (s) => ({ '0': s, x: 1 }),
      (s) => [1, s],
      (s) => s,
      (s) => new Map([['k', s]]),
      (s) => new Map([[0, s]]),
      (s) => ({ k: [s] }),
    ];
    const got: unknown[] = [];
    for (const make of values) {
      const [s, r] = a.channel<number>();
      a.sender.send(make(s));
      s.close();
      const m = await b.receiver.recv({ timeout: 5000 });
      got.push(m);
      // Wherever it landed, it is a working sender of r.
      const ep = (m instanceof MuxSender ? m : m instanceof Map ? m.get(m.keys().next().value) : Array.isArray(m) ? m[1] : (m as any).reply ?? (m as any)['0'] ?? (m as any).k[0]) as MuxSender<number>;
      expect(ep).toBeInstanceOf(MuxSender);
      ep.send(7);
      ep.close();
      expect(await r.recv({ timeout: 5000 })).toBe(7);
      await rejectsWith(r.recv({ timeout: 5000 }), 'DISCONNECTED');
    }
    expect(Object.keys(got[1] as object).sort()).toEqual(['0', 'x']);
    expect((got[2] as unknown[])[0]).toBe(1);
    expect([...(got[4] as Map<unknown, unknown>).keys()]).toEqual(['k']);
    expect([...(got[5] as Map<unknown, unknown>).keys()]).toEqual([0]);
    expect(errors).toEqual([]);
    a.close();
    b.close();
  });

  it('a closed endpoint in a message throws CLOSED and sends nothing, in a flat object or nested', async () => {
    const errors: unknown[] = [];
    const [a, b] = localPair({ onError: (e: IpcError) => errors.push(e) });
    const [s, r] = a.channel<number>();
    const [s2, r2] = a.channel<number>();
    s.close();
    r2.close();
    const closed = expect.objectContaining({ code: 'CLOSED' }) as unknown as Error;
    expect(() => a.sender.send({ op: 'x', s })).toThrow(closed);
    expect(() => a.sender.send({ s })).toThrow(closed);
    expect(() => a.sender.send({ deep: { s } })).toThrow(closed);
    expect(() => a.sender.send({ r2 })).toThrow(closed);
    // Nothing of them arrived: the next message is the first the peer sees.
    a.sender.send({ op: 'after' });
    expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ op: 'after' });
    expect(b.receiver.tryRecv()).toBeUndefined();
    expect(errors).toEqual([]);
    r.close();
    s2.close();
    a.close();
    b.close();
  });

  it('a channel over its maxQueue fails alone with TOO_LARGE; the others keep working', async () => {
    const errors: IpcError[] = [];
    const [a, b] = localPair({ maxQueue: 50, onError: (e: IpcError) => errors.push(e) });
    void b;
    const [floodTx, floodRx] = a.channel<number>();
    const [okTx, okRx] = a.channel<number>();
    a.sender.send({ floodTx, okTx });
    const { floodTx: f, okTx: o } = (await b.receiver.recv()) as { floodTx: MuxSender<number>; okTx: MuxSender<number> };
    for (let i = 0; i < 200; i++) f.send(i);
    o.send(7);
    expect(await okRx.recv({ timeout: 5000 })).toBe(7);
    await rejectsWith(floodRx.recv(), 'TOO_LARGE');
    await rejectsWith(floodRx.recv(), 'DISCONNECTED');
    await new Promise((r) => setTimeout(r, 50));
    expect(() => f.send(1)).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    expect(errors.some((e) => e.code === 'TOO_LARGE')).toBe(true);
    a.close();
    b.close();
    floodTx.close();
    okTx.close();
  });

  it('validates per channel: a message the schema refuses is INVALID (its endpoints closed), the next one arrives', async () => {
    const isNumber: StandardSchemaV1<unknown, number> = {
      '~standard': { version: 1, vendor: 'test', validate: (v: unknown) => (typeof v === 'number' ? { value: v } : { issues: [{ message: 'not a number' }] }) },
    };
    const [a, b] = localPair();
    const [tx, rx] = a.channel<number>({ schema: isNumber });
    a.sender.send({ tx });
    const { tx: remote } = (await b.receiver.recv()) as { tx: MuxSender<unknown> };
    const [inner, innerRx] = b.channel<number>();
    remote.send({ inner });
    inner.close();
    remote.send(5);
    await rejectsWith(rx.recv(), 'INVALID');
    expect(await rx.recv()).toBe(5);
    // The sender inside the refused message was closed: its receiver (in b) sees the end.
    await rejectsWith(innerRx.recv({ timeout: 5000 }), 'DISCONNECTED');
    remote.send('x');
    await new Promise((r) => setTimeout(r, 20));
    expect(() => rx.tryRecv()).toThrow(expect.objectContaining({ code: 'INVALID' }) as unknown as Error);
    rx.configure({ schema: undefined });
    remote.send('y');
    expect(await rx.recv()).toBe('y');
    a.close();
    b.close();
  });

  it('endpoints collected without close() are released (GC safety net)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const [a, b] = localPair();
    const base = a.stats.channels;
    (() => {
      for (let i = 0; i < 100; i++) a.channel<number>(); // both ends dropped
      const [tx, rx] = a.channel<number>();
      a.sender.send({ tx }); // b's sender, dropped there without close
      tx.close();
      rx.close();
    })();
    await b.receiver.recv();
    expect(a.stats.channels).toBeGreaterThan(base);
    for (let i = 0; i < 50 && a.stats.channels > base; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(a.stats.channels).toBe(base);
    a.close();
    b.close();
  });

  it('async iteration behaves as the generator it replaces: DISCONNECTED ends it, break leaves the receiver open, other errors are thrown and end it', async () => {
    const [a, b] = localPair();
    const [tx, rx] = a.channel<number>();
    for (let i = 0; i < 5; i++) tx.send(i);
    const got: number[] = [];
    for await (const v of rx) {
      got.push(v);
      if (v === 2) break; // the receiver stays open: what follows is still there
    }
    expect(rx.closed).toBe(false);
    expect(await rx.recv()).toBe(3);
    tx.send(5);
    tx.close();
    for await (const v of rx) got.push(v);
    expect(got).toEqual([0, 1, 2, 4, 5]);
    // An error other than DISCONNECTED is thrown; then the iterator is done.
    const [tx2, rx2] = a.channel<number>({ schema: { '~standard': { version: 1, vendor: 't', validate: (v: unknown) => (v === 1 ? { value: 1 } : { issues: [{ message: 'not 1' }] }) } } as StandardSchemaV1<unknown, number> });
    tx2.send(1);
    tx2.send(2);
    const it = rx2[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 1, done: false });
    await expect(it.next()).rejects.toMatchObject({ code: 'INVALID' });
    tx2.send(1);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(await rx2.recv()).toBe(1); // the receiver itself goes on
    // return() ends it at once; concurrent next() calls are answered in order.
    const it2 = rx2[Symbol.asyncIterator]();
    const p1 = it2.next();
    const p2 = it2.next();
    tx2.send(1);
    tx2.close();
    expect(await p1).toEqual({ value: 1, done: false });
    expect(await p2).toEqual({ value: undefined, done: true });
    expect(await it2.return()).toEqual({ value: undefined, done: true });
    expect(await it2.next()).toEqual({ value: undefined, done: true });
    a.close();
    b.close();
  });

  it('the GC safety net, registered late, still covers every endpoint left open: closed ones in any order, before or after their registration, a long synchronous burst', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const [a, b] = localPair();
    const base = a.stats.channels;
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    // Endpoints closed in a random order while they wait for registration, while they age, and
    // once registered; the others dropped. A wrong swap-remove would leave an open endpoint out
    // of the safety net (its channel never released) or keep a closed one.
    const later: Array<MuxSender<number> | MuxReceiver<number>> = [];
    (() => {
      for (let i = 0; i < 20_000; i++) {
        // 40,000 endpoints in one synchronous run: past the waiting list's bound.
        const [tx, rx] = a.channel<number>();
        for (const ep of [tx, rx]) {
          const r = rnd();
          if (r < 0.25) ep.close();
          else if (r < 0.5) later.push(ep);
        }
      }
    })();
    const closeSome = (): void => {
      for (let n = later.length / 2; n > 0; n--) later.splice(Math.floor(rnd() * later.length), 1)[0]!.close();
    };
    closeSome();
    await new Promise((r) => setTimeout(r, 30));
    closeSome();
    await new Promise((r) => setTimeout(r, 80));
    for (const ep of later.splice(0)) ep.close();
    expect(a.stats.channels).toBeGreaterThan(base);
    for (let i = 0; i < 100 && a.stats.channels > base; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(a.stats.channels).toBe(base);
    a.close();
    b.close();
  });

  it('descriptor count stays flat over 100,000 channels opened and closed', async () => {
    const before = await settledFdCount();
    const [a, b] = localPair();
    for (let i = 0; i < 100_000; i++) {
      const [s, r] = a.channel<number>();
      s.send(i);
      r.close();
      s.close();
    }
    expect(a.stats.channels).toBe(2);
    a.close();
    b.close();
    expect(await settledFdCount()).toBeLessThanOrEqual(before);
  });
});
