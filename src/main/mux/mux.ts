/**
 * Multiplexed channels (issue 15, section 3; docs/multiplexing.md): many logical channels
 * carried over ONE plain typed connection between two processes, so that a channel costs a few
 * hundred bytes of memory on each side instead of two descriptors and a socketpair.
 *
 * Built only on the public typed channel API (IpcSender/IpcReceiver), so it runs on every
 * transport. The connection carries frames, each one message of the plain channel, encoded in
 * ONE codec pass:
 *
 * - `[id, value]`: a message for logical channel `id` (the value as the application sent it);
 * - `[id, value, kind, id, path, kind, id, path...]`: the same, carrying logical endpoints of
 *   this connection, which travel as ids, one flat `kind, id, path` triple each after the value
 *   (`kind` 's' a sender, 'r' a receiver; `path` the keys from the value's root to the slot,
 *   which holds `null` on the wire: an array of keys, or the key itself for a path of one string
 *   or number key);
 * - `[0, op, id, n, op, id, n...]`: control, one or more operations. op 1 DROP (the peer's senders of `id` are all gone: `n` senders it
 *   had been given), op 2 RCLOSED (the receiver of `id` is gone).
 *
 * Ids are relative: each side numbers the channels it creates 1, 2, 3...; on the wire an id is
 * written as the writer's key, and the reader negates it (positive keys are this side's own ids,
 * negative ones the peer's), so the two sides never collide and need no handshake.
 *
 * The receiver of a channel is hosted by one side for the channel's whole life (its "host").
 * The host counts the senders it gave the peer (`granted`) and the peer answers with DROP once it
 * holds none; a frame for a channel the peer holds no sender of is forged (MALFORMED, reported on
 * the connection, dropped). A receiver that moves (sent over this connection, or anywhere else)
 * leaves a relay behind: see {@link MuxReceiver} and docs/multiplexing.md.
 */
import { IpcError } from '../../shared/errors.js';
import { MUX_LIMITS } from '../../shared/limits.js';
import type { MuxLimits } from '../../shared/limits.js';
import { openFileLimit } from '../framing/partial.js';
import { receiverCore } from '../channel.js';
import type { IpcReceiver, IpcSender } from '../channel.js';
import { afterMicrotasks, blockingWait } from '../endpoint/thread-state.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { assertStandardSchema } from '../../shared/validate.js';

import { Chan, EMPTY, MuxReceiver, MuxSender } from './endpoints.js';
import { ChanTable } from './table.js';
import type { Sink } from './endpoints.js';
export { MuxReceiver, MuxSender } from './endpoints.js';
import { closeValue, holdsHandles } from './refs.js';
import { PUMP_BUDGET, pumpFrames, startReading } from './reader.js';
import { pumpLoop } from './writer.js';
import { sendFrame, sendLocal, writeControl } from './writer.js';
import { IMMEDIATE_BODY } from '../framing/send.js';

/** The parts of a body written in the sender's in-place scratch (SenderCore.write takes its own bytes of it). */
const IN_PLACE: Uint8Array[] = [IMMEDIATE_BODY];
const NO_HANDLES: never[] = [];

/** A frame of the connection (see the module comment). */
export type MuxFrame = readonly unknown[];

/** Options of {@link IpcMux.open}. */
export interface MuxOptions extends Partial<MuxLimits> {
  /**
   * Called with what the peer did wrong (an `IpcError`: MALFORMED for a forged or unknown channel
   * id or a frame of the wrong shape, TOO_LARGE when a channel overflowed or the peer asked for
   * more than `maxChannels`), and with errors of single bad messages of the connection. The
   * connection and every other channel go on. Default: counted in `stats.errors`, last one kept
   * in `stats.lastError`.
   */
  onError?: (error: IpcError) => void;
}

