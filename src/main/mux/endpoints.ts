/**
 * The logical endpoints of a multiplexed connection (see mux.ts and docs/multiplexing.md): the
 * channel state both sides keep (`Chan`), the GC safety net, `MuxSender` and `MuxReceiver`.
 */
import { IpcError } from '../../shared/errors.js';
import { armDeadline, checkTimeout } from '../../shared/deadline.js';
import { channel } from '../channel.js';
import type { IpcReceiver, IpcSender, RecvOptions } from '../channel.js';
import { GcWaitList, kDetach, kHandle } from '../handles.js';
import { IteratorTail } from '../iterator-tail.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { assertStandardSchema, validate } from '../../shared/validate.js';
import type { GcWaiting, HandleInfo, WaitArray } from '../handles.js';

import { IpcMux } from './mux.js';
import type { MuxChannelOptions } from './mux.js';
import { closeValue } from './refs.js';

export type Waiter = { resolve(v: unknown): void; reject(e: unknown): void; disarm(): void };

const NOTHING_TO_DISARM = (): void => {};

/** A pending recv() of a MuxReceiver: takes the value through the receiver's schema, if any. */
class PendingRecv implements Waiter {
  disarm: () => void = NOTHING_TO_DISARM;
  constructor(
    private readonly rx: MuxReceiver<unknown>,
    private readonly ok: (v: unknown) => void,
    readonly reject: (e: unknown) => void,
  ) {}

  resolve(v: unknown): void {
    try {
      this.ok(this.rx.take(v));
    } catch (e) {
      this.reject(e);
    }
  }
}
export type Sink = undefined | { plain: IpcSender<unknown> } | { relay: Chan };

/**
 * @internal The queue and waiter list of a channel that has none (the usual state, and the only
 * one of a channel whose receiver is in the peer): shared, so never pushed to (the first item
 * replaces it with a new array).
 */
export const EMPTY: never[] = [];

/** @internal One logical channel as this side of the connection sees it. */
export class Chan {
  /** Live MuxSender objects of this channel in this process (relays included). */
  local = 0;
  // ---- host side (the receiver lives here)
  /** Senders given to the peer and not yet dropped by it. */
  granted = 0;
  /** Messages not yet taken ({@link EMPTY} while none was queued). */
  queue: unknown[] = EMPTY;
  /**
   * Two numbers per queued message, in queue order: the bytes it came with in the peer's frame
   * (0: sent in this process), then its descriptors times 2, plus 1 when it holds handles or
   * endpoints (checked on arrival: all a dropped queue has to close). Made with the first queued
   * message (most channels never queue one).
   */
  queueMeta: number[] | undefined;
  /** Pending receives ({@link EMPTY} while none waited). */
  waiters: Waiter[] = EMPTY;
  /** The receiver object is closed or moved away: messages are discarded (or relayed, see sink). */
  recvGone = false;
  /** Where messages go once the receiver moved: a plain sender, or a relay to a peer-hosted channel. */
  sink: Sink = undefined;
  /** The error the receiver reports once (overflow), before DISCONNECTED. */
  failure: IpcError | undefined;
  /** Every sender is gone: after the queue, recv rejects DISCONNECTED. */
  eof = false;
  /** Local messages on their way through the loopback (later local ones follow them there). */
  inLoop = 0;
  maxQueue: number;
  // ---- non-host side (the receiver lives in the peer)
  /** Senders received from the peer since this side's last DROP. */
  received = 0;
  /** The peer said the receiver is gone (or the connection ended). */
  peerGone = false;
  /** The host-side channel this one relays for (its receiver moved to the peer). */
  relayOf: Chan | undefined;

  constructor(
    readonly key: number,
    readonly host: boolean,
    maxQueue: number,
  ) {
    this.maxQueue = maxQueue;
  }
}


/** What the GC safety net needs to release an endpoint collected without close(). */
interface Held {
  mux: IpcMux<unknown, unknown>;
  chan: Chan;
  sender: boolean;
}
const finalizer = new FinalizationRegistry<Held>((h) => {
  try {
    if (h.sender) h.mux.senderGone(h.chan);
    else h.mux.receiverGone(h.chan);
  } catch {
    /* the process may be going away */
  }
});

