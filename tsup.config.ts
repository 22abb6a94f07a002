import { readdirSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'tsup';
import type { Options } from 'tsup';
import type { Plugin } from 'esbuild';

type TsupPlugin = NonNullable<Options['plugins']>[number];

/**
 * One implementation per process. The CommonJS files are the implementation; the ESM entries
 * (`dist/main/index.js`, `dist/shared/index.js`) are generated wrappers that import their `.cjs`
 * sibling and re-export its names, so an app (or two of its dependencies) that loads both
 * formats gets the same classes, the same `IpcError`, the same addon instance. The modules of
 * src/shared are built one file each (dist/shared/lib/**.cjs) and both entries require them from
 * there instead of bundling a copy each (see `sharedModules`), so the main and the shared entry
 * share them too (`IpcError`, `RpcError`...).
 *
 * `keepNames`: classes keep their names in the bundle (esbuild would otherwise rename a class
 * that refers to itself, e.g. `IpcSender` to `_IpcSender`), and messages and `findHandle` use
 * `constructor.name`.
 */

const SHARED_DIR = path.resolve('src/shared');
const SHARED_LIB = path.resolve('dist/shared/lib');

/** Every module of src/shared but its entry, by output name: { 'shared/lib/codec/format': 'src/shared/codec/format.ts', ... }. */
function sharedLibEntries(): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const rel of readdirSync(SHARED_DIR, { recursive: true, encoding: 'utf8' })) {
    // A subfolder (codec/) is one module's parts: bundled into that module's file, so calls
    // between the parts stay plain calls (not getters of another file's exports).
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts') || rel === 'index.ts' || rel.includes(path.sep)) continue;
    const posix = rel.split(path.sep).join('/');
    entries[`shared/lib/${posix.slice(0, -3)}`] = `src/shared/${posix}`;
  }
  return entries;
}

/**
 * esbuild plugin: an import of a module of src/shared (but its index) becomes a `require` of that
 * module's file in dist/shared/lib (external) instead of a bundled copy. `outDirOf(importer)` is
 * the directory of the output file that the importing source ends up in.
 */
function sharedModules(outDirOf: (importer: string) => string): Plugin {
  return {
    name: 'shared-modules',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        const target = path.resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
        const rel = path.relative(SHARED_DIR, target);
        if (rel.startsWith('..') || path.isAbsolute(rel) || rel === 'index.ts' || rel.includes(path.sep)) return undefined;
        const out = path.join(SHARED_LIB, rel.replace(/\.ts$/, '.cjs'));
        const spec = path.relative(outDirOf(args.importer), out).split(path.sep).join('/');
        return { path: spec.startsWith('.') ? spec : `./${spec}`, external: true };
      });
    },
  };
}

/**
 * tsup plugin: replaces the ESM output of an entry by a wrapper over its CommonJS sibling, listing
 * the entry's named exports (from esbuild's metafile), so both formats share one implementation.
 */
const esmWrapsCjs: TsupPlugin = {
  name: 'esm-wraps-cjs',
  renderChunk(_code, info) {
    if (this.format !== 'esm' || !info.entryPoint || !info.path.endsWith('.js')) return undefined;
    const names = info.exports ?? [];
    if (names.includes('default')) throw new Error(`${info.entryPoint}: a default export cannot be re-exported by the ESM wrapper`);
    const cjs = `./${path.basename(info.path).replace(/\.js$/, '.cjs')}`;
    info.map = null; // nothing of the ESM bundle is left to map
    return {
      code:
        `// ESM entry: the implementation is the CommonJS build next to this file, so that a process\n` +
        `// loading both formats has one copy of every class (see tsup.config.ts).\n` +
        `import core from '${cjs}';\n\n` +
        `export const {\n${names.map((n) => `  ${n},\n`).join('')}} = core;\n`,
    };
  },
};

/**
 * tsup plugin: `keepNames` names every function through esbuild's `__name(fn, "name")` helper,
 * which defines a `name` property, and runs each time a closure is created: per message, on the
 * hot paths (a pending receive alone creates three). Only classes need it (see above); functions
 * without a `prototype` (arrows, methods) are passed through unnamed, which costs one property
 * read (round trip in one process, send + await recv: ~20 % less time).
 */
const ESBUILD_NAME_HELPER = 'var __name = (target, value) => __defProp(target, "name", { value, configurable: true });';
const CLASS_ONLY_NAME_HELPER = 'var __name = (target, value) => target.prototype === undefined ? target : __defProp(target, "name", { value, configurable: true });';
const namesForClassesOnly: TsupPlugin = {
  name: 'names-for-classes-only',
  renderChunk(code) {
    if (!code.includes(ESBUILD_NAME_HELPER)) return undefined;
    return { code: code.replace(ESBUILD_NAME_HELPER, CLASS_ONLY_NAME_HELPER) };
  },
};

const node: Options = {
  format: ['esm', 'cjs'],
  dts: true,
  shims: true,
  keepNames: true,
  // One file per entry: native.ts locates the addon relative to its own file.
  splitting: false,
  sourcemap: true,
  clean: false,
  target: 'node20',
  outDir: 'dist',
  external: ['electron'],
  plugins: [namesForClassesOnly, esmWrapsCjs],
};

/**
 * The codec has no class whose name anyone reads, and runs per message: built without keepNames,
 * whose `__name()` call on each closure the encoder and decoder make per message cost ~20 % of
 * an encode + decode (bench, codec case).
 */
const HOT_SHARED = ['shared/lib/codec'];

function pick(entries: Record<string, string>, keep: (name: string) => boolean): Record<string, string> {
  return Object.fromEntries(Object.entries(entries).filter(([name]) => keep(name)));
}

const sharedLib: Options = {
  // The shared modules' one copy, one file each (internal; the entries' .d.ts declare the types).
  ...node,
  format: ['cjs'],
  dts: false,
  plugins: [namesForClassesOnly],
  esbuildPlugins: [sharedModules(() => SHARED_LIB)],
};

export default defineConfig([
  { ...sharedLib, entry: pick(sharedLibEntries(), (name) => !HOT_SHARED.includes(name)) },
  { ...sharedLib, entry: pick(sharedLibEntries(), (name) => HOT_SHARED.includes(name)), keepNames: false },
  { ...node, entry: { 'shared/index': 'src/shared/index.ts' }, esbuildPlugins: [sharedModules(() => path.resolve('dist/shared'))] },
  { ...node, entry: { 'main/index': 'src/main/index.ts' }, esbuildPlugins: [sharedModules(() => path.resolve('dist/main'))] },
  {
    // A sandboxed preload cannot require modules: bundle everything but `electron` into one file.
    entry: { 'preload/index': 'src/preload/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    keepNames: true,
    plugins: [namesForClassesOnly],
    sourcemap: true,
    clean: false,
    target: 'chrome120',
    platform: 'browser',
    outDir: 'dist',
    external: ['electron'],
    noExternal: [/^(?!electron$).*/],
  },
]);
