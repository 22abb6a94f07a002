/**
 * The file inspector without a window: the same helpers and main logic under plain Node
 * (`npm run demo` at the repository root). Prints the pids, the results, the crash and the
 * recovery. With --quiet only the final summary; --json prints events as JSON lines.
 */
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Inspector } from './inspector.mjs';

const json = process.argv.includes('--json');
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = await mkdtemp(path.join(tmpdir(), 'file-inspector-'));

const log = (...a) => {
  if (!json) console.log(...a);
};
const waiters = [];
const events = [];
function waitFor(pred, what, ms = 20_000) {
  const hit = events.find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
  });
}

function show(e) {
  if (json) return console.log(JSON.stringify(e));
  switch (e.type) {
    case 'helper':
      log(`  ${e.role} helper up: pid ${e.pid}, lockdown ${e.lockdown?.enforced ? `enforced (Landlock ABI ${e.lockdown.abi})` : `not enforced${e.lockdown?.reason ? ` (${e.lockdown.reason})` : ''}`}${e.probe ? `; ${e.probe}` : ''}`);
      break;
    case 'opened':
      log(`  main opened ${e.name} and handed its descriptor to the parser (file #${e.id})`);
      break;
    case 'result':
      log(`  result #${e.id} ${e.name}: ${e.bytes} bytes, ${e.lines} lines, ${e.words} words in ${e.chunks} chunks; top words: ${e.top.map(([w, n]) => `${w}(${n})`).join(' ')}`);
      break;
    case 'crash':
      log(`  ${e.role} pid ${e.pid} ${e.how}`);
      break;
    case 'recovered':
      log(`  ${e.role} respawned as pid ${e.pid}; ${e.resubmitted} unfinished file(s) sent again`);
      break;
    case 'error':
      log(`  error: ${e.message}`);
      break;
  }
}

const inspector = new Inspector({
  onEvent(e) {
    events.push(e);
    if (e.type !== 'progress') show(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  },
});

let failed = false;
try {
  log(`main pid ${process.pid}: starting helpers`);
  await inspector.start();
  const pids = inspector.pids();
  log(`pids: main ${pids.main}, parser ${pids.parser}, indexer ${pids.indexer}`);
  if (new Set(Object.values(pids)).size !== 3) throw new Error('expected three distinct processes');

  log('\n1. inspect a file');
  const readme = path.join(here, 'README.md');
  const id1 = await inspector.inspect(readme);
  await waitFor((e) => e.type === 'result' && e.id === id1, 'the first result');

  log('\n2. crash the parser in the middle of a big file, and recover');
  const big = path.join(dir, 'big.txt');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'channel', 'sender', 'receiver'];
  const lines = [];
  for (let i = 0; i < 200_000; i++) lines.push(`${words[i % 7]} ${words[(i * 3) % 7]} line ${i % 97}`);
  await writeFile(big, lines.join('\n') + '\n');
  const crashedPid = inspector.pids().parser;
  const id2 = await inspector.inspect(big);
  await waitFor((e) => e.type === 'progress' && e.id === id2, 'progress on the big file');
  inspector.crashParser();
  await waitFor((e) => e.type === 'crash' && e.pid === crashedPid, 'the crash');
  const recovered = await waitFor((e) => e.type === 'recovered', 'the recovery');
  const result = await waitFor((e) => e.type === 'result' && e.name === 'big.txt', 'the result of the big file after recovery');
  if (result.lines !== 200_000) throw new Error(`expected 200000 lines, got ${result.lines}`);
  if (recovered.pid === crashedPid) throw new Error('the parser was not respawned');

  log('\n3. the new parser serves further requests');
  const id3 = await inspector.inspect(readme);
  await waitFor((e) => e.type === 'result' && e.id === id3, 'a result from the new parser');
  const after = inspector.pids();
  log(`\npids now: main ${after.main}, parser ${after.parser} (was ${crashedPid}), indexer ${after.indexer} (unchanged)`);
  log('demo finished: OK');
} catch (e) {
  failed = true;
  console.error(`demo failed: ${e.stack ?? e}`);
} finally {
  await inspector.close();
  await rm(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
