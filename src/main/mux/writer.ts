/**
 * Writing on a multiplexed connection (see mux.ts and docs/multiplexing.md): frames for the peer,
 * with this connection's logical endpoints as ids, and messages between two ends in this process,
 * which go through a loopback channel (so that they are copied, as any message is) in order.
 */
import { IpcError } from '../../shared/errors.js';
import { channel, receiverCore } from '../channel.js';
import type { IpcReceiver, IpcSender } from '../channel.js';
import { IpcMux, MAX_REFS } from './mux.js';
import type { MuxFrame } from './mux.js';
import { Chan, MuxEndpoint, MuxReceiver, MuxSender } from './endpoints.js';
import { findRefs, place, substitute } from './refs.js';
import type { PathKey, Ref } from './refs.js';
import { BODY_HEADER_BYTES, finishJsonBody } from '../../shared/codec.js';
import { IMMEDIATE_BODY } from '../framing/send.js';

// ---------------------------------------------------------------------------------------------
// Frames written as JSON text by the mux itself
//
// The commonest frames (a reply `[id, primitive]`, the usual `[id, { op, reply: null }, 's', id,
// 'reply']`, control `[0, op, id, n...]`) hold only what the codec sends as plain JSON (format 0):
// the mux writes their text straight into the sender's in-place scratch, as the codec would
// (byte for byte the same body: test/mux-json-frames.test.ts), without its walk and copy of the
// value. The receiving side is unchanged: it decodes them as any format-0 body. Anything the
// codec would not send as plain JSON (undefined, NaN, -0, bigint, a `__proto__` key...) takes
// the general path.

// Read once: in the bundles an imported binding of another entry is read through a getter.
const BODY_TEXT = IMMEDIATE_BODY.subarray(BODY_HEADER_BYTES);
const finishJson = finishJsonBody;
const textEncoder = new TextEncoder();

/**
 * `JSON.stringify(s)` for a string: a short one of printable ASCII without a quote or backslash (keys,
 * ops) is quoted as it is, which costs less than the call (measured, docs/multiplexing.md).
 */
export function quote(s: string): string {
  const n = s.length;
  if (n > 32) return JSON.stringify(s);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** The JSON text of a primitive the codec sends as plain JSON, else undefined (the general path). */
export function jsonOf(v: unknown): string | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'number':
      // Finite numbers but -0 are plain JSON, and their JSON text is String(v).
      return Number.isFinite(v) && !Object.is(v, -0) ? String(v) : undefined;
    case 'string':
      return quote(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return undefined;
  }
}

/**
 * Writes `text` (a frame's JSON) as a format-0 body into the in-place scratch; its size (a
 * multiple of 8), or -1 when it does not fit (nothing to undo: the scratch is anyone's).
 */
export function jsonBody(text: string): number {
  const n = text.length;
  if (n > BODY_TEXT.length) return -1;
  let written = n;
  let i = 0;
  for (; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch > 0x7f) break;
    BODY_TEXT[i] = ch;
  }
  if (i < n) {
    const r = textEncoder.encodeInto(text, BODY_TEXT);
    if (r.read !== n) return -1;
    written = r.written;
  }
  return finishBody(written);
}

/** The header and padding of a format-0 body whose `written` text bytes are in place; its size, or -1. */
function finishBody(written: number): number {
  return finishJson(IMMEDIATE_BODY, written);
}

/** Writes a frame whose JSON text the caller made: false when it does not fit (the caller takes the general path). */
function writeJson(mux: IpcMux<unknown, unknown>, text: string): boolean {
  if (!mux.alive) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
  const size = jsonBody(text);
  if (size < 0) return false;
  mux.writeBody(size);
  return true;
}

