/**
 * The options of receivers and of `recv()`, and their checks (see channel.ts, which exports the
 * option types).
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { DEFAULT_LIMITS } from '../../shared/limits.js';
import type { Limits } from '../../shared/limits.js';
import { checkTimeout } from '../handles.js';

/** Limits and checks a receiver applies to what its peers send. */
export interface ReceiverOptions<T = unknown> {
  /** Largest message body in bytes (default 128 MiB). Bigger messages are refused with TOO_LARGE. */
  maxMessageBytes?: number;
  /** Most descriptors in one message (default 1024). */
  maxHandles?: number;
  /** Deepest nesting of a decoded value (default 256). */
  maxDepth?: number;
  /** Most values in one decoded message (default 1,000,000). */
  maxElements?: number;
  /** Most binary sections (typed arrays, `ArrayBuffer`s, `DataView`s) in one message (default 65,536). */
  maxBinaries?: number;
  /** Most packets read from the socket ahead of `recv()` calls (default 64); the rest wait in the kernel. */
  maxQueue?: number;
  /**
   * Largest shared memory segment (`IpcSharedMemory`, or an `IpcSharedBuffer` of a pool) accepted
   * in a message, in bytes (default 256 MiB). Checked on the memfd's size before anything is
   * mapped or copied; a bigger one makes the message TOO_LARGE and all its descriptors are closed.
   */
  maxSharedMemoryBytes?: number;
  /** Most bytes of shared memory, all segments together, in one message (default 1 GiB); more is TOO_LARGE. */
  maxSharedMemoryTotal?: number;
  /** A Standard Schema (zod, valibot, arktype...) every incoming message must pass, else INVALID. */
  schema?: StandardSchemaV1<unknown, T>;
}

/** A positive integer option `name`, or `fallback` when it is undefined (RangeError otherwise). */
function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Every limit of `DEFAULT_LIMITS`, taken from the options where given (RangeError when invalid). */
export function resolveLimits(o: ReceiverOptions<unknown> | undefined): Limits {
  const out = { ...DEFAULT_LIMITS } as Limits;
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof Limits>) {
    out[key] = positiveInt((o as Record<string, unknown> | undefined)?.[key], key, DEFAULT_LIMITS[key] as number) as never;
  }
  return out;
}

/**
 * @internal A synchronous receive met an asynchronous schema: the message is dropped, and so is the
 * pending validation, whose failure must not surface later as an unhandled rejection (a refused
 * message releases its handles itself; an accepted one leaves them to the GC safety net).
 */
export function asyncSchemaError(pending: Promise<unknown>, call: string, instead = 'recv()'): TypeError {
  pending.catch(() => {});
  return new TypeError(`${call} cannot be used with an asynchronous schema; use ${instead}`);
}

/** Options of `recv()`. */
export interface RecvOptions {
  /** Reject with TIMEOUT after this many milliseconds. */
  timeout?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** The timeout of `recv()` options (TypeError/RangeError when they are invalid). */
export function checkRecvOptions(o: RecvOptions | undefined): number | undefined {
  if (o === undefined) return undefined;
  if (typeof o !== 'object' || o === null) throw new TypeError('recv options must be an object');
  return checkTimeout(o.timeout);
}
