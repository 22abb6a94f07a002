/**
 * Parser helper: serves the Parser protocol to main. It calls lockdown() first, so it reads only
 * the files main hands it (IpcFileHandle), and streams per-chunk counts straight to the indexer
 * over a channel main created (main is not in the middle of that traffic).
 *
 * To the indexer:  { op: 'chunk', id, name, bytes, lines, words, counts } | { op: 'done', id }
 */
import { openSync, readSync } from 'node:fs';
import lib from './lib.mjs';
import { Parser } from './protocol.mjs';

const CHUNK = 64 * 1024;
const TOP_PER_CHUNK = 50;
const WORD = /[\p{L}\p{N}']+/gu;

// From here on this process can read only descriptors it already has or is given.
const report = lib.lockdown();
let probe;
try {
  openSync('/etc/hostname', 'r');
  probe = 'opening /etc/hostname: allowed';
} catch (e) {
  probe = `opening /etc/hostname: ${e.code}`;
}

let toIndexer;
let queue = Promise.resolve(); // files are parsed one after the other

const server = lib.serve(Parser, lib.connectToParent(), {
  hello: () => ({ pid: process.pid, lockdown: { enforced: report.enforced, abi: report.abi, reason: report.reason }, probe }),
  wire: (input) => {
    toIndexer = input.toIndexer;
  },
  parse: (input) => {
    const run = queue.then(() => parse(input));
    queue = run.catch(() => {});
    return run;
  },
  crash: () => process.kill(process.pid, 'SIGKILL'),
});

async function parse({ id, name, file }) {
  const buf = Buffer.alloc(CHUNK);
  const decoder = new TextDecoder();
  let position = 0;
  let chunks = 0;
  let carry = '';
  try {
    for (;;) {
      const n = readSync(file.fd, buf, 0, CHUNK, position);
      const last = n === 0;
      let text = carry + decoder.decode(buf.subarray(0, n), { stream: !last });
      carry = '';
      if (!last) {
        // A word cut at the chunk boundary is counted with the next chunk.
        const m = /[\p{L}\p{N}']+$/u.exec(text);
        if (m) [carry, text] = [m[0], text.slice(0, m.index)];
      }
      const counts = new Map();
      let words = 0;
      for (const w of text.toLowerCase().match(WORD) ?? []) {
        words++;
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
      const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP_PER_CHUNK);
      if (n > 0 || words > 0) {
        toIndexer.send({ op: 'chunk', id, name, bytes: n, lines: text.split('\n').length - 1, words, counts: top });
        chunks++;
      }
      position += n;
      if (last) break;
      await new Promise((resolve) => setImmediate(resolve)); // lets a crash request in
    }
  } finally {
    file.close();
  }
  toIndexer.send({ op: 'done', id });
  return { chunks, bytes: position };
}

await server.done; // main closed the link
process.exit(0);
