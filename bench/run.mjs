#!/usr/bin/env node
// Benchmark suite: this library against a raw C floor, its own addon driven from Node with no
// library code (the Node-API floor), Node child_process IPC (json and advanced) and a net Unix
// socket with length-prefixed JSON, all measured in the same run.
// Usage: node bench/run.mjs [--json] [--quick] [--case NAME[,NAME...]] [--repeats N]
// Method and meaning of every figure: docs/performance.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, canPin, fmtNum, pinned, ROOT, runMeasurement, summarize } from './harness.mjs';

// ---- arguments

const argv = process.argv.slice(2);
const opts = { json: false, quick: false, cases: null, repeats: null };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--json') opts.json = true;
  else if (a === '--quick') opts.quick = true;
  else if (a === '--case') opts.cases = (argv[++i] ?? '').split(',').filter(Boolean);
  else if (a.startsWith('--case=')) opts.cases = a.slice(7).split(',').filter(Boolean);
  else if (a === '--repeats') opts.repeats = Number(argv[++i]);
  else if (a === '--help' || a === '-h') {
    console.log('node bench/run.mjs [--json] [--quick] [--case NAME[,NAME...]] [--repeats N]');
    console.log(`cases: ${CASES_HELP()}`);
    process.exit(0);
  } else {
    console.error(`bench: unknown argument ${a} (try --help)`);
    process.exit(2);
  }
}
const REPEATS = opts.repeats ?? (opts.quick ? 2 : 5);

// ---- modes, peers, cases

const MODES = {
  one: { label: '1 CPU', parent: 0, child: 0 },
  cross: { label: '2 CPUs', parent: 0, child: 1 },
  inproc: { label: 'in-process', parent: 0, child: 0 },
};
const PEERS = [
  { id: 'lib', label: 'this library' },
  { id: 'libStream', label: 'this library, stream backend' },
  { id: 'c', label: 'C floor' },
  { id: 'napi', label: 'Node-API floor' },
  { id: 'napiAsync', label: 'Node-API floor, event loop' },
  { id: 'mux', label: 'multiplexed (IpcMux)' },
  { id: 'json', label: 'Node IPC json' },
  { id: 'advanced', label: 'Node IPC advanced' },
  { id: 'net', label: 'net + JSON' },
];

// Iteration counts: [default, quick] of { warmup, count }, per peer where the rates differ a lot.
const n = (warmup, count, qWarmup, qCount) => (opts.quick ? { warmup: qWarmup, count: qCount } : { warmup, count });

