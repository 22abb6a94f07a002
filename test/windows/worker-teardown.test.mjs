// Worker threads that end while the addon is busy or watching (issue 13: the vitest worker that
// ran test/lifecycle.test.ts died under Wine with "Unhandled exception 0x20474343", a C++
// exception escaping a thread). Each case runs in a child node.exe (fixtures/worker-teardown.mjs),
// so a crash fails the test instead of ending the suite: the child must print its JSON line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assert, equal, here, spawnNode, test } from './harness.mjs';

/**
 * Runs the fixture in a child node.exe; its last stdout line parsed, with the exit code and stderr.
 * Its stdout and stderr are files, read once it exited (as scripts/test-windows.mjs captures
 * wine's output), not pipes: under Wine a parent may see a child's 'exit' before the data the
 * child wrote to a stdout pipe (found when the JS thread is busy: 3 spawns of 20 read an empty
 * stdout at 'exit', none at 'close'), which failed this test with "exit 0, stdout ''". A child's
 * writes to a file are complete when it exits.
 */
async function runChild(mode, rounds) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eipc-worker-teardown-'));
  const outFile = path.join(dir, 'stdout.txt');
  const errFile = path.join(dir, 'stderr.txt');
  const out = fs.openSync(outFile, 'w');
  const err = fs.openSync(errFile, 'w');
  let code;
  try {
    const child = await spawnNode([path.join(here, 'fixtures', 'worker-teardown.mjs'), mode, String(rounds)], {
      stdio: ['ignore', out, err],
    });
    code = await new Promise((r) => child.on('exit', (c) => r(c)));
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  const stdout = fs.readFileSync(outFile, 'utf8');
  const stderr = fs.readFileSync(errFile, 'utf8');
  fs.rmSync(dir, { recursive: true, force: true });
  const last = stdout.trim().split('\n').pop() ?? '';
  let report = null;
  try {
    report = JSON.parse(last);
  } catch {
    // no report: the child died (its exit code and output say how)
  }
  const where = `exit ${code}, stdout ${JSON.stringify(stdout.slice(-300))}, stderr ${JSON.stringify(stderr.slice(-600))}`;
  return { code, report, where };
}

test('workers terminated inside native calls (Node-API calls failing as JS stops) do not crash the process', async () => {
  // Each worker makes channels back to back and is terminated 60-210 ms in: terminate() lands in
  // the middle of an addon call, whose Node-API calls then fail, and node-addon-api's wrapper
  // cannot throw the resulting error into JS. Without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
  // (the mingw build lacked it) it re-threw in C++, out of the worker's thread.
  const r = await runChild('busy', 30);
  assert(r.report?.ok === true, `the child must survive 30 terminated busy workers (${r.where})`);
  equal(r.code, 0, 'child exit code');
}, { timeout: 90000 });

test('workers that alone loaded the addon end with a receiver watched: no callback runs after the unload', async () => {
  // The main thread of the child never loads the addon, so Node unloads it when each worker ends;
  // a wait left registered then fired into unmapped code (page fault at OnSignal).
  const r = await runChild('workers-only', 5);
  assert(r.report?.ok === true, `the child must survive 15 workers ending with a watched receiver (${r.where})`);
  equal(r.report.addonLoadedHere, false, 'the main thread of the child did not load the addon');
  equal(r.code, 0, 'child exit code');
}, { timeout: 90000 });

test("a worker's ends are closed when it ends: its peer in the main thread sees DISCONNECTED, no handle leaks", async () => {
  // A worker connects to the main thread, sends a sender of a receiver it watches, and is
  // terminated (or exits). Its environment's ends must close with it (as descriptors do on
  // POSIX), and the main thread's write to that sender completes a read of the ended worker,
  // whose wait must be gone with its thread-safe function.
  const r = await runChild('peer', 6);
  assert(r.report !== null, `the child must report (${r.where})`);
  for (const x of r.report.results) equal(x.end, 'DISCONNECTED', `the main thread's receiver after the worker's ${x.how}`);
  const { before, after, open } = r.report.handles;
  equal(open, 0, "the child's table of pipe ends");
  // Each worker held 3 ends (9 handles: a pipe end and its two events each); allow Wine's lazy
  // thread-pool threads a little slack.
  assert(after - before <= 4, `handle count of the child ${before} -> ${after} (the workers' ends must be closed)`);
  equal(r.code, 0, 'child exit code');
}, { timeout: 120000 });
