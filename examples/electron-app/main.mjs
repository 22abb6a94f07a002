/**
 * Electron main process of the file inspector. Run with `npm start` (after `npm install`).
 * The renderer talks to main only through `window.inspector`, a channel exposed by the bridge.
 */
import { app, BrowserWindow, dialog } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lib from './lib.mjs';
import { Inspector } from './inspector.mjs';
import { Request } from './protocol.mjs';

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

  const bridge = lib.exposeToWindow(win, {
    name: 'inspector',
    schema: Request, // the renderer is untrusted: every message is checked here
    onMessage: (req) => {
      handle(req).catch((e) => bridge.send({ type: 'error', message: e.message }));
    },
  });

  inspector = new Inspector({
    onEvent(event) {
      if (win.isDestroyed()) return;
      bridge.send(event);
      if (event.type === 'helper') bridge.send({ type: 'pids', ...inspector.pids() });
    },
  });

  async function handle(req) {
    switch (req.op) {
      case 'open': {
        let file = req.path;
        if (file === undefined) {
          const r = await dialog.showOpenDialog(win, { properties: ['openFile'] });
          if (r.canceled || r.filePaths.length === 0) return;
          file = r.filePaths[0];
        }
        await inspector.inspect(file);
        break;
      }
      case 'crash':
        inspector.crashParser();
        break;
      case 'pids':
        bridge.send({ type: 'pids', ...inspector.pids() });
        break;
    }
  }

  await win.loadFile(path.join(here, 'index.html'));
  try {
    await inspector.start();
  } catch (e) {
    bridge.send({ type: 'error', message: `the helpers could not start: ${e.message}` });
  }
}

app.whenReady().then(createWindow);

app.on('window-all-closed', () => {
  const closing = inspector?.close();
  inspector = undefined;
  Promise.resolve(closing).finally(() => app.quit());
});
