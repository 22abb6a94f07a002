// Shared by the orchestrator (run.mjs) and every measurement process: the payloads, CPU pinning,
// the one-JSON-line result protocol, windowed sending and statistics.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');

/** The small object every peer sends. */
export const SMALL = Object.freeze({ id: 42, name: 'sensor-7', ok: true, values: Object.freeze([1.5, 2.5, 3.5]) });
export const small = () => ({ id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] });
export const MIB = 1024 * 1024;

let tasksetOk;
/** True when `taskset` exists and may pin to CPU 1 (needs two CPUs). */
export function canPin() {
  if (tasksetOk === undefined) {
    const r = spawnSync('taskset', ['-c', '0,1', 'true'], { stdio: 'ignore' });
    tasksetOk = r.status === 0;
  }
  return tasksetOk;
}

/** [command, args] that runs argv pinned to `cpu` (-1 or no taskset: unpinned). */
export function pinned(cpu, argv) {
  if (cpu < 0 || !canPin()) return [argv[0], argv.slice(1)];
  return ['taskset', ['-c', String(cpu), ...argv]];
}

/** Spawns `node [nodeArgs] script ...args` pinned to `cpu`. */
export function spawnNode(cpu, script, args, options = {}, nodeArgs = []) {
  const [cmd, argv] = pinned(cpu, [process.execPath, ...nodeArgs, script, ...args]);
  return spawn(cmd, argv, options);
}

/**
 * CPU time of a process's main thread so far, in ns (Linux: the first field of
 * /proc/<pid>/schedstat; NaN elsewhere). Read before and after a timed loop in the driver for
 * itself and its child: CPU per operation moves much less with the machine's other load than
 * wall time does.
 */
export function cpuNs(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/** A clock of CPU time for this process and `child` together: `start()`, then `usPer(count)` (µs per operation, both processes summed). */
export function cpuClock(child) {
  let t0 = 0;
  const both = () => cpuNs(process.pid) + cpuNs(child.pid);
  return {
    start() {
      t0 = both();
    },
    usPer(count) {
      return (both() - t0) / 1e3 / count;
    },
  };
}

/** Prints the one result line a measurement process owes the orchestrator, then exits. */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** Runs a measurement process and returns its JSON result line, or { error }. */
export function runMeasurement(cmd, args, { timeoutMs = 120_000, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      err += `\n(timed out after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').filter(Boolean).pop();
      let parsed;
      try {
        parsed = line ? JSON.parse(line) : undefined;
      } catch {
        parsed = undefined;
      }
      if (code === 0 && parsed && !parsed.error) resolve(parsed);
      else {
        const why = parsed?.error ?? (err.trim().split('\n').slice(-3).join(' | ') || `exit ${code ?? signal}`);
        resolve({ error: why });
      }
    });
  });
}

/** Sends `n` messages with `send(msg, cb)` keeping at most `window` unacknowledged. */
export function sendWindowed(send, makeMsg, n, window) {
  return new Promise((resolve, reject) => {
    let inflight = 0;
    let sent = 0;
    let done = 0;
    const pump = () => {
      while (sent < n && inflight < window) {
        inflight++;
        sent++;
        send(makeMsg(), (err) => {
          if (err) return reject(err);
          inflight--;
          done++;
          if (done === n) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

/**
 * Counts received messages; the clock starts at message index `warmup` and stops at the last.
 * Returns { onMessage(bytes), done: Promise<{ seconds, measured, bytes }> }.
 */
export function receiverClock(warmup, count) {
  const total = warmup + count;
  let seen = 0;
  let t0 = 0;
  let bytes = 0;
  let resolve;
  const done = new Promise((r) => (resolve = r));
  return {
    onMessage(size = 0) {
      if (seen === warmup) t0 = performance.now();
      else if (seen > warmup) bytes += size;
      seen++;
      if (seen === total) {
        const seconds = (performance.now() - t0) / 1000;
        // `count - 1` intervals: the first measured message only starts the clock.
        resolve({ seconds, measured: count - 1, bytes });
      }
    },
    done,
  };
}

export function openFdCount() {
  return readdirSync('/proc/self/fd').length - 1; // the listing's own descriptor
}

export function rssBytes() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

// ---- statistics

/** The `q` quantile (0..1) of unsorted samples (a typed array or an array; not modified). */
export function percentile(samples, q) {
  const sorted = Float64Array.from(samples).sort();
  return quantile(sorted, q);
}

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    min: s[0],
    max: s[s.length - 1],
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
    samples,
  };
}

/** 3 significant digits, with k/M suffixes for large numbers. */
export function fmtNum(v) {
  if (v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e6) return `${sig(v / 1e6)}M`;
  if (a >= 1e4) return `${sig(v / 1e3)}k`;
  return sig(v);
}

function sig(v) {
  const a = Math.abs(v);
  if (Number.isInteger(v)) return String(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}
