// The shared memory pool (IpcSharedMemoryPool / IpcSharedBuffer) on Windows: a segment is a
// section the pool keeps writable, lent as a lease (a pipe end carrying a read-only duplicate of
// the section, src/native/win/lease.cc); it comes back when every holder closed the lease.
// The same promises as test/pool.suite.ts on Linux, in one process and across a child node.exe.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { addon, assert, equal, handleCount, here, lib, rejects, sleep, test, throws, spawnNode, warmUp } from './harness.mjs';

const { IpcOneShotServer, IpcSharedBuffer, IpcSharedMemoryPool, IpcError, channel } = lib;
const sha = (b) => createHash('sha256').update(b).digest('hex');

/** Waits until the pool has `n` segments available (segments come back asynchronously). */
async function availableBecomes(pool, n, what) {
  for (let i = 0; i < 250 && pool.available !== n; i++) await sleep(20);
  equal(pool.available, n, `available ${what}`);
}

function fillPattern(v, seed) {
  for (let j = 0; j < v.length; j += 997) v[j] = (seed * 31 + j) & 255;
  v[v.length - 1] = seed & 255;
}

/**
 * The handle count once Wine's thread pool has its wait threads (a first channel starts them),
 * and the table's open ends: what each test must come back to. Handle counts get +2 of slack
 * for a wait thread started meanwhile; a leaked end or section costs 3 handles (its own and two
 * events), and the table count is exact.
 */
async function baseline() {
  await warmUp();
  return { handles: await handleCount(), open: addon.openCount() };
}
async function backToBaseline(b, what) {
  equal(addon.openCount(), b.open, `ends and sections open ${what}`);
  const after = await handleCount();
  assert(after <= b.handles + 2, `handles ${b.handles} -> ${after} ${what}`);
}

async function codeOf(p) {
  const e = await rejects(p, 'a typed error');
  if (!(e instanceof IpcError)) throw e;
  return e;
}

test('pool in one process: byte-exact, moved when sent, reused, back when the last holder closes it', async () => {
  const before = await baseline();
  const size = 70000 + 3;
  const pool = new IpcSharedMemoryPool({ size, count: 2 });
  const [tx, rx] = channel();
  for (let i = 0; i < 12; i++) {
    const buf = await pool.acquire({ timeout: 5000 });
    const mine = buf.bytes;
    fillPattern(mine, i);
    const want = sha(mine);
    tx.send({ buf, i });
    assert(buf.closed && mine.byteLength === 0, 'the sender no longer has it');
    const m = await rx.recv({ timeout: 5000 });
    assert(m.buf instanceof IpcSharedBuffer, 'an IpcSharedBuffer arrives');
    equal([m.i, m.buf.length, m.buf.bytes.length, sha(m.buf.bytes)], [i, size, size, want], `segment ${i}`);
    m.buf.close();
  }
  await availableBecomes(pool, 2, 'after 12 round trips');
  equal(pool.slots.length, 2, 'segments made (reused, not new ones)');

  // All out: tryAcquire is undefined, acquire waits, a never-sent segment is back at once.
  const a = pool.tryAcquire();
  const b = pool.tryAcquire();
  equal(pool.tryAcquire(), undefined, 'a third');
  equal((await codeOf(pool.acquire({ timeout: 30 }))).code, 'TIMEOUT', 'acquire when all are out');
  const waiting = pool.acquire({ timeout: 5000 });
  a.close();
  const c = await waiting;
  // Passed on from holder to holder: back only when the last one closes it.
  const [tx2, rx2] = channel();
  c.bytes.fill(42);
  tx.send({ buf: c });
  const first = (await rx.recv({ timeout: 5000 })).buf;
  tx2.send({ buf: first });
  assert(first.closed, 'moved again');
  await sleep(100);
  equal(pool.available, 0, 'still out while the second holder has it');
  const second = (await rx2.recv({ timeout: 5000 })).buf;
  equal([second.bytes[0], second.bytes[size - 1]], [42, 42], 'contents after two hops');
  second.close();
  await availableBecomes(pool, 1, 'after the second holder closed it');
  b.close();
  pool.close();
  for (const e of [tx, rx, tx2, rx2]) e.close();
  equal(addon.stats().localTokens, 0, 'nothing left in the local registry');
  await backToBaseline(before, 'after the pool and its channels closed');
});

