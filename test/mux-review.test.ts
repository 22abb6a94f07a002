// Adversarial review of IpcMux (src/main/mux/mux.ts, docs/multiplexing.md): semantics.
// Each test states the CORRECT behaviour; the ones that fail show a bug (listed in the commit
// message and the review report). Both sides of a mux live in this process, over real sockets.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcMux, channel } from '../src/main/index.js';
import type { IpcSender, MuxFrame, MuxReceiver, MuxSender } from '../src/main/index.js';
import { fdCount, rejectsWith, settledFdCount } from './helpers.js';

/** Both sides of a mux in this process, over two real plain channels; errors collected per side. */
function localPair(options = {}): { a: IpcMux; b: IpcMux; aErr: IpcError[]; bErr: IpcError[] } {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  const aErr: IpcError[] = [];
  const bErr: IpcError[] = [];
  const a = IpcMux.open(aTx, aRx, { ...options, onError: (e: IpcError) => aErr.push(e) });
  const b = IpcMux.open(bTx, bRx, { ...options, onError: (e: IpcError) => bErr.push(e) });
  return { a, b, aErr, bErr };
}

const tick = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('IpcMux review: local delivery (the loopback)', () => {
  it('an object sent then the sender closed: the receiver gets the message before DISCONNECTED', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ n: number }>();
    s.send({ n: 1 });
    s.close();
    expect(await r.recv({ timeout: 2000 })).toEqual({ n: 1 });
    await rejectsWith(r.recv({ timeout: 2000 }), 'DISCONNECTED');
    a.close();
    b.close();
  });

  it('a pending recv, then an object sent and the sender closed: the recv resolves with the message', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ n: number }>();
    const p = r.recv({ timeout: 2000 });
    s.send({ n: 2 });
    s.close();
    expect(await p).toEqual({ n: 2 });
    a.close();
    b.close();
  });

  it('a local object the loopback cannot decode (over maxElements) is not lost silently: delivered, or an error', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ a: number[] }>();
    let sendError: string | undefined;
    try {
      s.send({ a: new Array<number>(1_500_000).fill(0) }); // 1.5M elements: over the plain default maxElements
    } catch (e) {
      sendError = (e as IpcError).code;
    }
    let got: unknown;
    try {
      got = (await r.recv({ timeout: 3000 })).a.length;
    } catch (e) {
      got = (e as IpcError).code;
    }
    // Either the send refuses it (nothing queued) or the receiver gets it (or a typed error):
    // never a send that succeeds and a receiver that waits forever.
    if (sendError === undefined) expect(got).not.toBe('TIMEOUT');
    else expect(got).toBe('TIMEOUT');
    if (sendError === undefined && got !== 1_500_000) expect(got).toBe('TOO_LARGE');
    s.close();
    a.close();
    b.close();
  });

  it('a bare function or symbol sent locally is UNSERIALIZABLE at send, like an object holding one', () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<unknown>();
    expect(() => s.send({ f: () => 1 })).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
    expect(() => s.send(() => 1)).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
    expect(() => s.send(Symbol('x'))).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
    expect(r.tryRecv()).toBeUndefined();
    s.close();
    r.close();
    a.close();
    b.close();
  });

  it('a reply channel in one process (send an object, close) works like a plain channel', async () => {
    const { a, b } = localPair();
    const got: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      const [reply, answer] = a.channel<{ i: number }>();
      reply.send({ i });
      reply.close();
      try {
        got.push(await answer.recv({ timeout: 2000 }));
      } catch (e) {
        got.push((e as IpcError).code);
      }
      answer.close();
    }
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    a.close();
    b.close();
  });

  it('a moved receiver gets an object sent just before its last sender closed', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ n: number }>();
    s.send({ n: 1 }); // into the loopback
    a.sender.send({ r }); // the receiver moves to b while the message is in the loopback
    s.close();
    const { r: moved } = (await b.receiver.recv({ timeout: 2000 })) as { r: MuxReceiver<{ n: number }> };
    expect(await moved.recv({ timeout: 2000 })).toEqual({ n: 1 });
    await rejectsWith(moved.recv({ timeout: 2000 }), 'DISCONNECTED');
    a.close();
    b.close();
  });
});

