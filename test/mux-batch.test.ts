// Batches of frames on a multiplexed connection (docs/multiplexing.md, "Batches"): the frames a
// turn writes after its first leave as one plain message. Containment of hostile batches is in
// test/containment/mux.test.ts.
import { describe, expect, it } from 'vitest';
import { IpcError, IpcMux, IpcOneShotServer, IpcReceiver, IpcSender, channel } from '../src/main/index.js';
import type { MuxFrame } from '../src/main/index.js';
import { spawnFixture } from './helpers.js';

/** Both sides of a mux in this process; what A's side writes on its plain sender is recorded. */
function spiedPair(): { a: IpcMux; b: IpcMux; sent: unknown[] } {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  const sent: unknown[] = [];
  const send = aTx.send.bind(aTx);
  aTx.send = (v: MuxFrame): void => {
    sent.push(v);
    send(v);
  };
  return { a: IpcMux.open(aTx, aRx), b: IpcMux.open(bTx, bRx), sent };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Both sides have written a frame and read the other's OP_BATCH: batches may flow both ways. */
async function warm(a: IpcMux, b: IpcMux): Promise<void> {
  for (let i = 0; i < 2; i++) {
    a.sender.send('warm');
    b.sender.send('warm');
    await a.receiver.recv({ timeout: 5000 });
    await b.receiver.recv({ timeout: 5000 });
    await turn();
  }
}

describe('IpcMux batches', () => {
  it('the frames of one turn after the first leave as ONE plain message, and arrive in order', async () => {
    const { a, b, sent } = spiedPair();
    await warm(a, b);
    sent.length = 0;
    for (let i = 0; i < 10; i++) a.sender.send({ i });
    expect(sent.length).toBe(1); // the first at once, the rest wait for the end of the turn
    await turn();
    expect(sent.length).toBe(2);
    expect(sent[1]).toBeInstanceOf(Uint8Array);
    for (let i = 0; i < 10; i++) expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ i });
    a.close();
    b.close();
  });

  it('send() of a batched frame still throws UNSERIALIZABLE at once, nothing sent; the others arrive', async () => {
    const { a, b } = spiedPair();
    await warm(a, b);
    a.sender.send({ i: 0 });
    a.sender.send({ i: 1 });
    let err: unknown;
    try {
      a.sender.send({ f: () => 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IpcError);
    expect((err as IpcError).code).toBe('UNSERIALIZABLE');
    a.sender.send({ i: 2 });
    for (let i = 0; i < 3; i++) expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ i });
    a.close();
    b.close();
  });

  it('a frame with a descriptor goes alone after the open batch; the order holds and the descriptor works', async () => {
    const { a, b, sent } = spiedPair();
    await warm(a, b);
    sent.length = 0;
    const [ptx, prx] = channel<string>();
    a.sender.send({ i: 0 });
    a.sender.send({ i: 1 });
    a.sender.send({ ptx });
    a.sender.send({ i: 2 });
    ptx.close();
    await turn();
    // [frame 0] [batch: frame 1] [the frame with the sender] [batch: frame 2]
    expect(sent.map((x) => (x instanceof Uint8Array ? 'batch' : 'frame'))).toEqual(['frame', 'batch', 'frame', 'batch']);
    expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ i: 0 });
    expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ i: 1 });
    const got = (await b.receiver.recv({ timeout: 5000 })) as { ptx: IpcSender<string> };
    expect(got.ptx).toBeInstanceOf(IpcSender);
    got.ptx.send('via');
    expect(await prx.recv({ timeout: 5000 })).toBe('via');
    expect(await b.receiver.recv({ timeout: 5000 })).toEqual({ i: 2 });
    got.ptx.close();
    prx.close();
    a.close();
    b.close();
  });

  async function child(mode: string): Promise<{ mux: IpcMux; done: Promise<{ code: number | null; stderr: string }> }> {
    const server = new IpcOneShotServer<IpcSender<MuxFrame>>();
    const spawned = spawnFixture('mux/batch-peer.mjs', {}, 30_000, [server.name, mode]);
    const [rx, tx] = await server.accept({ timeout: 15_000 });
    const mux = IpcMux.open(tx, rx as unknown as IpcReceiver<MuxFrame>);
    mux.sender.send('hello');
    await turn();
    await new Promise((r) => setTimeout(r, 20));
    mux.sender.send('go');
    return { mux, done: spawned.done };
  }

  it('process.exit() right after a turn of sends: the open batch is written by the exit flush', async () => {
    const { mux, done } = await child('exit');
    expect(await mux.receiver.recv({ timeout: 10_000 })).toEqual({ batching: true });
    for (let i = 0; i < 20; i++) expect(await mux.receiver.recv({ timeout: 10_000 })).toEqual({ i });
    expect((await done).code).toBe(0);
    mux.close();
  });

  it('recvSync() right after a turn of sends: the open batch is written before the thread blocks', async () => {
    const { mux, done } = await child('sync');
    expect(await mux.receiver.recv({ timeout: 10_000 })).toEqual({ batching: true });
    const { reply } = (await mux.receiver.recv({ timeout: 10_000 })) as { reply: { send(v: unknown): void; close(): void } };
    reply.send('answer');
    reply.close();
    expect(await mux.receiver.recv({ timeout: 10_000 })).toEqual({ got: 'answer' });
    expect((await done).code).toBe(0);
    mux.close();
  });
});
