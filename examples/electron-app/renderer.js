// The renderer: no Node, no require. It sees only window.inspector (send/recv/onMessage/onError).
'use strict';

const $ = (id) => document.getElementById(id);

function logEvent(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  $('events').prepend(li);
}

const api = window.inspector;
if (!api) {
  // What getBridge('inspector') from electron-ipc-channel/preload says in bundled renderers.
  logEvent('window.inspector is missing: add `exposeIpcChannels("inspector")` to your preload', 'error');
  throw new Error('window.inspector is missing');
}

const results = new Map();

function renderResult(id, r) {
  let el = results.get(id);
  if (!el) {
    el = document.createElement('div');
    el.className = 'result';
    el.dataset.testid = 'result';
    results.set(id, el);
    $('results').prepend(el);
  }
  el.replaceChildren();
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = r.name;
  el.append(name);
  const line = document.createElement('div');
  if (r.done) {
    line.dataset.testid = 'result-summary';
    line.textContent = `${r.bytes} bytes · ${r.lines} lines · ${r.words} words · ${r.chunks} chunks`;
    const top = document.createElement('div');
    top.className = 'top';
    top.dataset.testid = 'result-top';
    top.textContent = r.top.map(([w, n]) => `${w} ${n}`).join(' · ');
    el.append(line, top);
  } else {
    line.className = 'progress';
    line.textContent = `parsing… ${r.chunks} chunks, ${r.bytes} bytes, ${r.words} words so far`;
    el.append(line);
  }
}

api.onMessage((e) => {
  switch (e.type) {
    case 'pids':
      $('pid-main').textContent = e.main;
      $('pid-parser').textContent = e.parser ?? '–';
      $('pid-indexer').textContent = e.indexer ?? '–';
      break;
    case 'helper':
      $(`lock-${e.role}`).textContent = e.lockdown?.enforced ? `locked down (Landlock ABI ${e.lockdown.abi})` : 'not locked down';
      logEvent(`${e.role} up, pid ${e.pid}${e.probe ? ` (${e.probe})` : ''}`);
      break;
    case 'opened':
      logEvent(`main opened ${e.name} and handed it to the parser`);
      break;
    case 'progress':
      renderResult(e.id, { ...e, done: false });
      break;
    case 'result':
      renderResult(e.id, { ...e, done: true });
      logEvent(`result for ${e.name}`);
      break;
    case 'crash':
      logEvent(`${e.role} pid ${e.pid} ${e.how}`, 'error');
      break;
    case 'recovered':
      logEvent(`${e.role} recovered: pid ${e.pid}, ${e.resubmitted} file(s) sent again`);
      break;
    case 'error':
      logEvent(`error: ${e.message}`, 'error');
      break;
  }
});
api.onError((r) => logEvent(`main rejected a message: ${r.message}`, 'error'));

$('open').addEventListener('click', () => {
  const path = $('path').value.trim();
  if (path) api.send({ op: 'open', path });
});
$('path').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') $('open').click();
});
$('choose').addEventListener('click', () => api.send({ op: 'open' }));
$('crash').addEventListener('click', () => api.send({ op: 'crash' }));
api.send({ op: 'pids' });
