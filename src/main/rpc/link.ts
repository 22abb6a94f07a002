/**
 * What the RPC client and server share: the link they run over (any sender/receiver pair, or an
 * endpoint such as a `Helper` or a `ParentEndpoint`), the frames of the RPC wire protocol, and the
 * checks a frame from an untrusted peer goes through.
 *
 * Frames are ordinary messages of the channel (so handles travel in them like in any message):
 *   client → server: { rpc: 'call', id, method, input, progress?: true } | { rpc: 'cancel', id }
 *                    | { rpc: 'sub', event } | { rpc: 'unsub', event }
 *   server → client: { rpc: 'result', id, output } | { rpc: 'error', id, code, message, issues?, stack? }
 *                    | { rpc: 'progress', id, value } | { rpc: 'event', event, payload }
 * See docs/rpc.md.
 */
import { IpcError } from '../../shared/errors.js';
import type { RpcIssue } from '../../shared/protocol.js';
import type { RecvOptions } from '../channel.js';
import { isHandleSource } from '../handles.js';

/** The part of an `IpcSender` an RPC link uses. */
export interface RpcSenderLike {
  send(value: unknown): void;
  /** Used for backpressure when present (`IpcSender.flush`). */
  flush?(): Promise<void>;
  close?(): unknown;
}

/** The part of an `IpcReceiver` an RPC link uses (`Helper` fits too). */
export interface RpcReceiverLike {
  recv(options?: RecvOptions): Promise<unknown>;
  close?(): unknown;
  /** Used when present so that an idle client does not keep the process alive. */
  ref?(): unknown;
  unref?(): unknown;
}

/**
 * Both directions in one object: a `Helper` (from `spawnHelper`) or a `ParentEndpoint` (from
 * `connectToParent`) fit.
 */
export interface RpcEndpointLike {
  send(value: unknown): void;
  recv(options?: RecvOptions): Promise<unknown>;
  close?(): unknown;
  readonly sender?: RpcSenderLike;
  readonly receiver?: RpcReceiverLike;
}

/**
 * An object holding both ends as `sender` and `receiver` (an `IpcServerConnection`); its
 * `close()`, when it has one, is what closes the link.
 */
export interface RpcPairLike {
  readonly sender: RpcSenderLike;
  readonly receiver: RpcReceiverLike;
  close?(): unknown;
}

/** The link as the client and server use it. */
export interface Link {
  send(frame: Frame): void;
  recv(): Promise<unknown>;
  /** Resolves when what was sent has reached the kernel (at once when the sender cannot tell). */
  flush(): Promise<void>;
  ref(on: boolean): void;
  close(): void;
}

/** An RPC frame (see the module comment). */
export type Frame =
  | { rpc: 'call'; id: number; method: string; input: unknown; progress?: true }
  | { rpc: 'cancel'; id: number }
  | { rpc: 'sub' | 'unsub'; event: string }
  | { rpc: 'result'; id: number; output: unknown }
  | { rpc: 'error'; id: number; code: string; message: string; issues?: RpcIssue[]; stack?: string }
  | { rpc: 'progress'; id: number; value: unknown }
  | { rpc: 'event'; event: string; payload: unknown };

function isFn(v: unknown): v is (...args: unknown[]) => unknown {
  return typeof v === 'function';
}

function isEndpoint(v: unknown): v is RpcEndpointLike {
  return typeof v === 'object' && v !== null && isFn((v as RpcEndpointLike).send) && isFn((v as RpcEndpointLike).recv);
}

function isPairHolder(v: unknown): v is RpcPairLike {
  if (typeof v !== 'object' || v === null) return false;
  const { sender, receiver } = v as Partial<RpcPairLike>;
  return typeof sender === 'object' && sender !== null && isFn(sender.send) && typeof receiver === 'object' && receiver !== null && isFn(receiver.recv);
}

/**
 * Reads the link arguments of `rpcClient`/`serve`: `(endpoint, ...rest)`, `(pairHolder, ...rest)`
 * or `(sender, receiver, ...rest)`. Returns the link and the arguments after it.
 */
