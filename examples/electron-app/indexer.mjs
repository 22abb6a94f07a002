/**
 * Indexer helper: serves the Indexer protocol to main. It sums what parsers stream to it (each
 * parser, the first and every respawned one, comes with a new receiver) and answers
 * `collect({ id })` with the file's totals and top words once the file is done, with progress per
 * chunk on the way.
 */
import lib from './lib.mjs';
import { Indexer } from './protocol.mjs';

const report = lib.lockdown();
const waiting = new Map(); // id -> { resolve, progress } of the collect() call for that file
const inProgress = new Map(); // id -> totals so far of a file the parser is still streaming
const finished = new Map(); // id -> result that came before its collect() call

async function drain(fromParser) {
  const files = new Map(); // id -> totals so far, from this parser
  const totals = (id, name) => {
    let f = files.get(id);
    if (!f) files.set(id, (f = { id, name, bytes: 0, lines: 0, words: 0, chunks: 0, counts: new Map() }));
    return f;
  };
  for await (const m of fromParser) {
    if (m.op === 'chunk') {
      const f = totals(m.id, m.name);
      f.chunks++;
      f.bytes += m.bytes;
      f.lines += m.lines;
      f.words += m.words;
      for (const [w, n] of m.counts) f.counts.set(w, (f.counts.get(w) ?? 0) + n);
      inProgress.set(m.id, f);
      waiting.get(m.id)?.progress({ chunks: f.chunks, bytes: f.bytes, words: f.words });
    } else if (m.op === 'done') {
      const { counts, ...f } = files.get(m.id) ?? totals(m.id, '');
      files.delete(m.id);
      inProgress.delete(m.id);
      const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
      const w = waiting.get(m.id);
      if (w) w.resolve({ ...f, top });
      else finished.set(m.id, { ...f, top });
    }
  }
  // That parser is gone: what it had not finished starts again from zero when main re-sends it.
  for (const id of files.keys()) inProgress.delete(id);
}

const server = lib.serve(Indexer, lib.connectToParent(), {
  hello: () => ({ pid: process.pid, lockdown: { enforced: report.enforced, abi: report.abi, reason: report.reason } }),
  wire: ({ fromParser }) => void drain(fromParser),
  collect: ({ id }, { progress, signal }) =>
    new Promise((resolve, reject) => {
      // The parser streams straight to us, so its chunks may come before this call: report where
      // the file stands now, then every later chunk.
      const done = finished.get(id);
      if (done) {
        progress({ chunks: done.chunks, bytes: done.bytes, words: done.words });
        return resolve(done);
      }
      const sofar = inProgress.get(id);
      if (sofar) progress({ chunks: sofar.chunks, bytes: sofar.bytes, words: sofar.words });
      waiting.set(id, { resolve, progress });
      signal.addEventListener('abort', () => reject(signal.reason));
    }).finally(() => {
      waiting.delete(id);
      finished.delete(id);
    }),
});

await server.done;
process.exit(0);
