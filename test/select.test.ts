import { describe, expect, it } from 'vitest';
import { IpcError, IpcOneShotServer, IpcReceiverSet, bytesChannel, channel } from '../src/main/index.js';
import type { SelectResult } from '../src/main/index.js';
import { transport } from '../src/main/transport/index.js';
import { catchError, fdCount, rejectsWith, spawnFixture } from './helpers.js';


/**
 * A child writes `count` messages on each of 3 channels; `select` takes what is ready until every
 * receiver has reported closed. Checks per-channel order and counts; returns the emptied set
 * (still open: the caller closes it).
 */
async function multiplex(count: number, select: (set: IpcReceiverSet) => Promise<SelectResult[]> | SelectResult[]): Promise<IpcReceiverSet> {
  const servers = [0, 1, 2].map(() => new IpcOneShotServer<unknown>());
  const child = spawnFixture('select/writer.mjs', { EIPC_SERVERS: servers.map((s) => s.name).join(','), EIPC_COUNT: String(count) });
  const accepted = await Promise.all(servers.map((s) => s.accept({ timeout: 10_000 })));
  const set = new IpcReceiverSet();
  const ids = accepted.map(([rx], k) => {
    expect(accepted[k]![1]).toEqual({ hello: k });
    return set.add(rx);
  });
  const next = [0, 0, 0];
  const closed = new Set<number>();
  while (set.size > 0) {
    for (const r of await select(set)) {
      const k = ids.indexOf(r.id);
      if (r.type === 'closed') closed.add(k);
      else if (r.type === 'message') {
        expect(r.message).toEqual({ k, i: next[k] });
        next[k]!++;
      } else throw r.error;
    }
  }
  expect(next).toEqual([count, count, count]);
  expect(closed.size).toBe(3);
  expect((await child.done).code).toBe(0);
  for (const s of servers) s.close();
  return set;
}

