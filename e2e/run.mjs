/**
 * End-to-end tests of the example app (examples/electron-app) in a real Electron, driven by
 * Playwright: open a file, see the results, crash the parser and see it recover, helper pids
 * distinct from main, malformed renderer messages refused, the bridge surviving a reload.
 *
 * `npm run e2e` (builds the library first). The Electron binary comes from an installed
 * `electron` package that has its binary (node_modules/electron/dist) or from
 * ELECTRON_OVERRIDE_DIST_PATH. Without a display it re-runs itself under `xvfb-run`. When
 * something is missing it prints ONE line saying why and exits 0 (skipped).
 * The same scenarios run without Electron in test/electron-headless.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const appDir = path.join(root, 'examples', 'electron-app');
const require = createRequire(import.meta.url);

function skip(why) {
  console.log(`e2e skipped: ${why}`);
  process.exit(0);
}

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Electron binary, without triggering the electron package's download. */
function findElectron() {
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  if (override) {
    const bin = path.join(override, process.platform === 'darwin' ? 'Electron.app/Contents/MacOS/Electron' : 'electron');
    if (!executable(bin)) skip(`ELECTRON_OVERRIDE_DIST_PATH is set but ${bin} is not an executable`);
    return bin;
  }
  let pkgDir;
  try {
    pkgDir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    skip('no Electron binary: the electron package is not installed and ELECTRON_OVERRIDE_DIST_PATH is not set');
  }
  const pathFile = path.join(pkgDir, 'path.txt');
  const bin = existsSync(pathFile) ? path.join(pkgDir, 'dist', readFileSync(pathFile, 'utf8').trim()) : undefined;
  if (!bin || !executable(bin)) {
    skip(`no Electron binary: ${path.relative(root, pkgDir)} has no dist/ (its download did not run) and ELECTRON_OVERRIDE_DIST_PATH is not set`);
  }
  return bin;
}

function hasDisplay() {
  return process.platform !== 'linux' || Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
}

const electronBin = findElectron();
if (!existsSync(path.join(root, 'dist', 'main', 'index.js')) || !existsSync(path.join(root, 'dist', 'preload', 'index.cjs'))) {
  skip('the library is not built: run `npm run build:ts` (npm run e2e does)');
}
if (!hasDisplay()) {
  if (process.env.EIC_E2E_UNDER_XVFB) skip('xvfb-run started but no DISPLAY is set');
  const which = spawnSync('sh', ['-c', 'command -v xvfb-run'], { encoding: 'utf8' });
  if (which.status !== 0) skip('no display (DISPLAY is not set) and xvfb-run is not installed');
  const r = spawnSync('xvfb-run', ['-a', '-s', '-screen 0 1280x1024x24', process.execPath, fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, EIC_E2E_UNDER_XVFB: '1' },
  });
  process.exit(r.status ?? 1);
}

const { _electron } = await import('playwright-core');
process.on('uncaughtException', (e) => {
  console.error(`e2e: ${e?.stack ?? e}`);
  process.exit(1);
});

// ---- tiny runner: sequential scenarios sharing one app, a hard timeout for the whole run
const HARD_TIMEOUT = 120_000;
const hard = setTimeout(() => {
  console.error(`e2e: hard timeout after ${HARD_TIMEOUT / 1000} s`);
  process.exit(1);
}, HARD_TIMEOUT);
hard.unref();

let failures = 0;
async function scenario(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}\n  ${String(e?.stack ?? e).split('\n').join('\n  ')}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const dir = mkdtempSync(path.join(tmpdir(), 'eic-e2e-'));
const small = path.join(dir, 'small.txt');
writeFileSync(small, 'one fish two fish\nred fish blue fish\n');
const big = path.join(dir, 'big.txt');
writeFileSync(big, 'lorem ipsum dolor sit amet\n'.repeat(400_000));

// Chromium refuses to run as root with its sandbox; the renderer keeps `sandbox: true` semantics.
const args = [appDir];
if (process.getuid?.() === 0) args.unshift('--no-sandbox');

let app;
try {
  app = await _electron.launch({ executablePath: electronBin, args, cwd: appDir, timeout: 30_000 });
} catch (e) {
  rmSync(dir, { recursive: true, force: true });
  console.error(`e2e: could not launch ${electronBin} ${args.join(' ')}: ${e.message}`);
  process.exit(1);
}
const output = [];
app.process().stdout?.on('data', (d) => output.push(String(d)));
app.process().stderr?.on('data', (d) => output.push(String(d)));

