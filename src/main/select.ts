/**
 * IpcReceiverSet: waits on several receivers at once (servo's `IpcReceiverSet`).
 */
import { armDeadline } from '../shared/deadline.js';
import type { Disarm } from '../shared/deadline.js';
import { IpcError } from '../shared/errors.js';
import { IpcBytesReceiver, IpcReceiver, asyncSchemaError, blockingWait, receiverCore } from './channel.js';
import type { ReceiverCore } from './channel.js';
import type { ParsedItem } from './framing.js';
import { assertThread, checkTimeout, closedError, currentThreadId } from './handles.js';

/** One ready receiver in the answer of {@link IpcReceiverSet.select}. */
export type SelectResult<T = unknown> =
  /** A message arrived on receiver `id`. */
  | { id: number; type: 'message'; message: T }
  /**
   * Receiver `id` is done: every sender closed and everything sent was received (or it was
   * closed or sent away here). It has left the set.
   */
  | { id: number; type: 'closed' }
  /**
   * What arrived on receiver `id` is refused (`MALFORMED`, `TOO_LARGE`, `INVALID`...), standing
   * for one message, as it would reject one `recv()`. The receiver stays in the set.
   */
  | { id: number; type: 'error'; error: IpcError };

/** Options of {@link IpcReceiverSet.select}. */
export interface SelectOptions {
  /** Reject with TIMEOUT when nothing is ready within this many milliseconds. */
  timeout?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

type AnyReceiver = IpcReceiver<unknown> | IpcBytesReceiver;

interface Member {
  receiver: AnyReceiver;
  core: ReceiverCore;
  /** Removes the set's readiness hook from the receiver (see ReceiverCore.subscribe). */
  unsubscribe: () => void;
}

interface PendingSelect {
  resolve: (r: SelectResult[]) => void;
  reject: (e: Error) => void;
  /** Stops its timeout and abort signal. */
  disarm: Disarm;
}

/** Sets with a select() in flight stay reachable (with their receivers) until it settles. */
const selecting = new Set<IpcReceiverSet>();

/**
 * A set of receivers to wait on together. `add()` gives each an id; `select()` resolves with
 * everything ready at that moment (at least one result). Closing the set closes its receivers.
 * Use it from the thread that created it.
 */
export class IpcReceiverSet implements Disposable {
  private readonly members = new Map<number, Member>();
  private nextId = 0;
  private pending: PendingSelect | undefined;
  private isClosed = false;
  private readonly thread = currentThreadId;

  /**
   * Adds a receiver and returns its id. The set reads its messages from now on: do not also
   * `recv()` on it (a pending `recv()` is served first). A receiver can be in one set at a time.
   */
  add(receiver: AnyReceiver): number {
    assertThread(this.thread, 'this IpcReceiverSet');
    if (this.isClosed) throw closedError('IpcReceiverSet');
    if (!(receiver instanceof IpcReceiver) && !(receiver instanceof IpcBytesReceiver)) {
      throw new TypeError('IpcReceiverSet.add() takes an IpcReceiver or an IpcBytesReceiver');
    }
    const core = receiverCore(receiver);
    if (core.closed) throw closedError(receiver.constructor.name);
    const unsubscribe = core.subscribe(() => this.wake());
    const id = this.nextId++;
    this.members.set(id, { receiver, core, unsubscribe });
    if (this.pending) core.setWatched(true);
    return id;
  }

  /** Takes a receiver out of the set (it stays open and yours); undefined for an unknown id. */
  remove(id: number): AnyReceiver | undefined {
    const m = this.members.get(id);
    if (!m) return undefined;
    this.detach(id, m);
    return m.receiver;
  }

  /** How many receivers the set holds. */
  get size(): number {
    return this.members.size;
  }

  /** Everything ready now, without waiting (possibly an empty array). */
  trySelect(): SelectResult[] {
    assertThread(this.thread, 'this IpcReceiverSet');
    if (this.isClosed) throw closedError('IpcReceiverSet');
    return syncResults(this.collect(), 'trySelect()');
  }

  /**
   * Blocks this thread until at least one receiver is ready, and returns everything ready at
   * that moment (servo's blocking `select()`): the set's counterpart of `recvSync()`, with the
   * same conditions (nothing else runs on the thread meanwhile; what this thread's senders hold
   * queued is written first and while waiting). Throws TIMEOUT, CLOSED, DISCONNECTED with no
   * receivers left; TypeError while a select() is pending or with an asynchronous schema.
   */
  selectSync(options: Pick<SelectOptions, 'timeout'> = {}): SelectResult[] {
    assertThread(this.thread, 'this IpcReceiverSet');
    if (this.isClosed) throw closedError('IpcReceiverSet');
    if (this.pending) throw new TypeError('IpcReceiverSet.selectSync() cannot be used while a select() is waiting');
    const timeout = checkTimeout(options.timeout);
    const deadline = timeout === undefined ? -1 : performance.now() + timeout;
    for (;;) {
      const ready = this.collect();
      if (ready.length > 0) return syncResults(ready, 'selectSync()');
      if (this.members.size === 0) throw new IpcError('DISCONNECTED', 'the IpcReceiverSet holds no receivers');
      const fds = Int32Array.from([...this.members.values()].flatMap((m) => m.core.readFds));
      blockingWait(fds, deadline, `no receiver was ready within ${timeout} ms`);
    }
  }

