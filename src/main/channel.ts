/**
 * Senders and receivers over the transport's sockets: the typed channel (`channel<T>()`) and the
 * untyped bytes channel (`bytesChannel()`), sharing one implementation of writing, reading,
 * framing and descriptor ownership, which lives in ./endpoint/:
 *
 * - endpoint.ts: the Endpoint, SenderBase and ReceiverBase classes the public ones extend;
 * - sender-core.ts: the writing half (queue, batching, fragments, failures);
 * - receiver-sockets.ts, receiver-reading.ts, receiver-core.ts: the reading half, in three
 *   layers (sockets and their watching; reading and switching; pending receives and moving);
 * - thread-state.ts: per-thread state (busy endpoints, the send tick, held-back output,
 *   blocking waits, the flush at exit); options.ts, decode.ts, socket-checks.ts.
 *
 * This module is the public face: the classes, the channel constructors, the handle kinds, and
 * the internal entry points other modules use (re-exported from where they live).
 */
import { bodyLayout, encodeMessageInto as encodeMessageIntoExport } from '../shared/codec.js';
import { IMMEDIATE_BODY } from './framing/send.js';
import type { EncodeHooks } from '../shared/codec.js';
import type { Limits } from '../shared/limits.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { validate } from '../shared/validate.js';
import { fdCount, malformed } from './framing.js';
import type { ParsedItem, WireRecord } from './framing.js';
import { assertThread, isHandleSource, kHandle, kKindTag, osError, registerHandleKind } from './handles.js';
import type { HandleSource, ReviveContext } from './handles.js';
import type { FdInfo } from './native.js';
import { transport } from './transport/index.js';
import { closeUnreachable, decodeRecord } from './endpoint/decode.js';
import { rewindArena } from './endpoint/receiver-reading.js';
import { ReceiverBase, SenderBase, cloneOf } from './endpoint/endpoint.js';
import { resolveLimits } from './endpoint/options.js';
import type { ReceiverOptions } from './endpoint/options.js';
import type { ReceiverCore } from './endpoint/receiver-core.js';
import { neutralizeSocket } from './endpoint/socket-checks.js';
import { closeFds } from './endpoint/thread-state.js';

/** Read once (a getter on another module's exports in the CommonJS bundle: see endpoint/decode.ts). */
const encodeMessageInto = encodeMessageIntoExport;

export { asyncSchemaError } from './endpoint/options.js';
export type { ReceiverOptions, RecvOptions } from './endpoint/options.js';
export { blockingWait, flushAtExit } from './endpoint/thread-state.js';
export type { ReceiverCore };

/** How the encoder learns the kind tag of a handle in a message. */
const encodeHooks: EncodeHooks = {
  handleKind(value: object): string | undefined {
    if (!isHandleSource(value)) return undefined;
    // A fixed tag (file handles) makes no HandleInfo here; SenderCore.write makes the one it sends
    // with (a handle closed after this, by a getter read later in the same encode, is refused there).
    const tag = value[kKindTag];
    if (tag !== undefined) return tag;
    // A receiver about to move reads what its sockets (or, win32, the addon) hold first, see
    // ReceiverCore.prepareMove; whatever it reads travels with it (the kind tag taken next says so).
    if (value instanceof ReceiverBase) value.core.prepareMove();
    return value[kHandle]().kind;
  },
  // A body with file handles only is encoded into the send scratch (IMMEDIATE_BODY): sending a
  // file handle only reads its descriptor. Senders and receivers (plain or logical) may send
  // a message of their own on the way (a logical channel upgrades), which would write there.
  inPlace: (kind: string): boolean => kind === 'F',
};

/** The sending end of a typed channel. Cloneable, and sendable inside messages (it stays usable). */
export class IpcSender<T> extends SenderBase {
  /** @internal Use `channel()` or `IpcSender.connect()`. */
  constructor(fd: number) {
    super(fd, 'S', 'IpcSender');
  }

  /** Connects to an `IpcOneShotServer` by its name (run in the process that was given the name). */
  static connect<T>(name: string): IpcSender<T> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('IpcSender.connect(name) needs the server name, a non-empty string');
    let fd: number;
    try {
      fd = transport().connect(name);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        const err = osError(e, `no one-shot server is listening at ${name}: it was already used, closed, or never existed`);
        throw err;
      }
      throw osError(e, `connecting to ${name}`);
    }
    return new IpcSender<T>(fd);
  }

  /**
   * Sends a value. Never blocks: when the socket is full the message is queued in order and
   * written when the peer reads. Throws `UNSERIALIZABLE` (nothing sent), `DISCONNECTED` once the
   * receiver is known closed, `CLOSED` after `close()`.
   */
  send(value: T): void {
    this.ready();
    // A small body is encoded straight into the scratch the packet is sent from.
    const enc = encodeMessageInto(value, encodeHooks, IMMEDIATE_BODY);
    this.core.write(enc.parts, enc.byteLength, enc.handles as HandleSource[]);
  }

  /** A second sender to the same receiver (a duplicated descriptor). */
  clone(): IpcSender<T> {
    return cloneOf((fd) => new IpcSender<T>(fd), this.cloneSource());
  }
}

