// Peer: Node's child_process IPC channel, serialization 'json' or 'advanced'.
// driver: node peer-node-ipc.mjs driver '{"case":"rtt|stream|mib1","childCpu":0,"warmup":W,"count":N,"serialization":"json"}'
// The driver spawns the child itself (pinned to childCpu) and prints one JSON result line.
import { once } from 'node:events';
import { MIB, cpuClock, percentile, receiverClock, report, sendWindowed, small, spawnNode } from './harness.mjs';

const [role, raw] = process.argv.slice(2);
const p = JSON.parse(raw);

if (role === 'driver') await driver();
else await child();

async function driver() {
  const child = spawnNode(p.childCpu, new URL(import.meta.url).pathname, ['child', raw], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: p.serialization,
  });
  child.on('exit', (code) => {
    if (code) report({ error: `child exited with ${code}` });
  });
  await once(child, 'message'); // ready
  let result;
  if (p.case === 'rtt') {
    const total = p.warmup + p.count;
    let i = 0;
    let t0 = 0;
    const msg = small();
    // Each round trip's time too, for the 99th percentile.
    const each = new Float64Array(p.count);
    const cpu = cpuClock(child);
    let sentAt = 0;
    const seconds = await new Promise((resolve) => {
      child.on('message', () => {
        const now = performance.now();
        if (i >= p.warmup) each[i - p.warmup] = now - sentAt;
        i++;
        if (i === p.warmup) {
          t0 = now;
          cpu.start();
        }
        if (i === total) resolve((now - t0) / 1000);
        else {
          sentAt = performance.now();
          child.send(msg);
        }
      });
      sentAt = performance.now();
      child.send(msg);
    });
    result = { us: (seconds * 1e6) / p.count, p99: percentile(each, 0.99) * 1e3, cpu: cpu.usPer(p.count) };
  } else {
    const clock = receiverClock(p.warmup, p.count);
    const size = p.case === 'mib1' ? MIB : 0;
    child.on('message', () => clock.onMessage(size));
    child.send('go');
    const { seconds, measured, bytes } = await clock.done;
    result = p.case === 'mib1' ? { gbps: bytes / seconds / 1e9 } : { msgs: measured / seconds };
  }
  child.removeAllListeners('exit');
  child.kill();
  report(result);
}

async function child() {
  process.on('disconnect', () => process.exit(0));
  if (p.case === 'rtt') {
    process.on('message', (m) => process.send(m));
  } else {
    process.once('message', async () => {
      const total = p.warmup + p.count;
      if (p.case === 'stream') {
        // What an application writes: one send per message, Node queues the rest.
        for (let i = 0; i < total; i++) process.send(small());
      } else {
        const payload =
          p.serialization === 'json' ? { data: 'x'.repeat(MIB) } : { data: new Uint8Array(MIB).fill(7) };
        // At most 4 MiB queued in the sender, like the other peers' flow control.
        await sendWindowed((m, cb) => process.send(m, cb), () => payload, total, 4);
      }
    });
  }
  process.send('ready');
}
