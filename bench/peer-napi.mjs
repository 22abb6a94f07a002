// Peer: the library's own addon called straight from Node, with none of the library's JavaScript
// (no codec, no framing, no handle objects). It is the floor for any Node code that reaches the
// kernel through Node-API: the same 64 B packets as the C floor, the same waits as recvSync()
// (one blocking recvmsg), the same calls per descriptor as the library (fdInfo check, close).
// With "async": true both sides wait through the event loop instead (a watch on the socket and a
// promise per packet): the floor of `await recv()`.
// driver: node peer-napi.mjs driver '{"case":"rtt|fd","childCpu":0,"warmup":W,"count":N,"async":false}'
import { existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT, cpuClock, report, spawnNode } from './harness.mjs';

const [role, raw] = process.argv.slice(2);
const p = JSON.parse(raw);

const addonPath = process.env.ELECTRON_IPC_CHANNEL_NATIVE || path.join(ROOT, 'build', 'Release', 'electron_ipc_channel.node');
if (!existsSync(addonPath)) report({ skipped: `${addonPath} is missing (run \`npm run build:native\`)` });
else {
  const n = createRequire(import.meta.url)(addonPath);
  if (role === 'driver') await driver(n);
  else await child(n, 3);
}

/** One packet in, blocking: what recvSync() does on a socket in blocking mode. Returns its first fd. */
function receiver(n, fd) {
  const meta = new Int32Array(2 + 4);
  const fdsOut = new Int32Array(1024);
  const arena = new Uint8Array(128 * 1024);
  n.setBlocking(fd, true);
  return () => {
    const r = n.recvPackets(fd, meta, fdsOut, 1, 64 * 1024, arena, 0, true);
    if (r <= 0) throw new Error(r === 0 ? 'peer hung up' : `recvPackets: ${r}`);
    return meta[4] > 0 ? fdsOut[0] : -1;
  };
}

/**
 * One packet in, through the event loop: what `await recv()` does at the least (a watch on the
 * socket, a non-blocking recvmsg in its callback, a promise per packet). Returns its first fd.
 */
function asyncReceiver(n, fd) {
  const meta = new Int32Array(2 + 4);
  const fdsOut = new Int32Array(1024);
  const arena = new Uint8Array(128 * 1024);
  let waiter;
  const poller = new n.Poller(fd, () => {
    const r = n.recvPackets(fd, meta, fdsOut, 1, 64 * 1024, arena, 0, false);
    if (r === 0 || (r < 0 && r !== -11)) {
      poller.close();
      if (role === 'child') process.exit(0); // the driver is gone
      waiter?.reject(new Error(r === 0 ? 'peer hung up' : `recvPackets: ${r}`));
      return;
    }
    if (r < 0) return; // EAGAIN: level-triggered, comes back
    const w = waiter;
    waiter = undefined;
    w.resolve(meta[4] > 0 ? fdsOut[0] : -1);
  });
  poller.start(1);
  return () => new Promise((resolve, reject) => {
    waiter = { resolve, reject };
  });
}

async function driver(n) {
  const [mine, theirs] = n.socketpair();
  const child = spawnNode(p.childCpu, new URL(import.meta.url).pathname, ['child', raw], { stdio: ['ignore', 'inherit', 'inherit', theirs] });
  n.close(theirs);
  child.on('exit', (code) => {
    if (code) report({ error: `child exited with ${code}` });
  });
  const recv = p.async ? asyncReceiver(n, mine) : receiver(n, mine);
  const packet = [new Uint8Array(64)];
  const info = new Float64Array(4);
  const fds = p.case === 'fd' ? [openSync('/dev/null', 'r')] : null;
  const total = p.warmup + p.count;
  let t0 = 0;
  const cpu = cpuClock(child);
  for (let i = 0; i < total; i++) {
    if (i === p.warmup) {
      t0 = performance.now();
      cpu.start();
    }
    if (n.sendPacket(mine, packet, fds) < 0) throw new Error('sendPacket failed');
    const got = p.async ? await recv() : recv();
    if (fds) {
      n.fdInfo(got, info);
      n.close(got);
    }
  }
  const ms = performance.now() - t0;
  const cpuUs = cpu.usPer(p.count);
  child.removeAllListeners('exit');
  child.kill();
  report(p.case === 'fd' ? { rtps: p.count / (ms / 1e3) } : { us: (ms * 1e3) / p.count, cpu: cpuUs });
}

async function child(n, fd) {
  const recv = p.async ? asyncReceiver(n, fd) : receiver(n, fd);
  const packet = [new Uint8Array(64)];
  const info = new Float64Array(4);
  let prev = -1;
  for (;;) {
    let got;
    try {
      got = p.async ? await recv() : recv();
    } catch {
      process.exit(0); // the driver is gone
    }
    if (got >= 0) {
      // Echoed, then closed one round later (as the library's bench child does).
      n.fdInfo(got, info);
      n.sendPacket(fd, packet, [got]);
      if (prev >= 0) n.close(prev);
      prev = got;
    } else n.sendPacket(fd, packet, null);
  }
}
