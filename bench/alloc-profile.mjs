// Bytes allocated per message, by the function that allocated them, including objects a
// scavenge frees at once (V8's sampling heap profiler through the inspector, with
// includeObjectsCollectedByMinorGC): what garbage a hot path makes, where instruction counts
// (bench/instructions.mjs) only show the collector's share.
//
// Usage: node --single-threaded bench/alloc-profile.mjs [--lib dist/main/index.js] [--case fd|fd-none|small|async|async-floor] [--n 100000]
//   fd       send({ fh }) of an IpcFileHandle of /dev/null + tryRecv + close() of the received handle
//   fd-none  send({ fh: 1 }) + tryRecv: the same shape without the descriptor
//   small    the small object of bench/instructions.mjs's `sync` case
//   async    bench/instructions.mjs's `async` case: two channels in one process, an echo loop
//            (`for await`) and `send` + `await recv()`: per message (half a round trip)
//   async-floor  the same over bench/floor.mjs's endpoint (the addon, one promise, JSON)
// Prints bytes per message in all, then the 25 largest allocating functions.
import { openSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { floorEndpoint } from './floor.mjs';

const opt = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const libPath = opt('--lib', new URL('../dist/main/index.js', import.meta.url).pathname);
const which = opt('--case', 'fd');
const n = Number(opt('--n', '100000'));
const lib = await import(pathToFileURL(path.resolve(libPath)).href);

const [tx, rx] = lib.channel();
const fh = lib.IpcFileHandle.from(openSync('/dev/null', 'r'));
const cases = {
  fd: () => {
    tx.send({ fh });
    rx.tryRecv().message.fh.close();
  },
  'fd-none': () => {
    tx.send({ fh: 1 });
    return rx.tryRecv().message;
  },
  small: () => {
    tx.send({ id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] });
    return rx.tryRecv().message;
  },
};
const small = { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] };
// The async cases: a ping-pong whose round trip is two messages (so `n` messages = n / 2 trips).
const pingPong = (pair) => async (trips) => {
  for (let i = 0; i < trips; i++) {
    pair.send(small);
    await pair.recv();
  }
};
const asyncCases = {
  async: () => {
    const [atx, arx] = lib.channel();
    const [btx, brx] = lib.channel();
    (async () => {
      for await (const m of arx) btx.send(m);
    })().catch(() => {});
    return pingPong({ send: (v) => atx.send(v), recv: () => brx.recv() });
  },
  'async-floor': () => {
    const addon = createRequire(import.meta.url)(new URL('../build/Release/electron_ipc_channel.node', import.meta.url).pathname);
    const [a1, a2] = addon.socketpair();
    const [b1, b2] = addon.socketpair();
    const echo = floorEndpoint(addon, a2, b1);
    (async () => {
      for (;;) echo.send(await echo.recv());
    })();
    return pingPong(floorEndpoint(addon, b2, a1));
  },
};
const op = cases[which];
const trips = asyncCases[which]?.();
if (op === undefined && trips === undefined) throw new Error(`unknown --case ${which} (${[...Object.keys(cases), ...Object.keys(asyncCases)].join(', ')})`);
if (trips) await trips(10_000);
else for (let i = 0; i < 20_000; i++) op(); // warm-up: optimized code, as in the benchmarks

const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', { samplingInterval: 32, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
if (trips) await trips(n / 2);
else for (let i = 0; i < n; i++) op();
const { profile } = await session.post('HeapProfiler.stopSampling');
session.disconnect();

const bySite = new Map();
const visit = (node) => {
  const f = node.callFrame;
  const site = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
  if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  for (const child of node.children) visit(child);
};
visit(profile.head);
const total = [...bySite.values()].reduce((a, b) => a + b, 0);
console.log(`${which}: ${(total / n).toFixed(0)} bytes allocated per message (sampled, ${n} messages)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(bytes / n).toFixed(0).padStart(7)}  ${site}`);
tx.close();
rx.close();
fh.close();
process.exit(0);
