// Across processes: a child node.exe bootstrapped through the one-shot server.
import { closeSync, openSync, readSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addon, assert, equal, handleCount, here, lib, rejects, sleep, test, underWine, wineGaps, spawnNode } from './harness.mjs';

const { IpcOneShotServer, IpcFileHandle, IpcError, channel } = lib;

async function startChild() {
  const server = new IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'child.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, first] = await server.accept({ timeout: 20000, peer: { pid: child.pid } });
  equal(first.hello, child.pid, 'the child says its pid');
  return { child, rx, tx: first.tx, exited, server };
}

async function stopChild(c) {
  c.tx.send({ op: 'exit' });
  const code = await c.exited;
  c.tx.close();
  c.rx.close();
  return code;
}

test('one-shot server: its pipe has a DACL for the current user only, and a name nobody can guess', () => {
  const server = new IpcOneShotServer();
  try {
    // The listener's id is the only table entry this server made.
    const name = server.name;
    assert(/eipc-[0-9a-f]{32}/.test(name), `random name part: ${name}`);
    const id = addon.listen(`\\\\.\\pipe\\test-dacl-${process.pid}-${Date.now()}`);
    const sec = addon.pipeSecurity(id);
    addon.close(id);
    assert(sec.expected.startsWith('D:P(A;;GA;;;S-1-5-'), `expected ${sec.expected}`);
    assert(sec.dacl.includes(sec.expected.slice(2).replace(/^P/, '')) || sec.dacl === sec.expected, `DACL ${sec.dacl} vs ${sec.expected}`);
    // The same name again cannot be listened on (FILE_FLAG_FIRST_PIPE_INSTANCE): no squatting.
    const n2 = `\\\\.\\pipe\\test-squat-${process.pid}`;
    const a = addon.listen(n2);
    let code;
    try {
      addon.close(addon.listen(n2));
    } catch (e) {
      code = e.code;
    }
    addon.close(a);
    if (code === undefined && underWine) {
      wineGaps.push('Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE: a second listener of a taken pipe name was created (Windows refuses it: ERROR_ACCESS_DENIED, EADDRINUSE here)');
    } else {
      equal(code, 'EADDRINUSE', 'second listener of a name');
    }
  } finally {
    server.close();
  }
});

test('one-shot server in one process: connect, first message, then more', async () => {
  const server = new IpcOneShotServer();
  const accepted = server.accept({ timeout: 5000, peer: { pid: process.pid } });
  const tx = lib.IpcSender.connect(server.name);
  tx.send('first');
  tx.send('second');
  const [rx, first] = await accepted;
  equal(first, 'first');
  equal(await rx.recv({ timeout: 5000 }), 'second');
  const e = (() => { try { lib.IpcSender.connect(server.name); } catch (err) { return err; } })();
  assert(e && /no one-shot server|ENOENT|EBUSY/.test(`${e.message} ${e.code}`), `a second connect fails: ${e?.message}`);
  tx.close();
  rx.close();
});

test('one-shot server in one process: a first message with handles, sent before accept() ran', async () => {
  const server = new IpcOneShotServer();
  const tx = lib.IpcSender.connect(server.name);
  const [t, r] = channel();
  tx.send({ t }); // the server end is not accepted yet: its peer must still count as local
  const [rx, first] = await server.accept({ timeout: 5000 });
  first.t.send('through the handle');
  equal(await r.recv({ timeout: 5000 }), 'through the handle');
  for (const h of [tx, t, r, rx, first.t]) h.close();
});

test('one-shot server: a peer pid that does not match is refused (accept times out)', async () => {
  const server = new IpcOneShotServer();
  const accepted = server.accept({ timeout: 500, peer: { pid: process.pid + 100000 } });
  const tx = lib.IpcSender.connect(server.name);
  tx.send('first');
  const e = await rejects(accepted, 'wrong pid');
  assert(e instanceof IpcError && e.code === 'TIMEOUT', `TIMEOUT, got ${e.code}: ${e.message}`);
  tx.close();
  server.close();
});