export function linkArgs(what: string, args: unknown[]): [Link, unknown[]] {
  const [a, b] = args;
  if (isEndpoint(a)) return [endpointLink(a), args.slice(1)];
  if (isPairHolder(a)) {
    const link = pairLink(a.sender, a.receiver);
    if (isFn(a.close)) link.close = () => quietly(() => a.close!());
    return [link, args.slice(1)];
  }
  const sender = a as RpcSenderLike;
  const receiver = b as RpcReceiverLike;
  if (typeof sender !== 'object' || sender === null || !isFn(sender.send)) {
    throw new TypeError(
      `${what}: expected a sender and a receiver (IpcSender, IpcReceiver), an endpoint with send() and recv() (a Helper, a ParentEndpoint), or an object with sender and receiver (an IpcServerConnection)`,
    );
  }
  if (typeof receiver !== 'object' || receiver === null || !isFn(receiver.recv)) {
    throw new TypeError(`${what}: the argument after the sender must be a receiver (an object with recv(), such as an IpcReceiver or a Helper)`);
  }
  return [pairLink(sender, receiver), args.slice(2)];
}

function pairLink(sender: RpcSenderLike, receiver: RpcReceiverLike): Link {
  return {
    send: (frame) => sender.send(frame),
    recv: () => receiver.recv(),
    flush: () => (isFn(sender.flush) ? sender.flush() : Promise.resolve()),
    ref(on) {
      if (on) receiver.ref?.();
      else receiver.unref?.();
    },
    close() {
      quietly(() => sender.close?.());
      if (receiver !== (sender as unknown)) quietly(() => receiver.close?.());
    },
  };
}

function endpointLink(endpoint: RpcEndpointLike): Link {
  const sender = endpoint.sender;
  const receiver = endpoint.receiver;
  return {
    send: (frame) => endpoint.send(frame),
    recv: () => endpoint.recv(),
    flush: () => (sender && isFn(sender.flush) ? sender.flush() : Promise.resolve()),
    ref(on) {
      if (on) receiver?.ref?.();
      else receiver?.unref?.();
    },
    close() {
      quietly(() => endpoint.close?.());
    },
  };
}

/** Runs `f`, ignoring what it throws and what the promise it returns rejects with. */
export function quietly(f: () => unknown): void {
  try {
    const r = f();
    if (r instanceof Promise) r.catch(() => {});
  } catch {
    /* closing twice, or a close that failed: nothing to do */
  }
}

/** A plain object (what a decoded frame must be). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
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

/**
 * The reporter of errors that belong to no call (bad frames, throwing listeners): `onError` when
 * given (what it throws is dropped), else one process warning for the first such error.
 */
export function reporter(what: string, onError: ((error: Error) => void) | undefined): (error: Error) => void {
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
      process.emitWarning(`${what}: ${error.message} (further errors of this ${what} are not reported; pass onError to see them)`, {
        code: 'ELECTRON_IPC_CHANNEL_RPC',
      });
    } catch {
      /* no process warnings here */
    }
  };
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

/** Every handle inside `value` (arrays, plain objects, Maps, Sets; each object visited once). */
function handlesIn(value: unknown, found = new Set<object>(), seen = new Set<object>()): Set<object> {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (isHandleSource(v)) {
      found.add(v);
      continue;
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else for (const k of Object.keys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      if (d && 'value' in d) stack.push(d.value);
    }
  }
  return found;
}

/**
 * Closes the handles `raw` (what arrived) holds that `kept` (what a schema returned) does not: a
 * schema that strips unknown keys drops them, and nobody else would close them.
 */
export function closeDropped(raw: unknown, kept: unknown): void {
  if (raw === kept) return;
  const arrived = handlesIn(raw);
  if (arrived.size === 0) return;
  for (const h of handlesIn(kept)) arrived.delete(h);
  for (const h of arrived) quietly(() => (h as { close?: () => void }).close?.());
}
