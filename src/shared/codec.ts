/**
 * The message codec: a value <-> one message body (bytes) plus an out-of-band list of handle
 * objects. Plain JSON data takes a JSON fast path; everything else is devalue text. Binary data
 * (typed arrays, `DataView`s, `ArrayBuffer`s) travels as raw sections after the text, never as
 * base64. The layout is specified in docs/wire-format.md, section "Message body".
 *
 * Imports neither Node nor Electron: it runs in main, helpers and the preload bundle.
 */
import { DevalueError, stringify, unflatten } from 'devalue';
import { IpcError } from './errors.js';
import { DEFAULT_LIMITS, type DecodeLimits } from './limits.js';

/** What {@link encodeMessage} asks about the objects of a value. */
export interface EncodeHooks {
  /**
   * For every object in the value: a short non-empty kind tag (e.g. `'S'`, `'R'`, `'F'`, `'M'`)
   * if it is a handle object that travels as a descriptor, else `undefined`. Called once per
   * object of the value (also when encoding then fails), before anything is serialized.
   */
  handleKind(value: object): string | undefined;
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
 * Body format byte: plain JSON in which each handle is a marker object `{"\u0000h":[index,kind]}`
 * (the value was JSON-exact but for handle objects, and held no object with that key).
 */
export const BODY_FORMAT_JSON_HANDLES = 2;
/** The key of a handle marker in a format-2 body. */
const HANDLE_MARKER = '\u0000h';
/** Body version byte. */
export const BODY_VERSION = 1;
/** Bytes of the fixed body header, before the binary table. */
export const BODY_HEADER_BYTES = 16;

/** Largest absolute BigInt accepted (10^10000, about 33,000 bits); its parsing cost is bounded. */
const MAX_BIGINT_DIGITS = 10_000;
const BIGINT_LIMIT = 10n ** BigInt(MAX_BIGINT_DIGITS);

const REDUCER_HANDLE = 'h';
const REDUCER_BINARY = 'b';

// ---------------------------------------------------------------------------------------------
// Binary kinds

/** Binary kind codes, by index (wire values; never reorder). */
const KIND_NAMES = [
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
const KIND_ELEMENT_BYTES = [1, 1, 1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 2];
const KIND_ARRAY_BUFFER = 0;
const KIND_DATA_VIEW = 1;
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
const objectToString = Object.prototype.toString;

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
function binaryOf(value: object): { code: number; bytes: Uint8Array } | undefined {
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

function malformed(what: string, cause?: unknown): IpcError {
  return new IpcError('MALFORMED', `Malformed message body: ${what}.`, { cause });
}

function tooLarge(what: string): IpcError {
  return new IpcError('TOO_LARGE', `Message exceeds a limit of the receiver: ${what}.`);
}

function describe(value: unknown): string {
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

function unserializable(what: string, path: string, reason: string, cause?: unknown): IpcError {
  return new IpcError('UNSERIALIZABLE', `Cannot send ${what} at ${pathText(path)}: ${reason}.`, { cause });
}

// ---------------------------------------------------------------------------------------------
// Encoding

function isJsonScalar(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      // finite and not -0
      return v - v === 0 && (v !== 0 || 1 / v > 0);
    default:
      return false;
  }
}

/** The sorted own names of `Object.prototype`, to recognise another realm's as devalue does. */
const OBJECT_PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype).sort().join('\0');

/** devalue's test of a plain object's prototype (its `is_plain_object`), for `proto` other than Object.prototype or null. */
function isPlainPrototype(proto: object): boolean {
  return Object.getPrototypeOf(proto) === null || Object.getOwnPropertyNames(proto).sort().join('\0') === OBJECT_PROTO_NAMES;
}

/** Tags (`Object.prototype.toString` names) that devalue serializes as something other than a plain object. */
const DEVALUE_TAGS = new Set(
  [
    'Number', 'String', 'Boolean', 'BigInt', 'Date', 'URL', 'URLSearchParams', 'RegExp', 'Array', 'Set', 'Map',
    'ArrayBuffer', 'DataView', ...KIND_NAMES,
  ].map((name) => `[object ${name}]`),
);

const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;

const FRAME_ARRAY = 0;
const FRAME_SPARSE = 1;
const FRAME_OBJECT = 2;
const FRAME_MAP = 3;
const FRAME_SET = 4;

/** A container being copied by {@link snapshot} that has object children left to visit. */
interface CopyFrame {
  type: number;
  /** Array: the caller's array, read one item at a time. Map, Set: unused. */
  src: unknown;
  /** The copy; an object's copy already holds every value read (children not yet replaced). */
  copy: unknown;
  /** Keys of an object, or populated indices of a sparse array. */
  keys: Array<string | number> | undefined;
  /** Next position (index or key position) to look at. */
  pos: number;
  end: number;
  iterator: Iterator<unknown> | undefined;
  /** Map: the key (the caller's) whose value is copied next, its copy, and that value. */
  key: unknown;
  keyCopy: unknown;
  value: unknown;
  pending: boolean;
  /** Key or index of the child being copied, for error paths. */
  at: string | number;
}

function newFrame(type: number, src: unknown, copy: unknown, pos: number, end: number): CopyFrame {
  return { type, src, copy, keys: undefined, pos, end, iterator: undefined, key: undefined, keyCopy: undefined, value: undefined, pending: false, at: 0 };
}

function keyLabel(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function mapKeyLabel(key: unknown): string {
  if (typeof key === 'string') return `.get(${JSON.stringify(key)})`;
  if ((typeof key === 'object' && key !== null) || typeof key === 'function') return '.get(...)';
  return `.get(${String(key)})`;
}

/** The path (as devalue writes it) of the value being copied below `frames`. */
function framesPath(frames: CopyFrame[]): string {
  let path = '';
  for (const f of frames) {
    if (f.type === FRAME_ARRAY || f.type === FRAME_SPARSE) path += `[${f.at}]`;
    else if (f.type === FRAME_OBJECT) path += keyLabel(f.at as string);
    else if (f.type === FRAME_MAP) path += mapKeyLabel(f.key);
    else path += '[...]';
  }
  return path;
}

/** The handles of a value without any. */
const NO_HANDLES: ReadonlyMap<object, string> = new Map();

/** Objects met by {@link snapshot}: a short list first (cheaper than a Map for small values). */
const SEEN_LIST_MAX = 16;
/** Longest array {@link snapshot} copies with one slice (see there). */
const SLICE_MAX = 1 << 20;
const arraySlice = Array.prototype.slice;

/** What {@link snapshot} made of a value. */
interface Snapshot {
  /** The copy: see {@link snapshot}. */
  value: unknown;
  /** True when JSON.stringify + JSON.parse of the copy gives exactly what devalue would. */
  json: boolean;
  /** True when the copy is JSON-exact but for handles, and format 2 can carry it (see below). */
  jsonWithHandles: boolean;
  /** Handle objects (the caller's) with their kinds, in the order first met. */
  handles: ReadonlyMap<object, string>;
}

/**
 * Reads the value once: every property, array item, Map entry and Set member is read exactly
 * once (so a getter or proxy trap runs once), and the value is rebuilt from what was read. Plain
 * objects (devalue's notion, with no enumerable symbol key), arrays, Maps and Sets are copied
 * (an object's own enumerable properties all at once, as spread syntax reads them; array items
 * up to the next object child); everything else (handles, binaries, Dates, RegExps, boxed
 * primitives, class instances, functions...) stays the caller's object, unread, for devalue to
 * serialize or refuse. Every later pass (JSON, devalue, handle numbering) works on the copy, so
 * a value that changes while it is read cannot come out half one way and half the other.
 *
 * Objects are visited depth-first in the order devalue visits them, and `hooks.handleKind` runs
 * once per object. Iterative; throws UNSERIALIZABLE, with the path, at the first object (shared
 * objects where first met) deeper than `maxDepth`, as the receiver measures depth.
 *
 * JSON-exact means: plain objects with Object.prototype, dense arrays, strings, booleans, null,
 * finite numbers other than -0, no shared references, handles, binaries or `__proto__` keys.
 * Format 2 also allows handles (shared or not), if no object has the marker's key and each
 * handle's marker (two levels below its container) fits maxDepth.
 */
function snapshot(root: unknown, hooks: EncodeHooks | undefined, maxDepth: number): Snapshot {
  const walk = new SnapshotWalk(hooks, maxDepth);
  const value = walk.visit(root);
  walk.run();
  return { value, json: walk.json, jsonWithHandles: walk.jsonWithHandles, handles: walk.handles ?? NO_HANDLES };
}

/** The state of one {@link snapshot} (a class: its methods and fields stay monomorphic). */
class SnapshotWalk {
  json = true;
  jsonWithHandles: boolean;
  /** Handle objects met, with their kinds (created at the first). */
  handles: Map<object, string> | undefined;
  /** The caller's objects already met -> their copies (or themselves when kept). */
  private seenList: object[] | undefined = [];
  private seenCopies: unknown[] = [];
  private seenMap: Map<object, unknown> | undefined;
  private readonly frames: CopyFrame[] = [];

  constructor(
    private readonly hooks: EncodeHooks | undefined,
    private readonly maxDepth: number,
  ) {
    this.jsonWithHandles = hooks !== undefined;
  }

  private remember(v: object, copy: unknown): void {
    const list = this.seenList;
    if (list !== undefined) {
      list.push(v);
      this.seenCopies.push(copy);
      if (list.length > SEEN_LIST_MAX) {
        const map = new Map<object, unknown>();
        for (let i = 0; i < list.length; i++) map.set(list[i], this.seenCopies[i]);
        this.seenMap = map;
        this.seenList = undefined;
        this.seenCopies = [];
      }
    } else {
      this.seenMap!.set(v, copy);
    }
  }

  /** Marks the value as neither JSON-exact nor JSON-exact but for handles. */
  private notJson(): void {
    this.json = false;
    this.jsonWithHandles = false;
  }

  /**
   * Copies array items from `i` on up to the next object child or hole (or, when `copy` is
   * `src`, a slice already made, checks them); returns its index, or `end` when there is none.
   */
  private copyItems(src: unknown[], copy: unknown[], i: number, end: number): number {
    const copying = src !== copy;
    for (; i < end; i++) {
      const e = src[i];
      if (typeof e === 'object' ? e !== null : typeof e === 'function') return i;
      if (e === undefined && !(i in src)) return i;
      if (e !== null && !isJsonScalar(e)) this.notJson();
      if (copying) copy.push(e);
    }
    return end;
  }

  /** Checks an object copy's values from key position `i` on; returns the next object child's position, or `end`. */
  private scanValues(copy: Record<string, unknown>, keys: string[], i: number, end: number): number {
    for (; i < end; i++) {
      const k = keys[i];
      const e = copy[k];
      if (k === HANDLE_MARKER) this.jsonWithHandles = false;
      else if (k === '__proto__') this.notJson();
      if (typeof e === 'object' ? e !== null : typeof e === 'function') return i;
      if (e !== null && !isJsonScalar(e)) this.notJson();
    }
    return end;
  }

  /** The copy of `v` (a primitive as it is); a container met first is copied, its object children later. */
  visit(v: unknown): unknown {
    if (typeof v !== 'object' || v === null) {
      if (typeof v !== 'function') {
        if (v !== null && !isJsonScalar(v)) this.notJson();
        return v;
      }
    }
    const list = this.seenList;
    if (list !== undefined) {
      const seen = list.indexOf(v);
      if (seen >= 0) return this.again(v, this.seenCopies[seen]);
    } else {
      const seen = this.seenMap!.get(v);
      if (seen !== undefined) return this.again(v, seen);
    }
    const frames = this.frames;
    if (frames.length + 1 > this.maxDepth) {
      throw unserializable(describe(v), framesPath(frames), `it nests deeper than maxDepth ${this.maxDepth}`);
    }
    if (typeof v === 'function') {
      this.remember(v, v);
      this.notJson();
      return v;
    }
    if (this.hooks !== undefined) {
      const kind = this.hooks.handleKind(v);
      if (kind !== undefined) {
        if (typeof kind !== 'string' || kind.length === 0) {
          throw new TypeError('EncodeHooks.handleKind must return a non-empty string or undefined.');
        }
        (this.handles ??= new Map()).set(v, kind);
        this.remember(v, v);
        this.json = false;
        if (frames.length + 2 > this.maxDepth) this.jsonWithHandles = false;
        return v;
      }
    }
    if (Array.isArray(v)) {
      let end = v.length;
      let src = v as unknown[];
      let copy: unknown[];
      if (
        end <= SLICE_MAX &&
        Object.getPrototypeOf(v) === Array.prototype &&
        !Object.hasOwn(v, 'constructor') &&
        (end <= 4096 || (0 in v && end - 1 in v && end >>> 1 in v))
      ) {
        // A slice reads each item once, fast, into a packed array (JSON.stringify is much slower
        // on holey ones); it walks every index, hence only for arrays that look dense, and only
        // for this realm's plain arrays (a slice of a subclass would construct the subclass).
        copy = arraySlice.call(v) as unknown[];
        src = copy;
        end = copy.length;
      } else {
        copy = [];
      }
      this.remember(v, copy);
      const i = this.copyItems(src, copy, 0, end);
      if (i < end) frames.push(newFrame(FRAME_ARRAY, src, copy, i, end));
      return copy;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    let plain = proto === Object.prototype || proto === null;
    if (!plain) {
      const tag = objectToString.call(v);
      if (tag === '[object Map]' || tag === '[object Set]') {
        const isMap = tag === '[object Map]';
        const frame = newFrame(isMap ? FRAME_MAP : FRAME_SET, v, isMap ? new Map() : new Set(), 0, 0);
        frame.iterator = (v as Iterable<unknown>)[Symbol.iterator]();
        this.notJson();
        this.remember(v, frame.copy);
        frames.push(frame);
        return frame.copy;
      }
      plain = !DEVALUE_TAGS.has(tag) && isPlainPrototype(proto!);
    }
    if (plain) {
      const symbols = Object.getOwnPropertySymbols(v);
      for (let i = 0; i < symbols.length; i++) {
        // devalue refuses it: leave it to devalue, unread
        if (propertyIsEnumerable.call(v, symbols[i])) plain = false;
      }
    }
    if (!plain) {
      this.remember(v, v);
      this.notJson();
      return v;
    }
    // Spread reads each own enumerable property once and defines it (an own __proto__ key too)
    // as a data property of the copy; Object.assign does the same into a null-prototype object.
    let copy: Record<string, unknown>;
    if (proto === null) {
      copy = Object.assign(Object.create(null) as Record<string, unknown>, v);
      this.notJson();
    } else {
      copy = { ...(v as Record<string, unknown>) };
    }
    this.remember(v, copy);
    const keys = Object.keys(copy);
    const i = this.scanValues(copy, keys, 0, keys.length);
    if (i < keys.length) {
      const frame = newFrame(FRAME_OBJECT, v, copy, i, keys.length);
      frame.keys = keys;
      frames.push(frame);
    }
    return copy;
  }

  /** An object met a second time: not JSON-exact (JSON would duplicate it) unless a handle in format 2. */
  private again(v: object, copy: unknown): unknown {
    this.json = false;
    if (this.handles === undefined || !this.handles.has(v)) this.jsonWithHandles = false;
    return copy;
  }

  /**
   * Visits the object children of the containers met so far, depth-first: the top frame's next
   * object child is visited (and, when new, copied) before its later children, devalue's order.
   */
  run(): void {
    const frames = this.frames;
    while (frames.length > 0) {
      const f = frames[frames.length - 1];
      if (f.pos === f.end && (f.type === FRAME_ARRAY || f.type === FRAME_OBJECT || f.type === FRAME_SPARSE)) {
        frames.pop();
        continue;
      }
      if (f.type === FRAME_ARRAY) {
        const src = f.src as unknown[];
        const copy = f.copy as unknown[];
        const i = f.pos;
        const e = src[i];
        if (e === undefined && !(i in src)) {
          // The first hole: the array may be very sparse, so from here on visit only its
          // populated indices, and give the copy its length without storage for it.
          this.notJson();
          const indices: number[] = [];
          for (const k of Object.keys(src)) {
            const idx = Number(k);
            if (Number.isInteger(idx) && idx > i && idx < f.end && String(idx) === k) indices.push(idx);
          }
          if (src !== copy) {
            if (f.end - i > 1024) {
              // Dictionary elements, as devalue does it; in place, since the copy may already be
              // referenced from inside itself.
              copy[MAX_ARRAY_LEN - 1] = undefined;
              delete copy[MAX_ARRAY_LEN - 1];
            }
            copy.length = f.end;
          }
          f.type = FRAME_SPARSE;
          f.keys = indices;
          f.pos = 0;
          f.end = indices.length;
          continue;
        }
        f.at = i;
        if (src === copy) copy[i] = this.visit(e);
        else copy.push(this.visit(e));
        // The items after it (up to the next object child) are read now; the frame stays until
        // the child's own children are done, so that frames are always the ancestors.
        f.pos = this.copyItems(src, copy, i + 1, f.end);
      } else if (f.type === FRAME_OBJECT) {
        const copy = f.copy as Record<string, unknown>;
        const keys = f.keys as string[];
        const k = keys[f.pos];
        f.at = k;
        const c = this.visit(copy[k]);
        if (k === '__proto__') Object.defineProperty(copy, k, { value: c, writable: true, enumerable: true, configurable: true });
        else copy[k] = c;
        f.pos = this.scanValues(copy, keys, f.pos + 1, f.end);
      } else if (f.type === FRAME_SPARSE) {
        const idx = f.keys![f.pos++] as number;
        f.at = idx;
        (f.copy as unknown[])[idx] = this.visit((f.src as unknown[])[idx]);
      } else if (f.type === FRAME_MAP) {
        if (!f.pending) {
          const r = f.iterator!.next();
          if (r.done === true) {
            frames.pop();
            continue;
          }
          const [k, value] = r.value as [unknown, unknown];
          f.key = k;
          f.value = value;
          f.pending = true;
          f.keyCopy = this.visit(k);
        } else {
          f.pending = false;
          const value = f.value;
          f.value = undefined;
          (f.copy as Map<unknown, unknown>).set(f.keyCopy, this.visit(value));
        }
      } else {
        const r = f.iterator!.next();
        if (r.done === true) {
          frames.pop();
          continue;
        }
        (f.copy as Set<unknown>).add(this.visit(r.value));
      }
    }
  }
}

const encoder = new TextEncoder();

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Lone surrogates, which UTF-8 cannot carry; devalue leaves them unescaped in its text. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function escapeLoneSurrogates(text: string): string {
  const wellFormed = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (wellFormed !== undefined && wellFormed.call(text)) return text;
  // Lone surrogates only occur inside devalue's JSON string literals, where \uXXXX is valid.
  return text.replace(LONE_SURROGATE, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/**
 * Small first parts are carved out of shared slabs, like Node's Buffer pool: allocating a typed
 * array costs more than encoding a small message. A slab is never reused, so a part stays valid
 * as long as it is referenced; its bytes are only the part's own (but `part.buffer` is the slab).
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_PART = 4096;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** A zeroed Uint8Array of `n` bytes (`n` a multiple of 8, so slab parts stay 8-aligned). */
function allocPart(n: number): Uint8Array {
  if (n > SLAB_MAX_PART) return new Uint8Array(n);
  // A detached slab (someone transferred a part's buffer) is replaced too.
  if (slabUsed + n > SLAB_BYTES || slab.byteLength === 0) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const part = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return part;
}

/** Allocates the first part (header + binary table + text + padding) and writes the text. */
function writeText(text: string, headerBytes: number): { first: Uint8Array; textBytes: number } {
  const n = text.length;
  if (n <= 1 << 20) {
    // Guess the UTF-8 size is the string length (ASCII); fall back when it does not fit.
    const size = align8(headerBytes + n);
    const first = allocPart(size);
    const { read, written } = encoder.encodeInto(text, new Uint8Array(first.buffer, first.byteOffset + headerBytes, size - headerBytes));
    if (read === n) {
      const end = align8(headerBytes + written);
      return { first: end === size ? first : first.subarray(0, end), textBytes: written };
    }
    first.fill(0, headerBytes);
  }
  const encoded = encoder.encode(text);
  const first = allocPart(align8(headerBytes + encoded.length));
  first.set(encoded, headerBytes);
  return { first, textBytes: encoded.length };
}

function setU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
  bytes[offset + 2] = value >>> 16;
  bytes[offset + 3] = value >>> 24;
}

function getU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

function buildBody(
  format: number,
  text: string,
  sections: Uint8Array[],
  codes: number[],
  handles: object[],
): EncodedMessage {
  const count = sections.length;
  const headerBytes = BODY_HEADER_BYTES + 8 * count;
  const { first, textBytes } = writeText(text, headerBytes);
  first[0] = format;
  first[1] = BODY_VERSION;
  setU32(first, 4, textBytes);
  setU32(first, 8, count);
  setU32(first, 12, handles.length);
  const parts: Uint8Array[] = [first];
  let byteLength = first.length;
  for (let i = 0; i < count; i++) {
    const bytes = sections[i];
    setU32(first, BODY_HEADER_BYTES + 8 * i, codes[i]);
    setU32(first, BODY_HEADER_BYTES + 8 * i + 4, bytes.length);
    if (bytes.length === 0) continue;
    parts.push(bytes);
    byteLength += bytes.length;
    const pad = align8(bytes.length) - bytes.length;
    if (pad > 0) {
      parts.push(new Uint8Array(pad));
      byteLength += pad;
    }
  }
  return { parts, byteLength, handles };
}

/**
 * Encodes `value` into a message body and a list of handle objects.
 *
 * Plain JSON data (see docs/wire-format.md) is JSON text; anything else devalue supports is
 * devalue text with the same round-trip semantics as devalue. Typed arrays, `DataView`s,
 * `ArrayBuffer`s and Node `Buffer`s anywhere in the value travel as raw binary sections holding
 * only their own bytes (a `Buffer` arrives as a `Uint8Array`); objects that `hooks.handleKind`
 * tags travel as handle references.
 *
 * Throws `IpcError('UNSERIALIZABLE')`, naming the offending value and its path, for functions,
 * symbols, class instances, promises, `SharedArrayBuffer`s, values nested deeper than
 * `options.maxDepth`, BigInts over 10,000 digits, and anything else devalue refuses; an exception
 * of a getter or of `hooks.handleKind` becomes its `cause`. A `TypeError` when `handleKind`
 * returns something other than a non-empty string or `undefined`. Nothing else happens on
 * failure.
 *
 * The value is read exactly once, before anything is serialized: each property, array item,
 * `Map` entry and `Set` member once (a getter or proxy trap runs once), in devalue's order, and
 * `hooks.handleKind` once per object; what is sent is what was read, so a value that changes
 * while it is read cannot arrive half one way and half the other. Depth is checked during that
 * read, without recursion, before devalue (which recurses) runs.
 *
 * `parts[0]` may be a view into a slab shared with other small messages (like Node's Buffer
 * pool): write its own bytes, never its `.buffer`.
 */
export function encodeMessage(value: unknown, hooks?: EncodeHooks, options?: EncodeOptions): EncodedMessage {
  const maxDepth = options?.maxDepth ?? DEFAULT_LIMITS.maxDepth;
  try {
    if (maxDepth < 1 && typeof value === 'object' && value !== null) {
      throw unserializable('an object', '', `it nests deeper than maxDepth ${maxDepth}`);
    }
    const snap = snapshot(value, hooks, maxDepth);
    if (snap.json) {
      return buildBody(BODY_FORMAT_JSON, JSON.stringify(snap.value), [], [], []);
    }
    if (snap.jsonWithHandles && snap.handles.size > 0) {
      const markers = new Map<object, [number, string]>();
      for (const [handle, kind] of snap.handles) markers.set(handle, [markers.size, kind]);
      const text = JSON.stringify(snap.value, (_key: string, v: unknown) => {
        if (typeof v !== 'object' || v === null) return v;
        const marker = markers.get(v);
        return marker === undefined ? v : { [HANDLE_MARKER]: marker };
      });
      return buildBody(BODY_FORMAT_JSON_HANDLES, text, [], [], [...snap.handles.keys()]);
    }
    return encodeDevalue(snap.value, snap.handles);
  } catch (error) {
    if (error instanceof IpcError || isHookMisuse(error)) throw error;
    // A getter, proxy trap or hook threw, or a raised maxDepth exhausted the stack.
    throw unserializable('the value', '', `serializing it threw ${String(error)}`, error);
  }
}

function isHookMisuse(error: unknown): boolean {
  return error instanceof TypeError && error.message.startsWith('EncodeHooks.');
}

/** Numbers and BigInts that devalue's index may key by value (see encodeDevalue). */
const DIRECT_NUMBERS = 1024;

/**
 * The devalue path of {@link encodeMessage}, for a snapshot (its depth known to be bounded);
 * `kinds` are the handle objects in it, with their kinds.
 */
function encodeDevalue(value: unknown, kinds: ReadonlyMap<object, string>): EncodedMessage {
  const handles: object[] = [];
  const sections: Uint8Array[] = [];
  const codes: number[] = [];
  const payloads = new Set<object>();
  // devalue shares one entry among equal primitives through a Map keyed by the primitive; V8
  // hashes numbers and BigInts there without a seed, so numbers chosen to collide (say, a list a
  // peer sent, sent on) would make that quadratic. Past the first DIRECT_NUMBERS (at most
  // DIRECT_NUMBERS² / 2 comparisons, however they collide), they are keyed by a token found
  // through their text (strings are hashed with a seed); a number met in both ways gets two
  // entries, which decode to the same value.
  const tokens = new Map<string, object>();
  let direct = 0;
  const identify = (v: unknown): unknown => {
    if (typeof v !== 'number' && typeof v !== 'bigint') return v;
    if (direct < DIRECT_NUMBERS) {
      direct++;
      return v;
    }
    const key = typeof v === 'number' ? `${v}` : `${v}n`;
    let token = tokens.get(key);
    if (token === undefined) {
      token = {};
      tokens.set(key, token);
    }
    return token;
  };
  let text: string;
  try {
    text = stringify(value, {
      [REDUCER_HANDLE]: (v: unknown) => {
        if (typeof v !== 'object' || v === null) {
          if (typeof v === 'bigint' && (v < 0n ? -v : v) >= BIGINT_LIMIT) {
            throw new DevalueError(`BigInts are limited to ${MAX_BIGINT_DIGITS} digits`, [], v, value);
          }
          return undefined;
        }
        if (kinds.size === 0 || payloads.has(v)) return undefined;
        const kind = kinds.get(v);
        if (kind === undefined) return undefined;
        const payload = [kind, handles.length];
        handles.push(v);
        payloads.add(payload);
        return payload;
      },
      [REDUCER_BINARY]: (v: unknown) => {
        if (typeof v !== 'object' || v === null || payloads.has(v)) return undefined;
        const binary = binaryOf(v);
        if (binary === undefined) return undefined;
        const payload = [sections.length];
        sections.push(binary.bytes);
        codes.push(binary.code);
        payloads.add(payload);
        return payload;
      },
    }, { operations: { identify } });
  } catch (error) {
    if (error instanceof DevalueError) {
      throw unserializable(describe(error.value), error.path, `devalue says "${error.message}"`, error);
    }
    throw error;
  }
  return buildBody(BODY_FORMAT_DEVALUE, escapeLoneSurrogates(text), sections, codes, handles);
}

/** Joins the parts of an encoded message into one contiguous body (a copy). */
export function joinParts(message: EncodedMessage): Uint8Array {
  const body = new Uint8Array(message.byteLength);
  let offset = 0;
  for (const part of message.parts) {
    body.set(part, offset);
    offset += part.length;
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface Header {
  format: number;
  textStart: number;
  textBytes: number;
  binaryCount: number;
  handleCount: number;
}

function readHeader(body: Uint8Array): Header {
  if (!(body instanceof Uint8Array)) throw new TypeError('The message body must be a Uint8Array.');
  if (body.length < BODY_HEADER_BYTES) {
    throw malformed(`${body.length} bytes is shorter than the ${BODY_HEADER_BYTES}-byte header`);
  }
  const format = body[0];
  if (format !== BODY_FORMAT_JSON && format !== BODY_FORMAT_DEVALUE && format !== BODY_FORMAT_JSON_HANDLES) {
    throw malformed(`unknown format ${format}`);
  }
  const version = body[1];
  if (version !== BODY_VERSION) throw malformed(`unknown version ${version}`);
  if (body[2] !== 0 || body[3] !== 0) throw malformed('reserved header bytes are not zero');
  const textBytes = getU32(body, 4);
  const binaryCount = getU32(body, 8);
  const handleCount = getU32(body, 12);
  if (binaryCount > (body.length - BODY_HEADER_BYTES) / 8) {
    throw malformed(`the binary table of ${binaryCount} entries does not fit in ${body.length} bytes`);
  }
  const textStart = BODY_HEADER_BYTES + 8 * binaryCount;
  if (textBytes > body.length - textStart) {
    throw malformed(`text of ${textBytes} bytes does not fit in ${body.length} bytes`);
  }
  return { format, textStart, textBytes, binaryCount, handleCount };
}

/**
 * The number of handles (descriptors) the body refers to, from its header, for the framing
 * layer. Throws `IpcError('MALFORMED')` if the header is short or invalid.
 */
export function peekHandleCount(body: Uint8Array): number {
  return readHeader(body).handleCount;
}

function checkZero(body: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    if (body[i] !== 0) throw malformed(`padding byte at offset ${i} is not zero`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding of the text (a JS loop with String.fromCharCode was slower, even short). */
function decodeText(body: Uint8Array, start: number, length: number): string {
  const bytes = new Uint8Array(body.buffer, body.byteOffset + start, length);
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw malformed('the text is not valid UTF-8', cause);
  }
}

/**
 * Counts the values and the containers (arrays and objects, empty ones too) of JSON text
 * without recursing or allocating: brackets outside strings give the depth; commas plus
 * non-empty containers plus one give the number of values. TOO_LARGE beyond `maxDepth`. Exact
 * for valid JSON; invalid text is left to JSON.parse to reject.
 */
function scanJson(text: string, maxDepth: number): { values: number; containers: number } {
  const n = text.length;
  let depth = 0;
  let containers = 0;
  let empty = 0;
  let commas = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string (inline: calling indexOf per string was slower on typical short strings).
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x22) break;
        if (d === 0x5c) i++;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw tooLarge(`nesting deeper than maxDepth ${maxDepth}`);
      containers++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      const p = text.charCodeAt(i - 1);
      if (p === 0x5b || p === 0x7b) empty++;
    } else if (c === 0x2c) {
      commas++;
    }
  }
  return { values: commas + containers - empty + 1, containers };
}

/** Checks the nesting depth and value count of a JSON body's text (format 0 or 2) before JSON.parse. */
function checkJsonText(text: string, limits: DecodeLimits): void {
  const n = text.length;
  // Depth needs two characters per level and every value at least two characters but one.
  if (n <= 2 * limits.maxDepth + 1 && (n + 1) / 2 <= limits.maxElements) return;
  const { values } = scanJson(text, limits.maxDepth);
  if (values > limits.maxElements) {
    throw tooLarge(`${values} values, more than maxElements ${limits.maxElements}`);
  }
}

/**
 * Bounds what JSON.parse builds from a devalue text, before it runs: a 128 MiB text of `{},`
 * would otherwise build 40 million objects (gigabytes) before any entry is looked at. A text
 * encodeMessage writes holds at most 8 JSON values and 2 arrays or objects per element (a boxed
 * BigInt in a null-prototype object is the most: key, reference, ["Object",i], ["BigInt","…"]),
 * plus a few per handle and binary; anything more is TOO_LARGE, with no need to look further.
 */
function checkDevalueText(text: string, limits: DecodeLimits, handleCount: number, binaryCount: number): void {
  const extra = handleCount + binaryCount + 1;
  const maxValues = 8 * limits.maxElements + 16 * extra;
  const maxContainers = 2 * limits.maxElements + 2 * extra;
  // Every container takes two characters, every value one plus a separator.
  if ((text.length + 1) / 2 <= maxContainers) return;
  const { values, containers } = scanJson(text, Infinity);
  if (values > maxValues || containers > maxContainers) {
    throw tooLarge(
      `a devalue text of ${values} JSON values in ${containers} arrays or objects, more than maxElements ${limits.maxElements} allows`,
    );
  }
}

/** Walks a JSON.parse result iteratively for own `__proto__` keys, which devalue refuses. */
function hasProtoKey(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const e of v) stack.push(e);
    } else {
      if (Object.hasOwn(v, '__proto__')) return true;
      for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

// devalue's special references
const UNDEFINED = -1;
const HOLE = -2;
const NAN = -3;
const POSITIVE_INFINITY = -4;
const NEGATIVE_INFINITY = -5;
const NEGATIVE_ZERO = -6;
const SPARSE = -7;
const MAX_ARRAY_LEN = 2 ** 32 - 1;

function isSpecialValue(ref: number): boolean {
  return ref === UNDEFINED || ref === NAN || ref === POSITIVE_INFINITY || ref === NEGATIVE_INFINITY || ref === NEGATIVE_ZERO;
}

const BIGINT_TEXT = /^-?[0-9]+$/;
/** What `Date.prototype.toISOString` writes (devalue sends an invalid Date as ''). */
const ISO_DATE_TEXT = /^(?:[0-9]{4}|[+-][0-9]{6})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
const TEMPORAL_PREFIX = 'Temporal.';
const TEMPORAL_CLASSES = new Set([
  'Duration',
  'Instant',
  'PlainDate',
  'PlainTime',
  'PlainDateTime',
  'PlainMonthDay',
  'PlainYearMonth',
  'ZonedDateTime',
]);
/** Longest Temporal text accepted (the longest ISO forms with annotations are about 100). */
const MAX_TEMPORAL_TEXT = 256;

/** The Temporal class devalue would revive `Temporal.<name>` with, if this runtime has it. */
function temporalClass(name: string): { from(text: string): unknown } | undefined {
  if (!TEMPORAL_CLASSES.has(name)) return undefined;
  const temporal = (globalThis as { Temporal?: Record<string, { from(text: string): unknown } | undefined> }).Temporal;
  return temporal?.[name];
}

// ---------------------------------------------------------------------------------------------
// What a value costs to build, in elements (docs/wire-format.md, "What maxElements counts")
//
// maxElements bounds the work of decoding as well as the number of values: every value counts
// one (its slot in its container), and a value that costs more to build than a small object
// counts as many elements as it costs, so that no message within maxElements takes much more
// than a microsecond per element (measured with V8 12, Node 20). Each is counted before the
// value is built.

/** A RegExp: its object and parse (about 8 µs for a tiny one). */
const REGEXP_ELEMENTS = 16;
/** Source characters per element of a RegExp without the `u` or `v` flag (up to 150 ns each: named groups, lookbehinds). */
const REGEXP_CHARS_PER_ELEMENT = 4;
/** Elements per source character with `u` or `v`: case folding of classes (`[\u0100-\uffff]` with `iv`) costs up to 15 µs a character. */
const UNICODE_REGEXP_ELEMENTS_PER_CHAR = 32;
/** A `\p{…}`/`\P{…}` property escape with `u` or `v`: up to 330 µs (`[^\p{Any}--\p{L}]` with `iv`). */
const PROPERTY_ESCAPE_ELEMENTS = 512;
/** A property of strings (`\p{RGI_Emoji}`, with `v`): up to 45 ms each with `iv`. */
const STRING_PROPERTY_ESCAPE_ELEMENTS = 131_072;
const STRING_PROPERTIES = new Set([
  'Basic_Emoji',
  'Emoji_Keycap_Sequence',
  'RGI_Emoji_Modifier_Sequence',
  'RGI_Emoji_Flag_Sequence',
  'RGI_Emoji_Tag_Sequence',
  'RGI_Emoji_ZWJ_Sequence',
  'RGI_Emoji',
]);
/** A URL: its parse (about 2 µs for a short one). */
const URL_ELEMENTS = 4;
/** Text characters per element of a URL or URLSearchParams (up to 120 ns each: IDNA hosts, '+'). */
const URL_CHARS_PER_ELEMENT = 4;
/** Elements per name=value pair of a URLSearchParams (a URL's too: `url.searchParams` builds them). */
const QUERY_PAIR_ELEMENTS = 2;
/** A Temporal value: its parse. */
const TEMPORAL_ELEMENTS = 16;

/** The elements a RegExp counts (see above), from its source and flags, without parsing it. */
function regExpElements(source: string, flags: string): number {
  if (!flags.includes('u') && !flags.includes('v')) {
    return REGEXP_ELEMENTS + Math.floor(source.length / REGEXP_CHARS_PER_ELEMENT);
  }
  let elements = REGEXP_ELEMENTS + UNICODE_REGEXP_ELEMENTS_PER_CHAR * source.length;
  // Every "\p{" or "\P{" (also one after an escaped backslash: counting too many is harmless).
  for (let i = source.indexOf('{'); i >= 0; i = source.indexOf('{', i + 1)) {
    const p = source.charCodeAt(i - 1);
    if ((p !== 0x70 && p !== 0x50) || source.charCodeAt(i - 2) !== 0x5c) continue;
    // The name, read no further than the longest property name.
    const close = source.slice(i + 1, i + 40).indexOf('}');
    const name = close < 0 ? '' : source.slice(i + 1, i + 1 + close);
    elements += STRING_PROPERTIES.has(name) ? STRING_PROPERTY_ESCAPE_ELEMENTS : PROPERTY_ESCAPE_ELEMENTS;
  }
  return elements;
}

/**
 * The name=value pairs URLSearchParams makes of `text` (the non-empty runs between '&'),
 * counted no further than `limit`.
 */
function queryPairs(text: string, limit: number): number {
  let pairs = 0;
  let run = false;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 0x26) {
      run = false;
    } else if (!run) {
      run = true;
      if (++pairs > limit) return pairs;
    }
  }
  return pairs;
}

/** The elements a BigInt of `digits` decimal digits counts: V8 parses long ones in quadratic time. */
function bigIntElements(digits: number): number {
  return Math.floor(digits / 64) + Math.floor((digits * digits) / 131_072);
}

// ---------------------------------------------------------------------------------------------
// Hash flooding of Map and Set
//
// V8 hashes numbers and BigInts in Map and Set tables without a seed (strings are seeded, objects
// get random identity hashes): ComputeUnseededHash for int32 values, ComputeLongHash of the IEEE
// bits for other numbers, and ComputeLongHash of the lowest 64-bit digit for a BigInt (so every
// multiple of 2^64 shares one hash). A peer can thus send keys that all land in one bucket, and
// building the table then takes quadratic time (40,000 such BigInts: 9 s). The scan computes
// those hashes as V8 does and counts the comparisons V8 would make to insert the keys (its tables
// double from 4 entries and have half as many buckets as entries); too many is TOO_LARGE.

/** Comparisons allowed for all Maps and Sets of a message: this many, plus HASH_WORK_PER_KEY per key. */
const HASH_WORK_BASE = 1 << 20;
const HASH_WORK_PER_KEY = 8;

/** V8's ComputeUnseededHash (Thomas Wang's 32-bit integer hash), masked as V8 masks it. */
function unseededHash(key: number): number {
  let h = key >>> 0;
  h = (~h + (h << 15)) >>> 0;
  h = (h ^ (h >>> 12)) >>> 0;
  h = (h + (h << 2)) >>> 0;
  h = (h ^ (h >>> 4)) >>> 0;
  h = Math.imul(h, 2057) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h & 0x3fffffff;
}

/** V8's ComputeLongHash of the 64-bit value hi:lo (Thomas Wang's 64-bit hash), masked as V8 masks it. */
function longHash(hi: number, lo: number): number {
  // hash = ~hash + (hash << 18)
  let bhi = ((hi << 18) | (lo >>> 14)) >>> 0;
  let blo = (lo << 18) >>> 0;
  let ahi = ~hi >>> 0;
  let alo = ~lo >>> 0;
  lo = (alo + blo) >>> 0;
  hi = (ahi + bhi + (lo < alo ? 1 : 0)) >>> 0;
  // hash ^= hash >> 31
  lo = (lo ^ ((lo >>> 31) | (hi << 1))) >>> 0;
  hi = (hi ^ (hi >>> 31)) >>> 0;
  // hash *= 21
  const l = lo * 21;
  lo = l >>> 0;
  hi = (Math.imul(hi, 21) + Math.floor(l / 0x100000000)) >>> 0;
  // hash ^= hash >> 11
  lo = (lo ^ ((lo >>> 11) | (hi << 21))) >>> 0;
  hi = (hi ^ (hi >>> 11)) >>> 0;
  // hash += hash << 6
  bhi = ((hi << 6) | (lo >>> 26)) >>> 0;
  blo = (lo << 6) >>> 0;
  alo = lo;
  ahi = hi;
  lo = (alo + blo) >>> 0;
  hi = (ahi + bhi + (lo < alo ? 1 : 0)) >>> 0;
  // hash ^= hash >> 22
  lo = (lo ^ ((lo >>> 22) | (hi << 10))) >>> 0;
  return lo & 0x3fffffff;
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);

/** V8's hash of a number as a Map or Set key. */
function numberHash(x: number): number {
  if (x !== x) return 0x3fffffff; // NaN: Smi::kMaxValue (all ones in any bucket mask)
  if ((x | 0) === x) return unseededHash(x | 0); // int32, and -0 (hashed as 0)
  f64[0] = x;
  return longHash(f64Words[1], f64Words[0]); // little-endian: the words are lo, hi
}

/** V8's hash of a BigInt written in decimal: ComputeLongHash of |n| mod 2^64 (0 for zero). */
function bigIntHash(text: string): number {
  // |n| mod 2^64 in four 16-bit limbs, four digits at a time.
  let l0 = 0;
  let l1 = 0;
  let l2 = 0;
  let l3 = 0;
  let nonZero = false;
  for (let i = text.charCodeAt(0) === 0x2d ? 1 : 0; i < text.length; ) {
    const end = Math.min(i + 4, text.length);
    let chunk = 0;
    let scale = 1;
    for (; i < end; i++) {
      chunk = chunk * 10 + (text.charCodeAt(i) - 0x30);
      scale *= 10;
    }
    if (chunk !== 0) nonZero = true;
    let t = l0 * scale + chunk;
    l0 = t & 0xffff;
    t = l1 * scale + (t >>> 16);
    l1 = t & 0xffff;
    t = l2 * scale + (t >>> 16);
    l2 = t & 0xffff;
    t = l3 * scale + (t >>> 16);
    l3 = t & 0xffff;
  }
  if (!nonZero) return 0;
  return longHash(((l3 << 16) | l2) >>> 0, ((l1 << 16) | l0) >>> 0);
}

/**
 * Comparisons V8 makes to insert `count` keys, whose hashes are `hashes` (-1 for a key of
 * another type, whose hash is seeded or random), one by one into a new Map or Set: each key
 * is compared with the keys before it in its bucket. The table has 4 entries at first and
 * doubles when full; it has half as many buckets as entries; `counts` is scratch space.
 */
function insertComparisons(hashes: Int32Array, count: number, counts: Int32Array): number {
  let work = 0;
  let done = 0;
  for (let capacity = 4; done < count; capacity *= 2) {
    const buckets = capacity >>> 1;
    const mask = buckets - 1;
    counts.fill(0, 0, buckets);
    const end = Math.min(count, capacity);
    for (let j = 0; j < end; j++) {
      const h = hashes[j];
      if (h < 0) continue;
      const b = h & mask;
      if (j >= done) work += counts[b];
      counts[b]++;
    }
    done = end;
  }
  return work;
}

/** Values the scan built to check them, for `unflatten` to use instead of building them again. */
interface Built {
  regExps: Array<{ source: string; flags: string | undefined; value: RegExp }>;
  strings: Array<{ tag: string; text: string; value: unknown }>;
}

interface ScanResult {
  /** Binary index -> 1 when referenced. */
  binaryUsed: Uint8Array;
  handleUsed: Uint8Array;
  built: Built;
}

/**
 * Validates devalue's flat array before `unflatten` sees it, in the order `unflatten` hydrates
 * (depth-first from entry 0, each entry once), without recursion: every entry shape, every
 * reference, binary and handle references (each exactly once, in range), and the depth and
 * element limits, counting what each value costs to build before it is
 * built (see above) and the hash-table work of every Map and Set. After it passes, `unflatten`
 * neither throws nor recurses deeper than maxDepth, and builds each checked value once.
 */
function scanFlat(
  values: unknown[],
  binaryCount: number,
  handleCount: number,
  limits: DecodeLimits,
): ScanResult {
  const n = values.length;
  const visited = new Uint8Array(n);
  const binaryUsed = new Uint8Array(binaryCount);
  const handleUsed = new Uint8Array(handleCount);
  const built: Built = { regExps: [], strings: [] };
  const maxDepth = limits.maxDepth;
  const maxElements = limits.maxElements;
  let elements = 1;
  let hashKeys = 0;
  let hashWork = 0;
  let hashes = new Int32Array(0);
  let bucketCounts = new Int32Array(0);
  // Frames of containers being hydrated: the entry and the next position in its reference list.
  const frameRefs: number[][] = [];
  const framePos: number[] = [];

  const refIndex = (ref: unknown, where: number): number => {
    if (typeof ref !== 'number' || !Number.isInteger(ref)) throw malformed(`entry ${where} has an invalid reference`);
    if (ref >= n || (ref < 0 && !isSpecialValue(ref))) throw malformed(`entry ${where} refers to absent entry ${ref}`);
    return ref;
  };

  const primitiveAt = (ref: unknown, where: number): unknown => {
    if (typeof ref !== 'number' || !Number.isInteger(ref) || ref < 0 || ref >= n) {
      throw malformed(`entry ${where} has an invalid reference`);
    }
    const v = values[ref];
    if (typeof v === 'object' && v !== null) throw malformed(`entry ${where} refers to a non-primitive entry`);
    return v;
  };

  const payloadOf = (entry: unknown[], where: number, size: number): unknown[] => {
    if (entry.length !== 2) throw malformed(`entry ${where} has a bad shape`);
    const p = entry[1];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p >= n) {
      throw malformed(`entry ${where} has an invalid reference`);
    }
    const payload = values[p];
    if (!Array.isArray(payload) || payload.length !== size) throw malformed(`entry ${where} has a bad payload`);
    return payload as unknown[];
  };

  const checkString = (entry: unknown[], where: number): string => {
    if (entry.length !== 2 || typeof entry[1] !== 'string') throw malformed(`entry ${where} has a bad shape`);
    return entry[1];
  };

  const addElements = (count: number): void => {
    elements += count;
    if (elements > maxElements) throw tooLarge(`more than maxElements ${maxElements} values (or their cost in values)`);
  };

  /** The element budget left, for counts that may stop early. */
  const left = (): number => maxElements - elements;

  /** V8's hash of the key `ref` refers to, or -1 when it is no number or BigInt. */
  const keyHash = (ref: number): number => {
    if (ref < 0) {
      if (ref === NAN) return numberHash(NaN);
      if (ref === POSITIVE_INFINITY) return numberHash(Infinity);
      if (ref === NEGATIVE_INFINITY) return numberHash(-Infinity);
      if (ref === NEGATIVE_ZERO) return numberHash(0);
      return -1;
    }
    const v = values[ref];
    if (typeof v === 'number') return numberHash(v);
    if (Array.isArray(v) && v.length === 2 && v[0] === 'BigInt' && typeof v[1] === 'string' && BIGINT_TEXT.test(v[1])) {
      return bigIntHash(v[1]);
    }
    return -1;
  };

  /** Counts the hash-table work of inserting the keys at refs[first], refs[first + step], ... */
  const checkHashWork = (refs: number[], first: number, step: number): void => {
    const count = Math.ceil((refs.length - first) / step);
    if (count <= 8) return; // at most 28 comparisons
    if (hashes.length < count) hashes = new Int32Array(2 ** Math.ceil(Math.log2(count)));
    let numeric = 0;
    for (let j = 0, i = first; j < count; j++, i += step) {
      const h = keyHash(refs[i]);
      hashes[j] = h;
      if (h >= 0) numeric++;
    }
    if (numeric <= 8) return;
    const buckets = Math.max(2, 2 ** Math.ceil(Math.log2(count)) / 2);
    if (bucketCounts.length < buckets) bucketCounts = new Int32Array(buckets);
    hashKeys += count;
    hashWork += insertComparisons(hashes, count, bucketCounts);
    if (hashWork > HASH_WORK_BASE + HASH_WORK_PER_KEY * hashKeys) {
      throw tooLarge(
        `Map or Set keys (numbers or BigInts) that collide in V8's hash tables: ${hashWork} comparisons to insert ${hashKeys} keys`,
      );
    }
  };

  /** Validates entry `ref` at depth `depth`; returns the references it hydrates, if any. */
  const enter = (ref: number, depth: number): void => {
    if (ref < 0 || visited[ref] === 1) return;
    visited[ref] = 1;
    const entry = values[ref];
    if (typeof entry !== 'object' || entry === null) return; // a primitive
    const isBigInt = Array.isArray(entry) && entry[0] === 'BigInt';
    if (!isBigInt && depth > maxDepth) throw tooLarge(`nesting deeper than maxDepth ${maxDepth}`);
    let refs: number[] | undefined;
    if (!Array.isArray(entry)) {
      const keys = Object.keys(entry);
      addElements(keys.length);
      refs = new Array<number>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (k === '__proto__') throw malformed(`entry ${ref} has a __proto__ key`);
        refs[i] = refIndex((entry as Record<string, unknown>)[k], ref);
      }
    } else if (typeof entry[0] === 'string') {
      const type = entry[0];
      switch (type) {
        case 'Date': {
          const text = checkString(entry, ref);
          if (text !== '' && !ISO_DATE_TEXT.test(text)) throw malformed(`entry ${ref} is a Date that is not in ISO form`);
          break;
        }
        case 'RegExp': {
          if ((entry.length !== 2 && entry.length !== 3) || typeof entry[1] !== 'string') {
            throw malformed(`entry ${ref} has a bad shape`);
          }
          if (entry.length === 3 && typeof entry[2] !== 'string') throw malformed(`entry ${ref} has a bad shape`);
          const source = entry[1];
          const flags = entry[2] as string | undefined;
          addElements(regExpElements(source, flags ?? '') - 1);
          let value: RegExp;
          try {
            value = new RegExp(source, flags);
          } catch (cause) {
            throw malformed(`entry ${ref} is an invalid RegExp`, cause);
          }
          built.regExps.push({ source, flags, value });
          break;
        }
        case 'BigInt': {
          const digits = checkString(entry, ref);
          if (!BIGINT_TEXT.test(digits)) throw malformed(`entry ${ref} is an invalid BigInt`);
          const count = digits.length - (digits.charCodeAt(0) === 0x2d ? 1 : 0);
          if (count > MAX_BIGINT_DIGITS) throw tooLarge(`a BigInt of over ${MAX_BIGINT_DIGITS} digits`);
          addElements(bigIntElements(count));
          break;
        }
        case 'Object': {
          if (entry.length !== 2) throw malformed(`entry ${ref} has a bad shape`);
          const wrapped = refIndex(entry[1], ref);
          if (wrapped === UNDEFINED) throw malformed(`entry ${ref} boxes undefined`);
          if (wrapped >= 0) {
            const inner = values[wrapped];
            if (inner === null) throw malformed(`entry ${ref} boxes null`);
            if (typeof inner === 'object' && !(Array.isArray(inner) && inner[0] === 'BigInt')) {
              throw malformed(`entry ${ref} boxes a non-primitive`);
            }
          }
          refs = [wrapped];
          break;
        }
        case 'Set':
          addElements(entry.length - 1);
          refs = new Array<number>(entry.length - 1);
          for (let i = 1; i < entry.length; i++) refs[i - 1] = refIndex(entry[i], ref);
          checkHashWork(refs, 0, 1);
          break;
        case 'Map':
          if ((entry.length - 1) % 2 !== 0) throw malformed(`entry ${ref} has a bad shape`);
          addElements(entry.length - 1);
          refs = new Array<number>(entry.length - 1);
          for (let i = 1; i < entry.length; i++) refs[i - 1] = refIndex(entry[i], ref);
          checkHashWork(refs, 0, 2);
          break;
        case 'null':
          if ((entry.length - 1) % 2 !== 0) throw malformed(`entry ${ref} has a bad shape`);
          addElements((entry.length - 1) / 2);
          refs = [];
          for (let i = 1; i < entry.length; i += 2) {
            const key = entry[i];
            if (typeof key !== 'string') throw malformed(`entry ${ref} has a non-string key`);
            if (key === '__proto__') throw malformed(`entry ${ref} has a __proto__ key`);
            refs.push(refIndex(entry[i + 1], ref));
          }
          break;
        case 'URL': {
          const text = checkString(entry, ref);
          addElements(URL_ELEMENTS - 1 + Math.floor(text.length / URL_CHARS_PER_ELEMENT));
          addElements(QUERY_PAIR_ELEMENTS * queryPairs(text, left()));
          let value: URL;
          try {
            value = new URL(text);
          } catch (cause) {
            throw malformed(`entry ${ref} is an invalid URL`, cause);
          }
          built.strings.push({ tag: type, text, value });
          break;
        }
        case 'URLSearchParams': {
          const text = checkString(entry, ref);
          addElements(Math.floor(text.length / URL_CHARS_PER_ELEMENT));
          addElements(QUERY_PAIR_ELEMENTS * queryPairs(text, left()));
          break;
        }
        case REDUCER_BINARY: {
          const [indexRef] = payloadOf(entry, ref, 1);
          const index = primitiveAt(indexRef, ref);
          if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= binaryCount) {
            throw malformed(`entry ${ref} refers to absent binary section ${String(index)}`);
          }
          if (binaryUsed[index] === 1) throw malformed(`binary section ${index} is referenced twice`);
          binaryUsed[index] = 1;
          break;
        }
        case REDUCER_HANDLE: {
          const [kindRef, indexRef] = payloadOf(entry, ref, 2);
          const kind = primitiveAt(kindRef, ref);
          const index = primitiveAt(indexRef, ref);
          if (typeof kind !== 'string' || kind.length === 0) throw malformed(`entry ${ref} has an invalid handle kind`);
          if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= handleCount) {
            throw malformed(`entry ${ref} refers to absent handle ${String(index)}`);
          }
          if (handleUsed[index] === 1) throw malformed(`handle ${index} is referenced twice`);
          handleUsed[index] = 1;
          break;
        }
        default: {
          const ctor = type.startsWith(TEMPORAL_PREFIX) ? temporalClass(type.slice(TEMPORAL_PREFIX.length)) : undefined;
          if (ctor !== undefined) {
            const text = checkString(entry, ref);
            if (text.length > MAX_TEMPORAL_TEXT) throw malformed(`entry ${ref} is a ${type} of over ${MAX_TEMPORAL_TEXT} characters`);
            addElements(TEMPORAL_ELEMENTS - 1);
            let value: unknown;
            try {
              value = ctor.from(text);
            } catch (cause) {
              throw malformed(`entry ${ref} is an invalid ${type}`, cause);
            }
            built.strings.push({ tag: type, text, value });
            break;
          }
          // Includes devalue's own typed array and ArrayBuffer forms: binaries travel out of band.
          throw malformed(`entry ${ref} has unknown or unsupported type ${JSON.stringify(type).slice(0, 40)}`);
        }
      }
    } else if (entry[0] === SPARSE) {
      const len = entry[1];
      if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || len > MAX_ARRAY_LEN || entry.length % 2 !== 0) {
        throw malformed(`entry ${ref} is an invalid sparse array`);
      }
      // Every slot counts, holes too: code that walks the array walks its length.
      addElements(len);
      refs = [];
      let last = -1;
      for (let i = 2; i < entry.length; i += 2) {
        const idx = entry[i];
        if (typeof idx !== 'number' || !Number.isInteger(idx) || idx <= last || idx >= len) {
          throw malformed(`entry ${ref} has an invalid sparse index`);
        }
        last = idx;
        refs.push(refIndex(entry[i + 1], ref));
      }
    } else {
      // Every slot counts, holes too.
      addElements(entry.length);
      refs = [];
      for (let i = 0; i < entry.length; i++) {
        const e = entry[i];
        if (e !== HOLE) refs.push(refIndex(e, ref));
      }
    }
    if (refs !== undefined && refs.length > 0) {
      frameRefs.push(refs);
      framePos.push(0);
    }
  };

  enter(0, 1);
  while (frameRefs.length > 0) {
    const top = frameRefs.length - 1;
    const refs = frameRefs[top];
    const pos = framePos[top];
    if (pos === refs.length) {
      frameRefs.pop();
      framePos.pop();
      continue;
    }
    framePos[top] = pos + 1;
    enter(refs[pos], frameRefs.length + 1);
  }
  return { binaryUsed, handleUsed, built };
}

