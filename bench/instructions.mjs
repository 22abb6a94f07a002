// Instructions per operation, counted by valgrind (cachegrind, no cache simulation): a measure
// that does not move with the machine's load, for A/B comparisons of the library's hot paths on a
// shared machine where timings are noise. Each case runs twice in a fresh `node` (N1 and N2
// operations after the same warm-up); the difference divided by N2 - N1 is the cost of one
// operation, start-up cancelled out. `node --single-threaded` keeps compilation and garbage
// collection on the main thread, where they are counted with the operations that cause them
// (a case still varies by a few percent between runs: compare builds in the same run).
//
// Usage: node bench/instructions.mjs [--lib path/to/dist/main/index.js] [--case a,b] [--n N1,N2]
// Cases (each against a floor that uses the same addon with no library code):
//   async   one process, two channels, `await recv()` ping-pong: instructions per round trip
//           (two messages), against `async-floor` (the addon's Poller, recvPackets, one promise,
//           JSON.stringify/parse: what the library does at the least);
//   sync    send + tryRecv of the small object on one channel: per message, against `sync-floor`;
//   encode  encodeMessage of the small object, against `encode-floor` (JSON.stringify + encodeInto);
//   decode  decodeMessage of it, against `decode-floor` (TextDecoder + JSON.parse);
//   fd      send `{ fh }` (an IpcFileHandle of /dev/null) + tryRecv + close() of the received
//           handle: per message, against `fd-floor` (sendPacket with the descriptor, recvPackets,
//           fdInfo, close: the addon with no library code). Not in the default list (run with
//           --case fd,fd-floor). valgrind counts user-space instructions only: the system calls'
//           kernel time (SCM_RIGHTS, statx, close) is not in these figures. `fd-none` sends the
//           same shape without a descriptor (`{ fh: 1 }`): what the descriptor itself adds;
//           `fd-floor-none` the floor's packet without it (what the descriptor adds to the floor).
//   fd-async        one process, two channels, a descriptor round trip through the event loop as
//                   bench/library.mjs's fd case makes it (send `{ fh }`, `await recv()`, close; the
//                   echo side sends `{ fh: m.fh }` back and closes it a message later): per round
//                   trip (two messages), against `fd-async-floor` (bench/peer-napi.mjs's fd mode with
//                   `async`: the addon's Poller, a non-blocking recvPackets in its callback, one
//                   promise per packet, fdInfo and close of every descriptor received, a 64-byte
//                   packet: the event-loop Node-API floor of issue 15 §2). `fd-async-none` is
//                   fd-async with `{ fh: 1 }` (what the descriptor adds to a round trip),
//                   `fd-async-floor-none` the floor's round trip without the descriptor.
//   fd-handle       IpcFileHandle.from(/dev/null) + close(): the handle object's own cost (its GC
//                   safety net bookkeeping), against `fd-handle-floor` (the addon's dup + close);
//   fd-encode       encodeMessage({ fh }) with a handle hook, against `fd-encode-none` ({ fh: 1 });
//   fd-decode       decodeMessage of that body reviving a stand-in object, against
//                   `fd-decode-none`: the codec's share of a descriptor (issue 15 §2's profile).
//   churn   a new channel per message: channel(), send + tryRecv of the small object, close both
//           ends, against `churn-floor` (socketpair, sendPacket, recvPackets, JSON, two closes);
//           both yield to the event loop (setImmediate) every 64 channels. Not in the default list.
// Needs valgrind (apt-get install valgrind); a few minutes.
import { spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { floorEndpoint } from './floor.mjs';

import { args, countInstructions, opt, root } from './valgrind.mjs';

if (args[0] === 'run') await runCase(args[1], Number(args[2]), args[3]);
else main();

function main() {
  const lib = path.resolve(opt('--lib', path.join(root, 'dist', 'main', 'index.js')));
  const cases = opt('--case', 'async,async-floor,sync,sync-floor,encode,encode-floor,decode,decode-floor').split(',');
  const probe = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.error('bench/instructions.mjs needs valgrind (apt-get install valgrind)');
    process.exit(1);
  }
  console.log(`| case | instructions per operation | operation | lib |`);
  console.log(`|---|---|---|---|`);
  for (const c of cases) {
    const [n1, n2] = opt('--n', c.startsWith('async') || c.startsWith('fd-async') ? '3000,13000' : '10000,60000').split(',').map(Number);
    const a = count(c, n1, lib);
    const b = count(c, n2, lib);
    const per = Math.round((b - a) / (n2 - n1));
    const what = c.startsWith('async') || c.startsWith('fd-async') ? 'round trip (2 messages)' : c.startsWith('sync') ? 'send + tryRecv' : c.startsWith('fd-handle') ? 'from() or dup, close()' : c.startsWith('fd-encode') || c.startsWith('fd-decode') ? c.slice(3) : c === 'fd-none' ? 'send + tryRecv of { fh: 1 }' : c === 'fd-floor-none' ? 'sendPacket + recvPackets, no descriptor' : c.startsWith('fd') ? 'send + tryRecv + close, one descriptor' : c.startsWith('churn') ? 'new channel, send + tryRecv, close both' : c.replace('-floor', '');
    console.log(`| ${c} | ${per.toLocaleString('en-US')} | ${what} | ${c.endsWith('floor') || c.endsWith('floor-none') ? '(addon only)' : path.relative(root, lib)} |`);
  }
}

