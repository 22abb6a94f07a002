/**
 * Reading a multiplexed connection (see mux.ts and docs/multiplexing.md): every frame the peer
 * sends is checked here before anything is made from it: its shape, its channel id (a peer may
 * write only to channels it was given a sender of), the logical endpoints it carries (all checked,
 * and counted against maxChannels, before any is created), and control operations.
 */
import { IpcError } from '../../shared/errors.js';
import { IpcMux, MAX_CONTROL_OPS, MAX_REFS, OP_DROP, OP_RCLOSED, PLACEHOLDER, frameError, isId } from './mux.js';
import { MuxEndpoint, MuxReceiver, MuxSender } from './endpoints.js';
import { closeValue, place } from './refs.js';
import { parseFrame } from './raw.js';
import { finishItem, plainBody, releaseBody, takeItem } from '../endpoint/mux-entry.js';
import { receiverCore } from '../channel.js';
import type { IpcReceiver } from '../channel.js';

/** Frames, and bytes of frames, one pump takes before it lets the event loop run (a flooding peer cannot hold it). */
export const PUMP_BUDGET = 256;
const PUMP_BYTES = 4 * 1024 * 1024;

/**
 * Starts reading the connection: the receiver's readiness hook (the one `IpcReceiverSet` uses)
 * runs {@link pumpFrames}, which takes each frame synchronously with `tryRecv()`. No `recv()` is
 * ever pending on the connection, so a logical receiver's `recvSync()` can read it too, and no
 * frame is ever taken but not yet handled (which would let a later one overtake it).
 */
export function startReading(mux: IpcMux<unknown, unknown>): void {
  const core = receiverCore(mux.rx as IpcReceiver<unknown>);
  core.subscribe(() => pumpFrames(mux, PUMP_BUDGET, true, false));
  core.setWatched(true);
}

/**
 * Handles the frames that can be taken now, at most `budget` (then the rest in a later turn of
 * the event loop). Errors of single frames are reported on the connection; its end ends the mux.
 * `readSocket` false (the readiness hook and its continuation): when the receiver's read held
 * one frame, the socket is not read again. The hook runs after the receiver's read, and its
 * watch stays on while the mux reads, so what is still in the socket wakes the hook again; in
 * request/response traffic reading on would only cost a recvmsg that fails with EAGAIN per
 * wake-up (a third of a logical round trip's system calls). recvSync() (waitSync) reads the
 * socket itself.
 */
export function pumpFrames(mux: IpcMux<unknown, unknown>, budget = PUMP_BUDGET, fromActivity = false, readSocket = true): number {
  // While a continuation is scheduled, readiness does not start another pump: one budget per
  // turn of the event loop, whatever wakes it.
  if (mux.pumping || !mux.alive || (fromActivity && mux.pumpScheduled)) return 0;
  mux.pumping = true;
  let bytes = 0;
  let n = 0;
  const rx = mux.rx as IpcReceiver<unknown>;
  const core = receiverCore(rx);
  try {
    for (; n < budget && bytes < PUMP_BYTES; n++) {
      // Nothing read ahead, the receiver open and not at its end: the rest is in the socket.
      // One frame per wake-up (request/response) stops here; a burst reads on, as more of it
      // is likely there already (fewer wake-ups, and DROPs taken before the replies' receivers
      // close, which saves their RCLOSED).
      if (!readSocket && n < 2 && core.pending === 0 && !core.eof && !core.closed) return n;
      let f: unknown;
      try {
        const item = takeItem(rx);
        if (item === undefined) return n;
        // The frames the mux writes itself are read from the body's bytes (raw.ts); any other
        // record (or one that only looks like them) takes the receiver's decode, as tryRecv().
        const body = plainBody(rx, item);
        const raw = body === undefined ? undefined : parseFrame(body, core.limits);
        if (raw !== undefined) {
          rx.lastBytes = body!.byteLength;
          rx.lastHandles = 0;
          releaseBody(body!);
          f = raw;
        } else f = finishItem(rx, item);
      } catch (e) {
        if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) {
          mux.die();
          return n + 1;
        }
        mux.report(e instanceof IpcError ? e : new IpcError('MALFORMED', String(e)));
        continue;
      }
      bytes += rx.lastBytes;
      try {
        onFrame(mux, f);
      } catch (e) {
        mux.report(e instanceof IpcError ? e : frameError(String((e as Error)?.message ?? e)));
      }
    }
    // Budget spent: the rest (read ahead, so no readiness event will say so) in the next turn.
    if (!mux.pumpScheduled) {
      mux.pumpScheduled = true;
      setImmediate(() => {
        mux.pumpScheduled = false;
        pumpFrames(mux, PUMP_BUDGET, false, false);
      });
    }
    return n;
  } finally {
    mux.pumping = false;
  }
}

