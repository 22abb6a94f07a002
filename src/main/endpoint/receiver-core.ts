/**
 * A receiver's core (the top of the chain ReceiverSockets, ReceiverReading, ReceiverCore):
 * pending receives and their deadlines, handing items to them, ref/unref, closing, and moving
 * the receiver inside a message with what it has read ahead.
 */
import { randomBytes } from 'node:crypto';
import { IpcError } from '../../shared/errors.js';
import { armDeadline } from '../../shared/deadline.js';
import type { Disarm } from '../../shared/deadline.js';
import { fdList, fitsOnePacket, fragmentPackets, singleRecordPacket, switchPacket } from '../framing.js';
import type { OutPacket, ParsedItem } from '../framing.js';
import { closedError, osError, untrackForGc } from '../handles.js';
import { attachPacket } from '../writers.js';
import { recordParts } from './decode.js';
import { ReceiverReading } from './receiver-reading.js';
import { SenderCore } from './sender-core.js';
import { closeFds } from './thread-state.js';

/** The iteration state a receiver's async iterator shares with its pending steps (see {@link ReceiverCore.next}). */
export interface IterState {
  /** Set once the iteration ended (end of file, an error): later steps are done at once. */
  finished: boolean;
}

/** The result of an iteration step at end of file. */
const ITER_DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true }) as IteratorReturnResult<undefined>;

const NOT_ARMED: Disarm = () => {};

/**
 * A pending receive: one per recv() (its promise's resolving functions, what turns the item into
 * the result, its deadline), no closure of its own.
 */
class Waiter {
  resolve: (value: unknown) => void = capturedResolve!;
  reject: (e: unknown) => void = capturedReject!;
  /** Stops its timeout and abort signal (NOT_ARMED when it has neither). */
  disarm: Disarm = NOT_ARMED;
  constructor(
    readonly finish: (item: ParsedItem) => unknown,
    /** Set for a step of an async iterator: end of file resolves done, an error ends the iteration. */
    readonly iter: IterState | undefined,
  ) {}

