/**
 * IpcSharedMemory: an immutable block of memory backed by a sealed memfd, sent as a descriptor.
 */
import { IpcError } from '../shared/errors.js';
import { OwnedDescriptor, kHandle, osError, registerHandleKind } from './handles.js';
import type { HandleInfo, ReviveContext } from './handles.js';
import { native } from './native.js';
import { transport } from './transport/index.js';


let forceCopy = process.env.ELECTRON_IPC_CHANNEL_COPY_SHM === '1';

/**
 * Forces `IpcSharedMemory.bytes` to copy the contents instead of viewing the mapping, as it must
 * inside Electron (whose V8 memory cage refuses external ArrayBuffers; that case is detected by
 * itself). Also set by the environment variable `ELECTRON_IPC_CHANNEL_COPY_SHM=1`.
 */
export function setSharedMemoryCopyMode(copy: boolean): void {
  forceCopy = Boolean(copy);
}

/** @internal Whether received shared memory is copied rather than mapped (forced, not detected). */
export function sharedMemoryCopyMode(): boolean {
  return forceCopy;
}

/** Whether `.bytes` views the mapping without copying in this process. */
export function sharedMemoryIsZeroCopy(): boolean {
  return !forceCopy && native().externalBuffersAllowed();
}

/**
 * Shared memory that cannot change once created: the memfd is sealed against writes, shrinking
 * and growing before anyone else can see it, so an untrusting receiver can rely on its contents.
 * Sending it keeps it usable here; the receiver gets its own descriptor. `close()` closes the
 * descriptor; a view from `.bytes` stays valid until it is garbage collected.
 */
export class IpcSharedMemory extends OwnedDescriptor {
  /** Size in bytes. */
  readonly length: number;
  private view: Uint8Array | undefined;

  /** @internal Use `fromBytes()` or `fromByte()`. */
  constructor(fd: number, length: number) {
    super(fd);
    this.length = length;
  }

  /** A new block holding a copy of `bytes`. */
  static fromBytes(bytes: Uint8Array): IpcSharedMemory {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('IpcSharedMemory.fromBytes() takes a Uint8Array');
    return create(bytes.byteLength, (fd) => {
      if (bytes.byteLength > 0) native().pwrite(fd, bytes, 0);
    });
  }

  /** A new block of `length` bytes, each `byte`. */
  static fromByte(byte: number, length: number): IpcSharedMemory {
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new RangeError(`byte must be an integer 0..255, got ${String(byte)}`);
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, got ${String(length)}`);
    return create(length, (fd) => {
      if (byte === 0 || length === 0) return; // a new memfd reads as zeros
      const chunk = new Uint8Array(Math.min(length, 1 << 20)).fill(byte);
      for (let at = 0; at < length; at += chunk.length) {
        native().pwrite(fd, chunk.subarray(0, Math.min(chunk.length, length - at)), at);
      }
    });
  }

  /**
   * The contents. In Node this is a zero-copy view of a private mapping (writes to it change
   * only this process's copy-on-write pages, never the shared block); in Electron, or with
   * `setSharedMemoryCopyMode(true)`, a copy. The same array is returned on every access.
   */
  get bytes(): Uint8Array {
    const fd = this.openFd('IpcSharedMemory');
    if (!this.view) {
      try {
        const shm = transport().shm;
        this.view = new Uint8Array(shm.mapsReceived ? native().mapFd(fd, this.length, false, forceCopy) : shm.read(fd, this.length));
      } catch (e) {
        throw osError(e, 'mapping shared memory');
      }
    }
    return this.view;
  }

  /** @internal */
  [kHandle](): HandleInfo {
    return { kind: 'M', fd: this.ownedFd, move: false };
  }
}

function create(length: number, fill: (fd: number) => void): IpcSharedMemory {
  let fd: number;
  try {
    fd = transport().shm.createBlock(length, fill);
  } catch (e) {
    throw osError(e, `creating, filling and sealing ${length} bytes of shared memory`);
  }
  return new IpcSharedMemory(fd, length);
}

/** `n` bytes for a message: with MiB or GiB when that is shorter to read. */
function sizeText(n: number): string {
  if (n >= 1 << 30) return `${n} bytes (${(n / (1 << 30)).toFixed(1)} GiB)`;
  if (n >= 1 << 20) return `${n} bytes (${(n / (1 << 20)).toFixed(1)} MiB)`;
  return `${n} bytes`;
}

/**
 * @internal Refuses a received shared memory segment of `size` bytes (`M` or `P`) that is over the
 * receiver's `maxSharedMemoryBytes`, or would bring the message's shared memory over
 * `maxSharedMemoryTotal`, with `IpcError('TOO_LARGE')`. Call it with the size the segment will be
 * mapped or copied with, before anything is mapped or copied; then count the segment with
 * {@link countSharedMemory} once it is accepted.
 */
export function checkSharedMemory(size: number, ctx: ReviveContext, what: string): void {
  const { maxSharedMemoryBytes, maxSharedMemoryTotal } = ctx.limits;
  if (size > maxSharedMemoryBytes) {
    throw new IpcError(
      'TOO_LARGE',
      `message refused: ${what} of ${sizeText(size)} exceeds this receiver's maxSharedMemoryBytes (${maxSharedMemoryBytes}); ` +
        'a receiver that expects bigger segments raises the maxSharedMemoryBytes option',
    );
  }
  if (ctx.sharedBytes + size > maxSharedMemoryTotal) {
    throw new IpcError(
      'TOO_LARGE',
      `message refused: its shared memory (${sizeText(ctx.sharedBytes + size)} with ${what} of ${sizeText(size)}) exceeds this ` +
        `receiver's maxSharedMemoryTotal (${maxSharedMemoryTotal}); a receiver that expects more raises the maxSharedMemoryTotal option`,
    );
  }
}

/** @internal Counts an accepted segment against the message's `maxSharedMemoryTotal`. */
export function countSharedMemory(size: number, ctx: ReviveContext): void {
  ctx.sharedBytes += size;
}

// The size is checked against the limits in `check`, on the same fstat as the seals (from
// decodeRecord's one fdInfo); over a limit, `check` throws TOO_LARGE instead of returning a
// problem, and decodeRecord closes this descriptor (not yet handed to `revive`) with every other
// one of the message. `revive` keeps that same size as the length `.bytes` maps or copies. The
// seals are read after the size: a peer that resizes and seals in between makes the size stale,
// but nothing goes beyond the checked size (mapFd refuses a length past the end of the file, and
// a copy is a pread into a buffer of that length), so what this process maps or copies stays
// within the limits either way.
registerHandleKind(
  'M',
  (info, ctx, fd) => {
    const problem = transport().shm.checkBlock(fd, info);
    if (problem) return `is ${problem}`;
    checkSharedMemory(info.size, ctx, 'an IpcSharedMemory');
    return undefined;
  },
  (fd, info, ctx) => {
    const shm = new IpcSharedMemory(fd, info.size);
    countSharedMemory(info.size, ctx);
    return shm;
  },
);