/**
 * Decodes a message body into a value. `handleCount` is the number of handles (descriptors)
 * that came with the body and must equal the header's; `hooks.reviveHandle` turns each into a
 * live object, once per index, and only after the whole body has been validated.
 *
 * Every binary section is copied into its own `ArrayBuffer` (the result never aliases `body`).
 * Throws `IpcError('MALFORMED')` for anything that is not a body `encodeMessage` could have
 * produced (short or inconsistent lengths, bad UTF-8, unknown format or type, references to
 * absent entries, binaries or handles, a handle or binary referenced twice or never), and
 * `IpcError('TOO_LARGE')` when it exceeds `limits`: `maxElements` counts every value before it
 * is built, at what it costs to build (docs/wire-format.md, "What maxElements counts"), and
 * Map/Set keys crafted to collide in V8's hash tables are refused. Never recurses deeper than
 * `limits.maxDepth`; spends time and memory linear in the body size (and in maxElements).
 */
export function decodeMessage(
  body: Uint8Array,
  handleCount: number,
  hooks: DecodeHooks | undefined,
  limits: DecodeLimits,
  sections?: Uint8Array[],
): unknown {
  if (sections !== undefined) return decodeSplit(body, sections, handleCount, hooks, limits);
  const header = readHeader(body);
  const { format, textStart, textBytes, binaryCount } = header;
  if (header.handleCount !== handleCount) {
    throw malformed(`the header announces ${header.handleCount} handles but ${handleCount} came with it`);
  }
  if (limits.maxBinaries !== undefined && binaryCount > limits.maxBinaries) {
    throw tooLarge(`${binaryCount} binary sections, more than maxBinaries ${limits.maxBinaries}`);
  }
  const textEnd = textStart + textBytes;
  let offset = align8(textEnd);
  const starts = new Array<number>(binaryCount);
  for (let i = 0; i < binaryCount; i++) {
    const code = getU32(body, BODY_HEADER_BYTES + 8 * i);
    const length = getU32(body, BODY_HEADER_BYTES + 8 * i + 4);
    if (code >= KIND_NAMES.length) throw malformed(`binary section ${i} has unknown kind ${code}`);
    if (length % KIND_ELEMENT_BYTES[code] !== 0) {
      throw malformed(`binary section ${i} of ${length} bytes is not a whole number of ${KIND_NAMES[code]} elements`);
    }
    if (offset > body.length || length > body.length - offset) {
      throw malformed(`binary section ${i} of ${length} bytes does not fit in ${body.length} bytes`);
    }
    starts[i] = offset;
    offset = align8(offset + length);
  }
  if (offset !== body.length) {
    if (offset > body.length) throw malformed(`padding does not fit in ${body.length} bytes`);
    throw malformed(`${body.length - offset} bytes follow the last section`);
  }
  // Padding after the text and after each section must be zero.
  checkZero(body, textEnd, Math.min(align8(textEnd), body.length));
  for (let i = 0; i < binaryCount; i++) {
    const end = starts[i] + getU32(body, BODY_HEADER_BYTES + 8 * i + 4);
    checkZero(body, end, align8(end));
  }

  const text = decodeText(body, textStart, textBytes);

  if (format === BODY_FORMAT_JSON) {
    if (binaryCount !== 0 || handleCount !== 0) throw malformed('a JSON body cannot have binaries or handles');
    return decodeJson(text, limits);
  }
  if (format === BODY_FORMAT_JSON_HANDLES) {
    if (binaryCount !== 0) throw malformed('a JSON body with handles cannot have binaries');
    return decodeJsonHandles(text, handleCount, hooks, limits);
  }
  return decodeDevalue(body, text, starts, handleCount, hooks, limits, (index, length) => {
    const copy = new Uint8Array(length);
    copy.set(new Uint8Array(body.buffer, body.byteOffset + starts[index], length));
    return copy.buffer;
  });
}

