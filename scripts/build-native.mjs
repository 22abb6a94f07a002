#!/usr/bin/env node
// Builds the Node-API addon with node-gyp against the running Node's own headers when they are
// installed (so nothing is downloaded), else lets node-gyp fetch headers as usual.
// Usage: node scripts/build-native.mjs [--force] [--debug]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const force = args.includes('--force');
const debug = args.includes('--debug');
const built = path.join(root, 'build', debug ? 'Debug' : 'Release', 'electron_ipc_channel.node');

if (process.env.ELECTRON_IPC_CHANNEL_SKIP_BUILD) {
  console.log('electron-ipc-channel: ELECTRON_IPC_CHANNEL_SKIP_BUILD is set, not building the addon');
  process.exit(0);
}
function newestSource() {
  let newest = statSync(path.join(root, 'binding.gyp')).mtimeMs;
  // Every source below src/native, src/native/win/ included (the Windows build's sources).
  for (const f of readdirSync(path.join(root, 'src', 'native'), { recursive: true })) {
    newest = Math.max(newest, statSync(path.join(root, 'src', 'native', f)).mtimeMs);
  }
  return newest;
}
// npm runs `install` on every `npm install`: build only when asked or when the binary is missing or
// older than its sources.
if (!force && existsSync(built) && statSync(built).mtimeMs >= newestSource()) {
  console.log(`electron-ipc-channel: addon up to date at ${path.relative(root, built)} (npm run build:native rebuilds)`);
  process.exit(0);
}
// Linux (both transports), macOS (the stream transport; binding.gyp leaves the Linux-only
// sources out) and Windows (the win32 transport: binding.gyp builds src/native/win/ with MSVC;
// that build is untested, the same sources are tested under Wine by `npm run test:windows`).
const SUPPORTED = { linux: 'Linux', darwin: 'macOS', win32: 'Windows' };
if (!(process.platform in SUPPORTED)) {
  console.error(
    `electron-ipc-channel: ${process.platform === 'win32' ? 'Windows' : process.platform} is not supported yet ` +
      '(Linux and macOS are; Windows is planned); the addon was not built.',
  );
  process.exit(1);
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  const npmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  candidates.push(path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return { found: candidates.find((p) => existsSync(p)), candidates };
}

const { found: gyp, candidates } = findNodeGyp();
if (!gyp) {
  console.error(
    'electron-ipc-channel: cannot find node-gyp. Tried:\n  ' +
      candidates.join('\n  ') +
      '\nInstall it with `npm install -g node-gyp` and run `npm run build:native`.',
  );
  process.exit(1);
}

const gypArgs = [gyp, 'rebuild', `--jobs=${process.env.JOBS || 'max'}`];
if (debug) gypArgs.push('--debug');
// The headers that ship with this very Node binary: <prefix>/include/node/node_api.h.
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) && existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) {
  gypArgs.push(`--nodedir=${prefix}`);
} else {
  console.log(`electron-ipc-channel: no Node headers under ${prefix}/include/node; node-gyp will fetch them`);
}

console.log(`electron-ipc-channel: building the addon (node ${gypArgs.slice(1).join(' ')})`);
const r = spawnSync(process.execPath, gypArgs, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  const needs =
    process.platform === 'darwin'
      ? 'It needs the Xcode command line tools (a C++17 clang, make) and python3: `xcode-select --install`.\n'
      : 'It needs a C++17 compiler, make and python3 (Debian/Ubuntu: `apt-get install g++ make python3`).\n';
  console.error(`\nelectron-ipc-channel: building the native addon for ${SUPPORTED[process.platform]} failed.\n${needs}Then run \`npm run build:native\` in this package.`);
  process.exit(r.status ?? 1);
}
