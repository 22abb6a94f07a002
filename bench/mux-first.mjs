// One case of bench/mux.mjs alone, for profiles and strace: a logical channel created, its sender
// sent to the child, the child's first message back, 64 in flight. Usage: node bench/mux-first.mjs [N]
// (LIB: another build's dist/main/index.js, for A/B; CHILD_ARGS: node flags for the child).
const lib = await import(process.env.LIB ?? new URL('../dist/main/index.js', import.meta.url).href);
const { IpcMux, IpcOneShotServer, IpcSender, channel } = lib;
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
if (process.argv[2] === 'child') {
  const tx = IpcSender.connect(process.argv[3]);
  const [m1tx, m1rx] = channel();
  const [m2tx, m2rx] = channel();
  tx.send({ m1tx, m2rx });
  const mux = IpcMux.open(m2tx, m1rx);
  for await (const m of mux.receiver) {
    if (m === 'exit') break;
    m.tx.send(1);
    m.tx.close();
  }
  mux.close();
  tx.close();
} else {
  const N = +(process.argv[2] ?? 20000);
  const server = new IpcOneShotServer();
  const proc = spawn(process.execPath, [...(process.env.CHILD_ARGS ? process.env.CHILD_ARGS.split(' ') : []), fileURLToPath(import.meta.url), 'child', server.name], { stdio: 'inherit', env: process.env });
  const [rx, first] = await server.accept({ timeout: 15000 });
  const mux = IpcMux.open(first.m1tx, first.m2rx);
  const run = async (n, window = 64) => {
    const t0 = performance.now();
    let inFlight = [];
    for (let i = 0; i < n; i++) {
      const [tx, r] = mux.channel();
      mux.sender.send({ tx });
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
  console.log('mux first, 64 in flight, per s:', Math.round(await run(N)));
  mux.sender.send('exit');
  await new Promise((r) => proc.on('exit', r));
  mux.close(); rx.close();
}
