/**
 * Batches of frames on a multiplexed connection (issue 15, section 3, fourth round; see
 * docs/multiplexing.md, "Batches"). The frames one turn of the event loop writes after its first
 * (requests, replies, control) leave together as ONE plain message, so the plain channel's
 * per-message cost (the sender core's record, the receiver's read, its record and decode, the
 * wake-up) is paid once per batch instead of once per frame.
 *
 * On the wire a batch is a plain message whose value is a `Uint8Array`: frames back to back,
 * each a little-endian u32 length then a message body of the codec (docs/wire-format.md) that
 * encodes the frame and carries no handle. The reader decodes each body on its own with the
 * connection receiver's limits, so a frame of a batch is checked exactly as a frame alone, and
 * its share of `maxQueuedBytes` is its own body's bytes.
 *
 * - Each frame is encoded when it is written (send() throws UNSERIALIZABLE at once, as before);
 *   its bytes are appended to the open batch.
 * - A frame that holds a handle (a descriptor: file, shared memory, plain endpoint) is not
 *   batched: the open batch is written first, then the frame as a plain message of its own.
 * - A side batches only after the peer said how large a message it reads (control op 3, sent
 *   once at open): a batch stays under the peer's `maxMessageBytes` (and under BATCH_BYTES).
 * - The open batch is written at the end of the turn (with the plain senders' batches, see
 *   drainLater in endpoint/thread-state.ts), before any frame written unbatched, when the
 *   connection closes, before a blocking wait (recvSync, selectSync) and at process exit (it
 *   joins the thread's senders with output waiting: `waitingSenders`).
 */
import { IpcError } from '../../shared/errors.js';
import { decodeMessage, encodeMessageInto } from '../../shared/codec.js';
import type { EncodeHooks } from '../../shared/codec.js';
import type { DecodeLimits } from '../../shared/limits.js';
import { isHandleSource } from '../handles.js';
import { drainLater, installExitFlush, tick, waitingSenders } from '../endpoint/thread-state.js';
import type { SenderCore } from '../endpoint/sender-core.js';
import { frameError } from './mux.js';
import type { IpcMux } from './mux.js';

/** Control op: "I read plain messages of up to `n` bytes" (so batches may be sent to me). */
export const OP_BATCH = 3;
/** Largest batch this side writes (bytes of frames), whatever the peer accepts. */
export const BATCH_BYTES = 64 * 1024;
/** Most frames in a batch this side writes. */
export const BATCH_FRAMES = 256;
/** Most frames in a batch this side reads (a peer's batch with more: MALFORMED, the rest dropped). */
export const MAX_BATCH_FRAMES = 4096;
/** What the plain message of a batch adds to its frames' bytes (body header, text, padding), with room to spare. */
const BATCH_OVERHEAD = 256;
/** A batch is not worth it when the peer reads less than this per message. */
const MIN_BATCH_BYTES = 1024;

/** Thrown by the encode hook at the first handle: the frame goes unbatched. */
const HAS_HANDLE = new Error('a frame with a handle is not batched');
const batchHooks: EncodeHooks = {
  handleKind(value: object): string | undefined {
    if (isHandleSource(value)) throw HAS_HANDLE;
    return undefined;
  },
};

/** Where small frames are encoded before they are copied into the batch (encodeMessageInto's scratch). */
const scratch = new Uint8Array(4096);

/** The writing state of one connection. */
export class FrameBatch {
  /** Frames' bytes (length-prefixed bodies), `pos` of them used; undefined while no batch is open. */
  buf: Uint8Array | undefined;
  pos = 0;
  frames = 0;
  /** The tick (see endpoint/thread-state.ts) of the last frame written unbatched. */
  sentAt = -1;
  /** Most bytes of frames a batch may hold (0 until the peer said what it reads: no batching). */
  limit = 0;
  /** This side told the peer what it reads (OP_BATCH, before its first frame). */
  announced = false;
  private scheduled = false;
  /** The tx core's stand-in among the thread's senders with output waiting (see the module comment). */
  private readonly waiter: Pick<SenderCore, 'drain' | 'idle' | 'closedOrGone' | 'fd' | 'queuedMessages'>;
  private readonly later = { drainLater: (): void => this.flushLater() };

  constructor(
    private readonly mux: IpcMux<unknown, unknown>,
    private readonly core: SenderCore,
  ) {
    const batch = this;
    this.waiter = {
      drain(): void {
        batch.flush();
        if (!core.idle) core.drain();
      },
      get idle(): boolean {
        return core.idle;
      },
      get closedOrGone(): boolean {
        return core.closedOrGone;
      },
      get fd(): number {
        return core.fd;
      },
      queuedMessages: 0,
    };
  }

  /**
   * True when `frame` should go unbatched now: no batch allowed, or none open and this is the
   * tick's first frame (written at once, as the plain sender writes the first send of a tick),
   * or the sender cannot write any more (its send() then throws as it should).
   */
  direct(): boolean {
    if (this.limit === 0 || this.core.disconnected || this.core.closed || this.core.failure !== undefined) return true;
    if (this.frames === 0 && this.sentAt !== tick()) {
      this.sentAt = tick();
      return true;
    }
    return false;
  }

