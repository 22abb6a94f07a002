/**
 * The three protocols of the app, in one module that main, the helpers and the page import.
 *
 *   App      page -> main     served by main with serveToWindow, called with rendererRpc
 *   Parser   main -> parser   served by parser.mjs, called with rpcClient
 *   Indexer  main -> indexer  served by indexer.mjs, called with rpcClient
 *
 * The page is untrusted, so every App input has a Standard Schema (written by hand here so the
 * example has no dependency; zod, valibot or arktype schemas work the same). `{}` is what
 * `method()` / `event()` return: typed in TypeScript, not validated (main spawned those helpers).
 * This file is the plain `{ methods, events }` that `defineProtocol()` returns, so a page without
 * a bundler can import it; main checks all three with `defineProtocol` (inspector.mjs).
 */

/** A Standard Schema from a function that returns the value or an issue. */
function schema(check) {
  return {
    '~standard': {
      version: 1,
      vendor: 'file-inspector',
      validate(value) {
        const r = check(value);
        return r.issue ? { issues: [r.issue] } : { value: r.value };
      },
    },
  };
}

const MAX_PATH = 4096;
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{ path?: string }`: no path means "ask with a dialog". */
const InspectInput = schema((v) => {
  if (!isObject(v)) return { issue: { message: 'expected an object' } };
  if (v.path === undefined) return { value: {} };
  if (typeof v.path !== 'string' || v.path.length === 0 || v.path.length > MAX_PATH || v.path.includes('\0')) {
    return { issue: { message: `expected a path of 1 to ${MAX_PATH} characters`, path: ['path'] } };
  }
  return { value: { path: v.path } };
});

/** What the page shows for a file: checked in the page (main could be buggy, never trusted blindly). */
const Summary = schema((v) =>
  isObject(v) && typeof v.name === 'string' && Number.isSafeInteger(v.bytes) && Array.isArray(v.top)
    ? { value: v }
    : { issue: { message: 'expected a file summary' } },
);

/** `{ chunks, bytes, words }` so far. */
const Progress = schema((v) =>
  isObject(v) && Number.isSafeInteger(v.chunks) && Number.isSafeInteger(v.bytes) && Number.isSafeInteger(v.words)
    ? { value: v }
    : { issue: { message: 'expected { chunks, bytes, words }' } },
);

export const App = Object.freeze({
  methods: {
    inspect: { input: InspectInput, output: Summary, progress: Progress },
    crash: {}, // kill the parser (main respawns it)
    status: {}, // -> { main, parser, indexer } (pids), lockdown: { parser, indexer }, probe
  },
  events: {
    helper: {}, // { role, pid }: a helper (re)started
    crash: {}, // { role, pid, how }
  },
});

export const Parser = Object.freeze({
  methods: {
    hello: {}, // -> { pid, lockdown, probe }
    wire: {}, // { toIndexer: IpcSender }: where chunk counts go (the indexer, without main)
    parse: {}, // { id, name, file: IpcFileHandle } -> { chunks, bytes }
    crash: {}, // SIGKILLs itself
  },
  events: {},
});

export const Indexer = Object.freeze({
  methods: {
    hello: {}, // -> { pid, lockdown }
    wire: {}, // { fromParser: IpcReceiver }: the channel from a (new) parser
    collect: {}, // { id } -> { id, name, bytes, lines, words, chunks, top }; progress { chunks, bytes, words }
  },
  events: {},
});