/** The receiving end of a typed channel. Sending it inside a message moves it. */
export class IpcReceiver<T> extends ReceiverBase<T> {
  private schema: StandardSchemaV1<unknown, T> | undefined;
  /** @internal Bytes (body and binary sections) of the last message taken: IpcMux's queue budget. */
  lastBytes = 0;
  /** @internal Descriptors the last message taken carried: IpcMux's queue budget. */
  lastHandles = 0;

  /** @internal Use `channel()` or `IpcOneShotServer`. */
  constructor(fd: number, options?: ReceiverOptions<T>) {
    super(fd, options as ReceiverOptions<unknown>, 'R', 'IpcReceiver', bodyLayout);
    this.schema = options?.schema;
  }

  /** @internal Whether a schema checks this receiver's messages (IpcMux reads its own frames only without one). */
  get hasSchema(): boolean {
    return this.schema !== undefined;
  }

  /** @internal Turns a queued item into the message (or throws the error it stands for). */
  finish(item: ParsedItem): T {
    if (item instanceof Error) throw item;
    let bytes = item.body.byteLength;
    if (item.sections !== undefined) for (const s of item.sections) bytes += s.byteLength;
    this.lastBytes = bytes;
    this.lastHandles = fdCount(item.fds);
    if (!this.schema) {
      const decoded = decodeRecord<T>(item, this.core.limits);
      // Decoded: nothing refers to the body's bytes any more (see rewindArena).
      if (item.sections === undefined) rewindArena(item.body);
      return decoded;
    }
    // A message the schema refuses releases the handles it carried.
    const revived: Array<{ close(): void }> = [];
    const value = decodeRecord<T>(item, this.core.limits, revived);
    if (item.sections === undefined) rewindArena(item.body);
    const release = (e: unknown): never => {
      for (const o of revived) o.close();
      throw e;
    };
    try {
      const out = validate(this.schema, value);
      if (out instanceof Promise) return out.then((v) => closeUnreachable(revived, v), release) as T;
      return closeUnreachable(revived, out);
    } catch (e) {
      return release(e);
    }
  }

  /**
   * Changes this receiver's limits and schema (for messages not yet taken; packets already read
   * ahead were checked against the old byte and descriptor limits). A receiver that arrived in a
   * message starts with the limits of the one it came through and no schema: set them here.
   * Options left out keep their current value; `schema: undefined` removes the schema.
   */
  configure<U = T>(options: ReceiverOptions<U>): IpcReceiver<U> {
    assertThread(this.recvThread, `this ${this.core.what}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('configure(options) takes an object of receiver options');
    const next = resolveLimits({ ...this.core.limits, ...(options as ReceiverOptions<unknown>) });
    Object.assign(this.core.limits, next);
    if ('schema' in options) this.schema = options.schema as unknown as StandardSchemaV1<unknown, T> | undefined;
    return this as unknown as IpcReceiver<U>;
  }
}

/** Creates a typed channel: a sender and the receiver it sends to. */
export function channel<T>(options?: ReceiverOptions<T>): [IpcSender<T>, IpcReceiver<T>] {
  resolveLimits(options as ReceiverOptions<unknown>); // throws on bad options before anything is allocated
  let pair: [number, number];
  try {
    pair = transport().socketpair();
  } catch (e) {
    throw osError(e, 'socketpair');
  }
  return [new IpcSender<T>(pair[0]), new IpcReceiver<T>(pair[1], options)];
}

// ---------------------------------------------------------------------------------------------
// Bytes channel

function checkBytes(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError(`IpcBytesSender.send() takes a Uint8Array (or Buffer), got ${data === null ? 'null' : typeof data}`);
}

/** The sending end of a bytes channel: raw `Uint8Array`s, no serialization. */
export class IpcBytesSender extends SenderBase {
  /** @internal Use `bytesChannel()`. */
  constructor(fd: number) {
    super(fd, 'BS', 'IpcBytesSender');
  }

  /** Sends the bytes (copied when they cannot be written at once). */
  send(data: Uint8Array): void {
    this.ready();
    checkBytes(data);
    this.core.write([data], data.byteLength, []);
  }

  /** A second sender to the same receiver (a duplicated descriptor). */
  clone(): IpcBytesSender {
    return cloneOf((fd) => new IpcBytesSender(fd), this.cloneSource());
  }
}

/** The receiving end of a bytes channel. */
export class IpcBytesReceiver extends ReceiverBase<Uint8Array> {
  /** @internal Use `bytesChannel()`. */
  constructor(fd: number, options?: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>) {
    super(fd, { ...options, maxHandles: 1 }, 'BR', 'IpcBytesReceiver');
  }

  /** @internal */
  finish(item: ParsedItem): Uint8Array {
    const bytes = bytesOf(item);
    // A body in the arena was copied out (bytesOf): its bytes can go back (see rewindArena).
    const rec = item as WireRecord;
    if (bytes !== rec.body && rec.sections === undefined) rewindArena(rec.body);
    return bytes;
  }

  /** Changes this receiver's limits, as `IpcReceiver.configure()` does. */
  configure(options: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>): this {
    assertThread(this.recvThread, `this ${this.core.what}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('configure(options) takes an object of receiver options');
    const { maxMessageBytes, maxQueue } = options;
    Object.assign(this.core.limits, resolveLimits({ ...this.core.limits, ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }), ...(maxQueue === undefined ? {} : { maxQueue }), maxHandles: 1 }));
    return this;
  }
}

