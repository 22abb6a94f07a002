// The win32 stage of `npm run test:windows` (scripts/test-windows.mjs): the vitest contract files
// of vitest.config.ts, run by Wine's node.exe against the win32 transport and the Windows addon.
//
// It runs under node.exe with a Windows build of vitest (node_modules/.cache/windows/vitest-tree:
// vitest's bundler needs its win32 native bindings), so this file imports nothing: `vitest/config`
// from the checkout would load the Linux tree's vite. Every test file's `import ... from 'vitest'`
// is pointed at that same Windows vitest (EIPC_WIN_VITEST_TREE), one copy for runner and tests.
//
// Which files: every CONTRACT file of vitest.config.ts (read from its text, so a new contract file
// runs here too), minus EXCLUDED below, each with its reason, printed in the summary. Tests that
// cannot run on Windows inside the files that do are skipped with `skipOnWin32('reason')`
// (test/helpers.ts); the summary lists them with those reasons. Run time: CI allows this stage
// about 10 minutes on 2 cores; see docs/windows.md for the measured time.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));

/** Contract files that do not run under the win32 stage, and why (printed in the summary). */
const VICTIM = 'the containment harness (test/fixtures/containment/victim.mjs) counts /proc/self/fd and spawns `true` (POSIX)';
const PYTHON = 'its hostile peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS, memfds)';
export const EXCLUDED: Record<string, string> = {
  'test/pool.test.ts': 'the pool suite checks Linux specifics (zero-copy views of received segments, segments forged with memfds and sockets through the Linux half of the addon); the pool on win32 is tested by test/windows/pool.test.mjs (one process, a child node.exe, a killed holder, a raw peer forging segments)',
  'test/pool.copy.test.ts': 'the same suite as test/pool.test.ts in copy mode (see there)',
  'test/payloads.copy.test.ts': 'ELECTRON_IPC_CHANNEL_COPY_SHM changes nothing on win32 (received shared memory is always a copy): test/payloads.test.ts runs the same suite',
  'test/shm.fuzz.test.ts': 'fuzzes memfds with random seals through the Linux half of the addon',
  'test/bench-smoke.test.ts': 'the benchmark drivers (bench/) use the Linux addon and POSIX paths; the benchmark is Linux-only',
  'test/containment/attach.test.ts': `${PYTHON}; and ${VICTIM}`,
  'test/containment/codec-revivers.test.ts': `${PYTHON}; and ${VICTIM}`,
  'test/containment/framing-partials.test.ts': `${PYTHON}; and ${VICTIM}`,
  'test/containment/native-blocking-close.test.ts': `${PYTHON} (and FUSE, SO_LINGER); and ${VICTIM}`,
  'test/containment/native-pidfd.test.ts': `${PYTHON} (SO_PASSPIDFD, SCM_PIDFD); and ${VICTIM}`,
  'test/containment/native-stream-desync.test.ts': `${PYTHON}; and ${VICTIM}`,
  'test/containment/sender-errors.test.ts': `${PYTHON} (SO_PASSRIGHTS); and ${VICTIM}`,
  'test/containment/server-sweep.test.ts': `${PYTHON}, planting POSIX one-shot server directories; and ${VICTIM}`,
  'test/containment/shm-limits.test.ts': `${PYTHON} (sealed sparse memfds); and ${VICTIM}`,
  'test/containment/switch.test.ts': `${PYTHON}; and ${VICTIM}`,
  'test/containment/harness.test.ts': VICTIM,
  'test/containment/handles.test.ts': VICTIM,
  'test/containment/mux-close.test.ts': 'the containment harness (test/fixtures/containment/victim.mjs) counts /proc/self/fd and spawns `true` (POSIX); test/windows/mux.test.mjs checks handle counts after closing on win32',
  'test/containment/mux.test.ts': VICTIM,
  'test/containment/mux-review.test.ts': VICTIM,
  'test/containment/native-worker-terminate.test.ts': VICTIM,
  'test/containment/worker-termination.test.ts': VICTIM,
};

