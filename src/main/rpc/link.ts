/**
 * What the RPC client and server share in Node: the link they run over (any sender/receiver
 * pair, or an endpoint such as a `Helper` or a `ParentEndpoint`), the process-warning reporter and
 * the handle bookkeeping. The frames and their checks are in src/shared/rpc-frames.ts (re-exported
 * here), shared with the renderer's client. See docs/rpc.md.
 */
import type { RecvOptions } from '../channel.js';
import { isHandleSource } from '../handles.js';
import { onceReporter } from '../../shared/rpc-frames.js';
import type { Frame } from '../../shared/rpc-frames.js';

export {
  CODE_PATTERN,
  MAX_ISSUES,
  MAX_MESSAGE_CHARS,
  checkKeys,
  isId,
  isRecord,
  malformedFrame,
  positiveInt,
  sanitizeIssues,
  showName,
  truncate,
} from '../../shared/rpc-frames.js';
export type { Frame } from '../../shared/rpc-frames.js';

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

/**
 * The reporter of errors that belong to no call (bad frames, throwing listeners): `onError` when
 * given (what it throws is dropped), else one process warning for the first such error.
 */
export function reporter(what: string, onError: ((error: Error) => void) | undefined): (error: Error) => void {
  return onceReporter(what, onError, (message) => process.emitWarning(message, { code: 'ELECTRON_IPC_CHANNEL_RPC' }));
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
