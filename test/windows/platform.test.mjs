// The rest of the public API on Windows: helpers, IpcServer with several client processes,
// lockdown's report, and what is not possible (reported as skips with the reason). The shared
// memory pool has its own file (pool.test.mjs).
import path from 'node:path';
import { assert, equal, handleCount, here, lib, test, underWine, wineGaps, spawnNode } from './harness.mjs';

const { spawnHelper, IpcServer, IpcSharedMemory } = lib;

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
  const children = await Promise.all([0, 1, 2].map(() => spawnNode([path.join(here, 'fixtures', 'ipc-client.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] })));
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

test('lockdown() in a child: a job object with no child processes, reported as the system confirms it', async () => {
  const server = new lib.IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'lockdown.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, { report, spawn: spawned }] = await server.accept({ timeout: 20000 });
  rx.close();
  equal(await exited, 0, 'child exit code');
  console.log(`  lockdown report: enforced ${report.enforced}; ${report.reason}`);
  console.log(`  starting a process after lockdown: ${spawned}`);
  equal([report.filesystem, report.network, report.noNewPrivs], [false, false, false], 'filesystem, network, noNewPrivs');
  assert(/not restricted on Windows: files, the network/.test(report.reason), report.reason);
  if (report.enforced) {
    // What is claimed must hold: no process can be started.
    assert(/applied: a job object allowing no child processes/.test(report.reason), report.reason);
    assert(!spawned.startsWith('exit'), `starting a process after lockdown must fail, got ${spawned}`);
  } else if (underWine) {
    assert(/job object \(no child processes\) is not confirmed/.test(report.reason), report.reason);
    wineGaps.push(`Wine 8 does not read back a job's limits and does not enforce them: lockdown() reports enforced: false, and a process started after it (${spawned})`);
  } else {
    throw new Error(`lockdown() did not apply on Windows: ${report.reason}`);
  }
  for (const m of report.reason.matchAll(/([^;]*): accepted, but the system does not confirm it/g)) {
    if (underWine) wineGaps.push(`Wine 8 does not confirm the mitigation policy "${m[1].trim()}" (GetProcessMitigationPolicy)`);
  }
});

test('IpcSharedMemory in one process: exact lengths (0, 5, a page, 70000 bytes), contents, handles back to baseline', async () => {
  const before = await handleCount();
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
  const after = await handleCount();
  assert(after <= before, `handles ${before} -> ${after}`);
});

test('lockdown() restricting files and the network on Windows', () => {}, { skip: 'not possible for a process by itself: a restricted token, integrity level or AppContainer is set by a broker at process creation (and Wine models none of them)' });