  /**
   * Waits until at least one receiver is ready and resolves with everything ready at that
   * moment. Rejects TIMEOUT, CLOSED (the set was closed), or with the signal's reason.
   * With no receivers left it rejects DISCONNECTED. One select() at a time.
   */
  select(options: SelectOptions = {}): Promise<SelectResult[]> {
    try {
      assertThread(this.thread, 'this IpcReceiverSet');
      if (this.isClosed) throw closedError('IpcReceiverSet');
      if (this.pending) throw new TypeError('IpcReceiverSet.select() is already waiting; call it again once it settles');
      const { signal } = options;
      const timeout = checkTimeout(options.timeout);
      const ready = this.collect();
      if (ready.length > 0) return Promise.resolve(settleAsync(ready));
      if (this.members.size === 0) throw new IpcError('DISCONNECTED', 'the IpcReceiverSet holds no receivers');
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<SelectResult[]>((resolve, reject) => {
        const p: PendingSelect = { resolve, reject, disarm: () => {} };
        p.disarm = armDeadline({ timeout, signal, timeoutMessage: () => `no receiver was ready within ${timeout} ms` }, (reason) =>
          this.settle(undefined, reason as Error),
        );
        this.pending = p;
        selecting.add(this);
        for (const m of this.members.values()) m.core.setWatched(true);
      }).then(settleAsync);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Closes every receiver in the set and the set; a pending select() rejects CLOSED. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const members = [...this.members.values()];
    this.members.clear();
    this.settle(undefined, closedError('IpcReceiverSet'));
    for (const m of members) {
      m.unsubscribe();
      m.receiver.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Called by a receiver's core when items arrive or its state changes. */
  private wake(): void {
    if (!this.pending) return;
    const ready = this.collect();
    if (ready.length > 0) this.settle(ready);
    else if (this.members.size === 0) this.settle(undefined, new IpcError('DISCONNECTED', 'the IpcReceiverSet holds no receivers'));
  }

  private settle(ready: SelectResult[] | undefined, err?: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    selecting.delete(this);
    p.disarm();
    for (const m of this.members.values()) m.core.setWatched(false);
    if (ready) p.resolve(ready);
    else p.reject(err!);
  }

  private detach(id: number, m: Member): void {
    this.members.delete(id);
    m.unsubscribe();
  }

  /** Takes what is ready on every member: the items already read, after one read if none. */
  private collect(): SelectResult[] {
    const out: SelectResult[] = [];
    for (const [id, m] of this.members) {
      const { core } = m;
      if (!core.closed) {
        const first = core.takeNow();
        if (first !== undefined) {
          this.push(out, id, m, first);
          // Only what is already queued: a fast sender cannot keep one select() going forever.
          for (let n = core.pending; n > 0; n--) this.push(out, id, m, core.takeNow()!);
        }
      }
      if (core.closed || (core.eof && core.pending === 0)) {
        out.push({ id, type: 'closed' });
        this.detach(id, m);
      }
    }
    return out;
  }

  private push(out: SelectResult[], id: number, m: Member, item: ParsedItem): void {
    try {
      const message: unknown = (m.receiver as { finish(item: ParsedItem): unknown }).finish(item);
      out.push({ id, type: 'message', message });
    } catch (e) {
      out.push({ id, type: 'error', error: e instanceof IpcError ? e : new IpcError('MALFORMED', String((e as Error)?.message ?? e), { cause: e }) });
    }
  }
}

/** The results of a synchronous select, refused when an asynchronous schema made a promise. */
function syncResults(ready: SelectResult[], call: string): SelectResult[] {
  for (const r of ready) {
    if (r.type === 'message' && r.message instanceof Promise) {
      for (const other of ready) if (other.type === 'message' && other.message instanceof Promise) other.message.catch(() => {});
      throw asyncSchemaError(r.message, call, 'select()');
    }
  }
  return ready;
}

/** Resolves messages that an asynchronous schema turned into promises. */
function settleAsync(ready: SelectResult[]): Promise<SelectResult[]> | SelectResult[] {
  if (!ready.some((r) => r.type === 'message' && r.message instanceof Promise)) return ready;
  return Promise.all(
    ready.map(async (r): Promise<SelectResult> => {
      if (r.type !== 'message' || !(r.message instanceof Promise)) return r;
      try {
        return { id: r.id, type: 'message', message: await r.message };
      } catch (e) {
        return { id: r.id, type: 'error', error: e as IpcError };
      }
    }),
  );
}