const CASES = [
  {
    id: 'rtt',
    title: 'round trip, small object',
    modes: ['one', 'cross'],
    // Issue 15: `await recv()` at least as fast as Node IPC json in the same run (lib ÷ json ≤ 1.0).
    metrics: [
      { key: 'us', unit: 'µs', lower: true, target: { mode: 'one', op: '<=', ratioTo: 'json', value: 1, text: '≤ 1.0× Node IPC json' } },
      { key: 'p99', unit: 'µs (p99)', lower: true },
      // CPU time of both processes' main threads per round trip (/proc/<pid>/schedstat): moves
      // much less with the machine's other load than wall time; the C floor does not report it.
      { key: 'cpu', unit: 'CPU µs, both processes', lower: true },
    ],
    // Warm-ups long enough for V8 to finish optimizing each side's hot path (with 2,000 the
    // library's round trip still measures tier-up: ~35 µs instead of ~25 µs).
    peers: {
      lib: { run: 'lib', case: 'rtt', ...n(20000, 10000, 5000, 2000) },
      c: { run: 'c', mode: 'rtt', ...n(3000, 30000, 1000, 10000) },
      napi: { run: 'napi', case: 'rtt', ...n(20000, 30000, 5000, 10000) },
      napiAsync: { run: 'napi', async: true, case: 'rtt', ...n(20000, 30000, 5000, 10000) },
      json: { run: 'ipc', case: 'rtt', ...n(20000, 10000, 5000, 2000) },
      advanced: { run: 'ipc', case: 'rtt', ...n(20000, 10000, 5000, 2000) },
      net: { run: 'net', case: 'rtt', ...n(20000, 10000, 5000, 2000) },
    },
  },
  {
    id: 'rtt-sync',
    note: 'the library blocks in recvSync() on both sides (servo ipc-channel\'s recv() blocks too); the peers are those of the rtt row.',
    title: 'round trip, small object, recvSync()',
    modes: ['one', 'cross'],
    metrics: [{ key: 'us', unit: 'µs', lower: true }],
    peers: {
      lib: { run: 'lib', case: 'rtt-sync', ...n(20000, 10000, 5000, 2000) },
      c: { run: 'c', mode: 'rtt', ...n(3000, 30000, 1000, 10000) },
      napi: { run: 'napi', case: 'rtt', ...n(20000, 30000, 5000, 10000) },
      json: { run: 'ipc', case: 'rtt', ...n(20000, 10000, 5000, 2000) },
    },
  },
  {
    id: 'stream',
    title: 'one-way stream, small objects',
    modes: ['one', 'cross'],
    metrics: [{ key: 'msgs', unit: 'msg/s', target: { mode: 'cross', op: '>=', value: 600e3, text: '≥ 600k msg/s' } }],
    peers: {
      lib: { run: 'lib', case: 'stream', ...n(10000, 100000, 2000, 20000) },
      c: { run: 'c', mode: 'stream', ...n(10000, 400000, 2000, 100000) },
      json: { run: 'ipc', case: 'stream', ...n(10000, 100000, 2000, 20000) },
      advanced: { run: 'ipc', case: 'stream', ...n(10000, 100000, 2000, 20000) },
      net: { run: 'net', case: 'stream', ...n(10000, 100000, 2000, 20000) },
    },
  },
  {
    id: 'bytes64',
    note: 'C floor here is the 64 B packet stream (same measurement as the stream row).',
    title: 'one-way bytes, 64 B (bytesChannel)',
    modes: ['one', 'cross'],
    metrics: [{ key: 'msgs', unit: 'msg/s', target: { mode: 'cross', op: '>=', value: 800e3, text: '≥ 800k msg/s' } }],
    peers: {
      lib: { run: 'lib', case: 'bytes64', ...n(10000, 200000, 2000, 40000) },
      c: { run: 'c', mode: 'stream', ...n(10000, 400000, 2000, 100000) },
    },
  },
  {
    id: 'mib1',
    title: 'one-way 1 MiB messages',
    modes: ['one', 'cross'],
    metrics: [{ key: 'gbps', unit: 'GB/s', target: { mode: 'cross', op: '>=', value: 4.5, text: '≥ 4.5 GB/s' } }],
    peers: {
      lib: { run: 'lib', case: 'mib1', ...n(100, 2000, 5, 60) },
      c: { run: 'c', mode: 'mib', ...n(50, 3000, 10, 500) },
      json: { run: 'ipc', case: 'mib1', ...n(10, 100, 3, 20) },
      advanced: { run: 'ipc', case: 'mib1', ...n(10, 200, 3, 40) },
      net: { run: 'net', case: 'mib1', ...n(10, 100, 3, 20) },
    },
  },
  {
    id: 'mib64',
    note: 'C floor here is the kernel copy rate: 1 MiB messages in 64 KiB packets.',
    title: 'one-way 64 MiB Uint8Array in a message',
    modes: ['cross'],
    metrics: [{ key: 'gbps', unit: 'GB/s' }],
    peers: {
      lib: { run: 'lib', case: 'mib64', ...n(1, 10, 1, 4) },
      c: { run: 'c', mode: 'mib', ...n(50, 3000, 10, 500) },
    },
  },
  {
    id: 'shm-reuse',
    note: 'C floor here is the kernel copy rate: 1 MiB messages in 64 KiB packets.',
    title: '64 MiB IpcSharedMemory, same one sent again',
    modes: ['cross'],
    metrics: [{ key: 'gbps', unit: 'GB/s', target: { mode: 'cross', op: '>=', value: 5, text: '≥ 5 GB/s' } }],
    peers: {
      lib: { run: 'lib', case: 'shm-reuse', ...n(5, 100, 2, 20) },
      c: { run: 'c', mode: 'mib', ...n(50, 3000, 10, 500) },
    },
  },
  {
    id: 'shm-pool',
    note: 'new contents each time, copied into IpcSharedMemoryPool segments (count 4); the receiver reads a byte of every page, then closes; C floor: kernel copy rate.',
    title: '64 MiB through an IpcSharedMemoryPool, new contents each time',
    modes: ['cross'],
    metrics: [{ key: 'gbps', unit: 'GB/s', target: { mode: 'cross', op: '>=', value: 5, text: '≥ 5 GB/s' } }],
    peers: {
      lib: { run: 'lib', case: 'shm-pool', ...n(4, 40, 2, 10) },
      c: { run: 'c', mode: 'mib', ...n(50, 3000, 10, 500) },
    },
  },
  {
    id: 'shm-fresh',
    note: 'C floor here is the kernel copy rate: 1 MiB messages in 64 KiB packets.',
    title: '64 MiB IpcSharedMemory, fromBytes each time',
    modes: ['cross'],
    metrics: [{ key: 'gbps', unit: 'GB/s' }],
    peers: {
      lib: { run: 'lib', case: 'shm-fresh', ...n(2, 16, 1, 6) },
      c: { run: 'c', mode: 'mib', ...n(50, 3000, 10, 500) },
    },
  },
  {
    id: 'fd',
    title: 'round trips carrying a descriptor',
    modes: ['one', 'cross'],
    metrics: [{ key: 'rtps', unit: 'round trips/s', target: { mode: 'one', op: '>=', ratioTo: 'c', value: 0.7, text: '≥ 0.7× C floor' } }],
    peers: {
      lib: { run: 'lib', case: 'fd', ...n(20000, 8000, 5000, 2000) },
      c: { run: 'c', mode: 'fd', ...n(1000, 15000, 500, 5000) },
      napi: { run: 'napi', case: 'fd', ...n(10000, 15000, 2000, 5000) },
      napiAsync: { run: 'napi', async: true, case: 'fd', ...n(10000, 15000, 2000, 5000) },
    },
  },
  {
    id: 'fd-sync',
    note: 'the library blocks in recvSync() on both sides.',
    title: 'round trips carrying a descriptor, recvSync()',
    modes: ['one', 'cross'],
    metrics: [{ key: 'rtps', unit: 'round trips/s', target: { mode: 'one', op: '>=', ratioTo: 'c', value: 0.7, text: '≥ 0.7× C floor' } }],
    peers: {
      lib: { run: 'lib', case: 'fd-sync', ...n(20000, 8000, 5000, 2000) },
      c: { run: 'c', mode: 'fd', ...n(1000, 15000, 500, 5000) },
      napi: { run: 'napi', case: 'fd', ...n(10000, 15000, 2000, 5000) },
    },
  },
  {
    id: 'codec',
    note: 'Node IPC json column is JSON.stringify + JSON.parse; advanced is v8.serialize + v8.deserialize.',
    title: 'encode + decode, 10,000 small objects',
    modes: ['inproc'],
    metrics: [{ key: 'ms', unit: 'ms', lower: true, target: { mode: 'inproc', op: '<=', ratioTo: 'json', value: 2, text: '≤ 2× JSON' } }],
    peers: {
      lib: { run: 'codec', codec: 'lib', ...n(20, 60, 10, 20) },
      json: { run: 'codec', codec: 'json', ...n(20, 60, 10, 20) },
      advanced: { run: 'codec', codec: 'v8', ...n(20, 60, 10, 20) },
    },
  },
  {
    id: 'growth',
    note: 'the worse of the receiving and the sending process, each after GC; both in the --json output.',
    title: `growth after ${opts.quick ? '200,000' : '1,000,000'} small messages`,
    modes: ['cross'],
    repeats: 1,
    metrics: [
      { key: 'rssPct', unit: '% RSS', lower: true, target: { mode: 'cross', op: '<=', value: 10, text: '≤ +10% RSS' } },
      { key: 'fds', unit: 'fds', lower: true, target: { mode: 'cross', op: '<=', value: 5, text: '≤ +5 fds' } },
    ],
    // The warm-up lets V8's heap and the receive arenas reach their steady size, so what is
    // measured is growth, not warm-up: V8 keeps doubling the receiver's young generation (heapTotal
    // 21 -> 37 MB, heapUsed flat at 4.4 MB) until ~1.5M messages; after a 500k warm-up that alone
    // reads +13 % RSS, after 2M it reads ~0 (docs/performance.md).
    // `mux`: the same messages on one logical channel of an IpcMux between the two processes.
    peers: {
      lib: { run: 'lib', case: 'growth', ...n(2_000_000, 1_000_000, 100_000, 200_000) },
      mux: { run: 'lib', case: 'growth', mux: true, ...n(2_000_000, 1_000_000, 100_000, 200_000) },
    },
  },
  {
    id: 'churn',
    note: 'each channel: made, its sender sent to the other process, one message back on it, both ends closed; the worse of the two processes after GC.',
    title: `growth after ${opts.quick ? '10,000' : '100,000'} channels opened and closed`,
    modes: ['cross'],
    repeats: 1,
    metrics: [
      { key: 'rssPct', unit: '% RSS', lower: true, target: { mode: 'cross', op: '<=', value: 10, text: '≤ +10% RSS' } },
      { key: 'fds', unit: 'fds', lower: true, target: { mode: 'cross', op: '<=', value: 5, text: '≤ +5 fds' } },
      { key: 'perSecond', unit: 'channels/s' },
    ],
    // A long warm-up: V8 grows its young generation for a while (heapTotal
    // 25 -> 42 MB over the first 12,000 channels with heapUsed flat at 6 MB), which is not growth.
    peers: { lib: { run: 'lib', case: 'churn', ...n(50_000, 100_000, 10_000, 10_000) } },
  },
  {
    id: 'mux',
    note: 'bench/mux.mjs, one run: plain channels ("this library") against logical channels of one IpcMux connection, both between the same two processes; see docs/multiplexing.md.',
    title: 'multiplexed channels',
    modes: ['cross'],
    // Measured by bench/mux.mjs in one process pair (it alternates plain and logical itself).
    external: {
      script: 'mux.mjs',
      args: opts.quick ? ['--live', '20000', '--churn', '10000', '--rtt', '3000', '--first', '1000'] : [],
      rows: (r) => [
        { title: 'create + send + first message back, 64 in flight', unit: 'channels/s', plain: r.firstPipelined?.plainPerSec, mux: r.firstPipelined?.muxPerSec, target: { op: '>=', value: 10, text: '≥ 10× plain' } },
        { title: 'create + send + first message back, one at a time', unit: 'channels/s', plain: r.first?.plainPerSec, mux: r.first?.muxPerSec },
        { title: 'small object round trip, await recv()', unit: 'µs', lower: true, plain: r.rtt?.plainUs, mux: r.rtt?.muxUs, target: { op: '<=', value: 1.2, text: '≤ 1.2× plain' } },
        { title: `descriptors for ${r.live?.channels ?? '?'} live channels, per process`, unit: 'fds', lower: true, plain: r.live?.plainFdsProjected, mux: Math.max(r.live?.fdsHereDelta ?? NaN, r.live?.fdsChildDelta ?? NaN), absTarget: { op: '<=', value: 16, text: '≤ 16 fds' } },
        { title: `growth after ${r.churn?.channels ?? '?'} logical channels opened and closed`, unit: 'fds', lower: true, mux: Math.max(r.churn?.fdsDelta ?? NaN, r.churn?.childFdsDelta ?? NaN), absTarget: { op: '<=', value: 5, text: '≤ +5 fds' } },
        { title: `growth after ${r.churn?.channels ?? '?'} logical channels opened and closed`, unit: '% RSS', lower: true, mux: 100 * Math.max(r.churn?.rssGrowth ?? NaN, r.churn?.childRssGrowth ?? NaN), absTarget: { op: '<=', value: 10, text: '≤ +10% RSS' } },
      ],
    },
    peers: {},
  },
];