/** Where the parts of a message body lie: see {@link bodyLayout}. */
export interface BodyLayout {
  /** Bytes of the header, binary table, text and its padding. */
  headBytes: number;
  /** Offset and length of each binary section in the body. */
  sections: Array<{ offset: number; length: number }>;
}

/**
 * The layout of a body of `total` bytes, read from its first bytes (`prefix`), so that a
 * receiver can put each binary section straight into a buffer of its own while the body
 * arrives in pieces. Undefined when `prefix` is too short to tell or the layout does not add up
 * to `total` (the receiver then assembles the body whole and `decodeMessage` says what is wrong).
 */
export function bodyLayout(prefix: Uint8Array, total: number): BodyLayout | undefined {
  if (prefix.length < BODY_HEADER_BYTES || prefix[0] !== BODY_FORMAT_DEVALUE) return undefined;
  const textBytes = getU32(prefix, 4);
  const binaryCount = getU32(prefix, 8);
  if (BODY_HEADER_BYTES + 8 * binaryCount > prefix.length) return undefined;
  let offset = align8(BODY_HEADER_BYTES + 8 * binaryCount + textBytes);
  const headBytes = offset;
  const sections: Array<{ offset: number; length: number }> = [];
  for (let i = 0; i < binaryCount; i++) {
    const length = getU32(prefix, BODY_HEADER_BYTES + 8 * i + 4);
    sections.push({ offset, length });
    offset = align8(offset + length);
    if (offset > total) return undefined;
  }
  return offset === total ? { headBytes, sections } : undefined;
}