/** Writes the decimal digits of `n` (a safe integer, not -0) at BODY_TEXT[p]; the next position. */
function putInt(n: number, p: number): number {
  const text = BODY_TEXT;
  if (n < 0) {
    text[p++] = 0x2d;
    n = -n;
  }
  if (n < 10) {
    text[p] = 0x30 + n;
    return p + 1;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  const end = p + digits;
  for (let q = end, x = n; q > p; ) {
    const d = x % 10;
    text[--q] = 0x30 + d;
    x = (x - d) / 10;
  }
  return end;
}

/** Most bytes one safe integer takes in JSON (a sign and 16 digits), and a separator. */
const INT_BYTES = 18;

/**
 * Writes frame `[head, ...ints]` (safe integers, none -0) as JSON with its digits written
 * straight into the scratch; false when it may not fit (nothing written).
 */
function writeInts(mux: IpcMux<unknown, unknown>, head: number, ints: number[], count: number): boolean {
  if ((count + 1) * INT_BYTES + 2 > BODY_TEXT.length) return false;
  if (!mux.alive) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
  const text = BODY_TEXT;
  text[0] = 0x5b;
  let p = putInt(head, 1);
  for (let i = 0; i < count; i++) {
    text[p++] = 0x2c;
    p = putInt(ints[i]!, p);
  }
  text[p++] = 0x5d;
  const size = finishBody(p);
  if (size < 0) return false;
  mux.writeBody(size);
  return true;
}

/** Writes control frame `[0, ...ops]` (integers), as JSON text when it fits. */
export function writeControl(mux: IpcMux<unknown, unknown>, ops: number[]): void {
  if (!writeInts(mux, 0, ops, ops.length)) mux.write([0, ...ops]);
}

const ONE: number[] = [0];

/**
 * A message between two ends in this process: one frame `[value]` or `[value, [[index, path]...]]`
 * on the loopback, its channel and endpoints kept aside in `loopPending` (in-process, FIFO).
 * Sent senders count as alive until they arrive; sent receivers are handed over.
 */
export function sendLocal(mux: IpcMux<unknown, unknown>, c: Chan, value: unknown): void {
  const loop = (mux.loop ??= openLoop(mux));
  const refs: Ref[] = [];
  if (typeof value === 'object' && value !== null) findRefs(mux, value, [], refs);
  if (refs.length > MAX_REFS) throw new RangeError(`a message may carry at most ${MAX_REFS} logical endpoints`);
  const index = new Map<MuxEndpoint, number>();
  const wire: unknown[] = [];
  for (const r of refs) {
    if (r.ep.closed) throw new IpcError('CLOSED', `a ${r.ep instanceof MuxSender ? 'MuxSender' : 'MuxReceiver'} in the message is closed`);
    let i = index.get(r.ep);
    if (i === undefined) index.set(r.ep, (i = index.size));
    wire.push([i, r.path]);
  }
  loop[0].send(refs.length > 0 ? [substitute(value, refs), wire] : [value]);
  c.inLoop++;
  const eps = [...index.keys()];
  mux.loopPending.push({ target: c, eps: eps.map((ep) => ep.chan), kinds: eps.map((ep) => ep instanceof MuxSender) });
  for (const ep of eps) {
    if (ep instanceof MuxSender) ep.chan.local++;
    else (ep as MuxReceiver<unknown>).handOver();
  }
}

export function openLoop(mux: IpcMux<unknown, unknown>): [IpcSender<MuxFrame>, IpcReceiver<MuxFrame>] {
  // This process encoded every frame it carries: the loopback decodes whatever the encoder
  // accepted (no receiver limit of its own; the encoder's maxDepth still applies).
  const big = 2 ** 31 - 1;
  const loop = channel<MuxFrame>({ maxMessageBytes: big, maxElements: big, maxBinaries: big, maxHandles: big, maxSharedMemoryBytes: Number.MAX_SAFE_INTEGER, maxSharedMemoryTotal: Number.MAX_SAFE_INTEGER });
  if (!mux.refed) loop[1].unref();
  mux.loop = loop;
  startLoopReading(mux, loop[1]);
  return loop;
}

/** Reads the loopback like the connection (see startReading in reader.ts): synchronously, on its readiness hook. */
function startLoopReading(mux: IpcMux<unknown, unknown>, rx: IpcReceiver<MuxFrame>): void {
  const core = receiverCore(rx as IpcReceiver<unknown>);
  core.subscribe(() => pumpLoop(mux, false));
  core.setWatched(true);
}

/**
 * Handles the local messages that can be taken now (this process's own: no budget needed beyond
 * one batch). `readSocket` false (the readiness hook): only what the receiver already read, as
 * pumpFrames does.
 */
export function pumpLoop(mux: IpcMux<unknown, unknown>, readSocket = true): number {
  const rx = mux.loop?.[1];
  if (rx === undefined || mux.loopPumping) return 0;
  mux.loopPumping = true;
  let n = 0;
  const core = receiverCore(rx as IpcReceiver<unknown>);
  try {
    for (;; n++) {
      if (!readSocket && core.pending === 0 && !core.eof && !core.closed) return n;
      let f: MuxFrame | undefined;
      let failed: IpcError | undefined;
      try {
        const r = rx.tryRecv();
        if (r === undefined) return n;
        f = r.message;
      } catch (e) {
        if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) {
          rx.close();
          return n + 1;
        }
        failed = e instanceof IpcError ? e : new IpcError('MALFORMED', String(e));
      }
      onLocal(mux, f, failed);
    }
  } finally {
    mux.loopPumping = false;
  }
}

