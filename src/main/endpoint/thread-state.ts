/**
 * What the endpoints of one thread share: the set that keeps busy endpoints reachable, the tick
 * counter that batches a burst of sends, the senders with output held back (written out by a
 * blocking receive and at process exit), and closing descriptors.
 */
import { isMainThread } from 'node:worker_threads';
import { IpcError } from '../../shared/errors.js';
import { errnoError } from '../handles.js';
import { native } from '../native.js';
import type { RecordFds } from '../framing.js';
import type { SenderCore } from './sender-core.js';

/**
 * Endpoints with work in flight (a pending recv, queued packets) stay reachable until it is
 * done, even if the program dropped every reference to them; idle ones can be collected.
 */
const busy = new Set<Pinnable>();

/** The base of the socket cores: pinning keeps its owner (the endpoint object) reachable while busy. */
export abstract class Pinnable {
  private readonly owner: WeakRef<object>;
  private pinned: object | undefined;
  constructor(owner: object) {
    this.owner = new WeakRef(owner);
  }
  protected pin(on: boolean): void {
    if (on) {
      if (this.pinned) return;
      this.pinned = this.owner.deref();
      busy.add(this);
    } else if (this.pinned) {
      this.pinned = undefined;
      busy.delete(this);
    }
  }
}

/**
 * A counter of bursts ("ticks"). The first send of a tick is written at once; the rest of the
 * tick's sends are batched and written together at the end of the event loop's turn (see
 * {@link drainLater}). A tick begins when one of this thread's sockets wakes the library (every
 * readiness callback calls {@link newTick}), when `tryRecv()` is about to read a socket, when the
 * batches of the last one are written, and before a blocking wait. So a request/response exchange writes each message at once, and the
 * replies a process sends to many messages read in one wake-up (each `await recv()` resuming in
 * its own microtask) leave in one packet instead of one each.
 */
let currentTick = 0;
export function tick(): number {
  return currentTick;
}

/** A readiness callback of this thread begins: the next send is written at once. */
export function newTick(): void {
  currentTick++;
}

const RESOLVED = Promise.resolve();

/**
 * Runs `fn` once this turn's microtasks have all run (a microtask that queues a process.nextTick:
 * Node runs ticks only when the microtask queue is empty). For settling "nobody waits any more":
 * `await recv()` in a loop asks again a few microtasks after a message (an async iterator takes
 * several), so checking in one microtask would drop and take the watch's ref and the GC pin for
 * every message. Cheaper than queueMicrotask, which makes an AsyncResource and a bound function
 * per call. `fn` must not throw.
 */
export function afterMicrotasks(fn: () => void): void {
  void RESOLVED.then(() => process.nextTick(fn));
}

/** Senders whose batch waits for the end of this turn of the event loop. */
const laterSenders = new Set<{ drainLater(): void }>();
let laterScheduled = false;
function runLater(): void {
  laterScheduled = false;
  currentTick++;
  const senders = [...laterSenders];
  laterSenders.clear();
  for (const s of senders) s.drainLater();
}

/** Writes `sender`'s batch in this turn's check phase (setImmediate), with every other one waiting. */
export function drainLater(sender: { drainLater(): void }): void {
  laterSenders.add(sender);
  if (!laterScheduled) {
    laterScheduled = true;
    setImmediate(runLater);
  }
}

/** The current tick (see {@link tick}), without scheduling its end. */
export function thisTick(): number {
  return currentTick;
}

/**
 * Senders of this thread with output waiting (a batch or a queue): a blocking receive writes it
 * out first, and also waits for their sockets to take it, so that two processes that both block
 * in recvSync() never wait on messages held back in each other's queues.
 */
export const waitingSenders = new Set<SenderCore>();

