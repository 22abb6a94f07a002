// CPU time per async round trip, per process (Linux: each main thread's run time from
// /proc/<pid>/schedstat), for the library, Node's child_process IPC (json) and the event-loop floor
// of this design (the addon's Poller + recvPackets + one promise + JSON.stringify/parse, no library
// code), both processes pinned to one CPU. CPU time per round trip moves much less with other
// load on the machine than wall time does; rounds alternate the three so they share conditions.
//
// Usage: node bench/cpu-rtt.mjs [--rounds R] [--n N] [--lib path/to/dist/main/index.js] [--cpu C]
//        [--modes lib,ipc,floor] (a subset, e.g. to count one case's system calls under strace -f -c)
// Prints per round and the medians: wall µs per round trip, CPU µs of the parent and of the child.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { floorEndpoint } from './floor.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const MSG = { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] };
const cpuNs = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

if (argv[0] === 'child') await child(argv[1], argv[2]);
else await main();

function addonOf() {
  return createRequire(import.meta.url)(path.join(root, 'build', 'Release', 'electron_ipc_channel.node'));
}

async function child(mode, lib) {
  process.on('SIGTERM', () => process.exit(0));
  if (mode === 'lib') {
    const { IpcSender, channel } = await import(lib);
    const toParent = IpcSender.connect(process.env.BENCH_NAME);
    const [mine, rx] = channel();
    toParent.send(mine);
    for await (const m of rx) toParent.send(m);
  } else if (mode === 'ipc') {
    process.on('message', (m) => process.send(m));
    process.send('ready');
  } else {
    const e = floorEndpoint(addonOf(), 3, 3);
    for (;;) e.send(await e.recv());
  }
}

async function one(mode, n, lib, cpu) {
  const pinned = (args, options) => spawn('taskset', ['-c', cpu, process.execPath, ...args], options);
  const me = fileURLToPath(import.meta.url);
  let proc;
  let rtt;
  let close = () => {};
  if (mode === 'lib') {
    const { IpcOneShotServer } = await import(lib);
    const server = new IpcOneShotServer();
    proc = pinned([me, 'child', mode, lib], { stdio: 'inherit', env: { ...process.env, BENCH_NAME: server.name } });
    const [rx, tx] = await server.accept({ timeout: 30_000 });
    rtt = async (k) => {
      for (let i = 0; i < k; i++) {
        tx.send(MSG);
        await rx.recv();
      }
    };
    close = () => {
      rx.close();
      tx.close();
    };
  } else if (mode === 'ipc') {
    proc = pinned([me, 'child', mode, lib], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    await new Promise((r) => proc.once('message', r));
    rtt = (k) =>
      new Promise((resolve) => {
        let i = 0;
        const on = () => {
          if (++i === k) {
            proc.off('message', on);
            resolve();
          } else proc.send(MSG);
        };
        proc.on('message', on);
        proc.send(MSG);
      });
  } else {
    const addon = addonOf();
    const [a, b] = addon.socketpair();
    proc = pinned([me, 'child', mode, lib], { stdio: ['ignore', 'inherit', 'inherit', b] });
    const e = floorEndpoint(addon, a, a);
    rtt = async (k) => {
      for (let i = 0; i < k; i++) {
        e.send(MSG);
        await e.recv();
      }
    };
    close = () => e.poller.close();
  }
  // taskset execs node: the child's pid is the node process.
  await rtt(Math.max(1000, n / 10));
  const p0 = cpuNs(process.pid);
  const c0 = cpuNs(proc.pid);
  const t0 = performance.now();
  await rtt(n);
  const wall = ((performance.now() - t0) * 1e3) / n;
  const parent = (cpuNs(process.pid) - p0) / 1e3 / n;
  const childCpu = (cpuNs(proc.pid) - c0) / 1e3 / n;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  close();
  return { wall, parent, child: childCpu };
}

async function main() {
  const rounds = Number(opt('--rounds', '5'));
  const n = Number(opt('--n', '20000'));
  const lib = path.resolve(opt('--lib', path.join(root, 'dist', 'main', 'index.js')));
  const cpu = opt('--cpu', '0');
  // The parent pins itself too.
  spawn('taskset', ['-pc', cpu, String(process.pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 100));
  const modes = opt('--modes', 'lib,ipc,floor').split(',');
  const results = { lib: [], ipc: [], floor: [] };
  for (let r = 0; r < rounds; r++) {
    for (const mode of modes) {
      const x = await one(mode, n, lib, cpu);
      results[mode].push(x);
      console.log(`round ${r + 1} ${mode.padEnd(5)} wall ${x.wall.toFixed(1)} µs, CPU parent ${x.parent.toFixed(1)} µs, child ${x.child.toFixed(1)} µs`);
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log('\n| | wall µs | CPU µs per process (parent, child) | CPU ÷ Node IPC |');
  console.log('|---|---|---|---|');
  const ipcCpu = results.ipc.length ? med(results.ipc.map((x) => x.parent + x.child)) : NaN;
  for (const mode of modes) {
    const xs = results[mode];
    const cpuBoth = med(xs.map((x) => x.parent + x.child));
    console.log(`| ${mode} | ${med(xs.map((x) => x.wall)).toFixed(1)} | ${med(xs.map((x) => x.parent)).toFixed(1)}, ${med(xs.map((x) => x.child)).toFixed(1)} | ${(cpuBoth / ipcCpu).toFixed(2)}× |`);
  }
  process.exit(0);
}
