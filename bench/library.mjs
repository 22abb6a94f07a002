// This library, through its public API only (docs/architecture.md), from ../dist/main/index.js.
// driver: node library.mjs driver '{"case":"...","childCpu":0,"warmup":W,"count":N}'
// BENCH_CHILD_NODE_ARGS: node flags for the child (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
// Cases: rtt, rtt-sync, stream, bytes64, mib1, mib64, shm-reuse, shm-pool, shm-fresh, fd, fd-sync, growth, churn.
// Bootstrap: the driver listens on an IpcOneShotServer and passes its name in BENCH_IPC_NAME; the
// child connects, makes its own channel() and sends that sender as the first message.
import { existsSync, openSync } from 'node:fs';
import { MIB, cpuClock, openFdCount, percentile, report, rssBytes, small, spawnNode } from './harness.mjs';

const DIST = new URL('../dist/main/index.js', import.meta.url);
const [role, raw] = process.argv.slice(2);
const p = JSON.parse(raw);

const skip = await load();
if (typeof skip === 'string') report({ skipped: skip });
else {
  try {
    if (role === 'driver') await driver(skip);
    else await child(skip);
  } catch (err) {
    if (role === 'driver') report({ error: `${err?.code ?? err?.name}: ${err?.message}` });
    else {
      console.error(`library child: ${err?.stack ?? err}`);
      process.exit(1);
    }
  }
}

/** The library module, or why the library cases cannot run. */
async function load() {
  if (!existsSync(DIST)) return 'dist/main/index.js is missing (run `npm run build:ts`)';
  const lib = await import(DIST.href);
  try {
    // The addon loads on first use: a missing build is one skip, not a failure of every case.
    const [tx, rx] = lib.channel();
    tx.close();
    rx.close();
  } catch (err) {
    return `the library does not start: ${String(err?.message ?? err).split('\n')[0]}`;
  }
  return lib;
}

/** Receives `total` messages, taking whatever is already read without a promise each. */
async function drain(rx, total, onMessage) {
  const canTry = typeof rx.tryRecv === 'function';
  let n = 0;
  while (n < total) {
    if (canTry) {
      let r;
      while (n < total && (r = rx.tryRecv()) !== undefined) {
        onMessage(r.message);
        n++;
      }
      if (n === total) break;
    }
    onMessage(await rx.recv());
    n++;
  }
}

function sizeOf(m) {
  if (m instanceof Uint8Array) return m.byteLength;
  if (m?.data) return m.data.byteLength;
  if (m?.shm) return m.shm.length;
  return 0;
}

/** RSS and descriptors, plus V8's view to tell a heap leak from memory V8 keeps committed. */
function memStats() {
  const { heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss: rssBytes(), fds: openFdCount(), heapUsed, heapTotal, external, arrayBuffers };
}

function gc() {
  globalThis.gc?.();
}

