/**
 * The one deadline/abort helper of the library: every wait that takes `timeout` and/or `signal`
 * (receive, select, pool acquire, server accept, the renderer's recv) arms them here, so that the
 * timer and the abort listener are set up, fired and removed in one place.
 *
 * Imports neither Node nor Electron: it runs in main, helpers and the preload bundle.
 */
import { IpcError } from './errors.js';

/** What {@link armDeadline} watches for one pending operation. */
export interface DeadlineOptions {
  /** Milliseconds until TIMEOUT (checked by the caller, see {@link checkTimeout}); undefined: no timer. */
  timeout?: number | undefined;
  /** Expire with `signal.reason` when it aborts; undefined: no signal. */
  signal?: AbortSignal | undefined;
  /** The message of the `IpcError('TIMEOUT')`; a function is only called if the timer fires. */
  timeoutMessage: string | (() => string);
  /**
   * False: the timer does not keep a Node event loop alive (`Timeout.unref()`; ignored where
   * timers are numbers, as in a browser). Default true.
   */
  ref?: boolean;
}

/** Stops a deadline: clears its timer and removes its abort listener. Idempotent; harmless after it expired. */
export type Disarm = () => void;

const NOTHING_TO_DISARM: Disarm = () => {};

/**
 * Arms `options.timeout` and `options.signal` for one pending operation. `expire` is called at
 * most once: with `IpcError('TIMEOUT', timeoutMessage)` when the timer fires, or with
 * `signal.reason` when the signal aborts; by then the timer and the listener are both gone.
 * When the signal has already aborted, `expire` runs at once, before `armDeadline` returns
 * (callers that must not start the operation then check `signal.aborted` first).
 *
 * Call the returned {@link Disarm} when the operation settles another way (it arrived, failed,
 * was closed); with neither a timeout nor a signal nothing is armed and it does nothing.
 */
export function armDeadline(options: DeadlineOptions, expire: (reason: unknown) => void): Disarm {
  const { timeout, signal } = options;
  if (timeout === undefined && signal === undefined) return NOTHING_TO_DISARM;
  if (signal?.aborted) {
    expire(signal.reason);
    return NOTHING_TO_DISARM;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let armed = true;
  const disarm: Disarm = () => {
    if (!armed) return;
    armed = false;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  const onAbort = (): void => {
    if (!armed) return;
    disarm();
    expire(signal!.reason);
  };
  if (timeout !== undefined) {
    timer = setTimeout(() => {
      if (!armed) return;
      timer = undefined;
      disarm();
      const m = options.timeoutMessage;
      expire(new IpcError('TIMEOUT', typeof m === 'string' ? m : m()));
    }, timeout);
    if (options.ref === false) (timer as { unref?: () => void }).unref?.();
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  return disarm;
}

/**
 * Checks a `timeout` option: undefined, or a non-negative finite number of milliseconds
 * (returned as is). Throws RangeError naming `name` otherwise.
 */
export function checkTimeout(v: unknown, name = 'timeout'): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${name} must be a non-negative finite number of milliseconds, got ${String(v)}`);
  }
  return v;
}
