/**
 * Parser helper: reads files it is handed (as IpcFileHandle, it cannot open any itself once
 * locked down) and streams per-chunk counts straight to the indexer over a channel main created.
 *
 * From main:   { op: 'wire', toIndexer: IpcSender }   (first message)
 *              { op: 'parse', id, name, file: IpcFileHandle } | { op: 'crash' }
 * To main:     { op: 'ready', pid, lockdown, probe } | { op: 'parsed', id, chunks, bytes }
 * To indexer:  { op: 'chunk', id, name, index, bytes, lines, words, counts } | { op: 'done', id, name, chunks }
 */
import { openSync, readSync } from 'node:fs';
import lib from './lib.mjs';

const CHUNK = 64 * 1024;
const TOP_PER_CHUNK = 50;

const parent = lib.connectToParent();
const wire = await parent.recv();
if (wire?.op !== 'wire') throw new Error('parser: expected the wire message first');
const toIndexer = wire.toIndexer;

// From here on this process can read only descriptors it already has or is given.
const report = typeof lib.lockdown === 'function' ? lib.lockdown() : { enforced: false, reason: 'lockdown() is not exported by this build' };
let probe;
try {
  openSync('/etc/hostname', 'r');
  probe = 'opening /etc/hostname: allowed';
} catch (e) {
  probe = `opening /etc/hostname: ${e.code}`;
}
parent.send({ op: 'ready', pid: process.pid, lockdown: { enforced: report.enforced, abi: report.abi, reason: report.reason }, probe });

const WORD = /[\p{L}\p{N}']+/gu;

async function parse({ id, name, file }) {
  const buf = Buffer.alloc(CHUNK);
  let position = 0;
  let index = 0;
  let carry = '';
  let lines = 0;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  try {
    for (;;) {
      const n = readSync(file.fd, buf, 0, CHUNK, position);
      const last = n === 0;
      let text = carry + decoder.decode(buf.subarray(0, n), { stream: !last });
      // A word cut at the chunk boundary is counted with the next chunk.
      carry = '';
      if (!last) {
        const m = /[\p{L}\p{N}']+$/u.exec(text);
        if (m) {
          carry = m[0];
          text = text.slice(0, m.index);
        }
      }
      const counts = new Map();
      let words = 0;
      for (const w of text.toLowerCase().match(WORD) ?? []) {
        words++;
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
      const chunkLines = text.split('\n').length - 1;
      lines += chunkLines;
      const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP_PER_CHUNK);
      if (n > 0 || words > 0) {
        toIndexer.send({ op: 'chunk', id, name, index: index++, bytes: n, lines: chunkLines, words, counts: top });
      }
      position += n;
      if (last) break;
      // Let messages from main (a crash request) in between chunks.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    file.close();
  }
  toIndexer.send({ op: 'done', id, name, chunks: index, bytes: position });
  parent.send({ op: 'parsed', id, chunks: index, bytes: position, lines });
}

// Files are parsed one after the other; the loop keeps reading so a crash request is seen at once.
let work = Promise.resolve();
for await (const msg of parent) {
  if (msg.op === 'parse') {
    work = work.then(() => parse(msg)).catch((e) => parent.send({ op: 'failed', id: msg.id, message: e.message }));
  } else if (msg.op === 'crash') {
    process.kill(process.pid, 'SIGKILL');
  }
}
await work;
process.exit(0);
