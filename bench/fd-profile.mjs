// Where a descriptor's time goes (issue 15 §2), in one process, without the event loop: each step
// of a message carrying one descriptor, measured alone and alternated in rounds so that a noisy
// machine hits every step alike. Usage: node bench/fd-profile.mjs [iterations per round] [rounds]
// Prints µs per message for each step (median of the rounds) and one JSON line.
//   floor        the addon's calls alone: sendmsg with the descriptor, recvmsg, fdInfo, close
//   floor, none  the same without a descriptor
//   lib          tx.send({ fh }); rx.recvSync().fh.close()          (a typed channel)
//   lib, none    tx.send({ fh: 1 }); rx.recvSync()                   (same shape, no descriptor)
//   encode       encodeMessage({ fh }) with the handle hook           (the codec alone)
//   decode       decodeMessage of that body, reviving a stand-in object
import { createRequire } from 'node:module';
import { openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = await import(path.join(ROOT, 'dist', 'main', 'index.js'));
const codec = await import(path.join(ROOT, 'dist', 'shared', 'index.js'));
const n = createRequire(import.meta.url)(process.env.ELECTRON_IPC_CHANNEL_NATIVE || path.join(ROOT, 'build', 'Release', 'electron_ipc_channel.node'));
const N = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 9);

const devnull = openSync('/dev/null', 'r');
const [a, b] = n.socketpair();
const meta = new Int32Array(6);
const fdsOut = new Int32Array(1024);
const arena = new Uint8Array(128 * 1024);
const info = new Float64Array(6);
const packet = [new Uint8Array(64)];
n.setBlocking(b, true);
const floor = (withFd) => () => {
  if (n.sendPacket(a, packet, withFd ? [devnull] : null) < 0) throw new Error('sendPacket');
  if (n.recvPackets(b, meta, fdsOut, 1, 64 * 1024, arena, 0, true) <= 0) throw new Error('recvPackets');
  if (withFd) {
    const fd = fdsOut[0];
    n.fdInfo(fd, info);
    n.close(fd);
  }
};
const [tx, rx] = lib.channel();
const fh = lib.IpcFileHandle.from(openSync('/dev/null', 'r'));
const libFd = () => rx.recvSync(tx.send({ fh })).fh.close();
const libNone = () => rx.recvSync(tx.send({ fh: 1 }));
const stand = { close() {} };
const hooks = { handleKind: (v) => (v === fh ? 'F' : undefined) };
const enc = () => codec.encodeMessage({ fh }, hooks);
const body = codec.joinParts(codec.encodeMessage({ fh }, hooks));
const decHooks = { reviveHandle: () => stand };
const dec = () => codec.decodeMessage(body, 1, decHooks, codec.DEFAULT_LIMITS);

const all = { floor: floor(true), 'floor, none': floor(false), lib: libFd, 'lib, none': libNone, encode: enc, decode: dec };
// ONLY=lib,encode runs those steps alone (e.g. under --cpu-prof).
const steps = process.env.ONLY ? Object.fromEntries(process.env.ONLY.split(',').map((k) => [k, all[k]])) : all;
const samples = Object.fromEntries(Object.keys(steps).map((k) => [k, []]));
for (const f of Object.values(steps)) for (let i = 0; i < 1000; i++) f(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, f] of Object.entries(steps)) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f();
    samples[k].push(((performance.now() - t0) * 1000) / N);
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const out = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, Number(median(xs).toFixed(2))]));
for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(12)} ${v.toFixed(2).padStart(8)} µs`);
console.log(`descriptor: library +${(out.lib - out['lib, none']).toFixed(2)} µs, floor +${(out.floor - out['floor, none']).toFixed(2)} µs; codec ${(out.encode + out.decode).toFixed(2)} µs`);
console.log(JSON.stringify({ N, ROUNDS, us: out }));
fh.close();
tx.close();
rx.close();