/** Options of {@link IpcMux.channel} and {@link MuxReceiver.configure}. */
export interface MuxChannelOptions<T = unknown> {
  /** Most messages this channel's receiver holds before the channel fails with TOO_LARGE. Default: the connection's `maxQueue`. */
  maxQueue?: number;
  /**
   * A Standard Schema (zod, valibot, arktype...) every message is validated with as it is
   * taken: one that fails rejects that `recv()` with `IpcError('INVALID')` (the handles it
   * carried are closed) and the receiver goes on. An asynchronous schema works with `recv()`
   * and iteration; `tryRecv()` then throws a TypeError.
   */
  schema?: StandardSchemaV1<unknown, T>;
}

export const OP_DROP = 1;
export const OP_RCLOSED = 2;
/** Longest path from a message's root to a logical endpoint in it. */
export const MAX_PATH = 64;
/** Most logical endpoints in one message. */
export const MAX_REFS = 1024;
/** Most control operations in one control frame. */
export const MAX_CONTROL_OPS = 4096;
/** Largest channel id accepted from the wire. */
export const MAX_ID = 2 ** 48;

/** What revive puts in a slot while it checks a frame's other references. */
export const PLACEHOLDER: object = Object.freeze(Object.create(null) as object);

export function frameError(what: string): IpcError {
  return new IpcError('MALFORMED', `Multiplexed connection: ${what}; the frame was dropped, the connection and its other channels go on.`);
}

/**
 * Bytes `tx` accepted and has not yet written (its send queue): what a peer that does not read
 * makes this side hold (`IpcSender.queuedBytes`: one entry per queued packet, none while the
 * peer keeps up, so this costs nothing then).
 */
export function unsentBytes(tx: IpcSender<unknown>): number {
  return tx.queuedBytes;
}

export function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v !== 0 && v < MAX_ID && v > -MAX_ID;
}


/** Connection counters (see {@link IpcMux.stats}). */
export interface MuxStats {
  /** Logical channels this side tracks (hosted receivers and senders to the peer's). */
  channels: number;
  /** Messages queued in this side's logical receivers. */
  queued: number;
  /** Bytes of the peer's messages among them (as they arrived: bodies and binary sections). */
  queuedBytes: number;
  /** Descriptors the peer's messages among them carry. */
  queuedHandles: number;
  /** Errors reported for the peer's frames. */
  errors: number;
  /** The last of them. */
  lastError: IpcError | undefined;
}

/**
 * One connection carrying many logical channels between two processes. Both processes call
 * `IpcMux.open(sender, receiver)` with their ends of a plain connection (a pair of plain typed
 * channels, one each way); `mux.channel()` then makes logical channels whose endpoints travel
 * inside messages on that connection's logical channels as ids, at no descriptor cost.
 */
export class IpcMux<Out = unknown, In = unknown> implements Disposable {
  /** @internal */
  readonly chans = new ChanTable();
  /** Id 1 of each side is its root receiver (see `receiver`), so channels start at 2. */
  /** @internal */
  nextId = 2;
  /**
   * The root channel toward the peer: a sender to the receiver the peer's `IpcMux.open()` made
   * (its `receiver`). The first logical endpoints travel on it. Cloneable and closeable like any.
   */
  readonly sender: MuxSender<Out>;
  /** The root receiver: what the peer sends on its `sender`. */
  readonly receiver: MuxReceiver<In>;
  /** @internal */
  alive = true;
  private waiters = 0;
  /** @internal */
  refed = false;
  private unrefQueued = false;
  /** @internal Messages queued in hosted receivers. */
  queued = 0;
  /** @internal A pump of the connection is running (pumps do not nest). */
  pumping = false;
  /** @internal A pump that ran out of budget continues in the check phase (see pumpFrames). */
  pumpScheduled = false;
  /** @internal A pump of the loopback is running. */
  loopPumping = false;
  /** @internal Bytes of the peer's messages queued in hosted receivers (see maxQueuedBytes). */
  queuedBytes = 0;
  /** @internal Descriptors of the peer's messages queued in hosted receivers (see maxQueuedHandles). */
  queuedHandles = 0;
  /** @internal */
  readonly limits: MuxLimits;
  private readonly onError: ((e: IpcError) => void) | undefined;
  private errors = 0;
  private pendingControl: number[] = [];
  /** Hosted channels whose receiver went while the peer held senders (see rclosed). */
  private pendingRclosed: Chan[] = [];
  /** Control operations written while the connection had unsent bytes, since it last drained. */
  private unsentControl = 0;
  private drainWatched = false;
  /** The loopback (made on first use): local messages are encoded and decoded like any other. */
  /** @internal */
  loop: [IpcSender<MuxFrame>, IpcReceiver<MuxFrame>] | undefined;
  /** What each loopback frame is for, in order: its channel and its endpoints' channels. */
  /** @internal */
  loopPending: Array<{ target: Chan; eps: Chan[]; kinds: boolean[] }> = [];
  private lastError: IpcError | undefined;

