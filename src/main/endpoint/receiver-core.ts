/**
 * A receiver's core (the top of the chain ReceiverSockets, ReceiverReading, ReceiverCore):
 * pending receives and their deadlines, handing items to them, ref/unref, closing, and moving
 * the receiver inside a message with what it has read ahead.
 */
import { randomBytes } from 'node:crypto';
import { IpcError } from '../../shared/errors.js';
import { armDeadline } from '../../shared/deadline.js';
import type { Disarm } from '../../shared/deadline.js';
import { fitsOnePacket, fragmentPackets, singleRecordPacket, switchPacket } from '../framing.js';
import type { OutPacket, ParsedItem } from '../framing.js';
import { closedError, osError, untrackForGc } from '../handles.js';
import { attachPacket } from '../writers.js';
import { recordParts } from './decode.js';
import { ReceiverReading } from './receiver-reading.js';
import { SenderCore } from './sender-core.js';
import { closeFds } from './thread-state.js';

/** A pending receive. */
interface Waiter {
  resolve: (item: ParsedItem) => void;
  reject: (e: Error) => void;
  /** Stops its timeout and abort signal. */
  disarm: Disarm;
}

const NOT_ARMED: Disarm = () => {};

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
   */
  next<R>(timeout: number | undefined, signal: AbortSignal | undefined, finish: (item: ParsedItem) => R): Promise<Awaited<R>> {
    if (this.closed) return Promise.reject(closedError(this.what));
    const ready = this.shift();
    if (ready) {
      try {
        return Promise.resolve(finish(ready)) as Promise<Awaited<R>>;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.eof) return Promise.reject(this.eofError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Awaited<R>>((resolve, reject) => {
      const w: Waiter = {
        resolve: (item) => {
          try {
            resolve(finish(item) as Awaited<R>);
          } catch (e) {
            reject(e);
          }
        },
        reject,
        disarm: NOT_ARMED,
      };
      // A timer armed while the receiver is unref()ed does not keep the process alive either.
      w.disarm = armDeadline({ timeout, signal, timeoutMessage: () => `no message arrived within ${timeout} ms`, ref: this.refed }, (reason) => {
        this.removeWaiter(w);
        reject(reason);
      });
      this.waiters.push(w);
      this.demand();
    });
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
      w.disarm();
      w.resolve(item);
    }
    if (this.eof && this.pending === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) {
        w.disarm();
        w.reject(this.eofError());
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
      if (fitsOnePacket(bytes, it.fds.length)) packets.push(singleRecordPacket(parts, bytes, it.fds));
      else packets.push(...fragmentPackets(randomBytes(8).readBigUInt64LE(0), 0, parts, bytes, it.fds));
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
      w.reject(detach ? new IpcError('CLOSED', `this ${this.what} was sent to another endpoint`) : closedError(this.what));
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
