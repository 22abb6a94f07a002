// The Windows contract suite: `node.exe test\windows\run.mjs`, under Wine (scripts/test-windows.mjs).
// Imports every test/windows/*.test.mjs, runs their tests in order, prints `ok`, `FAIL` or
// `skip` (with the reason) per test and `SUMMARY {json}` last; exits 1 on any failure.
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { here, tests, wineGaps } from './harness.mjs';

const only = process.argv[2];
for (const f of readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort()) {
  if (!only || f.includes(only)) await import(pathToFileURL(path.join(here, f)).href);
}
const started = Date.now();
const results = [];
for (const t of tests) {
  if (t.skip) {
    results.push({ name: t.name, status: 'skip', reason: t.skip });
    console.log(`skip ${t.name} (${t.skip})`);
    continue;
  }
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([
      t.fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${t.timeout} ms`)), t.timeout);
      }),
    ]);
    results.push({ name: t.name, status: 'pass' });
    console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name: t.name, status: 'fail', error: String(e?.stack ?? e) });
    console.log(`FAIL ${t.name}: ${e?.stack ?? e}`);
  } finally {
    clearTimeout(timer);
  }
}
for (const g of wineGaps) console.log(`wine-gap ${g}`);
const count = (s) => results.filter((r) => r.status === s).length;
const summary = {
  run: results.length - count('skip'),
  passed: count('pass'),
  failed: count('fail'),
  skipped: results.filter((r) => r.status === 'skip').map((r) => ({ name: r.name, reason: r.reason })),
  wineGaps,
  ms: Date.now() - started,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
};
console.log(`SUMMARY ${JSON.stringify(summary)}`);
process.exitCode = summary.failed === 0 && summary.run > 0 ? 0 : 1;
// On success nothing may keep the loop alive: the process exits by itself (a hang is a failure,
// caught by the script's timeout). A failed test may have left endpoints open: leave now.
if (process.exitCode !== 0) process.exit();
