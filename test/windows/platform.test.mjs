// The rest of the public API on Windows: helpers, IpcServer with several client processes,
// lockdown's report, and what is not implemented yet (reported as skips with the reason, and
// checked to fail with a clear error rather than misbehave).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { assert, equal, here, lib, test, throws } from './harness.mjs';

const { spawnHelper, IpcServer, IpcSharedMemory, IpcSharedMemoryPool, lockdown } = lib;

test('spawnHelper / connectToParent with a child node.exe', async () => {
  const helper = await spawnHelper(path.join(here, 'fixtures', 'helper.mjs'), { timeout: 20000 });
  helper.send(21);
  equal(await helper.recv({ timeout: 10000 }), 42);
  helper.send('bye');
  const exit = await helper.close();
  equal(exit.code, 0, `helper exit ${JSON.stringify(exit)}`);
});

test('IpcServer: three client processes at once, each its own connection and peer pid', async () => {
  const server = new IpcServer();
  const children = [0, 1, 2].map(() => spawn(process.execPath, [path.join(here, 'fixtures', 'ipc-client.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] }));
  const exits = children.map((c) => new Promise((r) => c.on('exit', (code) => r(code))));
  const pids = new Set(children.map((c) => c.pid));
  for (let i = 0; i < 3; i++) {
    const conn = await server.accept({ timeout: 20000 });
    const m = await conn.receiver.recv({ timeout: 10000 });
    assert(pids.has(m.from), `a client pid: ${m.from}`);
    equal(conn.peer.pid, m.from, 'the system says the same pid');
    conn.sender.send(m.from);
  }
  equal(await Promise.all(exits), [0, 0, 0], 'client exit codes');
  server.close();
});

test('lockdown() reports honestly that nothing is enforced on Windows', () => {
  const report = lockdown({ required: false });
  equal(report.enforced, false, 'enforced');
  assert(/Windows/.test(report.reason ?? ''), `reason: ${report.reason}`);
  const e = throws(() => lockdown({ required: true }), 'required');
  equal(e.code, 'OS');
});

test('IpcSharedMemory in one process: exact lengths (0, 5, a page, 70000 bytes), contents, read-only', async () => {
  const [tx, rx] = lib.channel();
  for (const n of [0, 5, 4096, 70000]) {
    const m = IpcSharedMemory.fromByte(7, n);
    tx.send({ m });
    const got = await rx.recv({ timeout: 5000 });
    equal([got.m.length, got.m.bytes.length, got.m.bytes[0], got.m.bytes[n - 1]], [n, n, n ? 7 : undefined, n ? 7 : undefined], `block of ${n}`);
    m.close();
    got.m.close();
  }
  const b = IpcSharedMemory.fromBytes(new TextEncoder().encode('hello'));
  equal(new TextDecoder().decode(b.bytes), 'hello');
  b.close();
  tx.close();
  rx.close();
});

test('the shared memory pool is refused with a clear error (not implemented on Windows yet)', () => {
  const pool = new IpcSharedMemoryPool({ size: 4096, count: 2 });
  const e = throws(() => pool.tryAcquire(), 'pool');
  pool.close();
  assert(/not implemented on Windows|Windows build does not support/.test(e.message), e.message);
});

test('IpcSharedMemoryPool round trips', () => {}, { skip: 'the shared memory pool (writable shared segments, lending protocol) is not implemented in the win32 transport yet' });
test('lockdown() enforcement (job object, mitigation policies)', () => {}, { skip: 'lockdown() enforces nothing on Windows yet; Wine models no tokens, integrity levels, AppContainer or job limits to test it with' });

