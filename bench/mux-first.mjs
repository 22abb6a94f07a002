// One case of bench/mux.mjs alone, for profiles and strace: a logical channel created, its sender
// sent to the child, the child's first message back, 64 in flight. Usage: node bench/mux-first.mjs [N]
// (LIB: another build's dist/main/index.js, for A/B; CHILD_ARGS: node flags for the child).
// Also prints the CPU time (user + system) each process spent per channel during the measured run:
// on a shared, loaded machine that varies less than the rate. MODE=plain: the same with plain
// channels (channel() made here, its sender sent on a plain connection), for the CPU ratio.
const lib = await import(process.env.LIB ?? new URL('../dist/main/index.js', import.meta.url).href);
const { IpcMux, IpcOneShotServer, IpcSender, channel } = lib;
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
if (process.argv[2] === 'child') {
  const tx = IpcSender.connect(process.argv[3]);
  const [m1tx, m1rx] = channel();
  const [m2tx, m2rx] = channel();
  tx.send({ m1tx, m2rx });
  const plain = process.env.MODE === 'plain';
  const mux = plain ? undefined : IpcMux.open(m2tx, m1rx);
  let cpu0;
  for await (const m of plain ? m1rx : mux.receiver) {
    if (m === 'start') { cpu0 = process.cpuUsage(); continue; }
    if (m === 'exit') break;
    m.tx.send(1);
    m.tx.close();
  }
  const c = process.cpuUsage(cpu0);
  tx.send((c.user + c.system));
  if (plain) (m1rx.close(), m2tx.close());
  else mux.close();
  tx.close();
} else {
  const N = +(process.argv[2] ?? 20000);
  const server = new IpcOneShotServer();
  const proc = spawn(process.execPath, [...(process.env.CHILD_ARGS ? process.env.CHILD_ARGS.split(' ') : []), fileURLToPath(import.meta.url), 'child', server.name], { stdio: 'inherit', env: process.env });
  const [rx, first] = await server.accept({ timeout: 15000 });
  const plain = process.env.MODE === 'plain';
  const mux = plain ? undefined : IpcMux.open(first.m1tx, first.m2rx);
  const root = plain ? first.m1tx : mux.sender;
  const make = plain ? () => channel() : () => mux.channel();
  const run = async (n, window = 64) => {
    const t0 = performance.now();
    let inFlight = [];
    for (let i = 0; i < n; i++) {
      const [tx, r] = make();
      root.send({ tx });
      tx.close();
      inFlight.push(r);
      if (inFlight.length === window || i === n - 1) {
        for (const x of inFlight) { await x.recv(); x.close(); }
        inFlight = [];
      }
    }
    return n / ((performance.now() - t0) / 1000);
  };
  await run(2000);
  root.send('start');
  const cpu0 = process.cpuUsage();
  const rate = await run(N);
  const c = process.cpuUsage(cpu0);
  root.send('exit');
  const childCpu = await rx.recv({ timeout: 15000 });
  console.log(plain ? 'plain first, 64 in flight, per s:' : 'mux first, 64 in flight, per s:', Math.round(rate), ' CPU us per channel: parent', ((c.user + c.system) / N).toFixed(1), 'child', (childCpu / N).toFixed(1));
  await new Promise((r) => proc.on('exit', r));
  if (plain) (first.m1tx.close(), first.m2rx.close());
  else mux.close();
  rx.close();
}
