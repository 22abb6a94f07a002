// Channels in one process through the win32 transport: the typed API over message-mode pipes.
import { inspect } from 'node:util';
import { addon, assert, equal, handleCount, lib, rejects, test, throws } from './harness.mjs';

const { channel, bytesChannel, IpcError, IpcReceiverSet } = lib;

test('the win32 transport is the default on Windows; endpoints are message-mode pipe ends', () => {
  const [tx, rx] = channel();
  try {
    const shown = inspect(tx);
    assert(shown.includes("transport: 'win32'"), shown);
    const fd = Number(/fd: (\d+)/.exec(shown)[1]);
    equal(addon.fdInfo(fd).kind, 'message-pipe', 'kind');
    equal(process.platform, 'win32');
  } finally {
    tx.close();
    rx.close();
  }
});

test('round trip of values: objects, typed arrays, Map, big strings', async () => {
  const [tx, rx] = channel();
  const big = 'x'.repeat(300_000);
  const values = [{ a: 1, b: [true, null, 'z'] }, new Uint8Array([1, 2, 3]), new Map([[1, 'one']]), big, 0, ''];
  for (const v of values) tx.send(v);
  const got = [];
  for (let i = 0; i < values.length; i++) got.push(await rx.recv({ timeout: 5000 }));
  equal(got[0], values[0]);
  equal([...got[1]], [1, 2, 3]);
  equal(got[2].get(1), 'one');
  equal(got[3].length, big.length);
  equal(got.slice(4), [0, '']);
  tx.close();
  rx.close();
});

test('a 5 MB message (fragments over the 1 MiB packet bound) arrives whole', async () => {
  const [tx, rx] = channel();
  const bytes = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < bytes.length; i += 4099) bytes[i] = i & 0xff;
  tx.send(bytes);
  const got = await rx.recv({ timeout: 20000 });
  equal(got.length, bytes.length, 'length');
  let same = true;
  for (let i = 0; i < bytes.length; i += 4099) if (got[i] !== bytes[i]) same = false;
  assert(same, 'content');
  tx.close();
  rx.close();
});

test('2000 messages in order, sent before any is read (backpressure: the sender queues)', async () => {
  const [tx, rx] = channel();
  for (let i = 0; i < 2000; i++) tx.send({ i, pad: 'p'.repeat(i % 300) });
  for (let i = 0; i < 2000; i++) {
    const m = await rx.recv({ timeout: 10000 });
    if (m.i !== i) throw new Error(`message ${i} came as ${m.i}`);
  }
  tx.close();
  rx.close();
});

test('recvSync, tryRecv and a recvSync timeout', () => {
  const [tx, rx] = channel();
  equal(rx.tryRecv(), undefined, 'tryRecv of an empty channel');
  tx.send('a');
  equal(rx.recvSync({ timeout: 2000 }), 'a');
  const e = throws(() => rx.recvSync({ timeout: 100 }), 'nothing to receive');
  assert(e instanceof IpcError && e.code === 'TIMEOUT', `TIMEOUT, got ${e.code}: ${e.message}`);
  tx.send('b');
  let got;
  for (let i = 0; i < 100 && got === undefined; i++) got = rx.tryRecv();
  equal(got, { message: 'b' });
  tx.close();
  rx.close();
});

test('closing the sender: the receiver gets DISCONNECTED after what was sent', async () => {
  const [tx, rx] = channel();
  tx.send(1);
  tx.close();
  equal(await rx.recv({ timeout: 5000 }), 1);
  const e = await rejects(rx.recv({ timeout: 5000 }), 'after close');
  assert(e instanceof IpcError && e.code === 'DISCONNECTED', `DISCONNECTED, got ${e.code}`);
  rx.close();
});

test('closing the receiver: send throws DISCONNECTED (eventually)', async () => {
  const [tx, rx] = channel();
  rx.close();
  let err;
  for (let i = 0; i < 50 && !err; i++) {
    try {
      tx.send('x');
      await new Promise((r) => setTimeout(r, 10));
    } catch (e) {
      err = e;
    }
  }
  assert(err instanceof IpcError && err.code === 'DISCONNECTED', `DISCONNECTED, got ${err?.code}: ${err?.message}`);
  tx.close();
});