/** One local message out of the loopback (or the error it became): to its receiver, its endpoints made. */
function onLocal(mux: IpcMux<unknown, unknown>, f: MuxFrame | undefined, failed: IpcError | undefined): void {
  const p = mux.loopPending.shift();
  if (p === undefined) return;
  p.target.inLoop--;
  const made: MuxEndpoint[] = p.eps.map((chan, i) => (p.kinds[i] ? new MuxSender(mux, chan) : new MuxReceiver(mux, chan)));
  for (let i = 0; i < p.eps.length; i++) if (p.kinds[i]) p.eps[i]!.local--; // the one in flight is the new object now
  if (f === undefined) {
    // The message could not be decoded (a limit of this machine): its receiver is told.
    for (const ep of made) ep.close();
    loopFailed(mux, p.target, failed ?? new IpcError('MALFORMED', 'a local message could not be decoded'));
  } else {
    const root = { v: f[0] };
    for (const [i, path] of (f[1] ?? []) as Array<[number, unknown]>) place(root, path, made[i]!);
    mux.deliver(p.target, root.v);
  }
  if (p.target.inLoop === 0) {
    mux.checkEnd(p.target);
    mux.maybeForget(p.target);
  }
}

/** A local message for `c` was lost in the loopback: its next (or pending) recv rejects with `err`, then the receiver goes on. */
export function loopFailed(mux: IpcMux<unknown, unknown>, c: Chan, err: IpcError): void {
  if (c.recvGone || c.sink !== undefined) return;
  const w = c.waiters.shift();
  if (w !== undefined) {
    w.disarm();
    mux.waiting(-1);
    w.reject(err);
    return;
  }
  c.failure ??= err;
}

/** Writes one message for peer-hosted channel `key`, logical endpoints of this connection as ids. */
export function sendFrame(mux: IpcMux<unknown, unknown>, key: number, value: unknown): void {
  let refs: Ref[] | undefined;
  if (typeof value === 'object' && value !== null) {
    if (sendFlat(mux, key, value)) return;
    const found: Ref[] = [];
    findRefs(mux, value, [], found);
    if (found.length > 0) refs = found;
  }
  if (refs === undefined) {
    // An integer (the usual reply), its digits written in place; another primitive as its JSON text.
    if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) {
      ONE[0] = value;
      if (writeInts(mux, key, ONE, 1)) return;
    }
    const j = typeof value === 'object' ? undefined : jsonOf(value);
    if (j === undefined || !writeJson(mux, `[${key},${j}]`)) mux.write([key, value]);
    return;
  }
  if (refs.length > MAX_REFS) throw new RangeError(`a message may carry at most ${MAX_REFS} logical endpoints`);
  // Receivers moving: each gets a new id, hosted by the peer; this side relays to it. The
  // frame is flat: `[key, value, kind, id, path, kind, id, path...]`, a path of one key as the
  // key itself (see wirePath).
  const frame: unknown[] = [key, undefined];
  let moves: Map<MuxEndpoint, Chan> | undefined;
  try {
    for (const r of refs) {
      const ep = r.ep;
      if (ep.closed) throw new IpcError('CLOSED', `a ${ep instanceof MuxSender ? 'MuxSender' : 'MuxReceiver'} in the message is closed`);
      if (ep instanceof MuxReceiver) {
        moves ??= new Map();
        let relay = moves.get(ep);
        if (relay === undefined) {
          relay = mux.newChan(mux.nextId++, false, true);
          relay.relayOf = ep.chan;
          relay.local = 1;
          relay.received = 1;
          moves.set(ep, relay);
        }
        frame.push('r', relay.key, wirePath(r.path));
      } else frame.push('s', ep.chan.key, wirePath(r.path));
    }
    frame[1] = substitute(value, refs);
    mux.write(frame);
  } catch (e) {
    if (moves !== undefined) for (const relay of moves.values()) mux.forget(relay);
    throw e;
  }
  // Counted per channel, as the peer counts what it received (once per id per frame): a sender
  // and its clone in one message are one grant.
  if (refs.length === 1) {
    const ep = refs[0]!.ep;
    if (ep instanceof MuxSender && ep.chan.host) ep.chan.granted++;
  } else {
    const granted = new Set<Chan>();
    for (const r of refs) {
      if (r.ep instanceof MuxSender && r.ep.chan.host && !granted.has(r.ep.chan)) {
        granted.add(r.ep.chan);
        r.ep.chan.granted++;
      }
    }
  }
  if (moves !== undefined) for (const [ep, relay] of moves) (ep as MuxReceiver<unknown>).moveOut({ relay });
}

/**
 * {@link sendFrame} of the usual message: a plain object whose items are primitives, or at most
 * one sender of this connection (`{ op, reply }`). Written without the general walk, its Ref
 * objects and path arrays; the copy with `null` in the sender's slot is a spread. False (nothing
 * done) for any other value: the general path takes it.
 */