describe('IpcReceiverSet', () => {
  it('reports every receiver that is ready, typed and bytes alike, with their ids', async () => {
    const set = new IpcReceiverSet();
    const [txA, rxA] = channel<string>();
    const [txB, rxB] = channel<{ n: number }>();
    const [txC, rxC] = bytesChannel();
    const a = set.add(rxA);
    const b = set.add(rxB);
    const c = set.add(rxC);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(set.size).toBe(3);

    const waiting = set.select();
    setTimeout(() => {
      txA.send('one');
      txA.send('two');
      txC.send(new Uint8Array([1, 2, 3]));
    }, 10);
    let got: SelectResult[] = await waiting;
    // Both were written in one tick; a second select picks up anything the first did not.
    while (got.length < 3) got = got.concat(await set.select({ timeout: 1000 }));
    const plain = got.map((r) => (r.type === 'message' && r.message instanceof Uint8Array ? { ...r, message: [...r.message] } : r));
    // Order is kept per receiver; across receivers it depends on how the reads fell.
    plain.sort((x, y) => x.id - y.id);
    expect(plain).toEqual([
      { id: a, type: 'message', message: 'one' },
      { id: a, type: 'message', message: 'two' },
      { id: c, type: 'message', message: [1, 2, 3] },
    ]);
    txB.send({ n: 5 });
    await txB.flush();
    expect(set.trySelect()).toEqual([{ id: b, type: 'message', message: { n: 5 } }]);
    for (const t of [txA, txB, txC]) t.close();
    set.close();
    expect(rxA.closed && rxB.closed && rxC.closed).toBe(true);
  });

  it('trySelect() returns an empty array when nothing is ready, and select({ timeout }) rejects TIMEOUT', async () => {
    const set = new IpcReceiverSet();
    const [tx, rx] = channel<number>();
    set.add(rx);
    expect(set.trySelect()).toEqual([]);
    const t0 = Date.now();
    await rejectsWith(set.select({ timeout: 50 }), 'TIMEOUT');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    // Still usable after a timeout.
    tx.send(7);
    expect(await set.select({ timeout: 1000 })).toEqual([{ id: 0, type: 'message', message: 7 }]);
    tx.close();
    set.close();
  });

  it('reports a receiver whose senders all closed once, after its last messages, and drops it', async () => {
    const set = new IpcReceiverSet();
    const [tx1, rx1] = channel<number>();
    const [tx2, rx2] = channel<number>();
    const id1 = set.add(rx1);
    const id2 = set.add(rx2);
    tx1.send(1);
    tx1.close();
    const got: SelectResult[] = [];
    while (!got.some((r) => r.type === 'closed')) got.push(...(await set.select({ timeout: 1000 })));
    expect(got).toEqual([
      { id: id1, type: 'message', message: 1 },
      { id: id1, type: 'closed' },
    ]);
    expect(set.size).toBe(1);
    expect(set.trySelect()).toEqual([]);
    // The waiting select wakes for the disconnect of the other one.
    setTimeout(() => tx2.close(), 10);
    expect(await set.select({ timeout: 1000 })).toEqual([{ id: id2, type: 'closed' }]);
    expect(set.size).toBe(0);
    await rejectsWith(set.select(), 'DISCONNECTED');
    set.close();
  });

  it('reports a bad message as an error result for one receiver and keeps the receiver', async () => {
    const set = new IpcReceiverSet();
    const [tx, rx] = channel<unknown>();
    const id = set.add(rx);
    // A raw packet that is no message, written on the sender's socket (a frame on stream).
    expect(transport().send(tx.core.fd, [new Uint8Array([1, 2, 3])], null)).toBe(3);
    tx.send('fine');
    const got: SelectResult[] = [];
    while (got.length < 2) got.push(...(await set.select({ timeout: 1000 })));
    expect(got[0]).toMatchObject({ id, type: 'error', error: { code: 'MALFORMED' } });
    expect(got[1]).toEqual({ id, type: 'message', message: 'fine' });
    tx.close();
    set.close();
  });

  it('close() closes its receivers and rejects a pending select with CLOSED; adding twice is refused', async () => {
    const before = fdCount();
    const set = new IpcReceiverSet();
    const [tx, rx] = channel<number>();
    set.add(rx);
    const other = new IpcReceiverSet();
    expect(() => other.add(rx)).toThrow(TypeError);
    expect(() => set.add({} as never)).toThrow(TypeError);
    const pending = set.select();
    set.close();
    await rejectsWith(pending, 'CLOSED');
    expect(rx.closed).toBe(true);
    expect(() => set.trySelect()).toThrow(IpcError);
    tx.close();
    other[Symbol.dispose]();
    expect(fdCount()).toBe(before);
  });

  it('a receiver closed or sent away here is reported closed once', async () => {
    const set = new IpcReceiverSet();
    const [tx, rx] = channel<number>();
    const [carrierTx, carrierRx] = channel<unknown>();
    const [tx2, rx2] = channel<number>();
    const id = set.add(rx);
    const id2 = set.add(rx2);
    rx.close();
    carrierTx.send({ moved: rx2 }); // moving a receiver closes it here
    expect(set.trySelect()).toEqual([
      { id, type: 'closed' },
      { id: id2, type: 'closed' },
    ]);
    const { moved } = (await carrierRx.recv()) as { moved: typeof rx2 };
    tx2.send(9);
    expect(await moved.recv()).toBe(9);
    for (const e of [tx, carrierTx, carrierRx, tx2, moved]) e.close();
    set.close();
  });

  it('multiplexes 3 channels fed by another process, keeping each one in order', async () => {
    const set = await multiplex(3000, (s) => s.select({ timeout: 10_000 }));
    set.close();
  });

  it('a pending select() resolves when a message arrives later', async () => {
    const [tx, rx] = channel<number>();
    const set = new IpcReceiverSet();
    set.add(rx);
    const p = set.select();
    setTimeout(() => tx.send(1), 30);
    expect(await p).toEqual([{ id: 0, type: 'message', message: 1 }]);
    tx.close();
    set.close();
  });

  it('selectSync() blocks until a receiver is ready, across processes, keeping each channel in order', async () => {
    const set = await multiplex(2000, (s) => s.selectSync({ timeout: 10_000 }));
    expect(catchError(() => set.selectSync())).toMatchObject({ code: 'DISCONNECTED' });
    set.close();
  });

  it('selectSync(): TIMEOUT, CLOSED, refuses beside a pending select() and async schemas', async () => {
    const [tx, rx] = channel<number>();
    const set = new IpcReceiverSet();
    const id = set.add(rx);
    const t0 = performance.now();
    expect(catchError(() => set.selectSync({ timeout: 40 }))).toMatchObject({ code: 'TIMEOUT' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    expect(catchError(() => set.selectSync({ timeout: -1 }))).toBeInstanceOf(RangeError);
    const pending = set.select();
    expect(catchError(() => set.selectSync({ timeout: 0 }))).toBeInstanceOf(TypeError);
    tx.send(3);
    expect(await pending).toEqual([{ id, type: 'message', message: 3 }]);
    const schema = {
      '~standard': { version: 1 as const, vendor: 'test', validate: async () => ({ issues: [{ message: 'no' }] }) },
    };
    const [atx, arx] = channel<number>({ schema });
    set.add(arx);
    atx.send(1);
    expect(catchError(() => set.selectSync({ timeout: 1000 }))).toBeInstanceOf(TypeError);
    await new Promise((r) => setTimeout(r, 20)); // an unhandled rejection would fail the file
    set.close();
    expect(catchError(() => set.selectSync())).toMatchObject({ code: 'CLOSED' });
    tx.close();
    atx.close();
  });
});
