/**
 * IpcFileHandle: an owned descriptor (file, pipe, socket, memfd...) that can travel in messages.
 */
import type { FileHandle } from 'node:fs/promises';
import { OwnedDescriptor, kHandle, kKindTag, osError, registerHandleKind } from './handles.js';
import type { HandleInfo } from './handles.js';
import { FD_PACKED_LISTENING, native } from './native.js';

/**
 * An owned descriptor. `IpcFileHandle.from()` duplicates the caller's descriptor (the caller
 * keeps and still owns its own); a received handle is owned by the receiver. Sending a handle
 * keeps it usable here: the receiving process gets its own descriptor (close-on-exec).
 */
export class IpcFileHandle extends OwnedDescriptor {
  /** @internal Use `IpcFileHandle.from()`. */
  constructor(fd: number) {
    super(fd);
  }

  /** Wraps a duplicate of `fd` (a number or a `fs.promises.FileHandle`). */
  static from(source: number | FileHandle): IpcFileHandle {
    let fd: number;
    if (typeof source === 'number') fd = source;
    else if (source && typeof source === 'object' && typeof (source as FileHandle).fd === 'number') fd = (source as FileHandle).fd;
    else throw new TypeError('IpcFileHandle.from() takes a file descriptor number or a fs.promises.FileHandle');
    if (fd === -1 && process.platform === 'win32') {
      // Node on Windows gives sockets and pipes no C runtime descriptor (`_handle.fd` is -1).
      throw new RangeError('not an open file descriptor: -1 (on Windows, Node gives sockets and pipes no descriptor, so they cannot be sent as an IpcFileHandle: send their data through the channel, or a pipe or server name the child connects to)');
    }
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`not an open file descriptor: ${String(fd)}`);
    try {
      return new IpcFileHandle(native().dup(fd));
    } catch (e) {
      throw osError(e, `duplicating descriptor ${fd}`);
    }
  }

  /** The descriptor, owned by this object: valid until `close()`. Use it with `fs.readSync` etc. */
  get fd(): number {
    return this.openFd('IpcFileHandle');
  }

  /** @internal */
  [kHandle](): HandleInfo {
    return { kind: 'F', fd: this.ownedFd, move: false };
  }

  /** @internal The kind tag, for the encoder (on the prototype: no field per handle). */
  declare readonly [kKindTag]: 'F';
  static {
    Object.defineProperty(this.prototype, kKindTag, { value: 'F' });
  }
}

// A received file handle is only wrapped: reviving it never reads, writes, maps, stats or waits
// on the descriptor the peer chose (its kind was read once by the receiver, to refuse a listening
// socket), so a FUSE file, a socket or a pipe cannot block or exhaust the receiver here. Its size
// is not limited (unlike shared memory, nothing of it is read into this process): what the
// application does with `fd` is up to the application, which should treat it as untrusted.
const reviveFile = (fd: number): IpcFileHandle => new IpcFileHandle(fd);
registerHandleKind(
  'F',
  (info) => (info.listening ? 'is a listening socket' : undefined),
  reviveFile,
  // The same check on fdInfo's packed flags: no FdInfo object per received file (POSIX).
  { check: (packed) => ((packed & FD_PACKED_LISTENING) !== 0 ? 'is a listening socket' : undefined), revive: reviveFile },
);