describe('IpcMux review: sender counting', () => {
  it('a sender and its clone in one message: DISCONNECTED once the peer closes what it got', async () => {
    const { a, b, aErr, bErr } = localPair();
    const [tx, rx] = a.channel<number>();
    const clone = tx.clone();
    a.sender.send({ x: tx, y: clone });
    tx.close();
    clone.close();
    const m = (await b.receiver.recv({ timeout: 2000 })) as { x: MuxSender<number>; y: MuxSender<number> };
    m.x.send(1);
    m.y.send(2);
    m.x.close();
    m.y.close();
    expect(await rx.recv({ timeout: 2000 })).toBe(1);
    expect(await rx.recv({ timeout: 2000 })).toBe(2);
    await rejectsWith(rx.recv({ timeout: 2000 }), 'DISCONNECTED');
    expect(a.stats.channels).toBe(2); // only the roots are left
    expect([aErr, bErr]).toEqual([[], []]);
    a.close();
    b.close();
  });

  it('one sender at two places of a message to a closed receiver: the host is not over-dropped', async () => {
    // b hosts X. b sends X's sender to a twice: once (two slots) to a receiver a has just closed,
    // once to a's root. The first is refused by a; the second must stay usable.
    const { a, b, aErr, bErr } = localPair();
    const [toA, closedRx] = a.channel<unknown>();
    a.sender.send({ toA });
    toA.close();
    const { toA: bToA } = (await b.receiver.recv({ timeout: 2000 })) as { toA: MuxSender<unknown> };
    const [sx, rx] = b.channel<number>();
    closedRx.close(); // RCLOSED leaves a at the end of this turn; b's next message is already on its way
    bToA.send({ p: sx, q: sx });
    b.sender.send({ sx });
    sx.close();
    const { sx: got } = (await a.receiver.recv({ timeout: 2000 })) as { sx: MuxSender<number> };
    await tick(100); // the DROPs of the refused message reach b
    got.send(7);
    expect(await rx.recv({ timeout: 2000 })).toBe(7);
    got.close();
    await rejectsWith(rx.recv({ timeout: 2000 }), 'DISCONNECTED');
    expect([aErr, bErr]).toEqual([[], []]);
    bToA.close();
    a.close();
    b.close();
  });

  it('a receiver sent to a receiver that was just closed: the honest peers report no error', async () => {
    const { a, b, aErr, bErr } = localPair();
    const [toA, closedRx] = a.channel<unknown>();
    a.sender.send({ toA });
    toA.close();
    const { toA: bToA } = (await b.receiver.recv({ timeout: 2000 })) as { toA: MuxSender<unknown> };
    const [s2, r2] = b.channel<number>();
    closedRx.close();
    bToA.send({ r2 }); // r2 moves to a, whose receiver is closed: a refuses it
    await tick(200);
    expect(() => s2.send(1)).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    expect([aErr.map((e) => e.message), bErr.map((e) => e.message)]).toEqual([[], []]);
    s2.close();
    bToA.close();
    a.close();
    b.close();
  });
});

describe('IpcMux review: relays and moves', () => {
  it('moving receivers of channels that already ended leaves no channel entry behind', async () => {
    const { a, b } = localPair();
    const base = a.stats.channels;
    for (let i = 0; i < 50; i++) {
      const [s, r] = a.channel<number>();
      s.send(i);
      s.close();
      a.sender.send({ r });
      const { r: moved } = (await b.receiver.recv({ timeout: 2000 })) as { r: MuxReceiver<number> };
      expect(await moved.recv({ timeout: 2000 })).toBe(i);
      await rejectsWith(moved.recv({ timeout: 2000 }), 'DISCONNECTED');
      moved.close();
    }
    await tick(100);
    expect(a.stats.channels).toBe(base);
    expect(b.stats.channels).toBe(base);
    a.close();
    b.close();
  });

  /** a hosts Y and relays it: b holds a sender of Y AND Y's receiver (moved to b), so what b sends on Y goes through a and back. */
  async function relayThroughA<T>(): Promise<{ a: IpcMux; b: IpcMux; bSend: MuxSender<T>; bRecv: MuxReceiver<T> }> {
    const { a, b } = localPair();
    const [sY, rY] = a.channel<T>();
    a.sender.send({ sY, rY });
    sY.close();
    const m = (await b.receiver.recv({ timeout: 2000 })) as { sY: MuxSender<T>; rY: MuxReceiver<T> };
    return { a, b, bSend: m.sY, bRecv: m.rY };
  }

  it('a logical sender relayed through a moved receiver: DISCONNECTED once every copy is closed (no GC needed)', async () => {
    const { a, b, bSend, bRecv } = await relayThroughA<{ s: MuxSender<number> }>();
    const [sX, rX] = b.channel<number>();
    bSend.send({ s: sX }); // b -> a (relay) -> b
    sX.close();
    const { s } = await bRecv.recv({ timeout: 2000 });
    s.send(5);
    s.close();
    expect(await rX.recv({ timeout: 2000 })).toBe(5);
    // Every sender b made or got is closed; a only relayed the message.
    await rejectsWith(rX.recv({ timeout: 1500 }), 'DISCONNECTED');
    bSend.close();
    a.close();
    b.close();
  });

  it('plain senders relayed through a moved receiver leave no descriptor in the relaying side', async () => {
    const { a, b, bSend, bRecv } = await relayThroughA<{ ps: IpcSender<number> }>();
    bSend.send({ ps: channel<number>()[0] }); // warm-up
    (await bRecv.recv({ timeout: 2000 })).ps.close();
    const before = await settledFdCount();
    let stillOpen = 0;
    for (let i = 0; i < 10; i++) {
      const [ps, pr] = channel<number>();
      bSend.send({ ps });
      ps.close();
      const m = await bRecv.recv({ timeout: 2000 });
      m.ps.send(i);
      m.ps.close();
      expect(await pr.recv({ timeout: 2000 })).toBe(i);
      // Every copy of ps the application saw is closed: a's relay copy must be too (not left to GC).
      try {
        await pr.recv({ timeout: 300 });
      } catch (e) {
        if ((e as IpcError).code === 'TIMEOUT') stillOpen++;
      }
      pr.close();
    }
    expect(stillOpen).toBe(0);
    expect(fdCount()).toBeLessThanOrEqual(before + 4);
    bSend.close();
    a.close();
    b.close();
  });
});