test('child process: bootstrap, echo both ways, and a clean exit', async () => {
  const c = await startChild();
  for (const value of ['a', { b: [1, 2] }, new Uint8Array(200000)]) {
    c.tx.send({ op: 'echo', value });
    const got = await c.rx.recv({ timeout: 10000 });
    equal(JSON.stringify(got.echo).length, JSON.stringify(value).length, 'echo');
  }
  equal(await stopChild(c), 0, 'child exit code');
});

test('child process: nested channels both ways (a receiver and a sender sent to the child, a channel made there)', async () => {
  const c = await startChild();
  const [t1, r1] = channel(); // the child reads r1
  const [t2, r2] = channel(); // the child writes t2
  c.tx.send({ op: 'nested', rx: r1, tx: t2 });
  r1.close(); // moved
  t1.send('hello child');
  equal(await r2.recv({ timeout: 10000 }), { via: 'hello child' });
  c.tx.send({ op: 'make' });
  const made = await c.rx.recv({ timeout: 10000 });
  equal(await made.r.recv({ timeout: 10000 }), 'made in the child');
  made.t.send('and back');
  equal(await made.r.recv({ timeout: 10000 }), 'and back');
  for (const h of [t1, t2, r2, made.t, made.r]) h.close();
  equal(await stopChild(c), 0, 'child exit code');
});

test('child process: a receiver that has read ahead moves to the child with what it read (the files in those messages arrive there)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-win-'));
  let passed = false;
  try {
    const c = await startChild();
    const tokens = addon.stats().localTokens;
    const [t1, r1] = channel(); // read here first, then by the child
    const [t2, r2] = channel(); // the child answers here
    const sendFile = (i) => {
      const file = path.join(dir, `f${i}.txt`);
      writeFileSync(file, `file ${i}`);
      const fd = openSync(file, 'r');
      const handle = IpcFileHandle.from(fd);
      closeSync(fd);
      t1.send({ i, file: handle }); // within this process: the handles go by token
      handle.close();
    };
    for (let i = 0; i < 4; i++) sendFile(i);
    await t1.flush();
    const first = await r1.recv({ timeout: 10000 }); // reads ahead of what it returns
    equal(first.i, 0);
    first.file.close();
    // Without the carrier the move is refused (OS: "it has read a message that is not received
    // yet"); a carrier whose handles went by token would arrive MALFORMED in the child.
    c.tx.send({ op: 'drain', rx: r1, tx: t2, n: 4 });
    assert(r1.closed, 'the receiver moved');
    sendFile(4); // after the move: read by the child from the pipe itself, behind the carrier
    const { got } = await r2.recv({ timeout: 10000 });
    equal(got, [1, 2, 3, 4].map((i) => ({ i, content: `file ${i}` })), 'what the child read');
    t1.close();
    t2.close();
    r2.close();
    equal(await stopChild(c), 0, 'child exit code');
    equal(addon.stats().localTokens, tokens, 'no handles left in the local-token registry');
    passed = true;
  } finally {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if (passed) throw e; // else a file may still be open: the test's own failure is the news
    }
  }
});

