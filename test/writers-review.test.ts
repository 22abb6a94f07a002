// Adversarial review of "several senders per channel on the stream transport" (commit 1b29950,
// src/main/writers.ts). Contract-style: every test states what both transports must do. On
// seqpacket a sender sent in a message is a kernel duplicate of one socket; on stream it is a new
// socket announced to the receiver by an ATTACH packet. Tests under a "BUG n" comment failed on
// stream before bf7c8ef (each checked to fail without its fix).
import { describe, expect, it } from 'vitest';
import { IpcError, IpcReceiver, IpcReceiverSet, IpcSender, IpcServer, channel } from '../src/main/index.js';
import { receiverCore } from '../src/main/channel.js';
import { transport } from '../src/main/transport/index.js';
import { fdCount, rejectsWith, settledFdCount, spawnFixture, startPeer } from './helpers.js';

const singleWriter = transport().singleWriter === true;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends `v` through a second channel of this process and returns what arrives (handles revived). */
async function roundTrip<V>(v: V): Promise<V> {
  const [c, cr] = channel<V>();
  c.send(v);
  const got = await cr.recv({ timeout: 5000 });
  c.close();
  cr.close();
  return got;
}

describe('several senders: review', () => {
  // BUG 1 (stream, fixed in bf7c8ef): encodeHooks.handleKind absorbs at most 16 read() rounds of one packet each
  // before a receiver moves; an ATTACH packet deeper in its socket is not seen, so write()'s
  // "a receiver cannot be sent through its own channel" check misses the attached writer, and the
  // receiver is sent into a socket only it reads (lost). Seqpacket throws the TypeError.
  it('a receiver cannot be sent through a sender announced behind many unread packets (TypeError, never lost)', async () => {
    const [tx, rx] = channel<unknown>();
    // 40 packets (one per tick) ahead of the ATTACH of the copy of tx sent next.
    for (let i = 0; i < 40; i++) {
      tx.send(i);
      await sleep(0);
    }
    const { s } = await roundTrip({ s: tx });
    expect(() => s.send({ r: rx })).toThrow(TypeError);
    // The receiver is still here and reads everything in order.
    expect(rx.closed).toBe(false);
    for (let i = 0; i < 40; i++) expect(await rx.recv({ timeout: 5000 })).toBe(i);
    s.send('from the copy');
    expect(await rx.recv({ timeout: 5000 })).toBe('from the copy');
    tx.close();
    s.close();
    rx.close();
  });

  it('a receiver cannot be sent through a sender announced right behind a few packets (TypeError)', async () => {
    const [tx, rx] = channel<unknown>();
    tx.send(1);
    const { s } = await roundTrip({ s: tx });
    expect(() => s.send({ r: rx })).toThrow(TypeError);
    expect(await rx.recv({ timeout: 5000 })).toBe(1);
    tx.close();
    s.close();
    rx.close();
  });

  // BUG 2 (stream, fixed in bf7c8ef): write() asks transport.moveProblem() about the receiver's own socket only.
  // An attached writer's socket whose frame the addon has read in part (hasPartial) is carried in
  // an ATTACH packet anyway; the addon's half frame is dropped when the descriptor is closed after
  // sending, and the new holder reads that socket from the middle of a frame: out of step, one
  // MALFORMED, and every later message of that sender lost. (Stream only: a half frame is a
  // stream notion; the test writes one by hand, as a writer in another process does whenever a
  // frame crosses the socket buffer.)
  it.skipIf(!singleWriter)(
    'a receiver moved while an attached sender\'s frame is half read loses nothing (or the move is refused)',
    async () => {
      const { readSync, writeSync } = await import('node:fs');
      // The exact bytes of one frame carrying { n: 5 }, taken from a channel of our own.
      const [t2, r2] = channel<{ n: number }>();
      t2.send({ n: 5 });
      await t2.flush();
      const frame = Buffer.alloc(4096);
      const len = readSync(receiverCore(r2 as IpcReceiver<unknown>).fd, frame);
      t2.close();
      r2.close();
      const [tx, rx] = channel<{ n: number }>();
      const { s } = await roundTrip({ s: tx });
      tx.send({ n: 0 });
      expect(await rx.recv({ timeout: 5000 })).toEqual({ n: 0 }); // reads the ATTACH too
      expect(receiverCore(rx as IpcReceiver<unknown>).readFds).toHaveLength(2);
      const sfd = (s as unknown as { core: { fd: number } }).core.fd;
      writeSync(sfd, frame.subarray(0, 11)); // header and 3 bytes of payload
      expect(rx.tryRecv()).toBeUndefined(); // the addon holds a half frame of s's socket now
      let moved: IpcReceiver<{ n: number }>;
      try {
        ({ r: moved } = await roundTrip({ r: rx }));
      } catch (e) {
        // Refusing the move for now (as for the receiver's own socket) keeps the channel whole.
        expect(e).toBeInstanceOf(IpcError);
        expect((e as IpcError).code).toBe('OS');
        moved = rx;
      }
      writeSync(sfd, frame.subarray(11, len));
      expect(await moved.recv({ timeout: 5000 })).toEqual({ n: 5 });
      s.send({ n: 6 });
      expect(await moved.recv({ timeout: 5000 })).toEqual({ n: 6 });
      tx.close();
      s.close();
      await rejectsWith(moved.recv({ timeout: 5000 }), 'DISCONNECTED');
      moved.close();
    },
  );

  // BUG 3 (stream, fixed in bf7c8ef): IpcServerConnection.checkEnded() polls the receiver's own socket only. A
  // client that hands its sender to the server on to someone else and closes its own copy hangs
  // up that socket while the copy (an attached writer) still sends: `ended` resolves and the
  // client no longer counts against maxClients. On seqpacket the copy is the same socket.
  it('an IpcServer connection has not ended while a copy of the client\'s sender still writes', async () => {
    const server = new IpcServer<number, number>();
    const accepted = server.accept({ timeout: 10_000 });
    const [toServer, fromServer] = await IpcServer.connect<number, number>(server.name, { timeout: 10_000 });
    const conn = await accepted;
    toServer.send(1);
    expect(await conn.receiver.recv({ timeout: 5000 })).toBe(1);
    const { s } = await roundTrip({ s: toServer });
    toServer.close();
    await sleep(600); // three hang-up checks
    expect(conn.isEnded).toBe(false);
    s.send(2);
    expect(await conn.receiver.recv({ timeout: 5000 })).toBe(2);
    s.close();
    await rejectsWith(conn.receiver.recv({ timeout: 5000 }), 'DISCONNECTED');
    await conn.ended;
    conn.close();
    fromServer.close();
    server.close();
  });

  it('recvSync, tryRecv and selectSync read the attached senders; DISCONNECTED once the last sender is gone, and no descriptor is left', async () => {
    const before = await settledFdCount();
    const [tx, rx] = channel<string>();
    const { s } = await roundTrip({ s: tx });
    tx.send('a');
    s.send('b');
    const got = [rx.recvSync({ timeout: 5000 }), rx.recvSync({ timeout: 5000 })];
    expect(got.sort()).toEqual(['a', 'b']);
    tx.close(); // the receiver's own socket ends: the attached one takes its place
    s.send('c');
    expect(rx.recvSync({ timeout: 5000 })).toBe('c');
    const set = new IpcReceiverSet();
    const id = set.add(rx);
    s.send('d');
    expect(set.selectSync({ timeout: 5000 })).toEqual([{ id, type: 'message', message: 'd' }]);
    s.close();
    expect(set.selectSync({ timeout: 5000 })).toEqual([{ id, type: 'closed' }]);
    set.close();
    rx.close(); // a receiver reported closed left the set: it is ours to close
    expect(await settledFdCount()).toBe(before);
  });

  it('a receiver with attached senders moved twice in a row (before the first carrier is read) reads every sender, in order each', async () => {
    const before = await settledFdCount();
    const [tx, rx] = channel<{ from: string; i: number }>();
    const { s } = await roundTrip({ s: tx });
    const { s: s2 } = await roundTrip({ s: tx });
    tx.send({ from: 'tx', i: 0 });
    s.send({ from: 's', i: 0 });
    // Read some, so that the receiver holds the attached sockets and messages read ahead.
    expect(await rx.recv({ timeout: 5000 })).toEqual({ from: 'tx', i: 0 });
    s2.send({ from: 's2', i: 0 });
    const [c1, cr1] = channel<{ r: IpcReceiver<{ from: string; i: number }> }>();
    const [c2, cr2] = channel<{ r: IpcReceiver<{ from: string; i: number }> }>();
    c1.send({ r: rx });
    const { r: once } = await cr1.recv({ timeout: 5000 });
    c2.send({ r: once }); // at once: its carrier is unread
    const { r: twice } = await cr2.recv({ timeout: 5000 });
    for (let i = 1; i < 50; i++) {
      tx.send({ from: 'tx', i });
      s.send({ from: 's', i });
      s2.send({ from: 's2', i });
    }
    tx.close();
    s.close();
    s2.close();
    const got: Array<{ from: string; i: number }> = [];
    for await (const m of twice) got.push(m);
    const by = (f: string): number[] => got.filter((m) => m.from === f).map((m) => m.i);
    expect(by('tx')).toEqual(Array.from({ length: 49 }, (_, i) => i + 1));
    expect(by('s')).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(by('s2')).toEqual(Array.from({ length: 50 }, (_, i) => i));
    for (const x of [c1, cr1, c2, cr2, twice]) x.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('a clone collected without close() leaves the shared socket to the clone still in use', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const [tx, rx] = channel<number>();
    let dropped: IpcSender<number> | undefined = tx.clone();
    dropped.send(-1);
    const ref = new WeakRef(dropped);
    dropped = undefined;
    const b = tx.clone();
    tx.close();
    // The safety net registers an endpoint 25-50 ms after it was made (src/main/handles.ts).
    for (let round = 0; round < 100; round++) {
      gc();
      await sleep(10);
      if (ref.deref() === undefined) break;
      await sleep(1); // deref() keeps its target alive to the end of this job: collect in the next
    }
    expect(ref.deref()).toBeUndefined(); // the clone was collected (its safety net ran)
    for (let i = 0; i < 1000; i++) b.send(i);
    expect(await rx.recv({ timeout: 5000 })).toBe(-1);
    for (let i = 0; i < 1000; i++) expect(await rx.recv({ timeout: 5000 })).toBe(i);
    b.close();
    await rejectsWith(rx.recv({ timeout: 5000 }), 'DISCONNECTED');
    rx.close();
  });

  it('a sender sent to its receiver\'s process right before process.exit(): the exit flush delivers the backlog, then the copy', async () => {
    const { IpcOneShotServer } = await import('../src/main/index.js');
    const server = new IpcOneShotServer<{ pid?: number; i?: number; copy?: IpcSender<string> }>();
    const count = 3000;
    const child = spawnFixture('writers/exit-after-send.mjs', { EIPC_SERVER: server.name, EIPC_COUNT: String(count) }, 30_000);
    const [rx, first] = await server.accept({ timeout: 15_000 });
    expect(first.pid).toBe(child.child.pid);
    for (let i = 0; i < count; i++) expect((await rx.recv({ timeout: 10_000 })).i).toBe(i);
    const { copy } = await rx.recv({ timeout: 10_000 });
    expect(copy).toBeInstanceOf(IpcSender);
    const res = await child.done;
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    copy!.send('after the exit');
    expect(await rx.recv({ timeout: 5000 })).toBe('after the exit');
    copy!.close();
    await rejectsWith(rx.recv({ timeout: 5000 }), 'DISCONNECTED');
    rx.close();
  });

  it('a sender and a pool segment in one message both arrive; the segment goes back to the pool', async () => {
    const { IpcSharedMemoryPool } = await import('../src/main/index.js');
    const before = await settledFdCount();
    const pool = new IpcSharedMemoryPool({ size: 4096, count: 1 });
    const [tx, rx] = channel<unknown>();
    const buf = pool.tryAcquire()!;
    buf.bytes.fill(9);
    const { s, b } = await roundTrip({ s: tx, b: buf });
    expect(b.bytes.every((x: number) => x === 9)).toBe(true);
    s.send('via copy');
    expect(await rx.recv({ timeout: 5000 })).toBe('via copy');
    b.close();
    const again = await pool.acquire({ timeout: 5000 });
    again.close();
    s.close();
    tx.close();
    await rejectsWith(rx.recv({ timeout: 5000 }), 'DISCONNECTED');
    rx.close();
    pool.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('many copies sent and closed: the receiver drops their sockets, descriptors come back to the baseline', async () => {
    const before = await settledFdCount();
    const [tx, rx] = channel<number>();
    for (let round = 0; round < 20; round++) {
      const { s } = await roundTrip({ s: tx });
      s.send(round);
      s.close();
      expect(await rx.recv({ timeout: 5000 })).toBe(round);
    }
    tx.send(99);
    expect(await rx.recv({ timeout: 5000 })).toBe(99);
    // Every copy is closed and read to its end: the receiver reads its own socket only.
    expect(receiverCore(rx as IpcReceiver<unknown>).readFds).toBeTypeOf('number');
    tx.close();
    await rejectsWith(rx.recv({ timeout: 5000 }), 'DISCONNECTED');
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });
});