test('nested channels: senders and receivers inside messages, twice removed', async () => {
  const [tx, rx] = channel();
  const [t2, r2] = channel();
  const [t3, r3] = channel();
  tx.send({ t2, r3 });
  const got = await rx.recv({ timeout: 5000 });
  got.t2.send('via the sent sender');
  equal(await r2.recv({ timeout: 5000 }), 'via the sent sender');
  t3.send('into the sent receiver');
  equal(await got.r3.recv({ timeout: 5000 }), 'into the sent receiver');
  // The original sender stays usable (a sender sent is a copy).
  t2.send('original');
  equal(await r2.recv({ timeout: 5000 }), 'original');
  // A receiver of a receiver.
  got.t2.send({ again: got.r3 });
  const inner = await r2.recv({ timeout: 5000 });
  t3.send('deep');
  equal(await inner.again.recv({ timeout: 5000 }), 'deep');
  for (const h of [tx, rx, t2, r2, t3, got.t2, inner.again]) h.close();
});

test('bytes channel', async () => {
  const [tx, rx] = bytesChannel();
  tx.send(new Uint8Array([9, 8, 7]));
  equal([...(await rx.recv({ timeout: 5000 }))], [9, 8, 7]);
  tx.close();
  rx.close();
});

test('select over two receivers (IpcReceiverSet)', async () => {
  const [t1, r1] = channel();
  const [t2, r2] = channel();
  const set = new IpcReceiverSet();
  const id1 = set.add(r1);
  const id2 = set.add(r2);
  t2.send('two');
  const first = await set.select({ timeout: 5000 });
  assert(first.some((r) => r.id === id2 && r.message === 'two'), JSON.stringify(first));
  t1.send('one');
  const second = set.selectSync({ timeout: 5000 });
  assert(second.some((r) => r.id === id1 && r.message === 'one'), JSON.stringify(second));
  set.close();
  t1.close();
  t2.close();
});

test('handle count back to baseline after 50 channels with nested handles', async () => {
  const before = await handleCount();
  for (let i = 0; i < 50; i++) {
    const [tx, rx] = channel();
    const [t2, r2] = channel();
    tx.send({ t2, r2 });
    const got = await rx.recv({ timeout: 5000 });
    for (const h of [tx, rx, t2, r2, got.t2, got.r2]) h.close();
  }
  const after = await handleCount();
  assert(after <= before, `handles ${before} -> ${after}`);
  equal(addon.stats().localTokens, 0, 'handles kept for local receivers');
});

test('a worker thread: endpoints sent to it after it connected through a one-shot server', async () => {
  const { Worker } = await import('node:worker_threads');
  const { fileURLToPath } = await import('node:url');
  const [toWorker, workerRx] = channel();
  const [workerTx, fromWorker] = channel();
  const server = new lib.IpcOneShotServer();
  const w = new Worker(`
    const { workerData } = require('node:worker_threads');
    const lib = require(workerData.lib);
    (async () => {
      const tx = lib.IpcSender.connect(workerData.name);
      const [t, r] = lib.channel();
      tx.send({ t });
      const m = await r.recv({ timeout: 10000 });
      const v = await m.rx.recv({ timeout: 10000 });
      m.tx.send(v * 3);
      for (const h of [tx, t, r, m.rx, m.tx]) h.close();
    })().catch((e) => { console.error(e); process.exitCode = 2; });
  `, { eval: true, workerData: { lib: fileURLToPath(new URL('../../dist/main/index.cjs', import.meta.url)), name: server.name } });
  const exited = new Promise((r) => w.on('exit', r));
  const [rx, first] = await server.accept({ timeout: 10000 });
  first.t.send({ rx: workerRx, tx: workerTx });
  workerRx.close();
  workerTx.close();
  toWorker.send(14);
  equal(await fromWorker.recv({ timeout: 10000 }), 42);
  equal(await exited, 0, 'worker exit code');
  for (const h of [toWorker, fromWorker, rx, first.t]) h.close();
});