export function onFrame(mux: IpcMux<unknown, unknown>, f: unknown): void {
  if (!Array.isArray(f) || f.length < 2) {
    closeValue(f);
    throw frameError('a frame is not an array of at least 2 items');
  }
  const w = f[0];
  if (w === 0) {
    closeValue(f);
    if (f.length % 3 !== 1 || f.length > 1 + 3 * MAX_CONTROL_OPS) throw frameError('a control frame is not [0, op, id, n, ...]');
    for (let i = 1; i < f.length; i += 3) {
      try {
        onControl(mux, f[i], f[i + 1], f[i + 2]);
      } catch (e) {
        mux.report(e instanceof IpcError ? e : frameError(String(e)));
      }
    }
    return;
  }
  if (!isId(w)) {
    closeValue(f);
    throw frameError('a frame names no valid channel id');
  }
  // `[id, value]`, or `[id, value, kind, id, path, ...]` with 1 to MAX_REFS references.
  const n = f.length - 2;
  if (n !== 0 && (n % 3 !== 0 || n > 3 * MAX_REFS)) {
    closeValue(f);
    throw frameError('a frame carries a bad list of logical endpoints');
  }
  const key = -w;
  const c = mux.chans.get(key);
  // A frame may only name a channel this side hosts and gave the peer a sender of.
  if (c === undefined || !c.host || c.granted === 0) {
    closeValue(f);
    throw frameError(`a frame for logical channel ${w}, which this side never gave the peer a sender of (forged or unknown id)`);
  }
  let value = f[1];
  // What the frame cost to receive counts against the connection's queue budget if it waits.
  const bytes = mux.rx.lastBytes;
  const handles = mux.rx.lastHandles;
  if (n !== 0) {
    // A receiver that is gone takes nothing: its endpoints are answered, never allocated.
    if (c.recvGone && c.sink === undefined) {
      closeValue(value);
      refuseRefs(mux, f);
      return;
    }
    // It holds logical endpoints: a dropped queue must close it (no need to walk it to know).
    mux.deliver(c, revive(mux, value, f), true, bytes, handles, true);
    return;
  }
  mux.deliver(c, value, true, bytes, handles);
}

/**
 * Answers the references of a refused frame `f` (`[id, value, kind, id, path, ...]`, none of
 * them made into an endpoint) as an honest peer expects: RCLOSED once per receiver it moved to
 * this side, DROP 1 once per sender of its channels it counted as given. Each id is answered
 * once, however often the frame names it.
 */
export function refuseRefs(mux: IpcMux<unknown, unknown>, f: unknown[]): void {
  let answered: Set<number> | undefined;
  for (let i = 2; i + 2 < f.length && i < 2 + 3 * MAX_REFS; i += 3) {
    const kind = f[i];
    const id = f[i + 1];
    if (!isId(id)) continue;
    const key = -id;
    if (key > 0 || answered?.has(key)) continue;
    const c = mux.chans.get(key);
    if (kind === 'r' && c === undefined) mux.control(OP_RCLOSED, key);
    else if (kind === 's' && (c === undefined || !c.host)) mux.control(OP_DROP, key, 1);
    else continue;
    (answered ??= new Set()).add(key);
  }
}

/**
 * Turns the ids of frame `f`'s references (`kind, id, path` triples after the value, checked by
 * onFrame to be 1 to MAX_REFS) into logical endpoints at their slots of `value`. Every reference,
 * id and slot is checked first (placeholders in the slots), so a refused frame makes no channel
 * entry.
 */
export function revive(mux: IpcMux<unknown, unknown>, value: unknown, f: unknown[]): unknown {
  const root = { v: value };
  if (f.length === 5) return reviveOne(mux, root, f);
  const kinds = new Map<number, boolean>();
  const slots: Array<[number, (x: object) => void]> = [];
  try {
    let fresh = 0;
    for (let i = 2; i < f.length; i += 3) {
      const r0 = f[i];
      const id = f[i + 1];
      if ((r0 !== 's' && r0 !== 'r') || !isId(id)) throw frameError('a logical endpoint reference is not kind, id, path');
      const key = -id;
      const sender = r0 === 's';
      const k = kinds.get(key);
      if (k === undefined) {
        checkRef(mux, key, sender);
        if (!mux.chans.has(key)) fresh++;
        kinds.set(key, sender);
      } else if (k !== sender) throw frameError('one id names both a sender and a receiver');
      slots.push([key, place(root, f[i + 2], PLACEHOLDER)]);
    }
    if (mux.chans.size + fresh > mux.limits.maxChannels) {
      throw new IpcError('TOO_LARGE', `this multiplexed connection already carries maxChannels (${mux.limits.maxChannels}) logical channels; the peer asked for more`);
    }
  } catch (e) {
    refuseRefs(mux, f);
    closeValue(root.v);
    throw e;
  }
  const made = new Map<number, MuxEndpoint>();
  for (const [key, sender] of kinds) made.set(key, sender ? reviveSender(mux, key) : reviveReceiver(mux, key));
  for (const [key, put] of slots) put(made.get(key)!);
  return root.v;
}