describe('IpcMux review: upgrade to a plain channel', () => {
  it('a receiver moved to a plain channel nobody reads: the relaying side stops at maxUnsentBytes (TOO_LARGE), the peer sees DISCONNECTED', async () => {
    const { a, b, aErr } = localPair({ maxUnsentBytes: 4 * 1024 * 1024 });
    const [s, r] = a.channel<string>();
    a.sender.send({ s });
    s.close();
    const { s: bs } = (await b.receiver.recv({ timeout: 2000 })) as { s: MuxSender<string> };
    const [ptx, prx] = channel<{ r: unknown }>();
    ptx.send({ r }); // r now travels as a plain receiver: a relays what b sends into it
    const got = await prx.recv({ timeout: 2000 }); // its plain receiver: never read
    const big = 'x'.repeat(1024 * 1024);
    let sent = 0;
    let stopped: string | undefined;
    for (let i = 0; i < 64 && stopped === undefined; i++) {
      try {
        bs.send(big);
        sent++;
        await tick(10);
      } catch (e) {
        stopped = (e as IpcError).code;
      }
    }
    expect(aErr.map((e) => e.code)).toContain('TOO_LARGE');
    expect(stopped).toBe('DISCONNECTED');
    expect(sent).toBeLessThan(32);
    bs.close();
    (got.r as { close(): void }).close();
    ptx.close();
    prx.close();
    a.close();
    b.close();
  });

  it('a receiver that failed to go out on a plain channel, then moved over its connection, leaves no descriptor', async () => {
    const before = await settledFdCount();
    const { a, b } = localPair();
    const [ptx, prx] = channel<unknown>();
    const kept: MuxReceiver<number>[] = []; // the application still holds them (closed): no GC to the rescue
    for (let i = 0; i < 20; i++) {
      const [s, r] = a.channel<number>();
      kept.push(r);
      // The encoder asks the receiver for its plain handle, then fails on the function.
      expect(() => ptx.send({ r, f: () => 1 })).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE' }) as unknown as Error);
      a.sender.send({ r }); // moved to b over the connection instead
      s.close();
      const { r: moved } = (await b.receiver.recv({ timeout: 2000 })) as { r: MuxReceiver<number> };
      await rejectsWith(moved.recv({ timeout: 2000 }), 'DISCONNECTED');
      moved.close();
    }
    ptx.close();
    prx.close();
    a.close();
    b.close();
    expect(await settledFdCount()).toBeLessThanOrEqual(before);
    expect(kept.every((r) => r.closed)).toBe(true);
  });
});

