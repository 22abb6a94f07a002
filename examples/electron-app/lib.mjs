/**
 * The library, for every file of the example (main, helpers, headless demo).
 *
 * Installed (`npm install` here, or a packaged app): the `electron-ipc-channel` dependency.
 * Run from the repository without installing this example (what `npm run demo` does): the
 * repository's own build, ../../dist/main/index.js (`npm run build:ts` at the root).
 * ELECTRON_IPC_CHANNEL_TEST_LIB may point at another build of that entry (used by tests).
 */
let lib;
try {
  lib = await import('electron-ipc-channel');
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes("'electron-ipc-channel'")) throw e;
  const override = process.env.ELECTRON_IPC_CHANNEL_TEST_LIB;
  lib = await import(override ? new URL(`file://${override}`).href : new URL('../../dist/main/index.js', import.meta.url).href);
}
const missing = ['spawnHelper', 'superviseHelper', 'connectToParent', 'channel', 'IpcFileHandle', 'lockdown', 'defineProtocol', 'rpcClient', 'serve', 'serveToWindow', 'preloadWebPreferences'].filter(
  (name) => typeof lib[name] !== 'function',
);
if (missing.length > 0) {
  throw new Error(`electron-ipc-channel does not export ${missing.join(', ')}: rebuild it (npm run build:ts at the repository root)`);
}
export default lib;