/** {@link revive} of the most common frame: one logical endpoint (the same checks, fewer objects). */
function reviveOne(mux: IpcMux<unknown, unknown>, root: { v: unknown }, f: unknown[]): unknown {
  let key: number;
  let sender: boolean;
  let put: ((x: object) => void) | undefined;
  const slot = f[4];
  try {
    const r0 = f[2];
    const id = f[3];
    if ((r0 !== 's' && r0 !== 'r') || !isId(id)) throw frameError('a logical endpoint reference is not kind, id, path');
    key = -id;
    sender = r0 === 's';
    checkRef(mux, key, sender);
    // The usual `{ reply }`: a null own property of a plain object, set directly below.
    if (!isPlainSlot(root.v, slot)) put = place(root, slot, PLACEHOLDER);
    if (mux.chans.size >= mux.limits.maxChannels && !mux.chans.has(key)) {
      throw new IpcError('TOO_LARGE', `this multiplexed connection already carries maxChannels (${mux.limits.maxChannels}) logical channels; the peer asked for more`);
    }
  } catch (e) {
    refuseRefs(mux, f);
    closeValue(root.v);
    throw e;
  }
  const ep = sender ? reviveSender(mux, key) : reviveReceiver(mux, key);
  if (put === undefined) (root.v as Record<string, unknown>)[slot as string] = ep;
  else put(ep);
  return root.v;
}

/**
 * True when `slot` is a string key `value` (a plain object, not an array) holds null at, as its
 * own property (what {@link place} accepts for a one-key path, without making its closure).
 */
function isPlainSlot(value: unknown, slot: unknown): boolean {
  if (typeof slot !== 'string' || typeof value !== 'object' || value === null || Array.isArray(value) || slot === '__proto__') return false;
  const proto = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && Object.hasOwn(value, slot) && (value as Record<string, unknown>)[slot] === null;
}

/** Throws MALFORMED unless a frame may name `key` as a sender (or receiver); creates nothing. */
export function checkRef(mux: IpcMux<unknown, unknown>, key: number, sender: boolean): void {
  const c = mux.chans.get(key);
  if (sender) {
    if (c !== undefined && c.host) {
      if (c.granted === 0) throw frameError(`a sender of logical channel ${-key}, which this side never gave the peer a sender of (forged)`);
      return;
    }
    // A positive key is one of this side's own ids: only a relay entry of this side may be named.
    if (key > 0 && (c === undefined || c.relayOf === undefined)) throw frameError(`a sender of logical channel ${-key}, one of this side's own ids that names no channel it gave the peer (forged)`);
    return;
  }
  if (key > 0 || c !== undefined) throw frameError(`a receiver of logical channel ${-key}, an id the peer cannot give (not its own, or in use)`);
}

/** A sender the peer gave (checked by checkRef). */
export function reviveSender(mux: IpcMux<unknown, unknown>, key: number): MuxSender<unknown> {
  let c = mux.chans.get(key);
  if (c !== undefined && c.host) return new MuxSender(mux, c);
  c ??= mux.newChan(key, false, false);
  c.received++;
  return new MuxSender(mux, c);
}

/** A receiver the peer moved here (checked by checkRef). */
export function reviveReceiver(mux: IpcMux<unknown, unknown>, key: number): MuxReceiver<unknown> {
  const c = mux.newChan(key, true, false);
  c.granted = 1; // the peer's relay
  return new MuxReceiver(mux, c);
}

export function onControl(mux: IpcMux<unknown, unknown>, op: unknown, w: unknown, n: unknown): void {
  if (!isId(w)) throw frameError('a control frame names no valid channel id');
  const key = -(w as number);
  const c = mux.chans.get(key);
  if (op === OP_DROP) {
    // A receiver the peer moved here and this side refused keeps no entry: the peer's relay
    // still drops its sender of it, which is answered by nothing.
    if (c === undefined && key < 0) return;
    if (c === undefined || !c.host || typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > c.granted) {
      throw frameError(`a DROP for logical channel ${w} does not match the senders this side gave the peer`);
    }
    c.granted -= n;
    mux.checkEnd(c);
    mux.maybeForget(c);
    return;
  }
  if (op === OP_RCLOSED) {
    if (c === undefined) return; // this side dropped its senders meanwhile
    if (c.host) throw frameError(`an RCLOSED for logical channel ${w}, whose receiver lives on this side`);
    c.peerGone = true;
    if (c.relayOf) mux.sinkGone(c.relayOf);
    return;
  }
  throw frameError(`unknown control operation ${JSON.stringify(op)}`);
}
