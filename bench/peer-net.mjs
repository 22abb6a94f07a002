// Peer: a `net` Unix stream socket carrying frames of a 4-byte big-endian length + UTF-8 JSON.
// driver: node peer-net.mjs driver '{"case":"rtt|stream|mib1","childCpu":0,"warmup":W,"count":N}'
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MIB, receiverClock, report, small, spawnNode } from './harness.mjs';

const [role, raw, sockPath] = process.argv.slice(2);
const p = JSON.parse(raw);

if (role === 'driver') await driver();
else await child();

function frame(value) {
  const json = JSON.stringify(value);
  const len = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(4 + len);
  buf.writeUInt32BE(len, 0);
  buf.write(json, 4);
  return buf;
}

/** Calls onMessage(value, frameBytes) per complete frame; linear in the bytes received. */
function deframer(onMessage) {
  let chunks = [];
  let have = 0;
  let need = 4; // bytes needed before it is worth joining the chunks
  return (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    if (have < need) return;
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have);
    let off = 0;
    for (;;) {
      if (all.length - off < 4) {
        need = 4;
        break;
      }
      const len = all.readUInt32BE(off);
      if (all.length - off - 4 < len) {
        need = 4 + len;
        break;
      }
      onMessage(JSON.parse(all.toString('utf8', off + 4, off + 4 + len)), len);
      off += 4 + len;
    }
    const rest = all.subarray(off);
    chunks = rest.length ? [rest] : [];
    have = rest.length;
  };
}

async function driver() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-net-'));
  const where = path.join(dir, 's');
  const server = net.createServer();
  server.listen(where);
  await once(server, 'listening');
  const child = spawnNode(p.childCpu, new URL(import.meta.url).pathname, ['child', raw, where], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code) => {
    if (code) report({ error: `child exited with ${code}` });
  });
  const [sock] = await once(server, 'connection');
  let result;
  if (p.case === 'rtt') {
    const total = p.warmup + p.count;
    let i = 0;
    let t0 = 0;
    const msg = small();
    const seconds = await new Promise((resolve) => {
      sock.on(
        'data',
        deframer(() => {
          i++;
          if (i === p.warmup) t0 = performance.now();
          if (i === total) resolve((performance.now() - t0) / 1000);
          else sock.write(frame(msg));
        }),
      );
      sock.write(frame(msg));
    });
    result = { us: (seconds * 1e6) / p.count };
  } else {
    const clock = receiverClock(p.warmup, p.count);
    const isMib = p.case === 'mib1';
    sock.on('data', deframer(() => clock.onMessage(isMib ? MIB : 0)));
    sock.write(frame('go'));
    const { seconds, measured, bytes } = await clock.done;
    result = isMib ? { gbps: bytes / seconds / 1e9 } : { msgs: measured / seconds };
  }
  child.removeAllListeners('exit');
  child.kill();
  sock.destroy();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  report(result);
}

async function child() {
  const sock = net.createConnection(sockPath);
  sock.on('error', () => process.exit(0));
  sock.on('close', () => process.exit(0));
  await once(sock, 'connect');
  if (p.case === 'rtt') {
    sock.on('data', deframer((m) => sock.write(frame(m))));
    return;
  }
  sock.once('data', async () => {
    const total = p.warmup + p.count;
    const payload = p.case === 'mib1' ? { data: 'x'.repeat(MIB) } : undefined;
    for (let i = 0; i < total; i++) {
      // One write per message; wait for 'drain' when the socket's buffer is full.
      if (!sock.write(frame(payload ?? small()))) await once(sock, 'drain');
    }
  });
}
