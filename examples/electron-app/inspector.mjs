/**
 * The app logic, shared by the Electron main process (main.mjs) and the headless demo
 * (headless.mjs): two helpers, a channel between them that main creates, file handles to the
 * locked-down parser, and recovery when the parser dies.
 *
 * Events given to `onEvent` (and forwarded to the renderer by main.mjs):
 *   { type: 'helper', role, pid, lockdown, probe? }      a helper is up
 *   { type: 'opened', id, name, path }                   main opened a file and handed it over
 *   { type: 'progress', id, name, chunks, bytes, words } the indexer got chunks
 *   { type: 'result', id, name, bytes, lines, words, chunks, top }
 *   { type: 'crash', role, pid, how }                    a helper died
 *   { type: 'recovered', role, pid, resubmitted }        the parser was respawned
 *   { type: 'error', message }
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lib from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PARSER = path.join(here, 'parser.mjs');
const INDEXER = path.join(here, 'indexer.mjs');

export class Inspector {
  /** @param {{ onEvent: (event: object) => void, spawnOptions?: object }} options */
  constructor({ onEvent, spawnOptions = {} }) {
    this.onEvent = onEvent;
    this.spawnOptions = { timeout: 15_000, ...spawnOptions };
    this.parser = undefined;
    this.indexer = undefined;
    this.nextId = 1;
    /** Files sent to the parser and not reported yet: id -> path (re-sent after a crash). */
    this.pending = new Map();
    this.closing = false;
    this.restarting = undefined;
  }

  pids() {
    return { main: process.pid, parser: this.parser?.pid, indexer: this.indexer?.pid };
  }

  async start() {
    this.indexer = await lib.spawnHelper(INDEXER, { ...this.spawnOptions, serviceName: 'file-inspector indexer' });
    const ready = await this.indexer.recv({ timeout: 10_000 });
    this.onEvent({ type: 'helper', role: 'indexer', pid: this.indexer.pid, lockdown: ready.lockdown });
    void this.pumpIndexer(this.indexer);
    await this.startParser();
  }

  /** Spawns a parser and wires a fresh channel from it to the indexer; main is not in the middle. */
  async startParser() {
    const parser = await lib.spawnHelper(PARSER, { ...this.spawnOptions, serviceName: 'file-inspector parser' });
    const [toIndexer, fromParser] = lib.channel();
    parser.send({ op: 'wire', toIndexer });
    toIndexer.close(); // the parser has its own copy
    this.indexer.send({ op: 'wire', fromParser }); // moves the receiver to the indexer
    const ready = await parser.recv({ timeout: 10_000 });
    this.parser = parser;
    this.onEvent({ type: 'helper', role: 'parser', pid: parser.pid, lockdown: ready.lockdown, probe: ready.probe });
    void this.pumpParser(parser);
    void parser.exited.then((status) => this.onParserExit(parser, status));
    return parser;
  }

  async pumpParser(parser) {
    try {
      for await (const m of parser) {
        if (m.op === 'failed') this.onEvent({ type: 'error', message: `parsing file #${m.id} failed: ${m.message}` });
      }
    } catch (e) {
      if (!this.closing) this.onEvent({ type: 'error', message: `parser: ${e.message}` });
    }
  }

  async pumpIndexer(indexer) {
    try {
      for await (const m of indexer) {
        if (m.op === 'progress') this.onEvent({ type: 'progress', ...omitOp(m) });
        else if (m.op === 'result') {
          this.pending.delete(m.id);
          this.onEvent({ type: 'result', ...omitOp(m) });
        }
        // 'aborted' needs nothing: onParserExit re-sends every pending file.
      }
    } catch (e) {
      if (!this.closing) this.onEvent({ type: 'error', message: `indexer: ${e.message}` });
    }
    if (!this.closing) this.onEvent({ type: 'crash', role: 'indexer', pid: indexer.pid, how: describe(await indexer.exited) });
  }

  async onParserExit(parser, status) {
    if (this.closing || this.parser !== parser) return;
    this.onEvent({ type: 'crash', role: 'parser', pid: parser.pid, how: describe(status) });
    this.restarting = (async () => {
      try {
        const fresh = await this.startParser();
        const resubmit = [...this.pending];
        this.pending.clear();
        for (const [, file] of resubmit) await this.handOver(file);
        this.onEvent({ type: 'recovered', role: 'parser', pid: fresh.pid, resubmitted: resubmit.length });
      } catch (e) {
        this.onEvent({ type: 'error', message: `could not restart the parser: ${e.message}` });
      } finally {
        this.restarting = undefined;
      }
    })();
  }

  /** Opens `file` here (the parser cannot) and hands the descriptor to the parser. */
  async inspect(file) {
    if (this.restarting) await this.restarting;
    return this.handOver(file);
  }

  async handOver(file) {
    const fh = await open(file, 'r');
    let handle;
    try {
      handle = lib.IpcFileHandle.from(fh);
    } finally {
      await fh.close();
    }
    const id = this.nextId++;
    this.pending.set(id, file);
    this.onEvent({ type: 'opened', id, name: path.basename(file), path: file });
    try {
      this.parser.send({ op: 'parse', id, name: path.basename(file), file: handle });
    } finally {
      handle.close(); // the parser got its own descriptor
    }
    return id;
  }

  /** Kills the parser the hard way; onParserExit respawns it. */
  crashParser() {
    this.parser?.send({ op: 'crash' });
  }

  async close() {
    this.closing = true;
    await Promise.all([this.parser?.close(), this.indexer?.close()]);
  }
}

function omitOp({ op, ...rest }) {
  void op;
  return rest;
}

function describe(status) {
  return status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
}