test('pool: a segment over maxSharedMemoryBytes is TOO_LARGE and comes back; a forged one is MALFORMED; handles back to baseline', async () => {
  const before = await baseline();
  const pool = new IpcSharedMemoryPool({ size: 65536, count: 2 });
  const [tx, rx] = channel({ maxSharedMemoryBytes: 65535 });
  tx.send({ buf: await pool.acquire({ timeout: 5000 }) });
  const big = await codeOf(rx.recv({ timeout: 5000 }));
  equal(big.code, 'TOO_LARGE', big.message);
  assert(/IpcSharedBuffer \(pool segment\) of 65536 bytes exceeds this receiver's maxSharedMemoryBytes \(65535\)/.test(big.message), big.message);
  await availableBecomes(pool, 2, 'after the refused segment');

  // A plain pipe end sent as a segment: no section travels with it.
  const [ours, theirs] = addon.socketpair();
  tx.send({ seg: new IpcSharedBuffer(theirs, 4096) });
  const forged = await codeOf(rx.recv({ timeout: 5000 }));
  equal(forged.code, 'MALFORMED', forged.message);
  assert(/segment/.test(forged.message), forged.message);
  addon.close(ours);
  // A lease carrying an immutable block's section of length 0: refused as empty.
  const [o2, t2] = addon.socketpair();
  const empty = addon.sectionCreate(0);
  addon.segmentAttach(t2, empty);
  addon.close(empty);
  tx.send({ seg: new IpcSharedBuffer(t2, 0) });
  const e2 = await codeOf(rx.recv({ timeout: 5000 }));
  equal(e2.code, 'MALFORMED', e2.message);
  assert(/empty/.test(e2.message), e2.message);
  addon.close(o2);
  // Misuse of the addon call is a TypeError, not a crash.
  const [p, q] = addon.socketpair();
  assert(throws(() => addon.segmentAttach(p, q), 'a pipe end is not a section') instanceof TypeError, 'TypeError');
  addon.close(p);
  addon.close(q);
  tx.send('still usable');
  equal(await rx.recv({ timeout: 5000 }), 'still usable');
  pool.close();
  tx.close();
  rx.close();
  await backToBaseline(before, 'after the refused segments');
});

async function startChild() {
  const server = new IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'pool-child.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, first] = await server.accept({ timeout: 20000, peer: { pid: child.pid } });
  equal(first.hello, child.pid, 'the child says its pid');
  return { child, rx, tx: first.tx, exited };
}

test('pool across a child node.exe: byte-exact, reused, back after the child closes each; passed back; lent by the child', async () => {
  const before = await baseline();
  const c = await startChild();
  const size = 300000 + 3;
  const pool = new IpcSharedMemoryPool({ size, count: 2 });
  for (let i = 0; i < 6; i++) {
    const buf = await pool.acquire({ timeout: 10000 });
    fillPattern(buf.bytes, i + 1);
    const want = sha(buf.bytes);
    c.tx.send({ op: 'check', buf });
    equal(await c.rx.recv({ timeout: 10000 }), { length: size, sha: want }, `segment ${i} in the child`);
  }
  await availableBecomes(pool, 2, 'after the child closed each');
  equal(pool.slots.length, 2, 'segments made');
  // The child passes one back: the parent holds it now, and closing it gives it back.
  const buf = pool.tryAcquire();
  buf.bytes.fill(9);
  c.tx.send({ op: 'back', buf });
  const back = (await c.rx.recv({ timeout: 10000 })).buf;
  equal([back.length, back.bytes[0], back.bytes[size - 1]], [size, 9, 9], 'the segment passed back');
  equal(pool.available, 1, 'out while the parent holds what came back');
  back.close();
  await availableBecomes(pool, 2, 'after the parent closed what came back');
  // A pool in the child: the parent holds its segment, closes it, the child's pool has it back.
  c.tx.send({ op: 'lend', size: 5000, fill: 77 });
  const lent = (await c.rx.recv({ timeout: 10000 })).buf;
  equal([lent.length, lent.bytes[0], lent.bytes[4999]], [5000, 77, 77], "the child's segment");
  lent.close();
  c.tx.send({ op: 'available' });
  equal(await c.rx.recv({ timeout: 10000 }), { available: 1 }, "the child's pool");
  c.tx.send({ op: 'exit' });
  equal(await c.exited, 0, 'child exit code');
  pool.close();
  c.tx.close();
  c.rx.close();
  await backToBaseline(before, 'after the child session');
});

test('pool: a child killed while it holds a segment gives it back', async () => {
  const c = await startChild();
  const pool = new IpcSharedMemoryPool({ size: 65536, count: 1 });
  c.tx.send({ op: 'hold', buf: pool.tryAcquire() });
  equal(await c.rx.recv({ timeout: 10000 }), { held: 65536 });
  equal(pool.available, 0, 'out while the child holds it');
  const next = pool.acquire({ timeout: 10000 });
  c.child.kill();
  const buf = await next;
  equal(buf.length, 65536, 'back after the kill');
  buf.close();
  await c.exited;
  pool.close();
  c.tx.close();
  c.rx.close();
});

test('pool: a raw peer forging segment attachments gets one MALFORMED per message; a well-formed lease arrives', async () => {
  const before = await baseline();
  const server = new IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'pool-hostile.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, first] = await server.accept({ timeout: 20000, peer: { pid: child.pid } });
  equal(first, 'first');
  const values = [];
  const errors = [];
  for (;;) {
    try {
      const v = await rx.recv({ timeout: 15000 });
      if (v?.seg instanceof IpcSharedBuffer) {
        values.push(`segment of ${v.seg.length}: ${v.seg.bytes.length}`);
        v.seg.close();
      } else values.push(v);
      if (v === 'end') break;
    } catch (e) {
      if (!(e instanceof IpcError)) throw e;
      if (e.code === 'DISCONNECTED') break;
      errors.push(e);
    }
  }
  equal(values, ['between', 'segment of 64: 64', 'end'], 'valid messages');
  equal(errors.map((e) => e.code), ['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED'], `one error per forged message: ${errors.map((e) => e.message.slice(0, 100)).join(' | ')}`);
  equal(await exited, 0, 'hostile peer exit code');
  rx.close();
  await backToBaseline(before, 'after the hostile peer');
});