/** The CONTRACT list of vitest.config.ts, globs expanded (test/containment/**). */
function contractFiles(): string[] {
  const text = readFileSync(path.join(root, 'vitest.config.ts'), 'utf8');
  const block = /const CONTRACT = \[([\s\S]*?)\];/.exec(text);
  if (!block) throw new Error('vitest.win32.config.ts: no `const CONTRACT = [...]` in vitest.config.ts (its list of contract files); update the reader here');
  const entries = [...block[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
  const files: string[] = [];
  for (const e of entries) {
    if (!e.includes('*')) {
      files.push(e);
      continue;
    }
    // Only the `dir/**/*.test.ts` form is used.
    const dir = e.slice(0, e.indexOf('/**'));
    for (const f of readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
      if (f.endsWith('.test.ts')) files.push(`${dir}/${f.replace(/\\/g, '/')}`);
    }
  }
  return [...new Set(files)].sort();
}

const contract = contractFiles();
const only = process.env.EIPC_WIN32_ONLY?.split(',').filter(Boolean);
const include = only ?? contract.filter((f) => !(f in EXCLUDED));

interface CaseLike {
  fullName: string;
  module: { moduleId: string };
  meta(): { win32Skip?: string };
  options: { mode: string };
  result(): { state: string; note?: string; errors?: ReadonlyArray<{ message?: string }> };
}
interface ModuleLike {
  moduleId: string;
  state(): string;
  errors(): ReadonlyArray<{ message?: string }>;
  children: { allTests(): Iterable<CaseLike> };
}

/**
 * Prints `SUMMARY {json}` last (scripts/test-windows.mjs reads it): files and tests passed, failed
 * and skipped, each skipped test with its reason and each excluded file with its reason.
 */
const summaryReporter = {
  started: 0,
  onTestRunStart() {
    this.started = Date.now();
  },
  onTestRunEnd(modules: ReadonlyArray<ModuleLike>, unhandled: ReadonlyArray<{ message?: string }>, reason: string) {
    const rel = (id: string) => path.relative(root, id).replace(/\\/g, '/');
    const tests = { passed: 0, failed: 0, skipped: 0 };
    const files = { passed: 0, failed: 0 };
    const skipped: { test: string; reason: string }[] = [];
    const failed: { test: string; error: string }[] = [];
    for (const m of modules) {
      let bad = m.state() === 'failed' || m.errors().length > 0;
      for (const t of m.children.allTests()) {
        const r = t.result();
        const name = `${rel(t.module.moduleId)} > ${t.fullName}`;
        if (r.state === 'passed') tests.passed++;
        else if (r.state === 'failed') {
          tests.failed++;
          bad = true;
          failed.push({ test: name, error: (r.errors?.[0]?.message ?? '').split('\n')[0]!.slice(0, 300) });
        } else {
          tests.skipped++;
          skipped.push({ test: name, reason: t.meta().win32Skip ?? r.note ?? 'skipped by its own condition (it.skipIf), as on the Linux project where that condition holds: see the test name' });
        }
      }
      if (bad) files.failed++;
      else files.passed++;
    }
    const summary = {
      reason,
      files,
      tests,
      skipped,
      failed,
      excluded: Object.entries(EXCLUDED).map(([file, why]) => ({ file, reason: why })),
      unhandledErrors: unhandled.map((e) => (e.message ?? String(e)).split('\n')[0]),
      ms: Date.now() - this.started,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    };
    console.log(`SUMMARY ${JSON.stringify(summary)}`);
  },
};

const tree = process.env.EIPC_WIN_VITEST_TREE;

export default {
  resolve: tree ? { alias: [{ find: /^vitest$/, replacement: `${tree}/vitest/dist/index.js` }] } : {},
  test: {
    name: 'win32',
    include,
    // Each file in its own node.exe (tests count the process's handles and spawn children); one
    // at a time: Wine's wineserver is one more process on the 2 cores.
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default', summaryReporter],
    env: { ELECTRON_IPC_CHANNEL_TRANSPORT: 'win32' },
  },
};
