// Instructions per operation of the multiplexed channels, counted by valgrind (cachegrind, no
// cache simulation): load-independent A/B comparisons of src/main/mux on a shared machine (the
// pattern of bench/instructions.mjs). Both sides of one connection run in ONE process (two
// IpcMux over two plain channels), so a figure is what both processes of bench/mux.mjs spend
// together, without the scheduler. Each case runs twice in a fresh `node --single-threaded` (N1
// and N2 operations after the same warm-up): (b - a) / (N2 - N1) is the cost of one operation.
//
// Usage: node bench/mux-instructions.mjs [--lib a/dist/main/index.js,b/dist/main/index.js]
//        [--case first,rtt,first-plain,rtt-plain] [--n N1,N2]
// Cases:
//   first        bench/mux.mjs's "create + send + first message back, 64 in flight": A makes a
//                logical channel, sends its sender on the root channel, closes it; B's root
//                loop sends 1 on it and closes it; A awaits each of the 64, closes them;
//   first-plain  the same with plain channels (channel(), its sender sent on a plain channel);
//   rtt          `{ op, v: small }` on A's root sender, B answers `v` on its root sender, A
//                awaits it: per round trip;
//   rtt-plain    the same on two plain channels.
// The default N for `first` is 3840,11520: with 1280,3840 the difference still held JIT warm-up,
// which differs between builds (docs/multiplexing.md, fourth round: a build read 14 % fewer
// instructions there and 19 % more with the longer runs, which the CPU time agreed with).
import path from 'node:path';

import { args, countInstructions, opt, root } from './valgrind.mjs';

if (args[0] === 'run') await runCase(args[1], Number(args[2]), args[3]);
else main();

function main() {
  const libs = opt('--lib', path.join(root, 'dist', 'main', 'index.js')).split(',').map((l) => path.resolve(l));
  const cases = opt('--case', 'first,rtt').split(',');
  console.log(`| case | instructions per operation | lib |`);
  console.log(`|---|---|---|`);
  for (const c of cases) {
    for (const lib of libs) {
      const [n1, n2] = opt('--n', c.startsWith('first') ? '3840,11520' : '1000,3000').split(',').map(Number);
      const a = count(c, n1, lib);
      const b = count(c, n2, lib);
      console.log(`| ${c} | ${Math.round((b - a) / (n2 - n1)).toLocaleString('en-US')} | ${path.relative(root, lib) || lib} |`);
    }
  }
}

function count(c, n, lib) {
  return countInstructions(import.meta.url, c, n, lib);
}

async function runCase(c, n, libPath) {
  const lib = await import(libPath);
  const { IpcMux, channel } = lib;
  const small = () => ({ id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] });
  const plain = c.endsWith('-plain');
  let aTx, bRx, bTx, aRx, a, b;
  if (plain) {
    [aTx, bRx] = channel();
    [bTx, aRx] = channel();
  } else {
    const [t1, r1] = channel();
    const [t2, r2] = channel();
    a = IpcMux.open(t1, r2);
    b = IpcMux.open(t2, r1);
    aTx = a.sender;
    bRx = b.receiver;
    bTx = b.sender;
    aRx = a.receiver;
  }
  // B: the peer's loop.
  const served = (async () => {
    for await (const m of bRx) {
      if (m === 'exit') break;
      if (m.op === 'rtt') bTx.send(m.v);
      else {
        m.tx.send(1);
        m.tx.close();
      }
    }
  })();
  const make = plain ? () => channel() : () => a.channel();
  const first = async (count, window = 64) => {
    let inFlight = [];
    for (let i = 0; i < count; i++) {
      const [tx, r] = make();
      aTx.send({ op: 'first', tx });
      tx.close();
      inFlight.push(r);
      if (inFlight.length === window || i === count - 1) {
        for (const x of inFlight) {
          await x.recv();
          x.close();
        }
        inFlight = [];
      }
    }
  };
  const rtt = async (count) => {
    for (let i = 0; i < count; i++) {
      aTx.send({ op: 'rtt', v: small() });
      await aRx.recv();
    }
  };
  const run = c.startsWith('first') ? first : rtt;
  await run(c.startsWith('first') ? 3200 : 3000);
  await run(n);
  aTx.send('exit');
  await served;
  if (plain) for (const x of [aTx, bRx, bTx, aRx]) x.close();
  else (a.close(), b.close());
}