/*
 * The GC safety net is registered late, for the endpoints still open after a while: most logical
 * endpoints live for one message (a reply channel, a sender sent and closed at once), and a
 * FinalizationRegistry cell costs more than the register/unregister calls: V8 allocates it in the
 * old generation, where it keeps the endpoint and its channel alive through every young
 * collection until the next full one, registered or not (one channel made, sent and answered
 * promoted ~1.7 KB per channel; scavenges took 2-10 ms instead of 0.3 ms). So a new endpoint
 * waits in a GcWaitList (src/main/handles.ts, shared with the owners of one descriptor; held
 * strongly: a dropped one is released at most 2 x 25 ms later than it would be) and is
 * registered by the pass after the one that saw it arrive; one closed before leaves the list
 * and is never registered. Past FRESH_MAX waiting endpoints (a long synchronous loop, no timer
 * runs), they are registered at once.
 */
const FRESH_MAX = 8192;
const waiting = new GcWaitList<MuxEndpoint>(FRESH_MAX, (ep) => ep.register());

/** Base of the logical endpoints: closing, disposal, and the handle protocol (upgrade). */
export abstract class MuxEndpoint implements Disposable, GcWaiting {
  /** @internal */
  readonly mux: IpcMux<unknown, unknown>;
  /** @internal */
  readonly chan: Chan;
  /** @internal */
  protected done = false;
  /** @internal Where this endpoint waits for the GC safety net (see GcWaitList). */
  gcWait: WaitArray | undefined = undefined;
  /** @internal */
  gcAt = 0;

  /** @internal */
  constructor(mux: IpcMux<unknown, unknown>, chan: Chan) {
    this.mux = mux;
    this.chan = chan;
    waiting.add(this);
  }

  /** @internal Registers this endpoint with the GC safety net (called by the registration pass). */
  register(): void {
    finalizer.register(this, { mux: this.mux, chan: this.chan, sender: this instanceof MuxSender }, this);
  }

  /** True once closed (or moved, for a receiver). */
  get closed(): boolean {
    return this.done;
  }

  /** Closes this endpoint. Idempotent. */
  abstract close(): void;

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Marks the object closed and drops it from the GC safety net. */
  protected finish(): boolean {
    if (this.done) return false;
    this.done = true;
    // Leaves the waiting list (nothing keeps a closed endpoint alive), or the registry.
    if (!waiting.remove(this)) finalizer.unregister(this);
    return true;
  }

  /** @internal The plain endpoint this one travels as, outside its own connection. */
  protected abstract plain(): { [kHandle](): HandleInfo; [kDetach]?(): number };

  /** @internal Sent anywhere but its own connection: travels as a plain endpoint (docs/multiplexing.md, "Third process"). */
  [kHandle](): HandleInfo {
    if (this.done) return { kind: this instanceof MuxSender ? 'S' : 'R', fd: -1, move: false };
    return this.plain()[kHandle]();
  }
}

/**
 * The iterator of a MuxReceiver, behaving as the async generator
 * `for (;;) try { yield await rx.recv() } catch (e) { if DISCONNECTED return; throw e }` would,
 * without a generator's own promises per step (half the time per message, measured).
 */
class MuxIterator<T> extends IteratorTail<T> {
  constructor(private readonly rx: MuxReceiver<T>) {
    super();
  }

  next(): Promise<IteratorResult<T, void>> {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return this.rx.recv().then(this.step, this.end);
  }

  private readonly step = (value: T): IteratorResult<T, void> => ({ value, done: false });

  private readonly end = (e: unknown): IteratorResult<T, void> => {
    this.finished = true;
    if (e instanceof IpcError && e.code === 'DISCONNECTED') return { value: undefined, done: true };
    throw e;
  };
}

/**
 * The sending end of a logical channel: the shape of `IpcSender` (send, clone, close, dispose).
 * Sending it inside a message on its own connection costs no descriptor; sent anywhere else it
 * travels as a plain `IpcSender` whose messages this process relays into the logical channel.
 */
export class MuxSender<T> extends MuxEndpoint {
  private upgraded: IpcSender<T> | undefined;

  /** @internal Use `IpcMux.channel()`. */
  constructor(mux: IpcMux<unknown, unknown>, chan: Chan) {
    super(mux, chan);
    chan.local++;
  }

  /**
   * Sends a value (never blocks). Throws `UNSERIALIZABLE` (nothing sent), `DISCONNECTED` once the
   * receiver is known gone or the connection ended, `CLOSED` after `close()`.
   */
  send(value: T): void {
    if (this.done) throw new IpcError('CLOSED', 'this MuxSender is closed');
    this.mux.sendOn(this.chan, value);
  }