async function driver(lib) {
  // The default limit is 64 MiB per message body: a 64 MiB payload plus its envelope needs more.
  const server = new lib.IpcOneShotServer(p.case === 'mib64' ? { maxMessageBytes: 80 * MIB } : undefined);
  const child = spawnNode(
    p.childCpu,
    new URL(import.meta.url).pathname,
    ['child', raw],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, BENCH_IPC_NAME: server.name } },
    [
      '--expose-gc',
      // As the driver (bench/run.mjs): the young generation at its full size from the start.
      ...(p.case === 'growth' || p.case === 'churn' ? ['--min-semi-space-size=16'] : []),
      ...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ],
  );
  child.on('exit', (code) => {
    if (code) report({ error: `child exited with ${code}` });
  });
  const [rx, toChild] = await server.accept({ timeout: 30_000 });
  const total = p.warmup + p.count;
  let result;

  if (p.case === 'rtt' || p.case === 'rtt-sync') {
    const msg = small();
    const sync = p.case === 'rtt-sync';
    let t0 = 0;
    // Each round trip's time too, for the 99th percentile.
    const each = new Float64Array(p.count);
    const cpu = cpuClock(child);
    for (let i = 0; i < total; i++) {
      if (i === p.warmup) cpu.start();
      const start = performance.now();
      if (i === p.warmup) t0 = start;
      toChild.send(msg);
      if (sync) rx.recvSync();
      else await rx.recv();
      if (i >= p.warmup) each[i - p.warmup] = performance.now() - start;
    }
    result = { us: ((performance.now() - t0) * 1e3) / p.count, p99: percentile(each, 0.99) * 1e3, cpu: cpu.usPer(p.count) };
  } else if (p.case === 'fd' || p.case === 'fd-sync') {
    const fh = lib.IpcFileHandle.from(openSync('/dev/null', 'r'));
    const sync = p.case === 'fd-sync';
    let t0 = 0;
    for (let i = 0; i < total; i++) {
      if (i === p.warmup) t0 = performance.now();
      toChild.send({ fh });
      const m = sync ? rx.recvSync() : await rx.recv();
      m.fh.close();
    }
    result = { rtps: p.count / ((performance.now() - t0) / 1e3) };
    fh.close();
  } else if (p.case === 'churn') {
    // Channels opened and closed: each one's sender goes to the child, one message comes back
    // on it, both ends are closed. Baselines after a warm-up and GC in each process.
    const cycle = async (count) => {
      for (let i = 0; i < count; i++) {
        const [s, r] = lib.channel();
        toChild.send({ s });
        s.close();
        await r.recv();
        r.close();
      }
    };
    const settle = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
    };
    await cycle(p.warmup);
    await settle();
    const before = memStats();
    toChild.send({ mark: true });
    const t0 = performance.now();
    await cycle(p.count);
    const seconds = (performance.now() - t0) / 1e3;
    toChild.send({ report: true });
    const childStats = await rx.recv();
    await settle();
    const after = memStats();
    const pct = (a, b) => ((a - b) / b) * 100;
    result = {
      rssPct: Math.max(pct(after.rss, before.rss), pct(childStats.after.rss, childStats.before.rss)),
      fds: Math.max(after.fds - before.fds, childStats.after.fds - childStats.before.fds),
      perSecond: p.count / seconds,
      opener: { before, after },
      peer: childStats,
    };
  } else if (p.case === 'growth') {
    // With p.mux the messages (and the child's figures) come on one logical channel of an IpcMux
    // over a channel pair between the two processes; the start and go signals stay plain.
    let data = rx;
    let mux;
    if (p.mux) {
      const [aTx, aRx] = lib.channel();
      const [bTx, bRx] = lib.channel();
      toChild.send({ muxTx: bTx, muxRx: aRx });
      mux = lib.IpcMux.open(aTx, bRx);
      data = mux.receiver;
    }
    // Phase 1: warm up both sides, then measure a baseline after GC in each process.
    toChild.send({ start: true });
    await drain(data, p.warmup, () => {});
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const before = memStats();
    toChild.send({ go: true });
    // Phase 2: p.count messages, then the child's own figures.
    await drain(data, p.count, () => {});
    const childStats = await data.recv();
    mux?.close();
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const after = memStats();
    const pct = (a, b) => ((a - b) / b) * 100;
    result = {
      rssPct: Math.max(pct(after.rss, before.rss), pct(childStats.after.rss, childStats.before.rss)),
      fds: Math.max(after.fds - before.fds, childStats.after.fds - childStats.before.fds),
      receiver: { before, after },
      sender: childStats,
    };
  } else {
    // One-way: the child sends, this process receives and keeps the clock.
    let brx;
    let closeLater;
    if (p.case === 'bytes64') {
      const [btx, b] = lib.bytesChannel();
      brx = b;
      toChild.send({ bytes: btx });
      closeLater = btx;
    } else {
      toChild.send({ go: true });
    }
    let seen = 0;
    let t0 = 0;
    let bytes = 0;
    const touch = p.case.startsWith('shm');
    await drain(brx ?? rx, total, (m) => {
      if (seen === p.warmup) t0 = performance.now();
      else if (seen > p.warmup) bytes += sizeOf(m);
      seen++;
      if (touch) {
        const v = m.shm.bytes;
        if (v[0] !== 7 || v[v.length - 1] !== 7) throw new Error('shared memory content is wrong');
        // The pool row reads one byte of every page: what a receiver that uses the payload pays.
        if (p.case === 'shm-pool') {
          for (let j = 4096; j < v.length; j += 4096) if (v[j] !== 7) throw new Error('shared memory content is wrong');
        }
        m.shm.close();
      }
    });
    const seconds = (performance.now() - t0) / 1e3;
    result = p.case === 'stream' || p.case === 'bytes64' ? { msgs: (p.count - 1) / seconds } : { gbps: bytes / seconds / 1e9 };
    if (touch && typeof lib.sharedMemoryIsZeroCopy === 'function') result.zeroCopy = lib.sharedMemoryIsZeroCopy();
    brx?.close();
    closeLater?.close();
  }
  child.removeAllListeners('exit');
  rx.close();
  toChild.close();
  server.close();
  child.kill();
  report(result);
}