/**
 * Decodes a body received split by {@link bodyLayout}: `head` holds the header, binary table and
 * text; `sections[i]` holds binary section i. A section that is a whole ArrayBuffer of its own is
 * adopted as it is (no copy); the caller must not use it afterwards.
 */
function decodeSplit(
  head: Uint8Array,
  sections: Uint8Array[],
  handleCount: number,
  hooks: DecodeHooks | undefined,
  limits: DecodeLimits,
): unknown {
  const header = readHeader(head);
  const { format, textStart, textBytes, binaryCount } = header;
  if (header.handleCount !== handleCount) {
    throw malformed(`the header announces ${header.handleCount} handles but ${handleCount} came with it`);
  }
  if (format !== BODY_FORMAT_DEVALUE) throw malformed('a JSON body cannot have binaries');
  if (limits.maxBinaries !== undefined && binaryCount > limits.maxBinaries) {
    throw tooLarge(`${binaryCount} binary sections, more than maxBinaries ${limits.maxBinaries}`);
  }
  if (sections.length !== binaryCount) throw malformed(`${sections.length} sections for a table of ${binaryCount}`);
  const textEnd = textStart + textBytes;
  if (head.length !== align8(textEnd)) throw malformed('the head of a split body has the wrong length');
  checkZero(head, textEnd, head.length);
  for (let i = 0; i < binaryCount; i++) {
    const code = getU32(head, BODY_HEADER_BYTES + 8 * i);
    const length = getU32(head, BODY_HEADER_BYTES + 8 * i + 4);
    if (code >= KIND_NAMES.length) throw malformed(`binary section ${i} has unknown kind ${code}`);
    if (length % KIND_ELEMENT_BYTES[code] !== 0) {
      throw malformed(`binary section ${i} of ${length} bytes is not a whole number of ${KIND_NAMES[code]} elements`);
    }
    if (sections[i].byteLength !== length) throw malformed(`binary section ${i} has ${sections[i].byteLength} bytes, not ${length}`);
  }
  const text = decodeText(head, textStart, textBytes);
  return decodeDevalue(head, text, new Array<number>(binaryCount).fill(0), handleCount, hooks, limits, (index, length) => {
    const section = sections[index];
    if (section.byteOffset === 0 && section.byteLength === section.buffer.byteLength && section.buffer instanceof ArrayBuffer) {
      return section.buffer;
    }
    const copy = new Uint8Array(length);
    copy.set(section);
    return copy.buffer;
  });
}