  /**
   * Encodes `frame` into the open batch (throws UNSERIALIZABLE, nothing kept, as send() does).
   * False when it holds a handle or is too large for a batch: the caller writes it alone (after
   * {@link flush}).
   */
  append(frame: unknown): boolean {
    let enc;
    try {
      enc = encodeMessageInto(frame, batchHooks, scratch);
    } catch (e) {
      if (e instanceof IpcError && e.cause === HAS_HANDLE) return false;
      throw e;
    }
    const size = enc.byteLength;
    if (size + 4 > this.limit) return false;
    if (this.buf !== undefined && this.pos + 4 + size > this.buf.length) {
      if (this.pos + 4 + size > this.limit) this.flush();
      else this.grow(this.pos + 4 + size);
    }
    if (this.buf === undefined) this.open(size + 4);
    const buf = this.buf!;
    let at = this.pos;
    buf[at] = size;
    buf[at + 1] = size >>> 8;
    buf[at + 2] = size >>> 16;
    buf[at + 3] = size >>> 24;
    at += 4;
    const parts = enc.parts;
    if (parts[0] === scratch) {
      if (size <= 256) for (let i = 0; i < size; i++) buf[at + i] = scratch[i]!;
      else buf.set(scratch.subarray(0, size), at);
    } else {
      for (const p of parts) {
        buf.set(p, at);
        at += p.length;
      }
    }
    this.pos += 4 + size;
    if (++this.frames >= BATCH_FRAMES) this.flush();
    return true;
  }

  private open(need: number): void {
    this.buf = new Uint8Array(Math.min(this.limit, Math.max(4096, need)));
    this.pos = 0;
    this.frames = 0;
    waitingSenders.add(this.waiter as SenderCore);
    installExitFlush();
    if (!this.scheduled) {
      this.scheduled = true;
      drainLater(this.later);
    }
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.min(this.limit, Math.max(need, this.buf!.length * 2)));
    next.set(this.buf!.subarray(0, this.pos));
    this.buf = next;
  }

  private flushLater(): void {
    this.scheduled = false;
    this.flush();
  }

  /** Writes the open batch (if any) as one plain message. Never throws: a connection that ended ends the mux. */
  flush(): void {
    const buf = this.buf;
    if (buf === undefined) return;
    const body = buf.subarray(0, this.pos);
    this.buf = undefined;
    this.pos = 0;
    this.frames = 0;
    waitingSenders.delete(this.waiter as SenderCore);
    try {
      this.mux.send(body);
    } catch (e) {
      if (!(e instanceof IpcError && e.code === 'DISCONNECTED')) this.mux.report(e instanceof IpcError ? e : new IpcError('MALFORMED', String(e)));
    }
  }

  /** The connection ended: what is open is dropped. */
  drop(): void {
    this.buf = undefined;
    this.pos = 0;
    this.frames = 0;
    waitingSenders.delete(this.waiter as SenderCore);
  }

  /** The peer's OP_BATCH: it reads messages of up to `n` bytes. */
  peerReads(n: unknown): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw frameError('a batch size announcement (op 3) is not a byte count');
    const limit = Math.min(BATCH_BYTES, n - BATCH_OVERHEAD);
    this.limit = limit >= MIN_BATCH_BYTES ? limit : 0;
  }
}

/**
 * Reads a peer's batch: each frame decoded on its own with `limits` and handed to `onFrame` with
 * its own bytes. A bad length ends the batch (MALFORMED, reported, the rest dropped); a frame
 * that does not decode or is refused is reported and the next one goes on. Returns the number
 * of frames it held.
 */
export function readBatch(
  mux: IpcMux<unknown, unknown>,
  batch: Uint8Array,
  limits: DecodeLimits,
  onFrame: (mux: IpcMux<unknown, unknown>, f: unknown, bytes: number, handles: number) => void,
): number {
  if (batch.length === 0) {
    mux.report(frameError('an empty batch'));
    return 1;
  }
  let pos = 0;
  let n = 0;
  while (pos < batch.length) {
    if (n === MAX_BATCH_FRAMES) {
      mux.report(frameError(`a batch of more than ${MAX_BATCH_FRAMES} frames (the rest was dropped)`));
      return n;
    }
    if (batch.length - pos < 4) {
      mux.report(frameError('a batch ends inside a frame length (the rest was dropped)'));
      return n + 1;
    }
    const len = (batch[pos]! | (batch[pos + 1]! << 8) | (batch[pos + 2]! << 16) | (batch[pos + 3]! << 24)) >>> 0;
    pos += 4;
    if (len > batch.length - pos) {
      mux.report(frameError(`a frame of ${len} bytes in a batch with ${batch.length - pos} left (the rest was dropped)`));
      return n + 1;
    }
    const body = batch.subarray(pos, pos + len);
    pos += len;
    n++;
    let f: unknown;
    try {
      f = decodeMessage(body, 0, undefined, limits);
    } catch (e) {
      mux.report(e instanceof IpcError ? e : frameError(String(e)));
      continue;
    }
    if (f instanceof Uint8Array) {
      mux.report(frameError('a batch inside a batch'));
      continue;
    }
    try {
      onFrame(mux, f, len, 0);
    } catch (e) {
      mux.report(e instanceof IpcError ? e : frameError(String((e as Error)?.message ?? e)));
    }
  }
  return n;
}
