// Multiplexed channels against plain channels, in the same run (issue 15, section 3).
// Usage: node bench/mux.mjs [--live N] [--churn N] [--rtt N] [--first N] [--pipelined N] [--json-only]
// Prints a small table, then one line of JSON (the figures and their same-run ratios).
// LIB=<another build's dist/main/index.js> runs that build (both processes), for A/B.
//
// Two processes: this driver and a child (this file with argv[2] === 'child'), connected by
// plain channels; the child serves both a plain connection and a multiplexed one (IpcMux).
// - live:  N logical channels kept open between the two (senders in the child, receivers here):
//          descriptors of each process, against what one plain channel costs (measured on 1,000).
// - first: create a channel + send its sender to the child + the child's first message back,
//          per second, logical against plain (interleaved rounds, median): one at a time, and
//          64 in flight; also the other direction (`handover`: the receiver is sent to the
//          child and this side sends the first message; the child confirms each window).
//          64 in flight also reports the CPU time (user + system) both processes spent per
//          channel (median of the rounds): on a loaded machine it varies less than the rate.
// - rtt:   a small object's `await recv()` round trip on a logical channel against a plain one
//          (9 alternating rounds of N/4; the median of the per-round ratios).
// - churn: N channels opened and closed (each with its first message): descriptors and RSS
//          growth of both processes after a warm-up of N/10.
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';