  /** A second sender to the same receiver (no descriptor, no message). */
  clone(): MuxSender<T> {
    if (this.done) throw new IpcError('CLOSED', 'this MuxSender is closed');
    return new MuxSender<T>(this.mux, this.chan);
  }

  /** Closes this sender; its receiver sees DISCONNECTED once every sender is gone. Idempotent. */
  close(): void {
    if (!this.finish()) return;
    this.upgraded?.close();
    this.upgraded = undefined;
    this.mux.senderGone(this.chan);
  }

  /** @internal A plain channel whose receiver this process pumps into a clone of this sender. */
  protected plain(): IpcSender<T> {
    if (this.upgraded === undefined) {
      const [ps, pr] = channel<T>();
      this.upgraded = ps;
      const relay = this.clone();
      pr.unref();
      void (async () => {
        try {
          for await (const v of pr) {
            try {
              relay.send(v);
              closeValue(v); // sent (copied): the pump keeps nothing it forwarded
            } catch (e) {
              closeValue(v);
              if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) break;
            }
            // Reads no faster than the connection drains: a peer that does not read stalls the
            // third process's sends (its own channel's limits), not this process's memory.
            await this.mux.drained();
          }
        } catch {
          /* one bad message ends nothing: but a closed pr ends the relay */
        } finally {
          relay.close();
          pr.close();
        }
      })();
    }
    return this.upgraded;
  }

  /** @internal */
  [kDetach](): number {
    return (this.plain() as unknown as { [kDetach](): number })[kDetach]();
  }
}

/**
 * The receiving end of a logical channel: the shape of `IpcReceiver` (recv with timeout and
 * signal, tryRecv, async iteration, close, dispose). Sending it inside a message moves it: on its
 * own connection the peer gets a logical receiver (no descriptor) and this side relays what
 * arrives for it; anywhere else it travels as a plain `IpcReceiver` fed by the same relay.
 */
export class MuxReceiver<T> extends MuxEndpoint implements AsyncIterable<T> {
  private upgraded: [IpcSender<unknown>, IpcReceiver<unknown>] | undefined;
  private schema: StandardSchemaV1<unknown, T> | undefined;

  /**
   * Changes this receiver's `maxQueue` and schema (for messages not yet taken). A receiver that
   * arrived in a message starts with the connection's `maxQueue` and no schema: set them here.
   * `schema: undefined` removes the schema.
   */
  configure<U = T>(options: MuxChannelOptions<U>): MuxReceiver<U> {
    if (typeof options !== 'object' || options === null) throw new TypeError('configure(options) takes an object of channel options');
    if (options.maxQueue !== undefined) {
      if (!Number.isInteger(options.maxQueue) || options.maxQueue < 1) throw new RangeError(`maxQueue must be a positive integer, got ${String(options.maxQueue)}`);
      this.chan.maxQueue = options.maxQueue;
    }
    if ('schema' in options) {
      if (options.schema !== undefined) assertStandardSchema(options.schema);
      this.schema = options.schema as unknown as StandardSchemaV1<unknown, T> | undefined;
    }
    return this as unknown as MuxReceiver<U>;
  }

  /** @internal A queued value as the application gets it: validated by the schema, if any. */
  take(v: unknown): T | Promise<T> {
    const schema = this.schema;
    if (schema === undefined) return v as T;
    try {
      const out = validate(schema, v);
      if (out instanceof Promise) {
        return out.catch((e: unknown) => {
          closeValue(v);
          throw e;
        });
      }
      return out;
    } catch (e) {
      closeValue(v);
      throw e;
    }
  }

  private takeSync(v: unknown): T {
    const out = this.take(v);
    if (out instanceof Promise) {
      out.catch(() => {});
      throw new TypeError('tryRecv()/recvSync() cannot use an asynchronous schema: use recv()');
    }
    return out;
  }

  /** @internal Use `IpcMux.channel()`. */
  constructor(mux: IpcMux<unknown, unknown>, chan: Chan) {
    super(mux, chan);
  }

