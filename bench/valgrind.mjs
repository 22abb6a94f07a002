// What bench/instructions.mjs and bench/mux-instructions.mjs share: their command line, and
// counting the user-space instructions of one case run by valgrind (cachegrind without cache
// simulation; the script re-runs itself as `<script> run <case> <n> <lib>` under it).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository's root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** This process's arguments. */
export const args = process.argv.slice(2);
/** The value after `--name`, or `dflt`. */
export const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

/** Instructions counted by valgrind for `script run c n lib` (the whole process, start-up included). */
export function countInstructions(script, c, n, lib) {
  const r = spawnSync(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--single-threaded', fileURLToPath(script), 'run', c, String(n), lib],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`case ${c} failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  return Number(m[1].replaceAll(',', ''));
}