test('child process: file handles both ways (IpcFileHandle; the fd works with fs.readSync)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-win-'));
  try {
    const c = await startChild();
    const file = path.join(dir, 'a.txt');
    writeFileSync(file, 'from the parent');
    const fd = openSync(file, 'r');
    const handle = IpcFileHandle.from(fd);
    closeSync(fd);
    c.tx.send({ op: 'readfile', file: handle });
    equal(await c.rx.recv({ timeout: 10000 }), { content: 'from the parent' });
    handle.close();
    c.tx.send({ op: 'sendfile', path: path.join(dir, 'b.txt') });
    const got = await c.rx.recv({ timeout: 10000 });
    const buf = Buffer.alloc(64);
    const n = readSync(got.file.fd, buf, 0, 64, 0);
    equal(buf.subarray(0, n).toString(), 'from the child');
    got.file.close();
    equal(await stopChild(c), 0, 'child exit code');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('child process: IpcSharedMemory both ways (sections, read-only duplicates, exact lengths)', async () => {
  const c = await startChild();
  const bytes = new Uint8Array(300000).map((_, i) => i % 251);
  let sum = 0;
  for (const b of bytes) sum = (sum + b) % 65521;
  const block = lib.IpcSharedMemory.fromBytes(bytes);
  c.tx.send({ op: 'shm', block });
  const got = await c.rx.recv({ timeout: 10000 });
  equal([got.length, got.sum], [bytes.length, sum], 'what the child read');
  equal([got.block.length, got.block.bytes[0], got.block.bytes[99999]], [100000, 3, 3], 'the block made by the child');
  block.close();
  got.block.close();
  equal(await stopChild(c), 0, 'child exit code');
});

test('child process: a file handle sent just before the child exits is received (the child waits until it is taken)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-win-'));
  try {
    const c = await startChild();
    const t0 = Date.now();
    c.tx.send({ op: 'sendfile-exit', path: path.join(dir, 'c.txt') });
    // The child is done in a few ms; we read only 500 ms later, while it waits to exit.
    await new Promise((r) => setTimeout(r, 500));
    const received = c.rx.recv({ timeout: 10000 });
    equal(await c.exited, 0, 'child exit code');
    const waited = Date.now() - t0;
    console.log(`  the child exited ${waited} ms after the request (it waits while its parked handles are taken)`);
    assert(waited < 2000, `the child waited 2 s or more: its handles were not taken (${waited} ms)`);
    const got = await received;
    const buf = Buffer.alloc(64);
    const n = readSync(got.file.fd, buf, 0, 64, 0);
    equal(buf.subarray(0, n).toString(), 'sent just before exit');
    got.file.close();
    c.tx.close();
    c.rx.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('child process: 3 files sent just before the child exits are all received by a parent that takes one every 3 s (the exit wait goes on while they are taken)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-win-'));
  try {
    const c = await startChild();
    const t0 = Date.now();
    c.tx.send({ op: 'sendfiles-exit', path: path.join(dir, 'd.txt'), n: 3 });
    // 9 s in all: longer than the wait's 5 s stall limit (so it went on because files were
    // taken) and than the fixed wait the addon had (200 polls of 10 ms, about 2.5 s).
    for (let i = 0; i < 3; i++) {
      await sleep(3000);
      const got = await c.rx.recv({ timeout: 10000 });
      equal(got.i, i);
      const buf = Buffer.alloc(64);
      const n = readSync(got.file.fd, buf, 0, 64, 0);
      equal(buf.subarray(0, n).toString(), 'sent before exit', `file ${i}`);
      got.file.close();
    }
    equal(await c.exited, 0, 'child exit code');
    console.log(`  the child exited ${Date.now() - t0} ms after the request`);
    c.tx.close();
    c.rx.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('child process: the exit wait ends when the reader of its parked handles closes (no waiting for a reader that is gone)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-win-'));
  try {
    const c = await startChild();
    c.tx.send({ op: 'sendfiles-exit', path: path.join(dir, 'e.txt'), n: 1, keepOpen: true });
    await sleep(300); // the child is waiting to exit by now
    const t0 = Date.now();
    c.rx.close(); // never read: the file can no longer be taken
    equal(await c.exited, 0, 'child exit code');
    const waited = Date.now() - t0;
    console.log(`  the child exited ${waited} ms after the parent closed its receiver`);
    assert(waited < 1000, `the child went on waiting for a reader that is gone (${waited} ms)`);
    c.tx.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('child process killed: the parent sees DISCONNECTED, not a hang', async () => {
  const c = await startChild();
  c.child.kill();
  await c.exited;
  const e = await rejects(c.rx.recv({ timeout: 10000 }), 'after kill');
  assert(e instanceof IpcError && e.code === 'DISCONNECTED', `DISCONNECTED, got ${e.code}: ${e.message}`);
  c.tx.close();
  c.rx.close();
});

test('handle count back to baseline after three child sessions', async () => {
  const before = await handleCount();
  for (let i = 0; i < 3; i++) {
    const c = await startChild();
    const [t1, r1] = channel();
    const [t2, r2] = channel();
    t1.send(i);
    c.tx.send({ op: 'nested', rx: r1, tx: t2 });
    r1.close();
    equal(await r2.recv({ timeout: 10000 }), { via: i });
    for (const h of [t1, t2, r2]) h.close();
    await stopChild(c);
  }
  const after = await handleCount();
  // Process and thread handles of exited children are libuv's until their exit callbacks ran.
  assert(after <= before + 2, `handles ${before} -> ${after}`);
});
