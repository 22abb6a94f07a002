// IpcMux (src/main/mux/, docs/multiplexing.md) over the win32 transport: many logical channels
// over one connection to a child node.exe and in one process, nested logical endpoints, order,
// disconnection, and the process handle count back to baseline (GetProcessHandleCount: logical
// channels cost no handle).
import path from 'node:path';
import { addon, assert, equal, handleCount, here, lib, rejects, test, spawnNode, warmUp } from './harness.mjs';

const { IpcMux, IpcOneShotServer, IpcError, MuxReceiver, channel } = lib;

/** The handle count once Wine's thread pool has its wait threads (a first channel starts them). */
async function baseline() {
  await warmUp();
  return handleCount();
}

async function codeOf(p) {
  const e = await rejects(p, 'a typed error');
  if (!(e instanceof IpcError)) throw e;
  return e.code;
}

async function startPeer() {
  const server = new IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'mux-peer.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, tx] = await server.accept({ timeout: 20000, peer: { pid: child.pid } });
  const mux = IpcMux.open(tx, rx);
  const ask = async (op) => {
    const [reply, answer] = mux.channel();
    mux.sender.send({ ...op, reply });
    reply.close();
    return answer.recv({ timeout: 15000 });
  };
  return { mux, ask, exited };
}

test('IpcMux with a child node.exe: many logical channels over one connection, nested endpoints, handles back to baseline', async () => {
  const before = await baseline();
  const { mux, ask, exited } = await startPeer();
  equal(await ask({ op: 'echo', value: { a: [1, 'x', new Map([[1, 2]])] } }), { a: [1, 'x', new Map([[1, 2]])] }, 'echo');
  const childBase = await ask({ op: 'stats' });
  const parentBase = addon.handleCount();

  // One logical channel each way, 500 messages in order.
  const [out, outRx] = mux.channel();
  const [back, backRx] = mux.channel();
  mux.sender.send({ op: 'echo-loop', rx: outRx, tx: back });
  back.close();
  for (let i = 0; i < 500; i++) out.send(i);
  const got = [];
  for (let i = 0; i < 500; i++) got.push(await backRx.recv({ timeout: 10000 }));
  equal(got, [...Array(500).keys()], 'order on one logical channel');
  out.close();
  equal(await codeOf(backRx.recv({ timeout: 10000 })), 'DISCONNECTED', 'the echo loop ended');

  // Many channels at once: their senders held by the child, each answers on its own.
  const N = 3000;
  const receivers = [];
  const senders = [];
  for (let i = 0; i < N; i++) {
    const [s, r] = mux.channel();
    senders.push(s);
    receivers.push(r);
  }
  for (let i = 0; i < N; i += 500) equal(await ask({ op: 'hold', items: senders.slice(i, i + 500) }), i + 500, 'held');
  for (const s of senders) s.close();
  const during = await ask({ op: 'stats' });
  assert(during.channels >= N, `the child has ${during.channels} channels`);
  assert(during.handles <= childBase.handles + 2, `child handles ${childBase.handles} -> ${during.handles} with ${N} channels`);
  assert(addon.handleCount() <= parentBase + 2, `parent handles ${parentBase} -> ${addon.handleCount()} with ${N} channels`);
  equal(await ask({ op: 'answer-all' }), 'done');
  for (let i = 0; i < N; i += 997) equal(await receivers[i].recv({ timeout: 10000 }), i, `channel ${i}`);
  for (const r of receivers) r.close();

  // Nested: a logical receiver sent to the child carries a message with a logical sender; the
  // child answers with a receiver of a channel it made, which brings a message of its own.
  const [nestTx, nestRx] = mux.channel();
  const [innerTx, innerRx] = mux.channel();
  mux.sender.send({ op: 'nest', rx: nestRx });
  nestTx.send({ depth: 1, tx: innerTx });
  innerTx.close();
  nestTx.close();
  const answer = await innerRx.recv({ timeout: 10000 });
  equal(answer.depth, 2, 'depth');
  assert(answer.rx instanceof MuxReceiver, 'a logical receiver came back');
  equal(await answer.rx.recv({ timeout: 10000 }), 'from the child, two levels down');
  equal(await codeOf(answer.rx.recv({ timeout: 10000 })), 'DISCONNECTED', 'its sender closed in the child');
  answer.rx.close();
  innerRx.close();

  const after = await ask({ op: 'stats' });
  assert(after.channels < 10, `child channels left: ${after.channels}`);
  assert(mux.stats.channels < 10, `parent channels left: ${mux.stats.channels}`);
  mux.sender.send({ op: 'exit' });
  equal(await exited, 0, 'child exit code');
  equal(await codeOf(mux.receiver.recv({ timeout: 10000 })), 'DISCONNECTED', 'the connection ended');
  mux.close();
  const end = await handleCount();
  assert(end <= before + 2, `handles ${before} -> ${end}`);
});

test('IpcMux in one process: interleaved channels keep their order; 2000 channels opened and closed cost no handle', async () => {
  const before = await baseline();
  const [aTx, bRx] = channel();
  const [bTx, aRx] = channel();
  const a = IpcMux.open(aTx, aRx);
  const b = IpcMux.open(bTx, bRx);
  const chans = Array.from({ length: 10 }, () => a.channel());
  a.sender.send({ rxs: chans.map(([, r]) => r) });
  const { rxs } = await b.receiver.recv({ timeout: 5000 });
  for (let i = 0; i < 50; i++) for (const [s] of chans) s.send(i);
  for (const r of rxs) {
    const got = [];
    for (let i = 0; i < 50; i++) got.push(await r.recv({ timeout: 5000 }));
    equal(got, [...Array(50).keys()], 'per-channel order');
  }
  const mid = addon.handleCount();
  for (let i = 0; i < 2000; i++) {
    const [s, r] = a.channel();
    b.sender.send({ i });
    s.send(i);
    equal(r.tryRecv(), { message: i }, 'loopback');
    s.close();
    r.close();
  }
  for (let i = 0; i < 2000; i++) equal(await a.receiver.recv({ timeout: 5000 }), { i });
  assert(addon.handleCount() <= mid + 2, `handles ${mid} -> ${addon.handleCount()} over 2000 channels`);
  a.close();
  for (const r of rxs) equal(await codeOf(r.recv({ timeout: 5000 })), 'DISCONNECTED', 'ends with the connection');
  b.close();
  for (const [s] of chans) s.close();
  const after = await handleCount();
  // +2: a wait thread Wine's thread pool may start meanwhile; an end left open costs 3.
  assert(after <= before + 2, `handles ${before} -> ${after}`);
});