try {
  const page = await app.firstWindow();
  page.setDefaultTimeout(20_000);
  const text = (id) => page.locator(`[data-testid="${id}"]`).textContent();
  const waitPid = async (id, not) =>
    page.waitForFunction(
      ([sel, prev]) => {
        const t = document.querySelector(sel)?.textContent ?? '';
        return /^\d+$/.test(t) && t !== prev;
      },
      [`[data-testid="${id}"]`, not ?? ''],
    );

  await scenario('the renderer is sandboxed and sees only window.inspector', async () => {
    const r = await page.evaluate(() => ({
      require: typeof require,
      process: typeof process,
      api: Object.keys(window.inspector ?? {}).sort(),
    }));
    assert(r.require === 'undefined' && r.process === 'undefined', `renderer has Node: ${JSON.stringify(r)}`);
    assert(r.api.join() === 'isConnected,onError,onMessage,recv,send', `window.inspector: ${r.api}`);
  });

  await scenario('helpers run as utility processes with pids distinct from main', async () => {
    await waitPid('pid-parser');
    await waitPid('pid-indexer');
    const mainPid = await app.evaluate(() => process.pid);
    const shown = { main: Number(await text('pid-main')), parser: Number(await text('pid-parser')), indexer: Number(await text('pid-indexer')) };
    assert(shown.main === mainPid, `main pid shown ${shown.main}, real ${mainPid}`);
    assert(new Set(Object.values(shown)).size === 3, `pids not distinct: ${JSON.stringify(shown)}`);
    const metrics = await app.evaluate(({ app: a }) => a.getAppMetrics().map((m) => ({ pid: m.pid, type: m.type })));
    for (const role of ['parser', 'indexer']) {
      const m = metrics.find((x) => x.pid === shown[role]);
      assert(m?.type === 'Utility', `${role} pid ${shown[role]} is not a utility process: ${JSON.stringify(metrics)}`);
    }
  });

  await scenario('open a file and see the results', async () => {
    await page.fill('[data-testid="path"]', small);
    await page.click('[data-testid="open"]');
    const summary = page.locator('[data-testid="result"]', { hasText: 'small.txt' }).locator('[data-testid="result-summary"]');
    await summary.waitFor();
    const s = await summary.textContent();
    assert(/37 bytes · 2 lines · 8 words/.test(s), `summary: ${s}`);
    const top = await page.locator('[data-testid="result"]', { hasText: 'small.txt' }).locator('[data-testid="result-top"]').textContent();
    assert(top.startsWith('fish 4'), `top words: ${top}`);
  });

  await scenario('main refuses a malformed renderer message and says why', async () => {
    await page.evaluate(() => window.inspector.send({ op: 'exec', cmd: 'rm -rf /' }));
    await page.locator('#events li', { hasText: 'main rejected a message' }).waitFor();
  });

  await scenario('crash the parser mid-file; main respawns it and the file completes', async () => {
    const before = await text('pid-parser');
    await page.fill('[data-testid="path"]', big);
    await page.click('[data-testid="open"]');
    await page.locator('[data-testid="result"]', { hasText: 'big.txt' }).waitFor();
    await page.click('[data-testid="crash"]');
    await page.locator('#events li', { hasText: `parser pid ${before}` }).waitFor();
    await page.locator('#events li', { hasText: 'parser recovered' }).waitFor();
    await waitPid('pid-parser', before);
    const after = await text('pid-parser');
    assert(after !== before, 'parser pid did not change');
    const summary = page.locator('[data-testid="result"]', { hasText: 'big.txt' }).locator('[data-testid="result-summary"]').first();
    await summary.waitFor({ timeout: 30_000 });
    assert(/400000 lines/.test(await summary.textContent()), 'big file result is wrong');
    const alive = await app.evaluate((_, pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    }, Number(before));
    assert(!alive, `old parser ${before} is still alive`);
  });

  await scenario('after a reload the new document gets a fresh channel', async () => {
    await page.reload();
    await waitPid('pid-parser');
    await page.fill('[data-testid="path"]', small);
    await page.click('[data-testid="open"]');
    await page.locator('[data-testid="result-summary"]').first().waitFor();
  });
} finally {
  await app.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}

if (failures > 0) {
  console.log(`e2e: ${failures} scenario(s) failed; app output:\n${output.join('')}`);
  process.exit(1);
}
console.log('e2e: all scenarios passed');
