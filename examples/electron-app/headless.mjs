/**
 * The file inspector without a window (`npm run demo` at the repository root): the same main
 * logic and helpers under plain Node, and a stand-in for the page: an rpcClient of the App
 * protocol over a channel pair, served with the handlers main.mjs gives serveToWindow.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lib from './lib.mjs';
import { Inspector, appHandlers } from './inspector.mjs';
import { App } from './protocol.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = await mkdtemp(path.join(tmpdir(), 'file-inspector-'));
const log = console.log;
const words = (top) => top.map(([w, n]) => `${w}(${n})`).join(' ');
const summary = (r) => `${r.bytes} bytes, ${r.lines} lines, ${r.words} words in ${r.chunks} chunks; top words: ${words(r.top)}`;

let events = [];
const inspector = new Inspector({ onEvent: (name, e) => server.emit(name, e) });
const [toMain, requests] = lib.channel();
const [toPage, replies] = lib.channel();
const server = lib.serve(App, toPage, requests, appHandlers(inspector));
const page = lib.rpcClient(App, toMain, replies, { timeout: 30_000 });
page.on('helper', (e) => events.push(e) && log(`  ${e.role} up: pid ${e.pid}`));
page.on('crash', (e) => events.push(e) && log(`  ${e.role} pid ${e.pid} ${e.how}`));
const lockdown = (l) => (l?.enforced ? `enforced (Landlock ABI ${l.abi})` : `not enforced (${l?.reason})`);

let failed = false;
try {
  log(`main pid ${process.pid}: starting helpers`);
  await inspector.start();
  const s = await page.call('status');
  log(`pids: main ${s.main}, parser ${s.parser}, indexer ${s.indexer}`);
  log(`lockdown: parser ${lockdown(s.lockdown.parser)}; ${s.probe}; indexer ${lockdown(s.lockdown.indexer)}`);
  if (new Set([s.main, s.parser, s.indexer]).size !== 3) throw new Error('expected three distinct processes');

  log('\n1. the page inspects a file: main opens it, the parser reads it, the indexer answers');
  const r1 = await page.call('inspect', { path: path.join(here, 'README.md') });
  log(`  result ${r1.name}: ${summary(r1)}`);

  log('\n2. errors reach the page with a code');
  for (const input of [{ path: path.join(dir, 'missing.txt') }, { path: 42 }]) {
    const e = await page.call('inspect', input).then(() => null, (err) => err);
    if (!e) throw new Error('expected an error');
    log(`  ${JSON.stringify(input.path)}: ${e.name} ${e.code}: ${e.message}`);
  }

  log('\n3. crash the parser in the middle of a big file; the call still completes');
  const big = path.join(dir, 'big.txt');
  const w = ['alpha', 'beta', 'gamma', 'delta', 'channel', 'sender', 'receiver'];
  const lines = [];
  for (let i = 0; i < 200_000; i++) lines.push(`${w[i % 7]} ${w[(i * 3) % 7]} line ${i % 97}`);
  await writeFile(big, lines.join('\n') + '\n');
  const crashedPid = s.parser;
  let crashed = false;
  const r2 = await page.call('inspect', { path: big }, {
    onProgress: (p) => {
      if (crashed) return;
      crashed = true;
      log(`  progress: ${p.chunks} chunks, ${p.bytes} bytes; crashing the parser`);
      void page.call('crash');
    },
  });
  log(`  result ${r2.name}: ${summary(r2)}`);
  if (r2.lines !== 200_000) throw new Error(`expected 200000 lines, got ${r2.lines}`);
  const after = await page.call('status');
  if (after.parser === crashedPid) throw new Error('the parser was not respawned');
  log(`  parser respawned as pid ${after.parser}`);

  log('\n4. the new parser serves further requests');
  const r3 = await page.call('inspect', { path: path.join(here, 'README.md') });
  log(`  result ${r3.name}: ${r3.bytes} bytes`);
  log(`\npids now: main ${after.main}, parser ${after.parser} (was ${crashedPid}), indexer ${after.indexer} (unchanged)`);
  log('demo finished: OK');
} catch (e) {
  failed = true;
  console.error(`demo failed: ${e.stack ?? e}`);
} finally {
  page.close();
  server.close();
  await inspector.close();
  await rm(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
