/**
 * The app logic in main, shared by the Electron main process (main.mjs) and the headless demo
 * (headless.mjs): two helpers it talks to with rpcClient, a channel between them that it creates,
 * file handles for the locked-down parser, and recovery when the parser dies (superviseHelper).
 * `appHandlers()` is what main serves to the page (the App protocol).
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import lib from './lib.mjs';
import { App, Indexer, Parser } from './protocol.mjs';

for (const p of [App, Parser, Indexer]) lib.defineProtocol(p); // TypeError if a definition is wrong

const helper = (name) => new URL(`./${name}.mjs`, import.meta.url);

export class Inspector {
  /** @param {{ onEvent?: (name: 'helper' | 'crash', payload: object) => void, spawnOptions?: object }} options */
  constructor({ onEvent = () => {}, spawnOptions = {} } = {}) {
    this.onEvent = onEvent;
    this.spawnOptions = { timeout: 15_000, ...spawnOptions };
    this.nextId = 1;
    /** Files handed to a parser and not collected yet: id -> { file, name, sentTo }. */
    this.pending = new Map();
  }

  async start() {
    this.indexerHelper = await lib.spawnHelper(helper('indexer'), { ...this.spawnOptions, serviceName: 'file-inspector indexer' });
    this.indexer = lib.rpcClient(Indexer, this.indexerHelper);
    this.indexerInfo = await this.indexer.call('hello', undefined, { timeout: 10_000 });
    this.onEvent('helper', { role: 'indexer', pid: this.indexerHelper.pid });
    // The parser is restarted when it dies; onStart wires each new instance.
    this.parsers = await lib.superviseHelper(helper('parser'), {
      ...this.spawnOptions,
      serviceName: 'file-inspector parser',
      restart: { backoff: { initialMs: 50 } },
      onStart: (h) => this.wireParser(h),
      onExit: (e) => {
        const how = e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
        if (e.cause !== 'closed') this.onEvent('crash', { role: 'parser', pid: e.pid, how });
      },
    });
  }

  /** A new parser: a fresh channel from it to the indexer (main is not in the middle), then the unfinished files. */
  async wireParser(h) {
    const parser = lib.rpcClient(Parser, h);
    const [toIndexer, fromParser] = lib.channel();
    await this.indexer.call('wire', { fromParser }); // the receiver moves to the indexer
    await parser.call('wire', { toIndexer });
    toIndexer.close(); // the parser has its own copy
    this.parserInfo = await parser.call('hello', undefined, { timeout: 10_000 });
    this.parser = parser;
    this.onEvent('helper', { role: 'parser', pid: h.pid });
    for (const [id, job] of this.pending) if (job.sentTo !== parser) void this.handOver(id, job).catch(() => {});
  }

  /** Parses `file` in the helpers; resolves with its summary. Throws what open() throws (ENOENT...). */
  async inspect(file, { onProgress, signal } = {}) {
    const id = this.nextId++;
    const job = { file, name: path.basename(file) };
    this.pending.set(id, job);
    try {
      await this.handOver(id, job);
      return await this.indexer.call('collect', { id }, { onProgress, signal });
    } finally {
      this.pending.delete(id);
    }
  }

  /** Opens the file here (the parser cannot) and hands its descriptor to the current parser. */
  async handOver(id, job) {
    const fh = await open(job.file, 'r');
    let file;
    try {
      file = lib.IpcFileHandle.from(fh);
    } finally {
      await fh.close();
    }
    job.sentTo = this.parser;
    try {
      // If this parser dies first, wireParser sends the file to the next one.
      this.parser.call('parse', { id, name: job.name, file }).catch(() => {});
    } finally {
      file.close(); // the parser got its own descriptor
    }
  }

  crashParser() {
    this.parser?.call('crash').catch(() => {});
  }

  status() {
    return {
      main: process.pid,
      parser: this.parsers?.helper?.pid,
      indexer: this.indexerHelper?.pid,
      lockdown: { parser: this.parserInfo?.lockdown, indexer: this.indexerInfo?.lockdown },
      probe: this.parserInfo?.probe,
    };
  }

  async close() {
    await this.parsers?.close();
    this.indexer?.close();
    await this.indexerHelper?.exited;
  }
}

/** The handlers main serves to the page. `choose()` asks for a file when the page names none. */
export function appHandlers(inspector, { choose } = {}) {
  return {
    inspect: async ({ path: file }, { progress, signal }) => {
      file ??= await choose?.();
      if (!file) throw Object.assign(new Error('no file was chosen'), { code: 'NO_FILE' });
      return inspector.inspect(file, { onProgress: progress, signal });
    },
    crash: () => inspector.crashParser(),
    status: () => inspector.status(),
  };
}
