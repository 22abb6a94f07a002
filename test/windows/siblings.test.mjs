// Handles between two processes that never connected to each other (issue 13): the parent makes
// a channel and hands one end to each of two children. A message's handles are parked in the
// sender and taken by the receiver only from a process that proves it holds the other side of
// the receiver's pipe (io.cc: the proof, a parked duplicate of the sender's end). Before, the
// receiver took handles only from its verified peers (connections it made or accepted), so
// between siblings every message with handles was MALFORMED, and a hostile peer could name any
// verified peer's pid (the receiver's parent) and make the receiver take that process's handles.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { addon, assert, equal, handleCount, here, lib, spawnNode, test, warmUp } from './harness.mjs';

const { IpcOneShotServer, channel } = lib;

async function startSibling() {
  const server = new IpcOneShotServer();
  const child = await spawnNode([path.join(here, 'fixtures', 'sibling.mjs'), server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, first] = await server.accept({ timeout: 20000, peer: { pid: child.pid } });
  equal(first.hello, child.pid, 'the child says its pid');
  return { child, rx, tx: first.tx, exited };
}

/** Runs `body` with a temporary directory, checking that the parent's handle count is back (within 2) after it. */
async function withTempDir(body) {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-sib-'));
  try {
    await warmUp();
    const before = await handleCount();
    await body(dir);
    const after = await handleCount();
    assert(after <= before + 2, `handles ${before} -> ${after}`);
  } finally {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a child that failed may still hold a file there
    }
  }
}

async function stopSibling(c) {
  c.tx.send({ op: 'exit' });
  const code = await c.exited;
  c.tx.close();
  c.rx.close();
  return code;
}

test('two children given a channel by their parent: a file, a nested sender and a nested receiver go from one to the other (the sender closed at once)', async () => withTempDir(async (dir) => {
  const a = await startSibling();
  const b = await startSibling();
  const [t, r] = channel();
  a.tx.send({ op: 'send', tx: t, path: path.join(dir, 'f.txt') });
  t.close(); // the child has its own
  b.tx.send({ op: 'recv', rx: r }); // r moves
  const got = await b.rx.recv({ timeout: 30000 });
  equal(got, { content: 'from one sibling to the other', via: 'through the nested receiver', after: 'DISCONNECTED' }, 'what the receiving child got');
  equal(await a.rx.recv({ timeout: 30000 }), { back: 'through the nested sender' }, 'what came back to the sending child');
  equal(await stopSibling(a), 0, 'sending child exit code');
  equal(await stopSibling(b), 0, 'receiving child exit code');
}), { timeout: 60000 });

test('a child naming its parent\'s pid (the receiving child\'s verified peer) with proofs that are not the other side of the pipe: MALFORMED, and the parent\'s handles stay open', async () => withTempDir(async (dir) => {
  // The parent's handles the forger names: a file, and an end of another pipe.
  const file = path.join(dir, 'parent.txt');
  writeFileSync(file, 'the parent file');
  const fd = openSync(file, 'r');
  const [t2, r2] = channel();
  const pipe = addon.testHandleValue(Number(/fd: (\d+)/.exec(inspect(r2))[1]));
  const forger = await startSibling();
  const victim = await startSibling();
  const [t, r] = channel();
  forger.tx.send({ op: 'forge', tx: t, parentPid: process.pid, file: addon.testHandleValue(fd), pipe, path: path.join(dir, 'forger.txt') });
  t.close();
  victim.tx.send({ op: 'drain', rx: r });
  const forged = await forger.rx.recv({ timeout: 30000 });
  const got = await victim.rx.recv({ timeout: 30000 });
  // Still open here: the file reads, the pipe carries a message (the receiving child had
  // taken the file, closing it here, before the proof: message 3).
  const buf = Buffer.alloc(32);
  let content;
  try {
    content = buf.subarray(0, readSync(fd, buf, 0, 32, 0)).toString();
  } catch (e) {
    content = e.code;
  }
  equal(content, 'the parent file', 'the parent\'s file');
  t2.send('still ours');
  equal(await r2.recv({ timeout: 5000 }), 'still ours', 'the parent\'s pipe');
  equal(forged, { forged: 6, ownFileOpen: true }, 'the forger');
  equal(got, { codes: ['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED'], nested: 'nested after the forged ones' }, 'what the receiving child got');
  closeSync(fd);
  t2.close();
  r2.close();
  equal(await stopSibling(forger), 0, 'forger exit code');
  equal(await stopSibling(victim), 0, 'receiving child exit code');
}), { timeout: 60000 });

test('IpcServer: a client naming another client\'s pid with that client\'s end of its own connection as the proof (same pipe name, another instance): MALFORMED, the other client\'s end stays open', async () => {
  const server = new lib.IpcServer();
  const start = async (role) => {
    const child = await spawnNode([path.join(here, 'fixtures', 'ipc-forger.mjs'), server.name, role], { stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const conn = await server.accept({ timeout: 20000 });
    const first = await conn.receiver.recv({ timeout: 10000 });
    equal(first.role, role, 'the client says its role');
    return { child, exited, conn, first };
  };
  const victim = await start('victim');
  const forger = await start('forger');
  forger.conn.sender.send({ victimPid: victim.child.pid, value: victim.first.value });
  const codes = [];
  for (;;) {
    try {
      const v = await forger.conn.receiver.recv({ timeout: 10000 });
      if (v === 'end') break;
      codes.push(`value ${JSON.stringify(v)}`);
    } catch (e) {
      codes.push(e.code ?? String(e));
      if (e.code === 'DISCONNECTED') break;
    }
  }
  // Checked before the codes: without the instance check the victim's end was taken (closed
  // there), and it can no longer answer.
  victim.conn.sender.send('ping');
  let alive;
  try {
    alive = await victim.conn.receiver.recv({ timeout: 10000 });
  } catch (e) {
    alive = e.code ?? String(e);
  }
  equal(alive, 'alive', 'the victim answers through its own end');
  equal(codes, ['MALFORMED'], 'the forged message');
  victim.conn.sender.send('bye');
  forger.conn.sender.send('bye');
  equal(await Promise.all([victim.exited, forger.exited]), [0, 0], 'client exit codes');
  victim.conn.close();
  forger.conn.close();
  server.close();
}, { timeout: 60000 });
