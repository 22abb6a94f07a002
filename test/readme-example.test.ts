// The README's "Example" section, kept runnable: examples/readme/{parent,child}.mjs must be exactly
// the README's two code blocks, and running parent.mjs must print what its console.log comment
// says. Needs `npm run build:ts` (inside the repository 'electron-ipc-channel' resolves to
// dist/ through Node's package self-reference).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

const exampleDir = path.join(root, 'examples', 'readme');
const HARD_TIMEOUT = 20_000;

/** The ```js blocks of the README's "## Example" section, by the file named on their first line. */
function readmeBlocks(): Map<string, string> {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Example\n');
  expect(start, 'README.md has no "## Example" section').toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = new Map<string, string>();
  for (const m of section.matchAll(/```js\n([\s\S]*?)```/g)) {
    const code = m[1]!;
    const name = /^\/\/ (\S+\.mjs)\n/.exec(code)?.[1];
    expect(name, `a code block of the README example does not start with "// <file>.mjs":\n${code}`).toBeDefined();
    blocks.set(name!, code);
  }
  return blocks;
}

function run(file: string, cwd: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  // Own process group, so that a hang kills the parent and the child it forked.
  const child = spawn(process.execPath, [file], { cwd, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      reject(new Error(`${file} did not finish within ${HARD_TIMEOUT} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, HARD_TIMEOUT);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

describe('README example', () => {
  it('examples/readme holds exactly the code of the README', () => {
    const blocks = readmeBlocks();
    expect([...blocks.keys()].sort()).toEqual(['child.mjs', 'parent.mjs']);
    for (const [name, code] of blocks) {
      expect(readFileSync(path.join(exampleDir, name), 'utf8'), `examples/readme/${name} differs from README.md`).toBe(code);
    }
  });

  it('parent.mjs runs from any directory and prints what the README says', async () => {
    expect(existsSync(path.join(root, 'dist', 'main', 'index.js')), 'dist/ is missing: run `npm run build:ts`').toBe(true);
    const parent = readmeBlocks().get('parent.mjs')!;
    const printed = parent
      .split('\n')
      .map((line) => /^console\.log\(.*\); \/\/ (.+)$/.exec(line)?.[1])
      .filter((x) => x !== undefined);
    expect(printed.length, 'parent.mjs in the README has no `console.log(...); // output` line').toBeGreaterThan(0);

    const r = await run(path.join(exampleDir, 'parent.mjs'), tmpdir());
    expect(r.stderr).toBe('');
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect(r.stdout).toBe(printed.map((p) => `${p}\n`).join(''));
  });
});