function bytesOf(item: ParsedItem): Uint8Array {
  if (item instanceof Error) throw item;
  if (fdCount(item.fds) > 0) {
    closeFds(item.fds);
    throw malformed('a bytes-channel message carried descriptors');
  }
  const b = item.body;
  // A reassembled message owns its whole buffer; a batched one is copied out of the packet.
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

/** Creates a bytes channel: `send(Uint8Array)` / `recv()` -> `Uint8Array`, no serialization. */
export function bytesChannel(options?: Pick<ReceiverOptions, 'maxMessageBytes' | 'maxQueue'>): [IpcBytesSender, IpcBytesReceiver] {
  resolveLimits(options); // throws on bad options before anything is allocated
  let pair: [number, number];
  try {
    pair = transport().socketpair();
  } catch (e) {
    throw osError(e, 'socketpair');
  }
  return [new IpcBytesSender(pair[0]), new IpcBytesReceiver(pair[1], options)];
}

// ---------------------------------------------------------------------------------------------
// Handle kinds of this module

/** The descriptor of a channel endpoint must be a connected socket of this transport. */
const isSeqpacket = (info: Pick<FdInfo, 'kind' | 'listening' | 'domain'>): string | undefined => {
  const t = transport();
  if (info.kind !== t.socketKind) return `is a ${info.kind}, not a ${t.socketName}`;
  // A TCP socket is a SOCK_STREAM socket too: channels are AF_UNIX only.
  if (info.domain !== 'unix') return `is a ${info.domain === 'none' ? 'socket of no domain' : 'network socket'}, not an AF_UNIX ${t.socketName}`;
  return info.listening ? 'is a listening socket, not a connected one' : undefined;
};

/** A socket to read from: also connected, and with the options that install descriptors switched off. */
const isReadableSeqpacket = (info: FdInfo): string | undefined =>
  isSeqpacket(info) ?? (info.connected ? undefined : 'is a socket that is not connected');

/**
 * A receiver that arrives in a message gets the limits of the receiver it came through (a peer
 * must not be able to hand over a channel that accepts more than the one it used), and no schema:
 * set its own with `configure()`.
 */
function reviveReceiver<R extends IpcReceiver<unknown> | IpcBytesReceiver>(make: (limits: Limits) => R, fd: number, ctx: ReviveContext): R {
  // The reviver owns `fd` (decodeRecord marked it used): every way out but success closes it.
  const problem = neutralizeSocket(fd);
  if (problem) {
    closeFds([fd]);
    throw malformed(`a received receiver is ${problem}`);
  }
  const r = make({ ...ctx.limits });
  r.core.secrets = [...ctx.secrets];
  return r;
}

registerHandleKind('S', isSeqpacket, (fd) => new IpcSender(fd));
registerHandleKind('R', isReadableSeqpacket, (fd, _info, ctx) => reviveReceiver((limits) => new IpcReceiver(fd, limits), fd, ctx));
registerHandleKind('BS', isSeqpacket, (fd) => new IpcBytesSender(fd));
registerHandleKind('BR', isReadableSeqpacket, (fd, _info, ctx) => reviveReceiver((limits) => new IpcBytesReceiver(fd, limits), fd, ctx));

/** @internal for select() and the server: the core of a receiver. */
export function receiverCore(r: IpcReceiver<unknown> | IpcBytesReceiver): ReceiverCore {
  return r.core;
}