function decodeJson(text: string, limits: DecodeLimits): unknown {
  checkJsonText(text, limits);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw malformed('the JSON text does not parse', cause);
  }
  if ((text.includes('__proto__') || text.includes('\\u')) && hasProtoKey(value)) {
    throw malformed('an object has a __proto__ key');
  }
  return value;
}

/**
 * Format 2: JSON whose handle markers `{"\u0000h":[index,kind]}` become the revived handles.
 * Every handle must be referenced, always with the same kind; one object per index.
 */
function decodeJsonHandles(text: string, handleCount: number, hooks: DecodeHooks | undefined, limits: DecodeLimits): unknown {
  if (handleCount === 0) throw malformed('a JSON body with handles names no handle');
  if (hooks === undefined) throw malformed('the body has handles but the receiver cannot take any');
  const value = decodeJson(text, limits);
  const kinds = new Array<string | undefined>(handleCount);
  // Pairs of (container, key) whose value is a marker, found without recursion.
  const markers: Array<[Record<string, unknown> | unknown[] | undefined, string | number, number]> = [];
  const readMarker = (v: unknown): number | undefined => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, HANDLE_MARKER)) return undefined;
    const keys = Object.keys(v);
    const m = (v as Record<string, unknown>)[HANDLE_MARKER];
    if (keys.length !== 1 || !Array.isArray(m) || m.length !== 2 || typeof m[1] !== 'string' || m[1].length === 0) {
      throw malformed('a handle marker that is not {"\\u0000h":[index,kind]}');
    }
    const index = m[0];
    if (!Number.isInteger(index) || index < 0 || index >= handleCount) throw malformed(`a handle marker refers to handle ${String(index)} of ${handleCount}`);
    if (kinds[index] !== undefined && kinds[index] !== m[1]) throw malformed(`handle ${index} is referred to with two kinds`);
    kinds[index] = m[1];
    return index;
  };
  const rootIndex = readMarker(value);
  if (rootIndex !== undefined) markers.push([undefined, '', rootIndex]);
  const stack: unknown[] = rootIndex === undefined ? [value] : [];
  while (stack.length > 0) {
    const v = stack.pop() as Record<string, unknown> | unknown[];
    if (typeof v !== 'object' || v === null) continue;
    const keys: Array<string | number> = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    for (const k of keys) {
      const child = (v as Record<string, unknown>)[k as string];
      if (typeof child !== 'object' || child === null) continue;
      const index = readMarker(child);
      if (index === undefined) stack.push(child);
      else markers.push([v, k, index]);
    }
  }
  const missing = kinds.findIndex((k) => k === undefined);
  if (missing >= 0) throw malformed(`handle ${missing} is never referenced`);
  const revived = new Array<unknown>(handleCount);
  const done = new Array<boolean>(handleCount).fill(false);
  let root = value;
  for (const [container, key, index] of markers) {
    if (!done[index]) {
      revived[index] = hooks.reviveHandle(kinds[index]!, index);
      done[index] = true;
    }
    if (container === undefined) root = revived[index];
    else (container as Record<string, unknown>)[key as string] = revived[index];
  }
  return root;
}