function sendFlat(mux: IpcMux<unknown, unknown>, key: number, value: object): boolean {
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  const keys = Object.keys(value);
  let at: string | undefined;
  let ep: MuxSender<unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const x = (value as Record<string, unknown>)[k];
    if (typeof x !== 'object' || x === null) continue;
    if (ep !== undefined || !(x instanceof MuxSender) || x.mux !== mux || k === '__proto__') return false;
    at = k;
    ep = x;
  }
  if (ep !== undefined && ep.closed) throw new IpcError('CLOSED', 'a MuxSender in the message is closed');
  // Its bytes written in place when its keys and strings are short printable ASCII and its
  // numbers integers (the usual request); else its JSON text; else the codec.
  const size = flatBody(key, value as Record<string, unknown>, keys, at, ep === undefined ? 0 : ep.chan.key);
  if (size > 0) {
    if (!mux.alive) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
    mux.writeBody(size);
    if (ep !== undefined && ep.chan.host) ep.chan.granted++;
    return true;
  }
  let text: string | undefined = `[${key},{`;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const j = k === at ? 'null' : k === '__proto__' ? undefined : jsonOf((value as Record<string, unknown>)[k]);
    if (j === undefined) {
      text = undefined;
      break;
    }
    text += `${i === 0 ? '' : ','}${quote(k)}:${j}`;
  }
  if (text !== undefined) text += ep === undefined ? '}]' : `},"s",${ep.chan.key},${quote(at!)}]`;
  if (text === undefined || !writeJson(mux, text)) {
    if (ep === undefined) {
      mux.write([key, value]);
      return true;
    }
    const copy: Record<string, unknown> = { ...value };
    copy[at!] = null;
    mux.write([key, copy, 's', ep.chan.key, at]);
  }
  if (ep === undefined) return true;
  if (ep.chan.host) ep.chan.granted++;
  return true;
}

/**
 * Writes `s` quoted at BODY_TEXT[p] when it is at most 32 characters of printable ASCII without a
 * quote or backslash (its JSON text is then itself in quotes, see quote()); the next position,
 * or -1 (nothing else to undo: the scratch is anyone's).
 */
function putSimple(s: string, p: number): number {
  const n = s.length;
  const text = BODY_TEXT;
  if (n > 32 || p + n + 2 > text.length) return -1;
  text[p++] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    text[p++] = c;
  }
  text[p++] = 0x22;
  return p;
}

/**
 * The body of the flat frame `[key,{k:v,...},"s",id,"at"]` (or without the reference when `id`
 * is 0) written straight into the scratch, as the codec writes it: its size, or -1 when an item
 * is not a short simple string, a safe integer (not -0), a boolean or null, or it does not fit.
 * `at` is the sender's key (null on the wire).
 */
function flatBody(key: number, value: Record<string, unknown>, keys: string[], at: string | undefined, id: number): number {
  const text = BODY_TEXT;
  const cap = text.length - INT_BYTES - 8;
  text[0] = 0x5b;
  let p = putInt(key, 1);
  text[p++] = 0x2c;
  text[p++] = 0x7b;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k === '__proto__') return -1; // the codec's to refuse
    if (i !== 0) text[p++] = 0x2c;
    p = putSimple(k, p);
    if (p < 0 || p > cap) return -1;
    text[p++] = 0x3a;
    const v = k === at ? null : value[k];
    if (v === null) {
      text[p++] = 0x6e;
      text[p++] = 0x75;
      text[p++] = 0x6c;
      text[p++] = 0x6c;
    } else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) return -1;
      p = putInt(v, p);
    } else if (typeof v === 'string') {
      p = putSimple(v, p);
      if (p < 0) return -1;
    } else if (v === true) {
      text[p++] = 0x74;
      text[p++] = 0x72;
      text[p++] = 0x75;
      text[p++] = 0x65;
    } else if (v === false) {
      text[p++] = 0x66;
      text[p++] = 0x61;
      text[p++] = 0x6c;
      text[p++] = 0x73;
      text[p++] = 0x65;
    } else return -1;
    if (p > cap) return -1;
  }
  text[p++] = 0x7d;
  if (id !== 0) {
    text[p++] = 0x2c;
    text[p++] = 0x22;
    text[p++] = 0x73;
    text[p++] = 0x22;
    text[p++] = 0x2c;
    p = putInt(id, p);
    text[p++] = 0x2c;
    p = putSimple(at!, p);
    if (p < 0 || p > cap) return -1;
  }
  text[p++] = 0x5d;
  return finishBody(p);
}

/**
 * A reference's path on the wire: the key itself for a path of one string or number key (the
 * usual `{ reply }`), else the array of keys (a Map key is `[k]`, so a path of one Map key is
 * `[[k]]`: an array on the wire is always a whole path).
 */
function wirePath(path: PathKey[]): unknown {
  return path.length === 1 && !Array.isArray(path[0]) ? path[0] : path;
}
