/**
 * IpcServer's constants, option types and option checks (see ipc-server.ts for the server and
 * its handshake).
 */
import { DEFAULT_LIMITS } from '../shared/limits.js';
import type { ReceiverOptions } from './channel.js';
import type { PeerCredentials } from './native.js';

/** Tag of the handshake messages. */
export const HELLO = 'electron-ipc-channel/IpcServer';
export const VERSION = 1;

/** Limits of a connection's receiver while it reads the hello (and of the client's while it reads the answer). */
export const HANDSHAKE_LIMITS: ReceiverOptions = Object.freeze({
  maxMessageBytes: 4096,
  maxHandles: 1,
  maxDepth: 4,
  maxElements: 16,
  maxBinaries: 1,
  maxQueue: 1,
  maxSharedMemoryBytes: 1,
  maxSharedMemoryTotal: 1,
});

/** How often handed-out connections are checked for a hang-up (ms). */
export const HANG_UP_CHECK_MS = 200;
/** Connections accepted per event-loop turn at most. */
export const ACCEPT_BATCH = 32;
/** Longest refusal reason a client shows from a server. */
export const MAX_REASON = 300;

/**
 * Who may connect: fixed credentials that must all match (`SO_PEERCRED` on Linux), or a
 * function that is given the client's credentials and returns true to let it in (a throw counts
 * as false).
 */
export type PeerCheck = { pid?: number; uid?: number; gid?: number } | ((peer: PeerCredentials) => boolean);

/** Options of {@link IpcServer}. `Req` is what clients send to the server. */
export interface IpcServerOptions<Req = unknown> {
  /** Limits and schema of every client's receiver (see `ReceiverOptions`; defaults as there). */
  receiver?: ReceiverOptions<Req>;
  /** Most clients at once, queued for `accept()` or accepted and not ended (default 64). Extra clients are refused. */
  maxClients?: number;
  /** Most handshakes in progress (default 32). Extra connections are closed at once. */
  maxPending?: number;
  /** Milliseconds a client has, once connected, to send its hello (default 5000); then it is closed. */
  handshakeTimeout?: number;
  /** Which processes may connect (default: anyone who can reach the name, i.e. this uid and root). */
  peer?: PeerCheck;
}

/** Options of {@link IpcServer.accept}. */
export interface IpcServerAcceptOptions {
  /** Reject with TIMEOUT when no client is ready in time (ms). */
  timeout?: number;
  signal?: AbortSignal;
}

/** Options of {@link IpcServer.connect} (the client side). `Res` is what the server sends back. */
export interface IpcServerConnectOptions<Res = unknown> {
  /** Milliseconds to wait for the server's answer (default 10 000). */
  timeout?: number;
  signal?: AbortSignal;
  /** Limits and schema of the receiver of the server's messages. */
  receiver?: ReceiverOptions<Res>;
  /** Accept only a server process with these credentials (checked before anything is sent). */
  server?: { pid?: number; uid?: number; gid?: number };
}

export const SERVER_OPTIONS = ['receiver', 'maxClients', 'maxPending', 'handshakeTimeout', 'peer'];
export const CONNECT_OPTIONS = ['timeout', 'signal', 'receiver', 'server'];
export const ACCEPT_OPTIONS = ['timeout', 'signal'];

/** TypeError for an options object with names not in `known` (a typo would otherwise be ignored). */
export function checkOptionNames(options: unknown, known: readonly string[], where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${where}: unknown option '${key}'; the options are: ${known.join(', ')}`);
  }
}

export function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`IpcServer: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

export function credentialsMatch(want: { pid?: number; uid?: number; gid?: number }, got: PeerCredentials): boolean {
  return (want.pid === undefined || want.pid === got.pid) && (want.uid === undefined || want.uid === got.uid) && (want.gid === undefined || want.gid === got.gid);
}

export function checkPeerOption(peer: unknown, name: string): void {
  if (peer === undefined || typeof peer === 'function') return;
  if (typeof peer !== 'object' || peer === null) throw new TypeError(`${name} must be { pid?, uid?, gid? } or a function of the credentials`);
  for (const [k, v] of Object.entries(peer)) {
    if (k !== 'pid' && k !== 'uid' && k !== 'gid') throw new TypeError(`${name}: unknown field '${k}'; the fields are: pid, uid, gid`);
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) throw new TypeError(`${name}.${k} must be a non-negative integer`);
  }
}

/**
 * Receiver options with every limit given (`configure()` keeps limits that are left out);
 * RangeError for a limit that is not a positive integer, now rather than at the first client.
 */
export function fullReceiverOptions<T>(o: ReceiverOptions<T> | undefined, where: string): ReceiverOptions<T> {
  if (o !== undefined && (typeof o !== 'object' || o === null)) throw new TypeError(`${where}: receiver must be an object of receiver options`);
  const out: ReceiverOptions<T> = { ...DEFAULT_LIMITS, schema: undefined, ...o };
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof typeof DEFAULT_LIMITS>) {
    const v = out[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${where}: receiver.${key} must be a positive integer, got ${String(v)}`);
  }
  return out;
}
