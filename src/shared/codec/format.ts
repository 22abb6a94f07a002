/**
 * The message body format shared by the encoder and the decoder: the hook and result types,
 * the header constants, the binary kinds, the byte helpers and the errors of the codec.
 * docs/wire-format.md, section "Message body", specifies the layout.
 */
import { IpcError } from '../errors.js';
import type { DEFAULT_LIMITS, DecodeLimits } from '../limits.js';

/** What {@link encodeMessage} asks about the objects of a value. */
export interface EncodeHooks {
  /**
   * For every object in the value: a short non-empty kind tag (e.g. `'S'`, `'R'`, `'F'`, `'M'`)
   * if it is a handle object that travels as a descriptor, else `undefined`. Called once per
   * object of the value (also when encoding then fails), before anything is serialized.
   */
  handleKind(value: object): string | undefined;
  /**
   * Optional, for {@link encodeMessageInto}: true when a body with handles of this kind may be
   * written into `into` (JSON with handles, as a body without handles is): when nothing the
   * caller does with such a handle between the encode and the send can write `into` again (a
   * handle that sends a message of its own when it is sent, such as a logical channel upgraded
   * on the way, must answer false). Absent: such bodies get a part of their own.
   */
  inPlace?(kind: string): boolean;
}

/** Options of {@link encodeMessage}. */
export interface EncodeOptions {
  /**
   * Deepest nesting accepted, measured as {@link DecodeLimits.maxDepth}; deeper values throw
   * `UNSERIALIZABLE`. Default {@link DEFAULT_LIMITS}`.maxDepth`.
   */
  maxDepth?: number;
}

/** A value encoded by {@link encodeMessage}. */
export interface EncodedMessage {
  /**
   * Parts to write back to back (an iovec each): header+text first, then each binary section
   * (a zero-copy view of the caller's memory, so write it before the caller changes it), with
   * padding parts; their sum is `byteLength`. Empty sections have no part.
   */
  parts: Uint8Array[];
  /** Total length of the body, the sum of the lengths of `parts`. */
  byteLength: number;
  /** Handle objects in index order (what `handleKind` tagged), deduplicated by identity. */
  handles: object[];
}

/** What {@link decodeMessage} asks to turn handle references into live objects. */
export interface DecodeHooks {
  /**
   * Turns handle #`index` of kind `kind` into the live object. Called at most once per index,
   * only after the whole body has been validated; an exception it throws propagates unchanged.
   */
  reviveHandle(kind: string, index: number): unknown;
}

/** Body format byte: the text is plain JSON (the value was JSON-exact). */
export const BODY_FORMAT_JSON = 0;
/** Body format byte: the text is devalue's flat JSON form. */
export const BODY_FORMAT_DEVALUE = 1;
/**
 * Body format byte: the JSON text `[value, positions..., kinds...]`, where `value` holds each
 * handle's index in its place, each position (of every place a handle is) is its number of keys
 * then the keys and indices from the root, and the last handleCount entries are the handles'
 * kind tags (the value was JSON-exact but for handle objects). Format 2, the markers inside the
 * JSON of earlier versions, is no longer read.
 */
export const BODY_FORMAT_JSON_HANDLES = 3;
/** Body version byte. */
export const BODY_VERSION = 1;
/** Bytes of the fixed body header, before the binary table. */
export const BODY_HEADER_BYTES = 16;

/** Largest absolute BigInt accepted (10^10000, about 33,000 bits); its parsing cost is bounded. */
export const MAX_BIGINT_DIGITS = 10_000;
/** 10^MAX_BIGINT_DIGITS: BigInts of this absolute value or more are refused. */
export const BIGINT_LIMIT = 10n ** BigInt(MAX_BIGINT_DIGITS);

/** devalue reducer name of a handle reference. */
export const REDUCER_HANDLE = 'h';
/** devalue reducer name of a binary section reference. */
export const REDUCER_BINARY = 'b';

// ---------------------------------------------------------------------------------------------
// Binary kinds

/** Binary kind codes, by index (wire values; never reorder). */
export const KIND_NAMES = [
  'ArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Float16Array',
] as const;
/** Bytes per element of each binary kind, by code. */
export const KIND_ELEMENT_BYTES = [1, 1, 1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 2];
/** Binary kind code of an ArrayBuffer. */
export const KIND_ARRAY_BUFFER = 0;
/** Binary kind code of a DataView. */
export const KIND_DATA_VIEW = 1;
const KIND_CODE_BY_NAME = new Map<string, number>(KIND_NAMES.map((name, code) => [name, code]));