function CASES_HELP() {
  return 'rtt, rtt-sync, stream, bytes64, mib1, mib64, shm-reuse, shm-pool, shm-fresh, fd, fd-sync, codec, growth';
}

// The library runs each of its cases on both transports: `lib` on seqpacket (the Linux default),
// `libStream` on the stream backend (what macOS uses), both ends (the driver's child inherits it).
for (const c of CASES) {
  const lib = c.peers.lib;
  if (lib && lib.run === 'lib' && !c.peers.libStream) c.peers.libStream = { ...lib, transport: 'stream' };
}

// ---- running one measurement

const FLOOR_SRC = path.join(BENCH_DIR, 'c', 'floor.c');
/** V8's default largest semi-space on 64-bit (16 MiB), as its smallest: see command(). */
const YOUNG_FULL = '--min-semi-space-size=16';
const FLOOR_BIN = path.join(BENCH_DIR, 'build', 'floor');

function buildFloor() {
  if (existsSync(FLOOR_BIN) && statSync(FLOOR_BIN).mtimeMs >= statSync(FLOOR_SRC).mtimeMs) return null;
  mkdirSync(path.dirname(FLOOR_BIN), { recursive: true });
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, ['-O2', '-o', FLOOR_BIN, FLOOR_SRC], { encoding: 'utf8' });
  if (r.status !== 0) return `${cc} -O2 failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
  return null;
}

function command(peerId, spec, mode) {
  const m = MODES[mode];
  const node = process.execPath;
  const script = (f) => path.join(BENCH_DIR, f);
  const params = (extra) => JSON.stringify({ childCpu: m.child, warmup: spec.warmup, count: spec.count, ...extra });
  switch (spec.run) {
    case 'c':
      // floor pins both of its processes itself.
      return [FLOOR_BIN, [spec.mode, String(m.parent), String(m.child), String(spec.warmup), String(spec.count)]];
    case 'ipc':
      return pinned(m.parent, [node, script('peer-node-ipc.mjs'), 'driver', params({ case: spec.case, serialization: peerId })]);
    case 'net':
      return pinned(m.parent, [node, script('peer-net.mjs'), 'driver', params({ case: spec.case })]);
    case 'napi':
      return pinned(m.parent, [node, script('peer-napi.mjs'), 'driver', params({ case: spec.case, async: !!spec.async })]);
    case 'lib':
      // growth and churn: V8's young generation at its full size from the start in both
      // processes (library.mjs passes the flag to its child), so that V8 growing it, once, some
      // time into the run, is not read as growth of the library's memory (heapUsed stays flat).
      return pinned(m.parent, ['env', `ELECTRON_IPC_CHANNEL_TRANSPORT=${spec.transport ?? 'seqpacket'}`, node, '--expose-gc', ...(spec.case === 'growth' || spec.case === 'churn' ? [YOUNG_FULL] : []), script('library.mjs'), 'driver', params({ case: spec.case, mux: !!spec.mux })]);
    case 'codec':
      return pinned(m.parent, [node, script('codec.mjs'), JSON.stringify({ codec: spec.codec, warmup: spec.warmup, count: spec.count })]);
    default:
      throw new Error(`unknown runner ${spec.run}`);
  }
}

/** The library's codec lives in dist/shared, its channels in dist/main: either may be missing. */
const skipKey = (peerId, spec) => (peerId === 'lib' && spec.run === 'codec' ? 'codec' : peerId);

// ---- main

const selected = opts.cases ? CASES.filter((c) => opts.cases.includes(c.id)) : CASES;
if (opts.cases) {
  const unknown = opts.cases.filter((id) => !CASES.some((c) => c.id === id));
  if (unknown.length) {
    console.error(`bench: unknown case ${unknown.join(', ')}; cases: ${CASES_HELP()}`);
    process.exit(2);
  }
}

const started = Date.now();
const log = (s) => process.stderr.write(`${s}\n`);
const skipped = {}; // peer id -> reason, once known for the whole run
const floorError = buildFloor();
if (floorError) skipped.c = `C floor not built: ${floorError}`;
if (!canPin()) log('bench: taskset cannot pin to CPUs 0 and 1: running unpinned, 2-CPU rows are skipped');
if (!existsSync(path.join(ROOT, 'dist', 'main', 'index.js'))) {
  log('bench: library cases skipped: dist/main/index.js is missing (run `npm run build:ts`); the peers still run');
}
const load = os.loadavg();
log(`bench: ${REPEATS} repeats${opts.quick ? ' (--quick)' : ''}, load average ${load.map((l) => l.toFixed(2)).join(' ')}`);

const rows = [];
/** A case measured by its own script (one run; it alternates its peers itself), as table rows. */
async function externalRows(c) {
  const t = Date.now();
  const r = await runMeasurement(process.execPath, [path.join(BENCH_DIR, c.external.script), '--json-only', ...c.external.args], { timeoutMs: opts.quick ? 180_000 : 600_000 });
  log(`  ${c.id}: ${r.error ? `ERROR ${r.error}` : JSON.stringify(r)} [${Date.now() - t} ms]`);
  if (r.error) {
    rows.push({ case: c.id, title: c.title, mode: 'cross', modeLabel: MODES.cross.label, metric: 'error', unit: '', lower: false, peers: { lib: { error: r.error }, mux: { error: r.error } } });
    return;
  }
  for (const x of c.external.rows(r)) {
    const one = (v) => (typeof v === 'number' && Number.isFinite(v) ? summarize([v]) : undefined);
    const peers = {};
    if (one(x.plain)) peers.lib = one(x.plain);
    if (one(x.mux)) peers.mux = one(x.mux);
    const row = { case: c.id, title: x.title, mode: 'cross', modeLabel: MODES.cross.label, metric: x.unit, unit: x.unit, lower: !!x.lower, peers };
    // Logical ÷ plain in the row's unit: below 1× is faster for times, above 1× for rates.
    const ratio = peers.lib && peers.mux ? peers.mux.median / peers.lib.median : undefined;
    row.ratioMux = ratio;
    const tgt = x.target ?? x.absTarget;
    if (tgt) {
      row.target = tgt.text;
      const v = x.target ? ratio : row.peers.mux?.median;
      row.met = v === undefined ? undefined : tgt.op === '<=' ? v <= tgt.value : v >= tgt.value;
    }
    rows.push(row);
  }
}
for (const c of selected) {
  if (c.external) {
    if (canPin()) await externalRows(c);
    continue;
  }
  for (const mode of c.modes) {
    if (mode === 'cross' && !canPin()) continue;
    const repeats = c.repeats ?? REPEATS;
    const samples = {}; // peer -> [result]
    const errors = {};
    // Peers alternate within each repeat so that drift in the machine's load hits all of them.
    for (let rep = 0; rep < repeats; rep++) {
      for (const peer of PEERS) {
        const spec = c.peers[peer.id];
        if (!spec || errors[peer.id] || skipped[skipKey(peer.id, spec)]) continue;
        const [cmd, args] = command(peer.id, spec, mode);
        const t = Date.now();
        const r = await runMeasurement(cmd, args, { timeoutMs: (c.id === 'growth' || c.id === 'churn' ? 300_000 : 90_000) / (opts.quick ? 3 : 1) });
        log(`  ${c.id} ${MODES[mode].label} ${peer.label} #${rep + 1}: ${r.skipped ? `skipped (${r.skipped})` : r.error ? `ERROR ${r.error}` : JSON.stringify(r)} [${Date.now() - t} ms]`);
        if (r.skipped) skipped[skipKey(peer.id, spec)] = r.skipped;
        else if (r.error) errors[peer.id] = r.error;
        else (samples[peer.id] ??= []).push(r);
      }
    }
    for (const metric of c.metrics) {
      const row = { case: c.id, title: c.title, mode, modeLabel: MODES[mode].label, metric: metric.key, unit: metric.unit, lower: !!metric.lower, peers: {} };
      for (const peer of PEERS) {
        const spec = c.peers[peer.id];
        if (!spec) continue;
        if (samples[peer.id]?.length) {
          const values = samples[peer.id].map((s) => s[metric.key]);
          // A peer that does not measure this metric (the floors have no p99) shows a dash.
          if (values.some((v) => typeof v !== 'number')) continue;
          row.peers[peer.id] = summarize(values);
          if (c.id === 'growth' || c.id === 'churn') row.peers[peer.id].detail = samples[peer.id];
          if (c.id === 'codec') row.peers[peer.id].detail = samples[peer.id].map(({ encodeUs, decodeUs, bytes }) => ({ encodeUs, decodeUs, bytes }));
        } else if (errors[peer.id]) row.peers[peer.id] = { error: errors[peer.id] };
        else row.peers[peer.id] = { skipped: skipped[skipKey(peer.id, spec)] ?? 'not run' };
      }
      const lib = row.peers.lib?.median;
      row.ratioJson = lib !== undefined && row.peers.json?.median ? lib / row.peers.json.median : undefined;
      row.ratioAdvanced = lib !== undefined && row.peers.advanced?.median ? lib / row.peers.advanced.median : undefined;
      row.ratioC = lib !== undefined && row.peers.c?.median ? lib / row.peers.c.median : undefined;
      row.ratioNapi = lib !== undefined && row.peers.napi?.median ? lib / row.peers.napi.median : undefined;
      row.ratioNapiAsync = lib !== undefined && row.peers.napiAsync?.median ? lib / row.peers.napiAsync.median : undefined;
      const libStream = row.peers.libStream?.median;
      row.ratioStream = lib !== undefined && libStream !== undefined && lib > 0 ? libStream / lib : undefined;
      const tgt = metric.target && metric.target.mode === mode ? metric.target : undefined;
      if (tgt) {
        row.target = tgt.text;
        const v = tgt.ratioTo === 'json' ? row.ratioJson : tgt.ratioTo === 'c' ? row.ratioC : lib;
        row.met = v === undefined ? undefined : tgt.op === '<=' ? v <= tgt.value : v >= tgt.value;
        // An absolute target (growth) holds for the multiplexed peer too, where the case runs one.
        const mux = row.peers.mux?.median;
        if (row.met !== undefined && !tgt.ratioTo && c.peers.mux) row.met = mux === undefined ? undefined : row.met && (tgt.op === '<=' ? mux <= tgt.value : mux >= tgt.value);
      }
      rows.push(row);
    }
  }
}