  /**
   * The next message. Rejects `DISCONNECTED` once every sender (here and in the peer) is gone and
   * every message was taken, or the connection ended; `TIMEOUT`; the abort reason; `CLOSED`;
   * `TOO_LARGE` once when the channel overflowed its `maxQueue` (then DISCONNECTED).
   */
  recv(options?: RecvOptions): Promise<T> {
    let timeout: number | undefined;
    try {
      if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('recv options must be an object');
      timeout = checkTimeout(options?.timeout);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.done) return Promise.reject(new IpcError('CLOSED', 'this MuxReceiver is closed'));
    const c = this.chan;
    if (c.queue.length > 0) {
      const v = this.mux.takeQueued(c);
      try {
        return Promise.resolve(this.take(v));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const end = this.endError();
    if (end) return Promise.reject(end);
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const w = new PendingRecv(this as MuxReceiver<unknown>, resolve as (v: unknown) => void, reject);
      if (c.waiters === EMPTY) c.waiters = [w];
      else c.waiters.push(w);
      this.mux.waiting(1);
      if (timeout === undefined && signal === undefined) return;
      w.disarm = armDeadline({ timeout, signal, timeoutMessage: () => `no message arrived within ${timeout} ms` }, (reason) => {
        const i = c.waiters.indexOf(w);
        if (i >= 0) {
          c.waiters.splice(i, 1);
          this.mux.waiting(-1);
        }
        reject(reason);
      });
    });
  }

  /** The next message if one is already there, else undefined (throws at the end, like recv). */
  tryRecv(): { message: T } | undefined {
    if (this.done) throw new IpcError('CLOSED', 'this MuxReceiver is closed');
    const c = this.chan;
    if (c.queue.length > 0) {
      const v = this.mux.takeQueued(c);
      return { message: this.takeSync(v) };
    }
    const end = this.endError();
    if (end) throw end;
    return undefined;
  }

  /**
   * The next message, blocking this thread until it arrives (like a plain receiver's
   * `recvSync()`): while it waits, the connection's frames for every logical channel are read and
   * handled (other channels' messages are queued or handed to their pending `recv()`s), and
   * messages from this process's own logical senders arrive too. Throws what `recv()` rejects with
   * (`TIMEOUT` after `timeout` ms, `DISCONNECTED`, `CLOSED`, a message's error); a TypeError with
   * an asynchronous schema, or when called from the connection's `onError`.
   */
  recvSync(options?: Pick<RecvOptions, 'timeout'>): T {
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('recvSync options must be an object');
    const timeout = checkTimeout(options?.timeout);
    const deadline = timeout === undefined ? -1 : performance.now() + timeout;
    for (;;) {
      const r = this.tryRecv();
      if (r) return r.message;
      this.mux.waitSync(deadline, `no message arrived within ${timeout} ms`);
    }
  }

  /**
   * Iterates messages until every sender is gone (`DISCONNECTED` ends the iteration; any other
   * error is thrown and ends it too). Each step is one `recv()`.
   */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return new MuxIterator<T>(this);
  }

  /** Closes the receiver: pending receives reject CLOSED, queued messages are dropped, senders see DISCONNECTED. */
  close(): void {
    if (!this.finish()) return;
    this.dropUpgraded();
    this.mux.receiverGone(this.chan);
  }

  /** Closes the plain pair made for a send that then failed (kDetach takes it before moving): unused. */
  private dropUpgraded(): void {
    const up = this.upgraded;
    this.upgraded = undefined;
    if (up) {
      up[0].close();
      up[1].close();
    }
  }

  private endError(): IpcError | undefined {
    const c = this.chan;
    if (c.failure) {
      const f = c.failure;
      c.failure = undefined;
      return f;
    }
    if (c.eof) return new IpcError('DISCONNECTED', 'every sender of this logical channel is closed (or the connection ended)');
    return undefined;
  }

  /** @internal Sent to a receiver in this process: this object is done, the channel lives on in the new one. */
  handOver(): void {
    this.finish();
    this.dropUpgraded();
    const ws = this.chan.waiters;
    if (ws.length === 0) return;
    this.chan.waiters = EMPTY;
    this.mux.waiting(-ws.length);
    for (const w of ws) {
      w.disarm();
      w.reject(new IpcError('CLOSED', 'this MuxReceiver was sent away'));
    }
  }

  /** @internal Moving: the object becomes closed, pending receives reject CLOSED; the channel lives on behind a relay. */
  moveOut(sink: Sink): void {
    if (!this.finish()) return;
    this.dropUpgraded();
    this.mux.relayTo(this.chan, sink);
  }

  /** @internal */
  protected plain(): IpcReceiver<unknown> {
    this.upgraded ??= channel<unknown>();
    return this.upgraded[1];
  }

  /** @internal Sent on a plain channel (or another connection): what arrives is written into a plain sender. */
  [kDetach](): number {
    const [ps, pr] = this.upgraded ?? channel<unknown>();
    this.upgraded = undefined;
    this.moveOut({ plain: ps });
    return (pr as unknown as { [kDetach](): number })[kDetach]();
  }
}

