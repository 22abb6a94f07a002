/**
 * The multiplexer's raw entry into a typed receiver (src/main/mux/reader.ts, docs/multiplexing.md
 * "Sixth round"): `tryRecv()` in two halves, so that IpcMux can read the frames it writes itself
 * straight from a record's body bytes and hand every other record to the receiver's own decoding.
 * `takeItem` then `finishItem` is exactly `tryRecv()`.
 */
import { closedError, currentThreadId, assertThread } from '../handles.js';
import { fdCount } from '../framing.js';
import type { ParsedItem } from '../framing.js';
import type { IpcReceiver } from '../channel.js';
import { asyncSchemaError } from './options.js';
import { rewindArena } from './receiver-reading.js';
import { drainWaitingSenders, newTick, waitingSenders } from './thread-state.js';

/**
 * The next record (or the error item standing for a refused one) of `rx`, undecoded, reading the
 * socket without waiting if nothing was read ahead (as tryRecv() does); undefined when there is
 * none. Throws as tryRecv() does: CLOSED for a closed receiver, DISCONNECTED at its end.
 */
export function takeItem(rx: IpcReceiver<unknown>): ParsedItem | undefined {
  if (rx.recvThreadId !== currentThreadId) assertThread(rx.recvThreadId, `this ${rx.core.what}`);
  const core = rx.core;
  if (core.closed) throw closedError(core.what);
  if (core.pending === 0) {
    // As tryRecv(): what this thread holds back goes out first, and reading begins a tick.
    if (waitingSenders.size > 0) drainWaitingSenders();
    else newTick();
  }
  const item = core.takeNow();
  if (item === undefined && core.eof) throw core.eofError();
  return item;
}

/** The message of an item {@link takeItem} returned (tryRecv()'s second half: `finish`, errors thrown). */
export function finishItem<T>(rx: IpcReceiver<T>, item: ParsedItem): T {
  const value = rx.finish(item);
  if (value instanceof Promise) throw asyncSchemaError(value, 'tryRecv()');
  return value;
}

/**
 * The body of `item` when the multiplexer may read it itself: a whole record (no binary sections
 * received apart) that carried no descriptor, taken by a receiver without a schema. Otherwise
 * undefined: the item goes to {@link finishItem}.
 */
export function plainBody(rx: IpcReceiver<unknown>, item: ParsedItem): Uint8Array | undefined {
  if (item instanceof Error || item.sections !== undefined || fdCount(item.fds) !== 0 || rx.hasSchema) return undefined;
  return item.body;
}

/** After the multiplexer read a {@link plainBody} (nothing refers to its bytes any more): as finish does. */
export function releaseBody(body: Uint8Array): void {
  rewindArena(body);
}