const lib = await import(process.env.LIB ?? new URL('../dist/main/index.js', import.meta.url).href); // LIB: another build, for A/B
const { IpcMux, IpcOneShotServer, IpcSender, channel } = lib;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const fdCount = () => readdirSync('/proc/self/fd').length - 1;
const rss = () => process.memoryUsage().rss;
const small = () => ({ id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (process.argv[2] === 'child') await child(process.argv[3]);
else await driver();

async function settle() {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(30);
  }
}

async function child(name) {
  const tx = IpcSender.connect(name);
  const [plainTx, plainRx] = channel(); // driver -> child, plain
  const [m1tx, m1rx] = channel(); // driver -> child, mux connection
  const [m2tx, m2rx] = channel(); // child -> driver, mux connection
  tx.send({ plainTx, m1tx, m2rx });
  plainTx.close();
  m1tx.close();
  m2rx.close();
  const mux = IpcMux.open(m2tx, m1rx);
  const held = [];
  const stats = async () => {
    await settle();
    return { fds: fdCount(), rss: rss(), channels: mux.stats.channels };
  };
  let takenPlain = [];
  let takenMux = [];
  const take = (list, rx) =>
    list.push(
      rx.recv().then(() => rx.close()),
    );
  const plainLoop = (async () => {
    for await (const m of plainRx) {
      if (m.op === 'take') take(takenPlain, m.rx);
      else if (m.op === 'ack') {
        const l = takenPlain;
        takenPlain = [];
        Promise.all(l).then(() => tx.send('acked'));
      } else if (m.op === 'first') {
        m.tx.send(1);
        m.tx.close();
      } else if (m.op === 'rtt') tx.send(m.v);
      else if (m.op === 'hold') held.push(...m.items);
      else if (m.op === 'release') for (const x of held.splice(0)) x.close();
      else if (m.op === 'stats') tx.send(await stats());
      else if (m.op === 'cpu') tx.send(process.cpuUsage());
    }
  })();
  for await (const m of mux.receiver) {
    if (m.op === 'take') take(takenMux, m.rx);
    else if (m.op === 'ack') {
      const l = takenMux;
      takenMux = [];
      Promise.all(l).then(() => mux.sender.send('acked'));
    } else if (m.op === 'first') {
      m.tx.send(1);
      m.tx.close();
    } else if (m.op === 'rtt') mux.sender.send(m.v);
    else if (m.op === 'hold') held.push(...m.items);
    else if (m.op === 'release') for (const x of held.splice(0)) x.close();
    else if (m.op === 'stats') mux.sender.send(await stats());
    else if (m.op === 'exit') break;
  }
  mux.close();
  plainRx.close();
  await plainLoop.catch(() => {});
  tx.close();
}

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function driver() {
  const LIVE = arg('live', 100_000);
  const CHURN = arg('churn', 100_000);
  const RTT = arg('rtt', 20_000);
  const FIRST = arg('first', 5_000);
  // 64 in flight: rounds long enough for the steady state of the collector (a short round after
  // a full collection hides what a channel's garbage costs later) and of the compiler.
  const PIPELINED = arg('pipelined', 20_000);
  const ROUNDS = 3;
  const RTT_ROUNDS = 9;
  const server = new IpcOneShotServer();
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child', server.name], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [back, first] = await server.accept({ timeout: 15_000 });
  const plain = first.plainTx;
  const mux = IpcMux.open(first.m1tx, first.m2rx);
  const plainAsk = async (m) => {
    plain.send(m);
    return back.recv();
  };
  const muxAsk = async (m) => {
    mux.sender.send(m);
    return mux.receiver.recv();
  };

  // --- first message on a new channel
  const firstPlain = async (n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const [tx, rx] = channel();
      plain.send({ op: 'first', tx });
      tx.close();
      await rx.recv();
      rx.close();
    }
    return n / ((performance.now() - t0) / 1000);
  };
  const firstMux = async (n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const [tx, rx] = mux.channel();
      mux.sender.send({ op: 'first', tx });
      tx.close();
      await rx.recv();
      rx.close();
    }
    return n / ((performance.now() - t0) / 1000);
  };
  // The same, pipelined: `window` new channels in flight at once (what a busy RPC client does);
  // this measures what a channel costs, not the round trip's latency.
  const pipelined = (make, ask) => async (n, window = 64) => {
    const t0 = performance.now();
    let inFlight = [];
    for (let i = 0; i < n; i++) {
      const [tx, rx] = make();
      ask({ op: 'first', tx });
      tx.close();
      inFlight.push(rx);
      if (inFlight.length === window || i === n - 1) {
        for (const r of inFlight) {
          await r.recv();
          r.close();
        }
        inFlight = [];
      }
    }
    return n / ((performance.now() - t0) / 1000);
  };
  // The other direction: the receiver is handed over and this side sends the first message;
  // the child confirms each window once every first message arrived.
  const handover = (make, send, ack) => async (n, window = 64) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i += window) {
      for (let j = 0; j < window && i + j < n; j++) {
        const [tx, rx] = make();
        send({ op: 'take', rx });
        tx.send(1);
        tx.close();
      }
      await ack();
    }
    return n / ((performance.now() - t0) / 1000);
  };
  const handPlain = handover(() => channel(), (m) => plain.send(m), () => plainAsk({ op: 'ack' }));
  const handMux = handover(() => mux.channel(), (m) => mux.sender.send(m), () => muxAsk({ op: 'ack' }));
  const firstPlainP = pipelined(() => channel(), (m) => plain.send(m));
  const firstMuxP = pipelined(() => mux.channel(), (m) => mux.sender.send(m));
  // --- round trips
  const rttPlain = async (n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      plain.send({ op: 'rtt', v: small() });
      await back.recv();
    }
    return ((performance.now() - t0) * 1000) / n;
  };
  const rttMux = async (n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      mux.sender.send({ op: 'rtt', v: small() });
      await mux.receiver.recv();
    }
    return ((performance.now() - t0) * 1000) / n;
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  // CPU us per channel of both processes while `run(n)` makes n channels; the rate goes to `rates`.
  const cpuUs = (c) => c.user + c.system;
  const withCpu = async (run, n, rates, cpus) => {
    const child0 = cpuUs(await plainAsk({ op: 'cpu' }));
    const here0 = process.cpuUsage();
    rates.push(await run(n));
    const here = cpuUs(process.cpuUsage(here0));
    const child = cpuUs(await plainAsk({ op: 'cpu' })) - child0;
    cpus.push((here + child) / n);
  };

  await firstPlain(500);
  await firstMux(500);
  await rttPlain(2000);
  await rttMux(2000);
  await firstPlainP(3000); // long enough for the optimizing compiler, whose threads count in the CPU time
  await firstMuxP(3000);
  await handPlain(500);
  await handMux(500);
  const hp = [];
  const hm = [];
  const fp = [];
  const fm = [];
  const fpp = [];
  const fmp = [];
  const rp = [];
  const rm = [];
  const cpp = [];
  const cmp = [];
  for (let r = 0; r < ROUNDS; r++) {
    fp.push(await firstPlain(FIRST));
    fm.push(await firstMux(FIRST));
    await withCpu(firstPlainP, PIPELINED, fpp, cpp);
    await withCpu(firstMuxP, PIPELINED, fmp, cmp);
    hp.push(await handPlain(FIRST));
    hm.push(await handMux(FIRST));
  }
  // Round trips: many short alternating rounds, so that a noisy neighbour hits both alike.
  for (let r = 0; r < RTT_ROUNDS; r++) {
    rp.push(await rttPlain(Math.ceil(RTT / 4)));
    rm.push(await rttMux(Math.ceil(RTT / 4)));
  }
  const rttRatios = rm.map((m, i) => m / rp[i]);

  // --- live channels: plain cost per channel (1,000), then LIVE logical ones
  await settle();
  const pBase = { here: fdCount(), child: (await plainAsk({ op: 'stats' })).fds };
  const plainKeep = [];
  for (let i = 0; i < 1000; i += 100) {
    const items = [];
    for (let j = 0; j < 100; j++) {
      const [tx, rx] = channel();
      plainKeep.push(rx);
      items.push(tx);
    }
    plain.send({ op: 'hold', items });
    for (const tx of items) tx.close();
  }
  const pNow = { here: fdCount(), child: (await plainAsk({ op: 'stats' })).fds };
  plain.send({ op: 'release' });
  for (const rx of plainKeep) rx.close();
  const plainPerChannel = (pNow.here - pBase.here + pNow.child - pBase.child) / 1000;

  await settle();
  const mBase = { here: fdCount(), child: (await muxAsk({ op: 'stats' })).fds };
  const keep = [];
  const t0 = performance.now();
  for (let i = 0; i < LIVE; i += 1000) {
    const items = [];
    for (let j = 0; j < 1000 && i + j < LIVE; j++) {
      const [tx, rx] = mux.channel();
      keep.push(rx);
      items.push(tx);
    }
    mux.sender.send({ op: 'hold', items });
    for (const tx of items) tx.close();
  }
  const cs = await muxAsk({ op: 'stats' });
  const liveMs = performance.now() - t0;
  const live = { channels: LIVE, fdsHere: fdCount(), fdsChild: cs.fds, channelsChild: cs.channels, channelsHere: mux.stats.channels, ms: Math.round(liveMs) };
  mux.sender.send({ op: 'release' });
  for (const rx of keep.splice(0)) rx.close();

  // --- churn: CHURN channels opened and closed, each with its first message
  await firstMux(Math.ceil(CHURN / 10));
  await settle();
  const c0 = await muxAsk({ op: 'stats' });
  const before = { fds: fdCount(), rss: rss(), childFds: c0.fds, childRss: c0.rss };
  await firstMux(CHURN);
  await settle();
  const c1 = await muxAsk({ op: 'stats' });
  const after = { fds: fdCount(), rss: rss(), childFds: c1.fds, childRss: c1.rss };

  mux.sender.send({ op: 'exit' });
  await new Promise((r) => proc.on('exit', r));
  mux.close();
  plain.close();
  back.close();

  const out = {
    transport: process.env.ELECTRON_IPC_CHANNEL_TRANSPORT ?? 'default',
    first: { plainPerSec: Math.round(median(fp)), muxPerSec: Math.round(median(fm)), ratio: +(median(fm) / median(fp)).toFixed(2), note: 'one at a time: bound by the round trip' },
    firstPipelined: { window: 64, plainPerSec: Math.round(median(fpp)), muxPerSec: Math.round(median(fmp)), ratio: +(median(fmp) / median(fpp)).toFixed(2), target: '>= 10', cpuUsPerChannel: { plain: +median(cpp).toFixed(1), mux: +median(cmp).toFixed(1), ratio: +(median(cpp) / median(cmp)).toFixed(2), note: 'both processes, user + system' } },
    handover: { window: 64, plainPerSec: Math.round(median(hp)), muxPerSec: Math.round(median(hm)), ratio: +(median(hm) / median(hp)).toFixed(2), note: 'receiver handed over, first message sent by its creator' },
    rtt: { plainUs: +median(rp).toFixed(2), muxUs: +median(rm).toFixed(2), ratio: +median(rttRatios).toFixed(3), rounds: RTT_ROUNDS, note: 'median of per-round ratios', target: '<= 1.2' },
    live: { ...live, plainFdsPerChannel: plainPerChannel, plainFdsProjected: Math.round(plainPerChannel * LIVE), fdsHereDelta: live.fdsHere - mBase.here, fdsChildDelta: live.fdsChild - mBase.child, target: '<= 16 fds per process' },
    churn: {
      channels: CHURN,
      fdsDelta: after.fds - before.fds,
      childFdsDelta: after.childFds - before.childFds,
      rssGrowth: +(after.rss / before.rss - 1).toFixed(3),
      childRssGrowth: +(after.childRss / before.childRss - 1).toFixed(3),
      target: '+5 fds, +10 % RSS',
    },
  };
  if (!process.argv.includes('--json-only')) {
    const rows = [
      ['create+send+first message, serial', `${out.first.plainPerSec}/s`, `${out.first.muxPerSec}/s`, `${out.first.ratio}x faster`, '(latency-bound)'],
      ['create+send+first message, 64 in flight', `${out.firstPipelined.plainPerSec}/s`, `${out.firstPipelined.muxPerSec}/s`, `${out.firstPipelined.ratio}x faster`, out.firstPipelined.target],
      ['  the same, CPU us per channel (both processes)', `${out.firstPipelined.cpuUsPerChannel.plain} us`, `${out.firstPipelined.cpuUsPerChannel.mux} us`, `${out.firstPipelined.cpuUsPerChannel.ratio}x less`, ''],
      ['create+hand over receiver+first message, 64 in flight', `${out.handover.plainPerSec}/s`, `${out.handover.muxPerSec}/s`, `${out.handover.ratio}x faster`, ''],
      ['small round trip (await recv)', `${out.rtt.plainUs} us`, `${out.rtt.muxUs} us`, `${out.rtt.ratio}x the time`, out.rtt.target],
      [`${LIVE} live channels: fds here/child`, `~${out.live.plainFdsProjected} total`, `${live.fdsHere}/${live.fdsChild}`, `+${out.live.fdsHereDelta}/+${out.live.fdsChildDelta}`, out.live.target],
      [`${CHURN} opened+closed: fds, RSS`, '', `${out.churn.fdsDelta}/${out.churn.childFdsDelta} fds`, `RSS ${(out.churn.rssGrowth * 100).toFixed(1)} % / ${(out.churn.childRssGrowth * 100).toFixed(1)} %`, out.churn.target],
    ];
    console.log(['case', 'plain', 'mux', 'ratio', 'target'].join(' | '));
    for (const r of rows) console.log(r.join(' | '));
  }
  console.log(JSON.stringify(out));
}
