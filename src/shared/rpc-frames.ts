/**
 * The RPC wire protocol as both ends check it: frame types, the checks a frame from an untrusted
 * peer goes through, and the limits on what crosses (codes, messages, issues). Used by the client
 * (src/shared/rpc-client-core.ts: main, helpers and the renderer) and the server
 * (src/main/rpc/server.ts). Imports neither Node nor Electron: it is bundled into the preload.
 *
 * Frames are ordinary messages of the channel (so handles travel in them like in any message):
 *   client → server: { rpc: 'call', id, method, input, progress?: true } | { rpc: 'cancel', id }
 *                    | { rpc: 'sub', event } | { rpc: 'unsub', event }
 *   server → client: { rpc: 'result', id, output } | { rpc: 'error', id, code, message, issues?, stack? }
 *                    | { rpc: 'progress', id, value } | { rpc: 'event', event, payload }
 * See docs/rpc.md.
 */
import { IpcError } from './errors.js';
import type { RpcIssue } from './protocol.js';

/** An RPC frame (see the module comment). */
export type Frame =
  | { rpc: 'call'; id: number; method: string; input: unknown; progress?: true }
  | { rpc: 'cancel'; id: number }
  | { rpc: 'sub' | 'unsub'; event: string }
  | { rpc: 'result'; id: number; output: unknown }
  | { rpc: 'error'; id: number; code: string; message: string; issues?: RpcIssue[]; stack?: string }
  | { rpc: 'progress'; id: number; value: unknown }
  | { rpc: 'event'; event: string; payload: unknown };

/**
 * A plain object (what a decoded frame must be): its prototype is null or a root prototype, this
 * realm's `Object.prototype` or another's (a MessagePort may deliver into another context, as the
 * preload bundle sees under a vm context). Arrays and class instances (Map, Date...) are not.
 */
export function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/** A call id: a safe integer ≥ 0. */
export function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Error codes that cross the boundary: 1 to 64 letters, digits, `_`, `-`, `.`, starting with a letter. */
export const CODE_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Longest error message sent or accepted, in characters; longer ones are cut. */
export const MAX_MESSAGE_CHARS = 8192;
/** Most issues sent or accepted with an INVALID error. */
export const MAX_ISSUES = 100;
/** Longest method or event name (as `defineProtocol` allows). */
export const MAX_NAME_CHARS = 128;

/** Cuts `s` to `max` characters, saying so. */
export function truncate(s: string, max = MAX_MESSAGE_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

/** A name from the peer as it may appear in an error message. */
export function showName(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v) : `(a ${v === null ? 'null' : typeof v})`;
}

/**
 * Issues as they may cross the boundary: `{ message, path? }` with string/number path keys only,
 * at most {@link MAX_ISSUES}. Anything else in `issues` is dropped; undefined when none is left.
 */
export function sanitizeIssues(issues: unknown): RpcIssue[] | undefined {
  if (!Array.isArray(issues)) return undefined;
  const out: RpcIssue[] = [];
  for (const issue of issues.slice(0, MAX_ISSUES)) {
    if (typeof issue !== 'object' || issue === null) continue;
    const message = (issue as { message?: unknown }).message;
    if (typeof message !== 'string') continue;
    const entry: RpcIssue = { message: truncate(message, 1024) };
    const path = (issue as { path?: unknown }).path;
    if (Array.isArray(path)) {
      const keys: Array<string | number> = [];
      for (const seg of path.slice(0, 64)) {
        const key = typeof seg === 'object' && seg !== null ? (seg as { key?: unknown }).key : seg;
        if (typeof key === 'string') keys.push(truncate(key, 256));
        else if (typeof key === 'number' && Number.isFinite(key)) keys.push(key);
        else keys.push(String(typeof key === 'symbol' ? key.toString() : '?'));
      }
      entry.path = keys;
    }
    out.push(entry);
  }
  return out.length > 0 ? out : undefined;
}

/** A MALFORMED error about a frame from the peer. */
export function malformedFrame(side: 'client' | 'server', what: string): IpcError {
  return new IpcError('MALFORMED', `the RPC ${side === 'client' ? 'server' : 'client'} sent ${what}; it was dropped`);
}

/** Throws a TypeError naming the unknown keys of `options`. */
export function checkKeys(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${what}: unknown option "${key}"; the known ones are ${known.join(', ')}`);
  }
}

/** A positive integer option, or its default. */
export function positiveInt(what: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

/**
 * The reporter of errors that belong to no call (bad frames, throwing listeners): `onError` when
 * given (what it throws is dropped), else `fallback` with a message for the first such error only.
 */
export function onceReporter(what: string, onError: ((error: Error) => void) | undefined, fallback: (message: string) => void): (error: Error) => void {
  if (onError !== undefined) {
    return (error) => {
      try {
        onError(error);
      } catch {
        /* onError must not throw; if it does, it cannot become an uncaught exception either */
      }
    };
  }
  let warned = false;
  return (error) => {
    if (warned) return;
    warned = true;
    try {
      fallback(`${what}: ${error.message} (further errors of this ${what} are not reported; pass onError to see them)`);
    } catch {
      /* nowhere to report */
    }
  };
}

/**
 * Checks the shape of a frame a client sends (what `serveToWindow` requires of every message from
 * a renderer before the server reads it): a plain object with a known `rpc`, a valid `id` for
 * `call`/`cancel`, a name of 1 to {@link MAX_NAME_CHARS} characters for `method`/`event`, no other
 * keys. Returns the first problem, or undefined when the frame is well formed. Whether the
 * method or event exists, and the input, are the server's to check.
 */
export function requestFrameProblem(frame: unknown): { message: string; path?: string[] } | undefined {
  if (!isRecord(frame)) return { message: 'not an RPC frame (a plain object with rpc: "call" | "cancel" | "sub" | "unsub")' };
  if (typeof frame.rpc !== 'string' || !Object.hasOwn(REQUEST_KEYS, frame.rpc)) {
    return { message: `unknown frame type ${showName(frame.rpc)}`, path: ['rpc'] };
  }
  const known = REQUEST_KEYS[frame.rpc]!;
  for (const key of Object.keys(frame)) {
    if (!known.includes(key)) return { message: `unexpected key ${showName(key)} in a ${frame.rpc} frame`, path: [key] };
  }
  if ((frame.rpc === 'call' || frame.rpc === 'cancel') && !isId(frame.id)) return { message: 'id must be a safe integer >= 0', path: ['id'] };
  const nameKey = frame.rpc === 'call' ? 'method' : frame.rpc === 'cancel' ? undefined : 'event';
  if (nameKey !== undefined) {
    const name = frame[nameKey];
    if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_CHARS) {
      return { message: `${nameKey} must be a string of 1 to ${MAX_NAME_CHARS} characters`, path: [nameKey] };
    }
  }
  if (frame.rpc === 'call' && frame.progress !== undefined && frame.progress !== true) return { message: 'progress must be true or absent', path: ['progress'] };
  return undefined;
}

const REQUEST_KEYS: Record<string, readonly string[]> = {
  call: ['rpc', 'id', 'method', 'input', 'progress'],
  cancel: ['rpc', 'id'],
  sub: ['rpc', 'event'],
  unsub: ['rpc', 'event'],
};
