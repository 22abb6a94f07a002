// The page (an ES module): no Node, no require. It calls main in the App protocol with
// rendererRpc over window.inspector, the channel the library's preload exposes.
import { App } from './protocol.mjs';

/** rendererRpc from electron-ipc-channel/preload (a self-contained ES module; a bundler would import it by name). */
async function loadRendererRpc() {
  for (const url of ['./node_modules/electron-ipc-channel/dist/preload/index.js', '../../dist/preload/index.js']) {
    try {
      return (await import(url)).rendererRpc;
    } catch {
      // not installed here: the repository's build
    }
  }
  throw new Error('electron-ipc-channel/preload not found: npm install here, or npm run build:ts at the repository root');
}

const $ = (id) => document.getElementById(id);

function logEvent(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  $('events').prepend(li);
}

if (!window.inspector) {
  // What getBridge('inspector') from electron-ipc-channel/preload says in bundled renderers.
  logEvent('window.inspector is missing: add `exposeIpcChannels("inspector")` to your preload', 'error');
  throw new Error('window.inspector is missing');
}
// Frames main refuses (a malformed message) are reported here, and to the call they belonged to.
const rpc = (await loadRendererRpc())(App, 'inspector', { onError: (e) => logEvent(`main rejected a message: ${e.message}`, 'error') });

const results = new Map();
function renderResult(key, r) {
  let el = results.get(key);
  if (!el) {
    el = document.createElement('div');
    el.className = 'result';
    el.dataset.testid = 'result';
    results.set(key, el);
    $('results').prepend(el);
  }
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = r.name;
  const line = document.createElement('div');
  const top = document.createElement('div');
  if (r.top) {
    line.dataset.testid = 'result-summary';
    line.textContent = `${r.bytes} bytes · ${r.lines} lines · ${r.words} words · ${r.chunks} chunks`;
    top.className = 'top';
    top.dataset.testid = 'result-top';
    top.textContent = r.top.map(([w, n]) => `${w} ${n}`).join(' · ');
  } else {
    line.className = 'progress';
    line.textContent = `parsing… ${r.chunks} chunks, ${r.bytes} bytes, ${r.words} words so far`;
  }
  el.replaceChildren(name, line, top);
}

async function refreshStatus() {
  const s = await rpc.call('status');
  $('pid-main').textContent = s.main;
  $('pid-parser').textContent = s.parser ?? '–';
  $('pid-indexer').textContent = s.indexer ?? '–';
  for (const role of ['parser', 'indexer']) {
    const l = s.lockdown[role];
    $(`lock-${role}`).textContent = l ? (l.enforced ? `locked down (Landlock ABI ${l.abi})` : 'not locked down') : '';
  }
}

let nextKey = 1;
async function inspect(path) {
  const key = nextKey++;
  const name = path?.split('/').pop() ?? 'chosen file';
  try {
    const r = await rpc.call('inspect', path ? { path } : {}, { onProgress: (p) => renderResult(key, { name, ...p }) });
    renderResult(key, r);
    logEvent(`result for ${r.name}`);
  } catch (e) {
    results.get(key)?.remove();
    if (e.code !== 'NO_FILE') logEvent(`${e.code}: ${e.message}`, 'error');
  }
}

const crashed = new Set();
rpc.on('helper', (e) => {
  logEvent(crashed.delete(e.role) ? `${e.role} recovered: pid ${e.pid}` : `${e.role} up, pid ${e.pid}`);
  void refreshStatus();
});
rpc.on('crash', (e) => {
  crashed.add(e.role);
  logEvent(`${e.role} pid ${e.pid} ${e.how}`, 'error');
});

$('open').addEventListener('click', () => {
  const path = $('path').value.trim();
  if (path) void inspect(path);
});
$('path').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') $('open').click();
});
$('choose').addEventListener('click', () => void inspect(undefined));
$('crash').addEventListener('click', () => void rpc.call('crash'));
void refreshStatus();