// ---- output

const cell = (s) => {
  if (!s) return '—';
  if (s.error) return 'error';
  if (s.skipped) return 'skipped';
  if (s.n === 1) return fmtNum(s.median);
  return `${fmtNum(s.median)} (${fmtNum(s.min)}–${fmtNum(s.max)})`;
};
const ratio = (r) => (r === undefined ? '—' : `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`);
const header = ['case', 'mode', 'target', ...PEERS.map((p) => p.label), 'lib ÷ json', 'lib ÷ advanced', 'lib ÷ C', 'lib ÷ Node-API', 'lib ÷ Node-API event loop', 'stream ÷ seqpacket', 'mux ÷ plain', 'met'];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const r of rows) {
  lines.push(
    `| ${r.title}, ${r.unit} ${r.lower ? '↓' : '↑'} | ${r.modeLabel} | ${r.target ?? ''} | ${PEERS.map((p) => cell(r.peers[p.id])).join(' | ')} | ${ratio(r.ratioJson)} | ${ratio(r.ratioAdvanced)} | ${ratio(r.ratioC)} | ${ratio(r.ratioNapi)} | ${ratio(r.ratioNapiAsync)} | ${ratio(r.ratioStream)} | ${ratio(r.ratioMux)} | ${r.target ? (r.met === undefined ? 'not run' : r.met ? 'met' : 'MISSED') : ''} |`,
  );
}
const seconds = (Date.now() - started) / 1000;
const problems = [];
for (const r of rows) {
  for (const [id, s] of Object.entries(r.peers)) if (s?.error) problems.push(`${r.case} ${r.modeLabel} ${id}: ${s.error.split('\n')[0]}`);
}
const notes = [...new Set(Object.values(skipped))].map((s) => `skipped: ${s}`);

