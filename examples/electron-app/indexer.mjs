/**
 * Indexer helper: aggregates what parsers stream to it and reports totals and top words to main.
 * Each parser (the first one and every respawned one) comes with a new receiver.
 *
 * From main:    { op: 'wire', fromParser: IpcReceiver }
 * To main:      { op: 'ready', pid, lockdown } | { op: 'progress', id, name, chunks, bytes, words }
 *               | { op: 'result', id, name, bytes, lines, words, chunks, top } | { op: 'aborted', ids }
 */
import lib from './lib.mjs';

const parent = lib.connectToParent();
const report = typeof lib.lockdown === 'function' ? lib.lockdown() : { enforced: false, reason: 'lockdown() is not exported by this build' };
parent.send({ op: 'ready', pid: process.pid, lockdown: { enforced: report.enforced, abi: report.abi, reason: report.reason } });

async function drain(fromParser) {
  const files = new Map();
  for await (const m of fromParser) {
    let f = files.get(m.id);
    if (!f) files.set(m.id, (f = { name: m.name, chunks: 0, bytes: 0, lines: 0, words: 0, counts: new Map() }));
    if (m.op === 'chunk') {
      f.chunks++;
      f.bytes += m.bytes;
      f.lines += m.lines;
      f.words += m.words;
      for (const [w, n] of m.counts) f.counts.set(w, (f.counts.get(w) ?? 0) + n);
      parent.send({ op: 'progress', id: m.id, name: f.name, chunks: f.chunks, bytes: f.bytes, words: f.words });
    } else if (m.op === 'done') {
      files.delete(m.id);
      const top = [...f.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
      parent.send({ op: 'result', id: m.id, name: f.name, bytes: f.bytes, lines: f.lines, words: f.words, chunks: f.chunks, top });
    }
  }
  // The parser is gone (every sender closed): what it had not finished is lost.
  if (files.size > 0) parent.send({ op: 'aborted', ids: [...files.keys()] });
}

for await (const msg of parent) {
  if (msg.op === 'wire') void drain(msg.fromParser);
}
process.exit(0);