describe('IpcMux review: third process relays', () => {
  it('the pump of an upgraded MuxSender reads no faster than its connection drains (a peer that never reads)', async () => {
    // a's peer is a bare plain channel that is never read: what a writes piles up in aTx.
    const [aTx, bRx] = channel<MuxFrame>();
    const [bTx, aRx] = channel<MuxFrame>();
    const a = IpcMux.open(aTx, aRx, { maxUnsentBytes: 4 * 1024 * 1024 });
    const [ptx, prx] = channel<{ s: IpcSender<string> }>();
    const toPeer = a.sender.clone();
    ptx.send({ s: toPeer as unknown as IpcSender<string> });
    toPeer.close();
    const { s: third } = await prx.recv({ timeout: 2000 });
    const big = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 40; i++) {
      third.send(big);
      await tick(5);
    }
    await tick(200);
    const queued = Number(/queuedWrites: (\d+)/.exec(inspect(aTx))?.[1]);
    expect(queued).toBeLessThan(12); // about maxUnsentBytes / 2 of 1 MiB messages, not 40
    third.close();
    ptx.close();
    prx.close();
    a.close();
    bRx.close();
    bTx.close();
  });

  it('plain senders a third process sends through an upgraded MuxSender leave no descriptor in the pumping process', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ ps: IpcSender<number> }>();
    // The "third process" end: a plain channel in this process; the MuxSender travels on it.
    const [ptx, prx] = channel<{ s: IpcSender<{ ps: IpcSender<number> }> }>();
    ptx.send({ s: s as unknown as IpcSender<{ ps: IpcSender<number> }> });
    s.close();
    const { s: third } = await prx.recv({ timeout: 2000 });
    third.send({ ps: channel<number>()[0] }); // warm-up (the loopback's descriptors)
    (await r.recv({ timeout: 2000 })).ps.close();
    const before = await settledFdCount();
    let stillOpen = 0;
    for (let i = 0; i < 10; i++) {
      const [ps, pr] = channel<number>();
      third.send({ ps });
      ps.close();
      const m = await r.recv({ timeout: 2000 });
      m.ps.send(i);
      m.ps.close();
      expect(await pr.recv({ timeout: 2000 })).toBe(i);
      // Every copy the application saw is closed: the pump's own copy must be too (not left to GC).
      try {
        await pr.recv({ timeout: 300 });
      } catch (e) {
        if ((e as IpcError).code === 'TIMEOUT') stillOpen++;
      }
      pr.close();
    }
    expect(stillOpen).toBe(0);
    expect(fdCount()).toBeLessThanOrEqual(before + 4);
    third.close();
    await rejectsWith(r.recv({ timeout: 2000 }), 'DISCONNECTED');
    ptx.close();
    prx.close();
    a.close();
    b.close();
  });
});

describe('IpcMux review: close', () => {
  it('mux.close() with a logical recv pending does not throw; the recv settles', async () => {
    const { a, b } = localPair();
    const p = b.receiver.recv();
    expect(() => a.close()).not.toThrow();
    expect(() => b.close()).not.toThrow();
    await rejectsWith(p, 'DISCONNECTED');
  });

  it('an object queued on a local channel just before mux.close() is still delivered', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<{ n: number }>();
    s.send({ n: 1 });
    a.close();
    expect(await r.recv({ timeout: 2000 })).toEqual({ n: 1 });
    s.close();
    b.close();
  });

  // Was: "keeps working after mux.close()". The design (docs/multiplexing.md, close()) ends
  // every logical channel with the connection, local ones included, so that close() releases the
  // loopback's descriptors (see the next test); what matters is that primitives and objects behave
  // alike (before, primitives worked and objects threw CLOSED from the internal loopback).
  it('a channel with both ends in this process ends with mux.close(): objects and primitives alike throw DISCONNECTED, what was sent before is delivered', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<unknown>();
    s.send({ x: 1 }); // the loopback exists
    expect(await r.recv({ timeout: 2000 })).toEqual({ x: 1 });
    s.send({ y: 2 }); // in the loopback when the connection closes
    a.close();
    await tick(50);
    expect(() => s.send(1)).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    expect(() => s.send({ z: 3 })).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }) as unknown as Error);
    expect(await r.recv({ timeout: 2000 })).toEqual({ y: 2 });
    await rejectsWith(r.recv({ timeout: 2000 }), 'DISCONNECTED');
    s.close();
    b.close();
  });

  it('descriptors are back to the baseline after both sides close (loopback included)', async () => {
    const before = await settledFdCount();
    const { a, b } = localPair();
    const [s, r] = a.channel<{ n: number }>();
    s.send({ n: 1 });
    expect(await r.recv({ timeout: 2000 })).toEqual({ n: 1 });
    a.close();
    b.close();
    expect(await settledFdCount()).toBeLessThanOrEqual(before);
  });
});
