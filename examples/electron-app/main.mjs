/**
 * Electron main process of the file inspector. Run with `npm start` (after `npm install`).
 * The page talks to main only through `window.inspector`, the channel the bundled preload exposes,
 * and only in the App protocol (protocol.mjs): serveToWindow checks every call's input here.
 */
import { app, BrowserWindow, dialog } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lib from './lib.mjs';
import { Inspector, appHandlers } from './inspector.mjs';
import { App } from './protocol.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let inspector;

async function createWindow() {
  const win = new BrowserWindow({
    width: 980,
    height: 760,
    title: 'File Inspector',
    // The library's bundled preload exposes window.inspector; sandboxed and context-isolated.
    webPreferences: lib.preloadWebPreferences('inspector'),
  });

  inspector = new Inspector({ onEvent: (name, payload) => server.emit(name, payload) });
  const choose = async () => {
    const r = await dialog.showOpenDialog(win, { properties: ['openFile'] });
    return r.canceled ? undefined : r.filePaths[0];
  };
  // One server per document: a reload gets a fresh one; the page's calls in flight reject.
  const server = lib.serveToWindow(App, win, appHandlers(inspector, { choose }), { name: 'inspector' });

  const started = inspector.start(); // status() answers with what is up so far
  await win.loadFile(path.join(here, 'index.html'));
  await started;
}

app.whenReady().then(createWindow);

app.on('window-all-closed', () => {
  const closing = inspector?.close();
  inspector = undefined;
  Promise.resolve(closing).finally(() => app.quit());
});