/** Writes what every sender of this thread holds back; returns the sockets still full. */
export function drainWaitingSenders(): Int32Array | null {
  // A blocking wait ends this burst: the next send is written at once, not batched.
  currentTick++;
  if (waitingSenders.size === 0) return null;
  const full: number[] = [];
  for (const s of [...waitingSenders]) {
    s.drain();
    if (!s.idle && !s.closedOrGone) full.push(s.fd);
  }
  return full.length ? Int32Array.from(full) : null;
}

/**
 * @internal One blocking wait of recvSync()/selectSync(): writes out what this thread's senders
 * hold back, then blocks in poll(2) on `readFds` (and on the senders' sockets that are still
 * full) until `deadline` (a performance.now() time, -1 for none). True when a read socket is
 * ready, false when only a sender's socket is (call again). Throws TIMEOUT (`waitingFor` names
 * what did not come) or OS. With `single` (the one receiver waited on), no deadline and no full
 * sender, it waits in that receiver's blocking read instead, and returns true once it has read.
 */
export function blockingWait(
  readFds: number | Int32Array,
  deadline: number,
  waitingFor: string,
  single?: { readBlocking(): boolean },
): boolean {
  const full = drainWaitingSenders();
  // One receiver, no deadline, no sender to watch: a blocking recvmsg is the whole wait. Not in
  // a worker, whose wait must end when the worker is terminated (below).
  if (single !== undefined && full === null && deadline < 0 && isMainThread && single.readBlocking()) return true;
  let left = deadline < 0 ? -1 : Math.max(0, deadline - performance.now());
  // worker.terminate() cannot interrupt a system call: a worker waits in slices, and returns to
  // JavaScript between them, where V8 carries out a pending termination.
  if (!isMainThread && (left < 0 || left > WORKER_WAIT_SLICE_MS)) left = WORKER_WAIT_SLICE_MS;
  const r = native().waitFds(readFds, full, left);
  if (r < 0) throw errnoError(r, 'poll', 'poll');
  if (r === 0 && deadline >= 0 && performance.now() >= deadline) throw new IpcError('TIMEOUT', waitingFor);
  return r === 1;
}

/** How long a blocking receive in a worker waits in one system call (see blockingWait). */
const WORKER_WAIT_SLICE_MS = 50;

/**
 * At process exit (`process.exit()`, the end of the program, an uncaught exception), messages
 * that send() accepted but that are still queued are written out synchronously, waiting at most
 * this long in all for peers that do not read. What cannot be written is reported on stderr.
 */
const EXIT_FLUSH_MS = 2000;
let exitFlushInstalled = false;

/** Makes process exit write out what senders hold back (see {@link flushAtExit}); once per thread. */
export function installExitFlush(): void {
  if (exitFlushInstalled) return;
  exitFlushInstalled = true;
  process.on('exit', flushAtExit);
}

/** @internal Writes what this thread's senders hold back, waiting (bounded) for full sockets. */
export function flushAtExit(): void {
  const deadline = performance.now() + EXIT_FLUSH_MS;
  const none = new Int32Array(0);
  for (;;) {
    let full: Int32Array | null;
    try {
      full = drainWaitingSenders();
    } catch {
      return;
    }
    if (full === null) return;
    const left = deadline - performance.now();
    if (left <= 0) break;
    if (native().waitFds(none, full, left) < 0) break;
  }
  let lost = 0;
  for (const s of waitingSenders) lost += s.queuedMessages;
  if (lost > 0) {
    process.stderr.write(`electron-ipc-channel: ${lost} message(s) sent before exit could not be written within ${EXIT_FLUSH_MS} ms (the receiving process does not read) and are lost\n`);
  }
}

/** Closes descriptors (one as a number, or an array), ignoring those already closed. */
export function closeFds(fds: RecordFds): void {
  if (typeof fds === 'number') closeQuietly(fds);
  else for (const fd of fds) closeQuietly(fd);
}

/** Closes `fd` through the addon; one already gone has nothing to release. */
function closeQuietly(fd: number): void {
  try {
    native().close(fd);
  } catch {
    // Already gone.
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