async function child(lib) {
  const toParent = lib.IpcSender.connect(process.env.BENCH_IPC_NAME);
  const [mine, rx] = lib.channel();
  toParent.send(mine);
  const total = p.warmup + p.count;
  const finish = async () => {
    await toParent.flush();
    // Stay until the driver hangs up: its receiver may still be reading what we sent.
    try {
      for await (const _ of rx);
    } catch {}
    process.exit(0);
  };

  if (p.case === 'churn') {
    let before;
    const settled = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
      return memStats();
    };
    for await (const m of rx) {
      if (m.s) {
        m.s.send(1);
        m.s.close();
      } else if (m.mark) before = await settled();
      else if (m.report) toParent.send({ before, after: await settled() });
    }
    process.exit(0);
  }
  if (p.case === 'rtt') {
    for await (const m of rx) toParent.send(m);
    process.exit(0);
  }
  if (p.case === 'rtt-sync') {
    // Blocks in recvSync() (no promise anywhere); the driver ends it with a signal.
    for (const m of syncMessages(rx)) toParent.send(m);
    process.exit(0);
  }
  if (p.case === 'fd' || p.case === 'fd-sync') {
    let prev;
    const echo = (m) => {
      toParent.send({ fh: m.fh });
      prev?.close(); // closed one message later so the send never races the close
      prev = m.fh;
    };
    if (p.case === 'fd') for await (const m of rx) echo(m);
    else for (const m of syncMessages(rx)) echo(m);
    process.exit(0);
  }

  let first = await rx.recv();
  if (p.case === 'growth') {
    let out = toParent;
    let flush = () => toParent.flush();
    if (first.muxTx) {
      // The messages go on the IpcMux's root sender; what waits in this process is bounded by
      // the connection's unsent bytes (drained(): under half of maxUnsentBytes).
      const { muxTx, muxRx } = first;
      const mux = lib.IpcMux.open(muxTx, muxRx);
      out = mux.sender;
      flush = async () => {
        await toParent.flush();
        await muxTx.flush();
      };
      first = await rx.recv();
    }
    // The warm-up sends the way the measured phase does, and both end with the same settling.
    const sendAll = async (count) => {
      for (let i = 0; i < count; i++) {
        out.send(small());
        if (i % 10_000 === 9_999) await flush(); // bound what waits in this process
      }
      await flush();
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
      return memStats();
    };
    const before = await sendAll(p.warmup);
    await rx.recv(); // go
    out.send({ before, after: await sendAll(p.count) });
    await flush();
  } else if (p.case === 'stream') {
    for (let i = 0; i < total; i++) toParent.send(small());
  } else if (p.case === 'bytes64') {
    const btx = first.bytes;
    const packet = new Uint8Array(64).fill(7);
    for (let i = 0; i < total; i++) btx.send(packet);
    if (typeof btx.flush === 'function') await btx.flush();
  } else if (p.case === 'mib1' || p.case === 'mib64') {
    const data = new Uint8Array(p.case === 'mib1' ? MIB : 64 * MIB).fill(7);
    const every = p.case === 'mib1' ? 4 : 1; // at most ~4 MiB (or one 64 MiB) waiting here
    for (let i = 0; i < total; i++) {
      toParent.send({ data });
      if (i % every === every - 1) await toParent.flush();
    }
  } else if (p.case === 'shm-reuse') {
    const shm = lib.IpcSharedMemory.fromBytes(new Uint8Array(64 * MIB).fill(7));
    for (let i = 0; i < total; i++) {
      toParent.send({ shm });
      if (i % 8 === 7) await toParent.flush();
    }
  } else if (p.case === 'shm-pool') {
    // New contents every time, written into segments of a pool that come back when the
    // receiver closes them.
    const src = new Uint8Array(64 * MIB).fill(7);
    const pool = new lib.IpcSharedMemoryPool({ size: 64 * MIB, count: 4 });
    for (let i = 0; i < total; i++) {
      const shm = await pool.acquire({ timeout: 30_000 });
      shm.bytes.set(src);
      toParent.send({ shm });
    }
  } else if (p.case === 'shm-fresh') {
    const src = new Uint8Array(64 * MIB).fill(7);
    let pending = [];
    for (let i = 0; i < total; i++) {
      const shm = lib.IpcSharedMemory.fromBytes(src);
      toParent.send({ shm });
      pending.push(shm);
      if (pending.length === 4) {
        await toParent.flush();
        for (const s of pending) s.close();
        pending = [];
      }
    }
  } else {
    throw new Error(`unknown case ${p.case}`);
  }
  await finish();
}

/** Messages from recvSync() until every sender is gone (iterated without awaiting anything). */
function* syncMessages(rx) {
  for (;;) {
    try {
      yield rx.recvSync();
    } catch (err) {
      if (err?.code === 'DISCONNECTED') return;
      throw err;
    }
  }
}