function decodeDevalue(
  body: Uint8Array,
  text: string,
  starts: number[],
  handleCount: number,
  hooks: DecodeHooks | undefined,
  limits: DecodeLimits,
  takeBinary: (index: number, length: number) => ArrayBuffer,
): unknown {
  const binaryCount = starts.length;
  checkDevalueText(text, limits, handleCount, binaryCount);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw malformed('the devalue text does not parse', cause);
  }
  if (typeof parsed === 'number') {
    if (!isSpecialValue(parsed)) throw malformed('the devalue text is a bare number that is no special value');
    if (binaryCount !== 0) throw malformed('binary section 0 is never referenced');
    if (handleCount !== 0) throw malformed('handle 0 is never referenced');
    return unflatten(parsed);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw malformed('the devalue text is not a non-empty array');
  const { binaryUsed, handleUsed, built } = scanFlat(parsed as unknown[], binaryCount, handleCount, limits);
  const unusedBinary = binaryUsed.indexOf(0);
  if (unusedBinary >= 0) throw malformed(`binary section ${unusedBinary} is never referenced`);
  const unusedHandle = handleUsed.indexOf(0);
  if (unusedHandle >= 0) throw malformed(`handle ${unusedHandle} is never referenced`);
  if (handleCount > 0 && hooks === undefined) throw malformed('the body has handles but the receiver cannot take any');

  // Resolve every binary constructor before any hook runs.
  for (let i = 0; i < binaryCount; i++) {
    const name = KIND_NAMES[getU32(body, BODY_HEADER_BYTES + 8 * i)];
    if (typeof (globalThis as Record<string, unknown>)[name] !== 'function') {
      throw malformed(`binary section ${i} is a ${name}, which this runtime lacks`);
    }
  }

  let hookError: { error: unknown } | undefined;
  const revivers = {
    [REDUCER_BINARY]: (payload: [number]) => {
      const index = payload[0];
      const code = getU32(body, BODY_HEADER_BYTES + 8 * index);
      const length = getU32(body, BODY_HEADER_BYTES + 8 * index + 4);
      const buffer = takeBinary(index, length);
      if (code === KIND_ARRAY_BUFFER) return buffer;
      if (code === KIND_DATA_VIEW) return new DataView(buffer);
      const Ctor = (globalThis as Record<string, unknown>)[KIND_NAMES[code]] as new (b: ArrayBuffer) => unknown;
      return new Ctor(buffer);
    },
    [REDUCER_HANDLE]: (payload: [string, number]) => {
      try {
        return hooks!.reviveHandle(payload[0], payload[1]);
      } catch (error) {
        hookError = { error };
        throw error;
      }
    },
  };
  // The values the scan built (to check them) are used as they are, in the same order.
  let nextRegExp = 0;
  let nextString = 0;
  const operations = {
    fromRegExpInfo: (source: string, flags: string | undefined): RegExp => {
      const b = built.regExps[nextRegExp];
      if (b !== undefined && b.source === source && b.flags === flags) {
        nextRegExp++;
        return b.value;
      }
      return new RegExp(source, flags);
    },
    fromStringValue: (tag: string, text: string): unknown => {
      const b = built.strings[nextString];
      if (b !== undefined && b.tag === tag && b.text === text) {
        nextString++;
        return b.value;
      }
      if (tag === 'URL') return new URL(text);
      if (tag === 'URLSearchParams') return new URLSearchParams(text);
      return temporalClass(tag.slice(TEMPORAL_PREFIX.length))!.from(text);
    },
  };
  try {
    return unflatten(parsed, revivers, { operations });
  } catch (error) {
    if (hookError !== undefined) throw hookError.error;
    if (error instanceof RangeError) {
      // Only reachable when a receiver raised maxDepth beyond what the stack holds.
      throw new IpcError('TOO_LARGE', 'Message nests too deeply for the stack; lower maxDepth.', { cause: error });
    }
    throw malformed('the devalue text does not describe a value', error);
  }
}
