// A small test runner for the Windows contract suite under Wine's node.exe (vitest and esbuild
// ship Linux binaries only). `test(name, fn, { skip })` registers; run.mjs runs them in order,
// each with a timeout, and prints one line per test, then `SUMMARY {json}` as its last line.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const here = path.dirname(fileURLToPath(import.meta.url));
/** The built package (dist), as an application imports it. */
export const lib = require('../../dist/main/index.cjs');
/** The Windows addon itself (ELECTRON_IPC_CHANNEL_ADDON), for raw peers and handle counts. */
export const addon = require(process.env.ELECTRON_IPC_CHANNEL_ADDON);

export const tests = [];
export function test(name, fn, options = {}) {
  tests.push({ name, fn, skip: options.skip, timeout: options.timeout ?? 30000 });
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
export function equal(actual, expected, message = '') {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${message ? `${message}: ` : ''}expected ${b}, got ${a}`);
}
/** The promise's rejection (fails if it resolves). */
export async function rejects(p, message) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error(`expected a rejection: ${message}`);
}
export function throws(fn, message) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error(`expected a throw: ${message}`);
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Open handles of this process (GetProcessHandleCount), once closes have settled. */
/**
 * One channel round trip, so that Wine's thread pool has started its wait threads (a first
 * channel starts them): take handle baselines after it.
 */
export async function warmUp() {
  const [t, r] = lib.channel();
  t.send(0);
  await r.recv({ timeout: 5000 });
  t.close();
  r.close();
}

export async function handleCount() {
  await sleep(50);
  return addon.handleCount();
}

/** Whether this runs under Wine (its registry key exists; scripts/test-windows.mjs also says so). */
export const underWine = process.env.WINE_VERSION !== undefined || (() => {
  try {
    return require('node:child_process').spawnSync('reg', ['query', 'HKCU\\Software\\Wine'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
})();
/** Behaviour Wine lacks that a test met (printed by run.mjs as `wine-gap` lines). */
export const wineGaps = [];

/**
 * spawn(process.execPath, args) with up to 3 attempts: under Wine 8, CreateProcess of node.exe
 * fails now and then (libuv's `spawn UNKNOWN`, about one run in three of this suite). Each retry
 * is recorded as a Wine gap with the error, so it shows in the summary; elsewhere it throws.
 */
export async function spawnNode(args, options) {
  const { spawn } = await import('node:child_process');
  for (let attempt = 1; ; attempt++) {
    try {
      return spawn(process.execPath, args, options);
    } catch (e) {
      if (!underWine || e.code !== 'UNKNOWN' || attempt === 3) throw e;
      wineGaps.push(`CreateProcess of node.exe failed once and was retried (spawn ${e.code}, errno ${e.errno})`);
      await sleep(200);
    }
  }
}