type AnyGetter = (this: unknown) => unknown;
function intrinsicGetter(proto: object, key: PropertyKey): AnyGetter {
  return Object.getOwnPropertyDescriptor(proto, key)!.get as AnyGetter;
}
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const taTag = intrinsicGetter(TypedArrayPrototype, Symbol.toStringTag);
const taBuffer = intrinsicGetter(TypedArrayPrototype, 'buffer');
const taByteOffset = intrinsicGetter(TypedArrayPrototype, 'byteOffset');
const taByteLength = intrinsicGetter(TypedArrayPrototype, 'byteLength');
const dvBuffer = intrinsicGetter(DataView.prototype, 'buffer');
const dvByteOffset = intrinsicGetter(DataView.prototype, 'byteOffset');
const dvByteLength = intrinsicGetter(DataView.prototype, 'byteLength');
const abByteLength = intrinsicGetter(ArrayBuffer.prototype, 'byteLength');
/** `Object.prototype.toString`, captured before any caller code runs. */
export const objectToString = Object.prototype.toString;

/** True for a genuine `ArrayBuffer` of any realm (not a `SharedArrayBuffer`, not a look-alike). */
function isArrayBuffer(value: object): value is ArrayBuffer {
  if (value instanceof ArrayBuffer) return true;
  if (objectToString.call(value) !== '[object ArrayBuffer]') return false;
  try {
    abByteLength.call(value);
    return true;
  } catch {
    return false;
  }
}

/** The kind code and own bytes of a binary object, or undefined when `value` is not binary. */
export function binaryOf(value: object): { code: number; bytes: Uint8Array } | undefined {
  if (ArrayBuffer.isView(value)) {
    const name = taTag.call(value) as string | undefined;
    if (name === undefined) {
      const bytes = new Uint8Array(
        dvBuffer.call(value) as ArrayBufferLike,
        dvByteOffset.call(value) as number,
        dvByteLength.call(value) as number,
      );
      return { code: KIND_DATA_VIEW, bytes };
    }
    const code = KIND_CODE_BY_NAME.get(name);
    if (code === undefined) return undefined;
    const bytes = new Uint8Array(
      taBuffer.call(value) as ArrayBufferLike,
      taByteOffset.call(value) as number,
      taByteLength.call(value) as number,
    );
    return { code, bytes };
  }
  if (isArrayBuffer(value)) {
    return { code: KIND_ARRAY_BUFFER, bytes: new Uint8Array(value, 0, abByteLength.call(value) as number) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** MALFORMED: the body is not one the encoder could have produced. */
export function malformed(what: string, cause?: unknown): IpcError {
  return new IpcError('MALFORMED', `Malformed message body: ${what}.`, { cause });
}

/** TOO_LARGE: the body exceeds a limit of the receiver. */
export function tooLarge(what: string): IpcError {
  return new IpcError('TOO_LARGE', `Message exceeds a limit of the receiver: ${what}.`);
}

/** A short description of a value for error messages (its type or class). */
export function describe(value: unknown): string {
  if (typeof value === 'function') return value.name ? `function ${value.name}` : 'a function';
  if (typeof value === 'symbol') return `symbol ${String(value)}`;
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value !== 'object' || value === null) return typeof value;
  let ctor: unknown;
  try {
    ctor = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor;
  } catch {
    ctor = undefined;
  }
  if (typeof ctor === 'function' && ctor.name) return `an instance of ${ctor.name}`;
  return `an object (${objectToString.call(value)})`;
}

function pathText(path: string): string {
  if (path === '') return 'the value itself';
  return path.length <= 160 ? `value${path}` : `value${path.slice(0, 60)}...${path.slice(-80)}`;
}

/** UNSERIALIZABLE: `what` at `path` (devalue's notation) cannot be sent, for `reason`. */
export function unserializable(what: string, path: string, reason: string, cause?: unknown): IpcError {
  return new IpcError('UNSERIALIZABLE', `Cannot send ${what} at ${pathText(path)}: ${reason}.`, { cause });
}

// ---------------------------------------------------------------------------------------------
// Bytes

/** `n` rounded up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Writes a little-endian u32. */
export function setU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
  bytes[offset + 2] = value >>> 16;
  bytes[offset + 3] = value >>> 24;
}

/** Reads a little-endian u32. */
export function getU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}
