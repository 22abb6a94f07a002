import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { 'main/index': 'src/main/index.ts', 'shared/index': 'src/shared/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    // One file per entry: native.ts locates the addon relative to its own file.
    splitting: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    outDir: 'dist',
    external: ['electron'],
  },
  {
    // A sandboxed preload cannot require modules: bundle everything but `electron` into one file.
    entry: { 'preload/index': 'src/preload/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'chrome120',
    platform: 'browser',
    outDir: 'dist',
    external: ['electron'],
    noExternal: [/^(?!electron$).*/],
  },
]);