function count(c, n, lib) {
  return countInstructions(import.meta.url, c, n, lib);
}

async function runCase(c, n, libPath) {
  const require = createRequire(import.meta.url);
  const addon = require(path.join(root, 'build', 'Release', 'electron_ipc_channel.node'));
  const small = { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] };
  const te = new TextEncoder();
  const td = new TextDecoder('utf-8', { fatal: true });
  const warm = c.startsWith('async') || c.startsWith('fd-async') ? 3000 : 20000;
  if (c === 'async' || c === 'async-floor') {
    let pair;
    if (c === 'async') {
      const lib = await import(libPath);
      const [atx, arx] = lib.channel();
      const [btx, brx] = lib.channel();
      (async () => {
        try {
          for await (const m of arx) btx.send(m);
        } catch {}
      })();
      pair = { send: (v) => atx.send(v), recv: () => brx.recv() };
    } else {
      const endpoint = (rfd, wfd) => floorEndpoint(addon, rfd, wfd);
      const [a1, a2] = addon.socketpair();
      const [b1, b2] = addon.socketpair();
      const echo = endpoint(a2, b1);
      (async () => {
        for (;;) echo.send(await echo.recv());
      })();
      pair = endpoint(b2, a1);
    }
    for (let i = 0; i < warm + n; i++) {
      pair.send(small);
      await pair.recv();
    }
    process.exit(0);
  }
  if (c.startsWith('fd-async')) {
    let roundTrip;
    if (!c.startsWith('fd-async-floor')) {
      const lib = await import(libPath);
      const [atx, arx] = lib.channel();
      const [btx, brx] = lib.channel();
      const none = c === 'fd-async-none';
      (async () => {
        let prev;
        try {
          for await (const m of arx) {
            btx.send({ fh: m.fh });
            if (!none) prev?.close(); // closed one message later, as bench/library.mjs's child does
            prev = m.fh;
          }
        } catch {}
      })();
      const fh = none ? 1 : lib.IpcFileHandle.from(openSync('/dev/null', 'r'));
      roundTrip = none
        ? async () => {
            atx.send({ fh });
            await brx.recv();
          }
        : async () => {
            atx.send({ fh });
            (await brx.recv()).fh.close();
          };
    } else {
      const keep = [];
      const receiver = (fd) => {
        const meta = new Int32Array(2 + 4);
        const fdsOut = new Int32Array(1024);
        const arena = new Uint8Array(128 * 1024);
        let waiter;
        const poller = new addon.Poller(fd, () => {
          if (addon.recvPackets(fd, meta, fdsOut, 1, 64 * 1024, arena, 0, false) <= 0) return;
          const w = waiter;
          waiter = undefined;
          w(meta[4] > 0 ? fdsOut[0] : -1);
        });
        poller.start(1);
        keep.push(poller); // a poller nothing refers to is collected, and its watch with it
        return () => new Promise((r) => (waiter = r));
      };
      const [a1, a2] = addon.socketpair();
      const [b1, b2] = addon.socketpair();
      const packet = [new Uint8Array(64)];
      const info = new Float64Array(6);
      const echoRecv = receiver(a2);
      const none = c === 'fd-async-floor-none';
      (async () => {
        let prev = -1;
        for (;;) {
          const got = await echoRecv();
          if (none) {
            addon.sendPacket(b1, packet, null);
            continue;
          }
          addon.fdInfo(got, info);
          addon.sendPacket(b1, packet, [got]);
          if (prev >= 0) addon.close(prev);
          prev = got;
        }
      })();
      const recv = receiver(b2);
      const sent = none ? null : [openSync('/dev/null', 'r')];
      roundTrip = none
        ? async () => {
            addon.sendPacket(a1, packet, null);
            await recv();
          }
        : async () => {
            addon.sendPacket(a1, packet, sent);
            const got = await recv();
            addon.fdInfo(got, info);
            addon.close(got);
          };
    }
    for (let i = 0; i < warm + n; i++) await roundTrip();
    process.exit(0);
  }
  let f;
  if (c === 'sync') {
    const lib = await import(libPath);
    const [tx, rx] = lib.channel();
    f = () => {
      tx.send(small);
      return rx.tryRecv().message;
    };
  } else if (c === 'fd') {
    const lib = await import(libPath);
    const [tx, rx] = lib.channel();
    const fh = lib.IpcFileHandle.from(openSync('/dev/null', 'r'));
    const msg = { fh };
    f = () => {
      tx.send(msg);
      rx.tryRecv().message.fh.close();
    };
  } else if (c === 'fd-none') {
    const lib = await import(libPath);
    const [tx, rx] = lib.channel();
    const msg = { fh: 1 };
    f = () => {
      tx.send(msg);
      return rx.tryRecv().message;
    };
  } else if (c === 'fd-floor') {
    const [a, b] = addon.socketpair();
    const devnull = openSync('/dev/null', 'r');
    const meta = new Int32Array(2 + 4 * 256);
    const fds = new Int32Array(253);
    const arena = new Uint8Array(1 << 16);
    const packet = [new Uint8Array(64)];
    const sent = [devnull];
    const info = new Float64Array(6);
    f = () => {
      addon.sendPacket(a, packet, sent);
      addon.recvPackets(b, meta, fds, 1, 65536, arena, 0, false);
      addon.fdInfo(fds[0], info);
      addon.close(fds[0]);
    };
  } else if (c === 'fd-floor-none') {
    // fd-floor without the descriptor: the same packet, no SCM_RIGHTS, no fdInfo, no close.
    const [a, b] = addon.socketpair();
    const meta = new Int32Array(2 + 4 * 256);
    const fds = new Int32Array(253);
    const arena = new Uint8Array(1 << 16);
    const packet = [new Uint8Array(64)];
    f = () => {
      addon.sendPacket(a, packet, null);
      addon.recvPackets(b, meta, fds, 1, 65536, arena, 0, false);
    };
  } else if (c === 'fd-handle' || c === 'fd-handle-floor') {
    const devnull = openSync('/dev/null', 'r');
    if (c === 'fd-handle') {
      const lib = await import(libPath);
      f = () => lib.IpcFileHandle.from(devnull).close();
    } else {
      addon.adopt(devnull);
      f = () => addon.close(addon.dup(devnull));
    }
  } else if (c.startsWith('fd-encode') || c.startsWith('fd-decode')) {
    const codec = require(path.join(path.dirname(libPath), '..', 'shared', 'lib', 'codec.cjs'));
    const fh = { close() {} };
    const hooks = { handleKind: (v) => (v === fh ? 'F' : undefined) };
    const msg = c.endsWith('-none') ? { fh: 1 } : { fh };
    const body = codec.joinParts(codec.encodeMessage(msg, hooks));
    const count = c.endsWith('-none') ? 0 : 1;
    const revive = { reviveHandle: () => fh };
    const limits = { maxMessageBytes: 1 << 26, maxDepth: 64, maxElements: 1e6, maxHandles: 1024 };
    f = c.startsWith('fd-encode') ? () => codec.encodeMessage(msg, hooks) : () => codec.decodeMessage(body, count, revive, limits);
  } else if (c === 'churn') {
    const lib = await import(libPath);
    f = () => {
      const [tx, rx] = lib.channel();
      tx.send(small);
      const m = rx.tryRecv().message;
      tx.close();
      rx.close();
      return m;
    };
  } else if (c === 'churn-floor') {
    const meta = new Int32Array(2 + 4 * 256);
    const fds = new Int32Array(253);
    const arena = new Uint8Array(1 << 16);
    const out = new Uint8Array(4096);
    f = () => {
      const [a, b] = addon.socketpair();
      const { written } = te.encodeInto(JSON.stringify(small), out);
      addon.sendPacket(a, [out.subarray(0, written)], null);
      addon.recvPackets(b, meta, fds, 1, 65536, arena, 0, false);
      const m = JSON.parse(td.decode(arena.subarray(meta[2], meta[2] + meta[3])));
      addon.close(a);
      addon.close(b);
      return m;
    };
  } else if (c === 'sync-floor') {
    const [a, b] = addon.socketpair();
    const meta = new Int32Array(2 + 4 * 256);
    const fds = new Int32Array(253);
    const arena = new Uint8Array(1 << 16);
    const out = new Uint8Array(4096);
    f = () => {
      const { written } = te.encodeInto(JSON.stringify(small), out);
      addon.sendPacket(a, [out.subarray(0, written)], null);
      addon.recvPackets(b, meta, fds, 1, 65536, arena, 0, false);
      return JSON.parse(td.decode(arena.subarray(meta[2], meta[2] + meta[3])));
    };
  } else {
    const codec = require(path.join(path.dirname(libPath), '..', 'shared', 'lib', 'codec.cjs'));
    const enc = codec.encodeMessage(small);
    const body = codec.joinParts(enc);
    const text = JSON.stringify(small);
    const bytes = te.encode(text);
    const out = new Uint8Array(4096);
    const limits = { maxMessageBytes: 1 << 26, maxDepth: 64, maxElements: 1e6, maxHandles: 1024 };
    f = {
      encode: () => codec.encodeMessage(small),
      'encode-floor': () => te.encodeInto(JSON.stringify(small), out),
      decode: () => codec.decodeMessage(body, 0, undefined, limits),
      'decode-floor': () => JSON.parse(td.decode(bytes)),
    }[c];
    if (!f) throw new Error(`unknown case ${c}`);
  }
  if (c.startsWith('churn')) {
    // A program that makes channels yields to the event loop now and then: what a closed
    // endpoint leaves for later (its poller's uv_close, the safety net's timers) runs there.
    for (let i = 0; i < warm + n; i++) {
      f();
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    process.exit(0);
  }
  for (let i = 0; i < warm + n; i++) f();
  process.exit(0);
}