  private constructor(
    private readonly tx: IpcSender<MuxFrame>,
    /** @internal */
    readonly rx: IpcReceiver<MuxFrame>,
    options: MuxOptions,
  ) {
    const { onError, ...rest } = options;
    // The descriptor budget is also bounded by this process's RLIMIT_NOFILE unless set.
    const limits = { ...MUX_LIMITS, maxQueuedHandles: Math.max(1, Math.min(MUX_LIMITS.maxQueuedHandles, Math.floor(openFileLimit() / 4))), ...rest };
    for (const k of Object.keys(MUX_LIMITS) as Array<keyof MuxLimits>) {
      const v = limits[k];
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`IpcMux option ${k} must be a positive integer, got ${String(v)}`);
    }
    if (onError !== undefined && typeof onError !== 'function') throw new TypeError('IpcMux option onError must be a function');
    this.limits = limits;
    this.onError = onError;
    // The root channels: each side hosts key 1 with one sender granted to the peer, and holds
    // one sender (received from the peer, in effect) of the peer's key 1.
    const mine = this.newChan(1, true, true);
    mine.granted = 1;
    this.receiver = new MuxReceiver<In>(this, mine);
    const theirs = this.newChan(-1, false, true);
    theirs.received = 1;
    this.sender = new MuxSender<Out>(this, theirs);
    rx.unref();
    startReading(this);
  }

  /**
   * Opens this side of a multiplexed connection over a plain connection: `tx` sends to the
   * peer's `rx` and `rx` receives from the peer's `tx` (each process calls this with its own
   * ends). The mux owns both from then on (close() closes them). The connection's receiver limits
   * (`configure()` it first) bound each frame, hence each logical message.
   */
  static open<Out = unknown, In = unknown>(tx: IpcSender<MuxFrame>, rx: IpcReceiver<MuxFrame>, options: MuxOptions = {}): IpcMux<Out, In> {
    if (typeof options !== 'object' || options === null) throw new TypeError('IpcMux.open(tx, rx, options): options must be an object');
    return new IpcMux<Out, In>(tx, rx, options);
  }

  /** Creates a logical channel; both ends start in this process (send either one to the peer). */
  channel<T>(options?: MuxChannelOptions<T>): [MuxSender<T>, MuxReceiver<T>] {
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('channel(options) takes an object of channel options');
    if (options?.schema !== undefined) assertStandardSchema(options.schema);
    const maxQueue = options?.maxQueue ?? this.limits.maxQueue;
    if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError(`maxQueue must be a positive integer, got ${String(maxQueue)}`);
    if (!this.alive) throw new IpcError('DISCONNECTED', 'this multiplexed connection is closed');
    const chan = this.newChan(this.nextId++, true, true);
    chan.maxQueue = maxQueue;
    const rx = new MuxReceiver<T>(this, chan);
    if (options?.schema !== undefined) rx.configure({ schema: options.schema });
    return [new MuxSender<T>(this, chan), rx];
  }

  /** Counters: channels tracked, messages queued, errors reported about the peer (and the last one). */
  get stats(): MuxStats {
    return { channels: this.chans.size, queued: this.queued, queuedBytes: this.queuedBytes, queuedHandles: this.queuedHandles, errors: this.errors, lastError: this.lastError };
  }

  /** True until the connection ends (closed here, by the peer, or the peer exited). */
  get open(): boolean {
    return this.alive;
  }

  /**
   * Closes the connection: every logical receiver here sees DISCONNECTED once it took what was
   * already sent to it, and every logical sender throws DISCONNECTED, also for channels with both
   * ends in this process (their loopback closes with the connection).
   */
  close(): void {
    // After the peer ended the connection (die() from the reader) the plain ends are still open
    // here: close them all the same (each close is idempotent).
    if (this.alive) this.flushControl();
    this.tx.close();
    this.rx.close();
    this.die();
    this.loop?.[0].close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  /** @internal */
  newChan(key: number, host: boolean, local: boolean): Chan {
    if (this.chans.size >= this.limits.maxChannels) {
      const msg = `this multiplexed connection already carries maxChannels (${this.limits.maxChannels}) logical channels`;
      throw new IpcError('TOO_LARGE', local ? `${msg}: close some, or open the connection with a higher maxChannels` : `${msg}; the peer asked for more`);
    }
    const c = new Chan(key, host, this.limits.maxQueue);
    this.chans.add(c);
    return c;
  }

  /** @internal */
  forget(c: Chan): void {
    this.chans.delete(c);
  }

  /** @internal */
  report(e: IpcError): void {
    this.errors++;
    this.lastError = e;
    if (this.onError) {
      try {
        this.onError(e);
      } catch {
        /* the callback's own failure is not the peer's */
      }
    }
  }

  /**
   * @internal recvSync() of a logical receiver: blocks this thread until the connection or the
   * loopback is readable (or `deadline`, a performance.now() time, -1 for none, passes: TIMEOUT
   * saying `waitingFor`), then handles what arrived, synchronously.
   */
  waitSync(deadline: number, waitingFor: string): void {
    if (this.pumping || this.loopPumping) throw new TypeError('recvSync() cannot wait on a logical channel from inside the connection\'s own callbacks (onError)');
    const fds: number[] = [];
    const add = (rx: IpcReceiver<MuxFrame> | undefined): void => {
      if (rx === undefined) return;
      const core = receiverCore(rx as IpcReceiver<unknown>);
      if (core.closed) return;
      const r = core.readFds;
      if (typeof r === 'number') fds.push(r);
      else fds.push(...r);
    };
    if (this.alive) add(this.rx);
    add(this.loop?.[1]);
    if (fds.length === 0) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
    // What is already read (or readable) first; block only when nothing was there.
    while (pumpFrames(this, Infinity) + pumpLoop(this) === 0) blockingWait(Int32Array.from(fds), deadline, waitingFor);
  }

  /** @internal A receiver starts or stops waiting: the connection keeps the process alive while any does. */
  waiting(d: number): void {
    this.waiters += d;
    if (this.waiters > 0) {
      if (!this.refed) {
        this.refed = true;
        if (this.alive) this.rx.ref();
        this.loop?.[1].ref();
      }
    } else if (this.refed && !this.unrefQueued) {
      // Dropped once this turn's microtasks ran: a receive loop has usually asked again by then,
      // so a message does not cost a ref and an unref of the connection's watch.
      this.unrefQueued = true;
      afterMicrotasks(this.unrefIfIdle);
    }
  }

  private readonly unrefIfIdle = (): void => {
    this.unrefQueued = false;
    if (this.waiters > 0 || !this.refed) return;
    this.refed = false;
    if (this.alive) this.rx.unref();
    this.loop?.[1].unref();
  };

  /** @internal */
  write(frame: MuxFrame): void {
    if (!this.alive) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
    try {
      this.tx.send(frame);
    } catch (e) {
      if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) {
        this.die();
        throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended', { cause: e });
      }
      throw e;
    }
  }

  /** @internal Writes the body of `size` bytes the mux wrote in the sender's in-place scratch (see writer.ts, jsonBody). */
  writeBody(size: number): void {
    try {
      // As tx.send() would: a closed sender object throws CLOSED (its core may live on in a clone).
      if (this.tx.closed) throw new IpcError('CLOSED', 'the connection\'s IpcSender is closed');
      this.tx.core.write(IN_PLACE, size, NO_HANDLES);
    } catch (e) {
      if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) {
        this.die();
        throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended', { cause: e });
      }
      throw e;
    }
  }

  /**
   * Queues a control operation. They go out together as one frame `[0, op, id, n, op, id, n...]`
   * once the current event-loop turn's callbacks have run: a turn that closes many senders (a
   * burst of replies) costs one packet, not one each. Deferring is safe: a DROP or RCLOSED only
   * ever has to come after what was sent before it.
   */
  /** @internal */
  control(op: number, key: number, n = 0): void {
    if (!this.alive) return;
    const first = this.pendingControl.length === 0 && this.pendingRclosed.length === 0;
    this.pendingControl.push(op, key, n);
    if (first) setImmediate(this.flushControl);
  }

  /**
   * @internal The receiver of hosted channel `c` is gone while the peer holds senders: RCLOSED,
   * decided when the control frame is written. A DROP that arrived meanwhile (the peer's senders
   * all gone: the usual end of a reply channel, whose sender is closed as its reply is sent)
   * makes it useless, and it is left out: the peer would only look the id up to find nothing.
   */
  rclosed(c: Chan): void {
    if (!this.alive) return;
    const first = this.pendingControl.length === 0 && this.pendingRclosed.length === 0;
    this.pendingRclosed.push(c);
    if (first) setImmediate(this.flushControlSoon);
  }

  /**
   * The control frame at the end of the turn, when it may hold RCLOSEDs: what the peer sent
   * meanwhile is taken first (a DROP among it saves each its RCLOSED), reading the socket: the
   * readiness hook only takes what was read when it ran (see pumpFrames).
   */
  private readonly flushControlSoon = (): void => {
    if (this.alive && !this.pumping && !this.pumpScheduled) pumpFrames(this, PUMP_BUDGET, false, true);
    this.flushControl();
  };

  private readonly flushControl = (): void => {
    const ops = this.pendingControl;
    const closed = this.pendingRclosed;
    if (closed.length > 0) {
      this.pendingRclosed = [];
      for (const c of closed) if (c.granted > 0) ops.push(OP_RCLOSED, c.key, 0);
    }
    if (ops.length === 0) return;
    this.pendingControl = [];
    if (this.alive && unsentBytes(this.tx as IpcSender<unknown>) > 0) {
      // Written behind unsent frames: counted until the connection drains. A peer that never
      // reads cannot make this side pile up more than maxUnsentBytes / 16 control operations.
      this.unsentControl += ops.length / 3;
      if (!this.drainWatched) {
        this.drainWatched = true;
        const reset = (): void => {
          this.drainWatched = false;
          this.unsentControl = 0;
        };
        this.tx.flush().then(reset, reset);
      }
      if (this.unsentControl * 16 > this.limits.maxUnsentBytes) {
        const err = new IpcError('TOO_LARGE', `the peer left more than ${Math.floor(this.limits.maxUnsentBytes / 16)} control answers (maxUnsentBytes / 16) unread on the multiplexed connection; the connection is closed`);
        this.close();
        this.report(err);
        return;
      }
    }
    for (let i = 0; i < ops.length && this.alive; i += 3 * MAX_CONTROL_OPS) {
      try {
        writeControl(this, ops.length <= 3 * MAX_CONTROL_OPS ? ops : ops.slice(i, i + 3 * MAX_CONTROL_OPS));
      } catch {
        /* the connection ended: nothing to tell */
      }
    }
  };

  /** @internal The upgraded-sender pump: resolves once the connection's unsent bytes are under half of maxUnsentBytes. */
  async drained(): Promise<void> {
    while (this.alive && unsentBytes(this.tx as IpcSender<unknown>) > this.limits.maxUnsentBytes / 2) {
      try {
        await this.tx.flush();
      } catch {
        return;
      }
    }
  }

  /** @internal MuxSender.send. */
  sendOn(c: Chan, value: unknown): void {
    if (c.host) {
      if (c.recvGone && c.sink === undefined) throw new IpcError('DISCONNECTED', 'the receiver of this logical channel is closed');
      // Channels with both ends here end with the connection too (their loopback closes with it).
      if (!this.alive) throw new IpcError('DISCONNECTED', 'the multiplexed connection has ended');
      // Primitives carry no handle and cannot change later: queued as they are (a function or a
      // symbol goes to the loopback, whose encoder refuses it UNSERIALIZABLE). Objects are
      // copied through the loopback, like any message (a relay encodes them itself). Once one
      // is in the loopback, what follows on the channel goes there too, to keep the order.
      if (c.inLoop === 0 && c.sink !== undefined) this.sendToSink(c, value);
      else if (c.inLoop === 0 && (value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol'))) this.deliver(c, value);
      else sendLocal(this, c, value);
      return;
    }
    if (c.peerGone || !this.alive) throw new IpcError('DISCONNECTED', this.alive ? 'the receiver of this logical channel is closed' : 'the multiplexed connection has ended');
    sendFrame(this, c.key, value);
  }



  /** The application's send to a moved receiver: through the relay, its errors thrown (the value stays the caller's). */
  private sendToSink(c: Chan, value: unknown): void {
    const sink = c.sink!;
    try {
      if ('plain' in sink) sink.plain.send(value);
      else if (sink.relay.peerGone || !this.alive) throw new IpcError('DISCONNECTED', 'the receiver of this logical channel is closed');
      else sendFrame(this, sink.relay.key, value);
    } catch (e) {
      if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) {
        this.sinkGone(c);
        throw new IpcError('DISCONNECTED', 'the receiver of this logical channel is closed', { cause: e });
      }
      throw e;
    }
  }

  /**
   * A message for hosted channel `c`: to its receiver, or through its relay. `fromPeer`: it came
   * in a peer's frame, so the connection's `maxQueuedTotal` applies (a channel with both ends
   * here never pays for what the peer queued).
   */
  /** @internal */
  deliver(c: Chan, value: unknown, fromPeer = false, bytes = 0, handles = 0, holds?: boolean): void {
    const sink = c.sink;
    if (sink !== undefined) {
      const out = 'plain' in sink ? sink.plain : (this.tx as IpcSender<unknown>);
      if (unsentBytes(out) > this.limits.maxUnsentBytes) {
        // The moved receiver's side does not read: this side stops relaying rather than hold it all.
        const err = new IpcError('TOO_LARGE', `a moved logical receiver left more than maxUnsentBytes (${this.limits.maxUnsentBytes}) unread; the channel is closed (its senders see DISCONNECTED), the others go on`);
        closeValue(value);
        this.sinkGone(c);
        this.report(err);
        return;
      }
      try {
        if ('plain' in sink) sink.plain.send(value);
        else if (sink.relay.peerGone || !this.alive) throw new IpcError('DISCONNECTED', 'relay target gone');
        else sendFrame(this, sink.relay.key, value);
        // Sent (copied, or moved): this side keeps nothing of what it only relayed.
        closeValue(value);
      } catch (e) {
        closeValue(value);
        if (e instanceof IpcError && (e.code === 'DISCONNECTED' || e.code === 'CLOSED')) this.sinkGone(c);
      }
      return;
    }
    if (c.recvGone) {
      closeValue(value);
      return;
    }
    const w = c.waiters.shift();
    if (w !== undefined) {
      w.disarm();
      w.resolve(value);
      this.waiting(-1);
      return;
    }
    const over = this.overBudget(c, fromPeer, bytes, handles);
    if (over !== undefined) {
      const err = new IpcError('TOO_LARGE', `a logical channel overflowed ${over} not yet received; the channel is closed (its senders see DISCONNECTED), the others go on. Receive faster or raise the limit`);
      closeValue(value);
      this.fail(c, err);
      this.report(err);
      return;
    }
    if (c.queue === EMPTY) c.queue = [value];
    else c.queue.push(value);
    const meta = (c.queueMeta ??= []);
    meta.push(bytes, handles * 2 + ((holds ?? holdsHandles(value)) ? 1 : 0));
    this.queued++;
    this.queuedBytes += bytes;
    this.queuedHandles += handles;
  }

  /** Which budget queueing this message would overflow (the channel's, or the connection's for a peer's message), if any. */
  private overBudget(c: Chan, fromPeer: boolean, bytes: number, handles: number): string | undefined {
    if (c.queue.length >= c.maxQueue) return `its maxQueue (${c.maxQueue}) messages`;
    if (!fromPeer) return undefined;
    const l = this.limits;
    if (this.queued >= l.maxQueuedTotal) return `the connection's maxQueuedTotal (${l.maxQueuedTotal}) messages`;
    if (this.queuedBytes + bytes > l.maxQueuedBytes) return `the connection's maxQueuedBytes (${l.maxQueuedBytes}) bytes of messages`;
    if (this.queuedHandles + handles > l.maxQueuedHandles) return `the connection's maxQueuedHandles (${l.maxQueuedHandles}) descriptors in messages`;
    return undefined;
  }

  /** @internal The next queued message of hosted channel `c` (the queue is not empty), its budget released. */
  takeQueued(c: Chan): unknown {
    const v = c.queue.shift();
    this.queued--;
    const meta = c.queueMeta!;
    this.queuedBytes -= meta.shift()!;
    this.queuedHandles -= meta.shift()! >>> 1;
    return v;
  }

  /**
   * Empties `c`'s queue and releases its budget; returns what was queued. `close`: the messages
   * that hold handles or endpoints are closed (a dropped queue).
   */
  private clearQueue(c: Chan, close = false): unknown[] {
    const q = c.queue;
    if (q.length === 0) return q;
    const meta = c.queueMeta!;
    c.queue = EMPTY;
    c.queueMeta = undefined;
    this.queued -= q.length;
    for (let i = 0; i < q.length; i++) {
      this.queuedBytes -= meta[2 * i]!;
      this.queuedHandles -= meta[2 * i + 1]! >>> 1;
    }
    // Closed once the budget is released (closing may run the application's code).
    if (close) for (let i = 0; i < q.length; i++) if ((meta[2 * i + 1]! & 1) === 1) closeValue(q[i]);
    return q;
  }

  /** The channel overflowed: queued messages dropped, the receiver reports `err` once, senders see DISCONNECTED. */
  private fail(c: Chan, err: IpcError): void {
    this.dropQueue(c);
    c.failure = err;
    c.eof = true;
    c.recvGone = true;
    const ws = c.waiters;
    c.waiters = EMPTY;
    if (ws.length > 0) {
      c.failure = undefined;
      this.waiting(-ws.length);
      for (const w of ws) {
        w.disarm();
        w.reject(err);
      }
    }
    if (c.granted > 0) this.rclosed(c);
    this.maybeForget(c);
  }

  /** Drops `c`'s queue, closing only the messages that hold handles (marked as they arrived). */
  private dropQueue(c: Chan): void {
    this.clearQueue(c, true);
  }

  /** @internal The receiver object was closed or collected. */
  receiverGone(c: Chan): void {
    if (c.recvGone && c.sink === undefined) return;
    this.dropQueue(c);
    c.recvGone = true;
    const ws = c.waiters;
    if (ws.length > 0) {
      c.waiters = EMPTY;
      this.waiting(-ws.length);
      for (const w of ws) {
        w.disarm();
        w.reject(new IpcError('CLOSED', 'this MuxReceiver was closed'));
      }
    }
    if (c.granted > 0) this.rclosed(c);
    this.maybeForget(c);
  }

  /** A relay's target is gone: the moved receiver is gone. */
  /** @internal */
  sinkGone(c: Chan): void {
    const sink = c.sink;
    c.sink = undefined;
    if (sink && 'plain' in sink) sink.plain.close();
    if (sink && 'relay' in sink) this.senderGone(sink.relay);
    c.recvGone = true;
    if (c.granted > 0) this.rclosed(c);
    this.maybeForget(c);
  }

  /** @internal The receiver moved: queued messages go first, pending receives reject CLOSED. */
  relayTo(c: Chan, sink: Sink): void {
    const ws = c.waiters;
    c.waiters = EMPTY;
    this.waiting(-ws.length);
    for (const w of ws) {
      w.disarm();
      w.reject(new IpcError('CLOSED', 'this MuxReceiver was sent away'));
    }
    const q = this.clearQueue(c);
    c.recvGone = true;
    c.sink = sink;
    for (const v of q) this.deliver(c, v);
    if (c.failure || c.eof) this.endRelay(c);
  }

  /** Every sender of hosted channel `c` is gone: its receiver (or relay) sees the end. */
  /** @internal */
  checkEnd(c: Chan): void {
    // Messages still in the loopback come first: pumpLoop checks again once the last is out.
    if (!c.host || c.eof || c.inLoop > 0 || ((c.local > 0 || c.granted > 0) && this.alive)) return;
    c.eof = true;
    const ws = c.waiters;
    if (ws.length > 0 && c.queue.length === 0) {
      c.waiters = EMPTY;
      this.waiting(-ws.length);
      for (const w of ws) {
        w.disarm();
        w.reject(new IpcError('DISCONNECTED', 'every sender of this logical channel is closed (or the connection ended)'));
      }
    }
    if (c.sink) this.endRelay(c);
    this.maybeForget(c);
  }

  private endRelay(c: Chan): void {
    const sink = c.sink;
    c.sink = undefined;
    if (sink && 'plain' in sink) sink.plain.close();
    else if (sink) this.senderGone(sink.relay);
  }

  /** @internal */
  maybeForget(c: Chan): void {
    if (c.host ? c.local === 0 && c.inLoop === 0 && (c.granted === 0 || !this.alive) && (c.recvGone || c.eof) && c.sink === undefined : c.local === 0) this.forget(c);
  }

  /** @internal A sender object (or a relay) of `c` is gone. */
  senderGone(c: Chan): void {
    c.local--;
    if (c.host) {
      this.checkEnd(c);
      this.maybeForget(c);
      return;
    }
    if (c.local > 0) return;
    // Also after RCLOSED: the host keeps the channel's entry until the peer's senders are dropped.
    if (c.received > 0) this.control(OP_DROP, c.key, c.received);
    c.received = 0;
    this.forget(c);
  }

  /** The connection ended. */
  /** @internal */
  die(): void {
    if (!this.alive) return;
    this.alive = false;
    if (this.refed) this.rx.unref();
    for (const c of this.chans.values()) {
      if (c.host) this.checkEnd(c);
      else {
        c.peerGone = true;
        if (c.relayOf) this.sinkGone(c.relayOf);
      }
    }
  }
}

