/**
 * Error codes of {@link IpcError}. Misuse by the caller is a plain `TypeError`/`RangeError`;
 * everything the OS or the peer did is an `IpcError` with one of these codes.
 */
export type IpcErrorCode =
  /** The other end is gone: every sender closed (recv) or the receiver closed (send). */
  | 'DISCONNECTED'
  /** A `timeout` option elapsed first. */
  | 'TIMEOUT'
  /** This endpoint was closed (or transferred away) by this process. */
  | 'CLOSED'
  /** The peer sent bytes or descriptors that do not form a valid message. */
  | 'MALFORMED'
  /** A message exceeds a limit of the receiver (bytes, descriptors, depth, elements, binaries, shared memory). */
  | 'TOO_LARGE'
  /** The value cannot be serialized (function, symbol, unsupported class instance...). */
  | 'UNSERIALIZABLE'
  /** A message failed the receiver's schema validation. */
  | 'INVALID'
  /** The operating system refused a call; see `errno` and `syscall`. */
  | 'OS';

/** Options of the {@link IpcError} constructor. */
export interface IpcErrorOptions {
  cause?: unknown;
  errno?: number;
  syscall?: string;
  /** Validation issues, for code `INVALID`. */
  issues?: ReadonlyArray<unknown>;
}

/** The one error class for failures of the OS or of the peer. Its `code` is stable. */
export class IpcError extends Error {
  /** Stable machine-readable code. */
  readonly code: IpcErrorCode;
  /** OS error number (positive) for code `OS`, when the OS gave one. */
  readonly errno?: number;
  /** The system call that failed, for code `OS`. */
  readonly syscall?: string;
  /** Validation issues, for code `INVALID`. */
  readonly issues?: ReadonlyArray<unknown>;

  constructor(code: IpcErrorCode, message: string, options: IpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IpcError';
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    if (options.issues !== undefined) this.issues = options.issues;
  }
}

/** True when `e` is an {@link IpcError}, optionally with the given code. */
export function isIpcError(e: unknown, code?: IpcErrorCode): e is IpcError {
  return e instanceof IpcError && (code === undefined || e.code === code);
}