  /** Settles with `item`: the finished value, or the error it stands for (or finish throws). */
  deliver(item: ParsedItem): void {
    let value: unknown;
    try {
      value = this.finish(item);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.resolve(value);
  }

  /** Rejects with `e`; an iteration ends with it. */
  fail(e: unknown): void {
    if (this.iter !== undefined) this.iter.finished = true;
    this.reject(e);
  }
}

/** The resolving functions of the promise being made (a shared executor: no closure per recv()). */
let capturedResolve: ((value: unknown) => void) | undefined;
let capturedReject: ((e: unknown) => void) | undefined;
function capture(resolve: (value: unknown) => void, reject: (e: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/**
 * The reading half of a channel: one socket (plus attached writers' sockets on singleWriter
 * transports), a parser, a queue of complete records, pending receives.
 */
export class ReceiverCore extends ReceiverReading {
  private waiters: Waiter[] = [];
  /** The secret announced for the next move (set when the handle's kind tag is taken). */
  private nextSecret: string | undefined;

  /** Receives waiting for a message (recv() promises). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes the next complete record or error, reading the socket without waiting if needed. */
  takeNow(): ParsedItem | undefined {
    if (this.pending === 0 && !this.eof) this.read();
    return this.shift();
  }

  /** Takes the next record or error already read, without touching the socket. */
  takeQueued(): ParsedItem | undefined {
    return this.shift();
  }

  /**
   * Waits for the next item and turns it into the result with `finish` (which may throw, for
   * an error item or a bad message). Rejects DISCONNECTED at end of file, TIMEOUT after `timeout`.
   * With `iter` (a step of an async iterator): end of file resolves {@link ITER_DONE} instead, and
   * any rejection sets `iter.finished`.
   */
  next<R>(timeout: number | undefined, signal: AbortSignal | undefined, finish: (item: ParsedItem) => R, iter?: IterState): Promise<Awaited<R>> {
    if (this.closed) return this.refuse(closedError(this.what), iter);
    const ready = this.shift();
    if (ready) {
      try {
        return Promise.resolve(finish(ready)) as Promise<Awaited<R>>;
      } catch (e) {
        return this.refuse(e, iter);
      }
    }
    if (this.eof) return iter === undefined ? Promise.reject(this.eofError()) : this.refuse(undefined, iter);
    if (signal?.aborted) return this.refuse(signal.reason, iter);
    const promise = new Promise<Awaited<R>>(capture as never);
    const w = new Waiter(finish, iter);
    // Not kept past this call: a settled promise's resolving functions hold its value.
    capturedResolve = capturedReject = undefined;
    if (timeout !== undefined || signal !== undefined) {
      // A timer armed while the receiver is unref()ed does not keep the process alive either.
      w.disarm = armDeadline({ timeout, signal, timeoutMessage: () => `no message arrived within ${timeout} ms`, ref: this.refed }, (reason) => {
        this.removeWaiter(w);
        w.fail(reason);
      });
    }
    this.waiters.push(w);
    this.demand(true);
    return promise;
  }

  /** A receive that fails at once (an iteration step: ends the iteration; undefined `e`: done). */
  private refuse<R>(e: unknown, iter: IterState | undefined): Promise<R> {
    if (iter === undefined) return Promise.reject(e);
    iter.finished = true;
    return e === undefined ? (Promise.resolve(ITER_DONE) as Promise<R>) : Promise.reject(e);
  }

  /** Drops a receive that expired (timeout, abort). */
  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    this.demand();
  }

  /** Hands queued items to waiting receives. */
  dispatch(): void {
    while (this.waiters.length > 0) {
      const item = this.shift();
      if (!item) break;
      const w = this.waiters.shift()!;
      if (w.disarm !== NOT_ARMED) w.disarm();
      w.deliver(item);
    }
    if (this.eof && this.pending === 0 && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) {
        w.disarm();
        if (w.iter !== undefined) {
          w.iter.finished = true;
          w.resolve(ITER_DONE);
        } else w.reject(this.eofError());
      }
    }
    this.demand();
    this.onActivity?.();
  }

  /** Lets a pending receive keep the process alive (the default). */
  ref(): void {
    this.refed = true;
    this.setPollRef(this.waiters.length > 0 || this.watchers > 0);
  }

  /** Lets the process exit while a receive is pending. */
  unref(): void {
    this.refed = false;
    this.setPollRef(false);
  }

  /**
   * Called before the kind tag of a move is taken: on singleWriter transports, reads what the
   * sockets hold (an ATTACH packet there may announce the very sender the receiver is sent
   * through); where the transport reads ahead below the typed layer (win32: one overlapped read
   * in flight), moveProblem stops that read, and when it had taken a message already, what the
   * pipe holds is read into the queue and the new read stopped again (bounded: a writer that
   * never pauses leaves a problem, which write() reports). What was read travels on a carrier;
   * a receiver whose transport holds nothing travels as it is.
   */
  prepareMove(): void {
    if (this.t.singleWriter) this.absorb();
    if (!this.t.readsAhead) return;
    for (let round = 0; round < 16 && !this.closed && this.fd >= 0; round++) {
      if (this.t.moveProblem?.(this.fd) === undefined) break;
      this.absorb();
    }
  }

  /**
   * The kind tag this receiver travels with: `base`, then the secret its carrier's switch will
   * carry when it has messages read ahead (taken now, so the tag and the move agree), then the
   * secrets it still expects itself, each as `.` and 32 hex digits.
   */
  kindTag(base: string): string {
    // Messages read ahead, or attached writers' sockets, travel ahead of the socket on a carrier.
    if (this.nextSecret === undefined && (this.head < this.items.length || !this.parser.idle || this.writers.length > 0)) {
      this.nextSecret = randomBytes(16).toString('hex');
    }
    if (this.nextSecret === undefined && this.secrets.length === 0) return base;
    return [base, ...(this.nextSecret === undefined ? [] : [this.nextSecret]), ...this.secrets].join('.');
  }

  /**
   * Gives the socket away. Messages already read from it (and partial ones) must travel with it:
   * they are written into a fresh socket, followed by a SWITCH packet carrying the original, and
   * the fresh socket's other end is what is sent.
   */
  private detachWithPending(fd: number): number {
    const secret = this.nextSecret;
    this.nextSecret = undefined;
    const packets: OutPacket[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it instanceof Error) continue; // an error stands for a message already refused
      const parts = recordParts(it);
      const bytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
      const fds = fdList(it.fds);
      if (fitsOnePacket(bytes, fds.length)) packets.push(singleRecordPacket(parts, bytes, fds));
      else packets.push(...fragmentPackets(randomBytes(8).readBigUInt64LE(0), 0, parts, bytes, fds));
    }
    this.items = [];
    this.head = 0;
    packets.push(...this.parser.exportPartials());
    this.dropPoller();
    // Attached writers' sockets follow, to be read by the receiver's new owner too.
    for (const w of this.writers) {
      w.poller?.close();
      packets.push(attachPacket(w.fd));
    }
    this.writers = [];
    // The tag sent with this receiver announced a carrier exactly when `secret` is set.
    if (secret === undefined) {
      for (const p of packets) closeFds(p.fds);
      return fd;
    }
    let pair: [number, number];
    try {
      pair = this.t.socketpair(fd); // fd: the carrier's mode follows this move (win32)
    } catch (e) {
      for (const p of packets) closeFds(p.fds);
      closeFds([fd]);
      throw osError(e, 'socketpair');
    }
    packets.push(switchPacket(fd, secret));
    const carrier = {};
    const sender = new SenderCore(pair[0], carrier, 'IpcReceiver');
    sender.writePackets(packets);
    sender.close(carrier);
    return pair[1];
  }

  /** Closes, or (`detach`) gives the descriptor to the caller. Pending receives reject CLOSED. */
  close(owner: object, detach = false): number {
    if (this.closed) return -1;
    this.closed = true;
    untrackForGc(owner);
    this.pin(false);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w.disarm();
      w.fail(detach ? new IpcError('CLOSED', `this ${this.what} was sent to another endpoint`) : closedError(this.what));
    }
    const fd = this.fd;
    this.fd = -1;
    this.disposer.fd = -1;
    if (detach) return this.detachWithPending(fd);
    this.closeItems();
    closeFds([fd]);
    this.onActivity?.();
    return -1;
  }
}