console.log(lines.join('\n'));
console.log(
  `\nmedian (min–max) of ${REPEATS} runs (growth: 1 run); ↓ lower is better, ↑ higher is better; ratios are library (seqpacket) ÷ peer medians; stream ÷ seqpacket compares the library's two backends. ${seconds.toFixed(0)} s, node ${process.version}, ${os.cpus().length} CPUs, load ${load.map((l) => l.toFixed(2)).join(' ')}.`,
);
for (const c of selected) if (c.note) console.log(`${c.id}: ${c.note}`);
for (const l of [...notes, ...[...new Set(problems)].map((p) => `error: ${p}`)]) console.log(l);

if (opts.json) {
  const out = path.join(BENCH_DIR, 'results', 'latest.json');
  mkdirSync(path.dirname(out), { recursive: true });
  let commit;
  try {
    commit = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || undefined;
  } catch {}
  const meta = {
    date: new Date().toISOString(),
    seconds,
    quick: opts.quick,
    repeats: REPEATS,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    kernel: os.release(),
    loadavgAtStart: load,
    pinned: canPin(),
    commit,
    libraryBuilt: existsSync(path.join(ROOT, 'dist', 'main', 'index.js')),
    package: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
  };
  writeFileSync(out, `${JSON.stringify({ meta, skipped, rows, table: lines.join('\n') }, null, 2)}\n`);
  log(`bench: wrote ${path.relative(process.cwd(), out)}`);
}

// A measurement that failed (not one that was skipped or missed its target) fails the run, so a
// CI smoke run with --quick catches a case that no longer works.
if (problems.length) process.exitCode = 1;
