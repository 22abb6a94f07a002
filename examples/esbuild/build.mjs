// Bundles src/main.js into out/main.cjs, as an Electron app bundles its main process.
//
//   node build.mjs               electron-ipc-channel bundled in; at run time the addon is found
//                                through node_modules/electron-ipc-channel (if the bundle runs
//                                inside the project), next to the bundle, or from
//                                ELECTRON_IPC_CHANNEL_ADDON=/absolute/path/to/electron_ipc_channel.node
//   node build.mjs --copy-addon  the same, and copies the addon next to the bundle (out/)
//   node build.mjs --external    electron-ipc-channel left out of the bundle: it is loaded from
//                                node_modules at run time (ship node_modules/electron-ipc-channel)
//   node build.mjs --external --esm
//                                the same as an ES module, out/main.mjs (ESM output needs the
//                                package external: its CommonJS code uses require and __filename)
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';

const external = process.argv.includes('--external');
const copyAddon = process.argv.includes('--copy-addon');
const esm = process.argv.includes('--esm');
if (esm && !external) throw new Error('--esm needs --external (see docs/bundling.md)');
const outfile = esm ? 'out/main.mjs' : 'out/main.cjs';

await esbuild.build({
  entryPoints: ['src/main.js'],
  outfile,
  bundle: true,
  platform: 'node',
  format: esm ? 'esm' : 'cjs',
  target: 'node20',
  // `electron` is provided by Electron itself; the library is external only when asked.
  external: ['electron', ...(external ? ['electron-ipc-channel'] : [])],
  logLevel: 'warning',
});

if (copyAddon) {
  const pkg = path.dirname(createRequire(import.meta.url).resolve('electron-ipc-channel/package.json'));
  mkdirSync('out', { recursive: true });
  copyFileSync(path.join(pkg, 'build', 'Release', 'electron_ipc_channel.node'), path.join('out', 'electron_ipc_channel.node'));
}

console.log(`${outfile} (${external ? 'electron-ipc-channel external' : 'electron-ipc-channel bundled'}${copyAddon ? ', addon copied next to it' : ''})`);
