/**
 * The encoder's single read of a value ({@link snapshot}): a copy of its containers, whether
 * the copy is JSON-exact, and its handle objects.
 */
import { MAX_ARRAY_LEN } from './cost.js';
import { KIND_NAMES, describe, objectToString, unserializable } from './format.js';
import type { EncodeHooks } from './format.js';

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
const hasOwnProperty = Object.prototype.hasOwnProperty;

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
  /** Array: that index; object: that key's rank among the copy's keys (Object.keys order). */
  rank: number;
}

function newFrame(type: number, src: unknown, copy: unknown, pos: number, end: number): CopyFrame {
  return { type, src, copy, keys: undefined, pos, end, iterator: undefined, key: undefined, keyCopy: undefined, value: undefined, pending: false, at: 0, rank: 0 };
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

/**
 * What a handle object becomes in the copy: its index (in the order the handles are first met)
 * and kind. Only the walk makes them, so a copy is a marker exactly when it is an instance; the
 * devalue path turns each back into its handle, the JSON-with-handles path replaces each by its
 * index at the positions the walk recorded ({@link Snapshot.table}).
 */
export class HandleMarker {
  constructor(
    readonly index: number,
    readonly kind: string,
  ) {}

}

/** Longest kind tag format 3 carries (a receiver's, with 64 switch secrets, is 2,114). */
export const MAX_KIND_CHARS = 4096;

/** True when format 3 can carry `kind`: printable ASCII, at most MAX_KIND_CHARS. */
function isTableKind(kind: string): boolean {
  if (kind.length > MAX_KIND_CHARS) return false;
  for (let i = 0; i < kind.length; i++) {
    const c = kind.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}


/** Objects met by {@link snapshot}: a short list first (cheaper than a Map for small values). */
const SEEN_LIST_MAX = 16;
/** Longest array {@link snapshot} copies with one slice (see there). */
const SLICE_MAX = 1 << 20;
const arraySlice = Array.prototype.slice;

/**
 * True when the walk copies array `v` with one slice: a slice reads each item once, fast, into
 * a packed array (JSON.stringify is much slower on holey ones); it walks every index, hence only
 * for arrays that look dense, and only for this realm's plain arrays (a slice of a subclass
 * would construct the subclass).
 */
function isSliceable(v: unknown[]): boolean {
  const end = v.length;
  return (
    end <= SLICE_MAX &&
    Object.getPrototypeOf(v) === Array.prototype &&
    !Object.hasOwn(v, 'constructor') &&
    (end <= 4096 || (0 in v && end - 1 in v && end >>> 1 in v))
  );
}

/** What {@link snapshot} made of a value (the walk itself: see {@link releaseSnapshot}). */
export interface Snapshot {
  /** The copy: see {@link snapshot}. */
  readonly value: unknown;
  /** True when JSON.stringify + JSON.parse of the copy gives exactly what devalue would. */
  readonly json: boolean;
  /** True when the copy is JSON-exact but for handles, and format 3 can carry it (see below). */
  readonly jsonWithHandles: boolean;
  /**
   * Handle objects (the caller's), in the order first met: handle i is a {@link HandleMarker}
   * numbered i in the copy. Undefined when there is none (a new array per value otherwise: it
   * becomes the encoded message's `handles`).
   */
  readonly handles: object[] | undefined;
  /**
   * When `jsonWithHandles`: format 3's table of where the markers are in the copy, each place a
   * handle was met (a handle met twice has two) in the order met: the number of places, then for
   * each, its number of keys, then the ranks (see CopyFrame.rank) from the root to it. Its first
   * {@link tableLength} words only (the array is the walk's, reused). Else incomplete.
   */
  readonly table: readonly number[];
  /** Words of {@link table} written (0: no handle position). */
  readonly tableLength: number;
  /** The handles' kinds, by index (undefined when there is no handle). */
  readonly kinds: readonly string[] | undefined;
  /**
   * When `jsonWithHandles`: (container, key, marker) triples, each place in the copy (but the
   * root) that holds a marker, so that format 3 puts the handle's index there.
   */
  readonly slots: unknown[] | undefined;
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
 * Format 3 also allows handles (shared or not), at the positions recorded.
 */
export function snapshot(root: unknown, hooks: EncodeHooks | undefined, maxDepth: number): Snapshot {
  const walk = idleWalk ?? new SnapshotWalk();
  idleWalk = undefined;
  walk.start(hooks, maxDepth);
  if (typeof root === 'object' ? root === null : typeof root !== 'function') {
    const json = root === null || isJsonScalar(root);
    walk.value = root;
    walk.json = json;
    walk.jsonWithHandles = json && hooks !== undefined;
    return walk;
  }
  try {
    walk.value = walk.fast(root as object, 1);
  } catch (error) {
    releaseSnapshot(walk);
    throw error;
  }
  return walk;
}

/**
 * Lets go of what a {@link snapshot} referenced (the caller's objects, the copies) once its
 * result has been used (its table is reused by the next snapshot); call it exactly once.
 */
export function releaseSnapshot(snap: Snapshot): void {
  const walk = snap as SnapshotWalk;
  walk.clear();
  idleWalk = walk;
}

/** Words of a walk's table made with it (a few handles at small depths need no more). */
const TABLE_WORDS = 32;
/** A walk's table longer than this (grown by a large value) is replaced after the value. */
const TABLE_KEEP_WORDS = 1024;

/** A table of TABLE_WORDS zeros (a packed array of small integers). */
function newTable(): number[] {
  const table: number[] = [];
  for (let i = 0; i < TABLE_WORDS; i++) table.push(0);
  return table;
}

/** Writes `word` at `n` of `table` (at most its length); returns n + 1. */
function putWord(table: number[], n: number, word: number): number {
  if (n < table.length) table[n] = word;
  else table.push(word);
  return n + 1;
}

/** The walk {@link snapshot} reuses, when no snapshot is running. */
let idleWalk: SnapshotWalk | undefined;

/**
 * Deepest level {@link SnapshotWalk.fast} recurses to; a subtree below it is copied by the
 * iterative walk (maxDepth may be raised beyond what the stack holds).
 */
const FAST_MAX_DEPTH = 64;

/**
 * The state of one {@link snapshot} (a class: its methods and fields stay monomorphic). One
 * instance is reused by every snapshot that is not taken while another runs (a getter may send),
 * so that a small value costs no allocation but its copies.
 */
class SnapshotWalk implements Snapshot {
  value: unknown = undefined;
  json = true;
  jsonWithHandles = false;
  /** Handle objects met, in order (created at the first, as a one-item literal: no growth). */
  handles: object[] | undefined;
  /**
   * Where handles were met (see {@link Snapshot.table}), while jsonWithHandles holds: small
   * integers only, kept from walk to walk (no array grown per message, no write barrier).
   */
  table: number[] = newTable();
  tableLength = 0;
  /** The handles' kinds (created at the first). */
  kinds: string[] | undefined;
  /** Where the copy holds markers (see {@link Snapshot.slots}), while jsonWithHandles holds. */
  slots: unknown[] | undefined;
  hooks: EncodeHooks | undefined;
  maxDepth = 0;
  /**
   * The caller's objects already met -> their copies (or themselves when kept): the first
   * SEEN_LIST_MAX in two lists (cheaper than a Map for small values); after them, all in
   * `seenSet`, their copies in `setCopies` in the same (insertion) order, so that {@link claim}
   * looks an object up and adds it in one step; at the first object met twice there, all in
   * `seenMap`. Slots past `seenCount` are undefined.
   */
  private readonly seenObjects: object[] = [];
  private readonly seenCopies: unknown[] = [];
  private seenCount = 0;
  private seenSet: Set<object> | undefined;
  private setCopies: unknown[] | undefined;
  /** Index in `setCopies` of the object {@link claim} added, until its copy is remembered (else -1). */
  private claimed = -1;
  private seenMap: Map<object, unknown> | undefined;
  private readonly frames: CopyFrame[] = [];
  /**
   * Keys and indices from the root to the container {@link fast} is copying (for error paths).
   * The iterative walk's frames start below them: `baseDepth` levels, written `basePath`.
   */
  private readonly fastPath: Array<string | number> = [];
  /** The rank (see CopyFrame.rank) of each key (string) of {@link fastPath}, in order. */
  private readonly fastRanks: number[] = [];
  private baseDepth = 0;
  private basePath = '';

  /** Prepares the walk for a value. */
  start(hooks: EncodeHooks | undefined, maxDepth: number): void {
    this.hooks = hooks;
    this.maxDepth = maxDepth;
    this.json = true;
    this.jsonWithHandles = hooks !== undefined;
  }

  /** Lets go of everything the last walk referenced (the caller's objects, the copies). */
  clear(): void {
    const n = this.seenCount;
    for (let i = 0; i < n; i++) {
      this.seenObjects[i] = undefined as unknown as object;
      this.seenCopies[i] = undefined;
    }
    this.seenCount = 0;
    this.seenSet = undefined;
    this.setCopies = undefined;
    this.claimed = -1;
    this.seenMap = undefined;
    this.value = undefined;
    this.handles = undefined;
    // A table grown for a large value is not kept.
    if (this.table.length > TABLE_KEEP_WORDS) this.table = newTable();
    this.tableLength = 0;
    this.kinds = undefined;
    this.slots = undefined;
    this.hooks = undefined;
    // Empty unless the walk threw (setting a length costs a runtime call).
    if (this.frames.length !== 0) this.frames.length = 0;
    if (this.fastPath.length !== 0) this.fastPath.length = 0;
    if (this.fastRanks.length !== 0) this.fastRanks.length = 0;
    this.baseDepth = 0;
    this.basePath = '';
  }

  /** The copy of `v` when met before (`undefined`: not met; `v` itself when kept). */
  private seenCopy(v: object): unknown {
    if (this.seenMap !== undefined) return this.seenMap.get(v);
    if (this.seenSet !== undefined) return this.seenSet.has(v) ? this.toMap().get(v) : undefined;
    const objects = this.seenObjects;
    for (let i = 0, n = this.seenCount; i < n; i++) {
      if (objects[i] === v) return this.seenCopies[i];
    }
    return undefined;
  }

  /**
   * {@link seenCopy}, and when `v` was not met, and the walk is past its short lists, `v` is
   * added as met (one Set operation instead of a lookup and an insertion): its copy must then
   * be {@link remember}ed before any other object is claimed or looked up.
   */
  private claim(v: object): unknown {
    const set = this.seenSet;
    if (set === undefined || this.seenMap !== undefined) return this.seenCopy(v);
    const n = set.size;
    set.add(v);
    if (set.size === n) return this.toMap().get(v);
    this.claimed = n;
    this.setCopies!.push(undefined);
    return undefined;
  }

  private remember(v: object, copy: unknown): void {
    if (this.seenMap !== undefined) {
      this.seenMap.set(v, copy);
      return;
    }
    const set = this.seenSet;
    if (set !== undefined) {
      const claimed = this.claimed;
      if (claimed >= 0) {
        this.setCopies![claimed] = copy;
        this.claimed = -1;
      } else {
        set.add(v);
        this.setCopies!.push(copy);
      }
      return;
    }
    const n = this.seenCount;
    if (n < SEEN_LIST_MAX) {
      this.seenObjects[n] = v;
      this.seenCopies[n] = copy;
      this.seenCount = n + 1;
      return;
    }
    const objects = this.seenObjects;
    const copies = this.seenCopies;
    const setCopies: unknown[] = [];
    const seenSet = new Set<object>();
    for (let i = 0; i < n; i++) {
      seenSet.add(objects[i]);
      setCopies.push(copies[i]);
    }
    seenSet.add(v);
    setCopies.push(copy);
    this.seenSet = seenSet;
    this.setCopies = setCopies;
  }

  /** The objects met, from `seenSet` and `setCopies` into `seenMap` (from now on the walk's only record). */
  private toMap(): Map<object, unknown> {
    const map = new Map<object, unknown>();
    const copies = this.setCopies!;
    let i = 0;
    for (const v of this.seenSet!) map.set(v, copies[i++]);
    this.seenMap = map;
    this.seenSet = undefined;
    this.setCopies = undefined;
    this.claimed = -1;
    return map;
  }

  /** Marks the value as neither JSON-exact nor JSON-exact but for handles. */
  notJson(): void {
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
      if (k === '__proto__') this.notJson();
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
    const seen = this.seenCopy(v);
    if (seen !== undefined) return this.again(v, seen);
    return this.visitUnseen(v);
  }

  /** {@link visit} of an object or function not met before (or just claimed by {@link fast}). */
  private visitUnseen(v: object): unknown {
    const frames = this.frames;
    const depth = this.baseDepth + frames.length + 1;
    if (depth > this.maxDepth) {
      throw unserializable(describe(v), this.basePath + framesPath(frames), `it nests deeper than maxDepth ${this.maxDepth}`);
    }
    if (typeof v === 'function') {
      this.remember(v, v);
      this.notJson();
      return v;
    }
    if (this.hooks !== undefined) {
      const marker = this.handleMarker(v);
      if (marker !== undefined) return marker;
    }
    if (Array.isArray(v)) return this.visitArray(v, isSliceable(v));
    return this.visitObject(v, Object.getPrototypeOf(v) as object | null);
  }

  /**
   * Asks `hooks.handleKind` about `v` (once); a handle is recorded (the caller's object, in
   * {@link handles}) and its marker, its copy, returned (its position recorded); else undefined.
   */
  private handleMarker(v: object): HandleMarker | undefined {
    const kind = this.hooks!.handleKind(v);
    if (kind === undefined) return undefined;
    if (typeof kind !== 'string' || kind.length === 0) {
      throw new TypeError('EncodeHooks.handleKind must return a non-empty string or undefined.');
    }
    let marker: HandleMarker;
    const handles = this.handles;
    if (handles === undefined) {
      // The first handle: arrays of one made as literals (pushing onto [] grows them).
      marker = new HandleMarker(0, kind);
      this.handles = [v];
      this.kinds = [kind];
    } else {
      marker = new HandleMarker(handles.length, kind);
      handles.push(v);
      this.kinds!.push(kind);
    }
    this.remember(v, marker);
    this.json = false;
    if (this.jsonWithHandles) {
      if (isTableKind(kind)) this.recordPosition();
      else this.jsonWithHandles = false;
    }
    return marker;
  }

  /**
   * The single-pass copy of plain data, recursive: `v` (an object or function met at level
   * `depth`, whose ancestors are all arrays and plain objects copied here) is read exactly as
   * {@link visit} reads it, in the same order, and copied; a plain object's or array's children
   * are copied here too. Anything else (a Map, a Set, a class instance, a sparse or subclassed
   * array, a null-prototype object...) and whatever lies below it is handed to the iterative
   * walk, which continues from what was read: nothing is read twice.
   */
  fast(v: object, depth: number): unknown {
    const seen = this.claim(v);
    if (seen !== undefined) return this.again(v, seen);
    if (depth > this.maxDepth) {
      throw unserializable(describe(v), this.pathOf(this.fastPath.length), `it nests deeper than maxDepth ${this.maxDepth}`);
    }
    if (typeof v === 'function' || depth > FAST_MAX_DEPTH) return this.handOver(depth, () => this.visitUnseen(v));
    if (this.hooks !== undefined) {
      const marker = this.handleMarker(v);
      if (marker !== undefined) return marker;
    }
    if (Array.isArray(v)) {
      if (!isSliceable(v)) return this.handOver(depth, () => this.visitArray(v, false));
      const copy = arraySlice.call(v) as unknown[];
      this.remember(v, copy);
      const end = copy.length;
      for (let i = 0; i < end; i++) {
        const e = copy[i];
        if (typeof e === 'object' ? e === null : typeof e !== 'function') {
          if (e !== null && !isJsonScalar(e)) this.notJson();
        } else {
          const path = this.fastPath;
          path.push(i);
          const c = this.fast(e as object, depth + 1);
          copy[i] = c;
          if (this.handles !== undefined && c instanceof HandleMarker && this.jsonWithHandles) this.slot(copy, i, c);
          path.pop();
        }
      }
      return copy;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto !== Object.prototype) return this.handOver(depth, () => this.visitObject(v, proto));
    const symbols = Object.getOwnPropertySymbols(v);
    for (let i = 0; i < symbols.length; i++) {
      // devalue refuses it: leave it to devalue, unread
      if (propertyIsEnumerable.call(v, symbols[i])) {
        this.remember(v, v);
        this.notJson();
        return v;
      }
    }
    const copy = { ...(v as Record<string, unknown>) };
    this.remember(v, copy);
    // for-in rather than Object.keys: no key array, and V8 reads each value by its field index
    // (the copy's enum cache) rather than by a keyed lookup. It yields the copy's own keys
    // first, in Object.keys order (so `i` is the key's rank), then any enumerable key of
    // Object.prototype (only if something put one there). Such a key's value is not the copy's:
    // a scalar can only make the value take the devalue path (which reads the copy's own keys),
    // and an object child is checked to be the copy's own before it is copied.
    let i = -1;
    for (const k in copy) {
      i++;
      const e = copy[k];
      if (k === '__proto__') this.notJson();
      if (typeof e === 'object' ? e === null : typeof e !== 'function') {
        if (e !== null && !isJsonScalar(e)) this.notJson();
      } else {
        // Inherited: the copy's own keys are done.
        if (!hasOwnProperty.call(copy, k)) break;
        const path = this.fastPath;
        const ranks = this.fastRanks;
        path.push(k);
        ranks.push(i);
        const c = this.fast(e as object, depth + 1);
        path.pop();
        ranks.pop();
        if (k === '__proto__') Object.defineProperty(copy, k, { value: c, writable: true, enumerable: true, configurable: true });
        else copy[k] = c;
        if (this.handles !== undefined && c instanceof HandleMarker && this.jsonWithHandles) this.slot(copy, k, c);
      }
    }
    return copy;
  }

  /** devalue's path of the first `n` keys of {@link fastPath}. */
  private pathOf(n: number): string {
    let path = '';
    for (let i = 0; i < n; i++) {
      const k = this.fastPath[i];
      path += typeof k === 'number' ? `[${k}]` : keyLabel(k);
    }
    return path;
  }

  /**
   * Runs `start` (the iterative walk's copy of a value at level `depth`, met by {@link fast})
   * and then that walk until the value's subtree is copied; returns the copy.
   */
  private handOver(depth: number, start: () => unknown): unknown {
    this.baseDepth = depth - 1;
    this.basePath = this.pathOf(this.fastPath.length);
    const copy = start();
    this.run();
    return copy;
  }

  /** The copy of an array `v` (handle and depth checks done); `sliceable` from {@link isSliceable}. */
  private visitArray(v: unknown[], sliceable: boolean): unknown {
    let end = v.length;
    let src = v;
    let copy: unknown[];
    if (sliceable) {
      copy = arraySlice.call(v) as unknown[];
      src = copy;
      end = copy.length;
    } else {
      copy = [];
    }
    this.remember(v, copy);
    const i = this.copyItems(src, copy, 0, end);
    if (i < end) this.frames.push(newFrame(FRAME_ARRAY, src, copy, i, end));
    return copy;
  }

  /** The copy of a non-array object `v` (handle and depth checks done) whose prototype is `proto`. */
  private visitObject(v: object, proto: object | null): unknown {
    const frames = this.frames;
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
    if (!(copy instanceof HandleMarker)) this.jsonWithHandles = false;
    else if (this.jsonWithHandles) this.recordPosition();
    return copy;
  }

  /**
   * Records where the value being visited is: the keys {@link fast} descended through, then
   * those of the iterative walk's frames (only arrays and objects while jsonWithHandles holds).
   */
  private slot(copy: object, key: string | number, marker: HandleMarker): void {
    const slots = this.slots;
    if (slots === undefined) this.slots = [copy, key, marker];
    else slots.push(copy, key, marker);
  }

  private recordPosition(): void {
    const table = this.table;
    let n = this.tableLength;
    const path = this.fastPath;
    const ranks = this.fastRanks;
    const frames = this.frames;
    const keys = path.length + frames.length;
    if (n === 0) {
      table[0] = 1;
      n = 1;
    } else {
      table[0]++;
    }
    // Within the table's length, words are overwritten in place; past it, pushed.
    n = putWord(table, n, keys);
    for (let i = 0, r = 0; i < path.length; i++) {
      const k = path[i];
      n = putWord(table, n, typeof k === 'number' ? k : ranks[r++]);
    }
    for (let i = 0; i < frames.length; i++) n = putWord(table, n, frames[i].rank);
    this.tableLength = n;
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
        f.rank = i;
        const c = this.visit(e);
        if (src === copy) copy[i] = c;
        else copy.push(c);
        if (this.handles !== undefined && c instanceof HandleMarker && this.jsonWithHandles) this.slot(copy, i, c);
        // The items after it (up to the next object child) are read now; the frame stays until
        // the child's own children are done, so that frames are always the ancestors.
        f.pos = this.copyItems(src, copy, i + 1, f.end);
      } else if (f.type === FRAME_OBJECT) {
        const copy = f.copy as Record<string, unknown>;
        const keys = f.keys as string[];
        const k = keys[f.pos];
        f.at = k;
        f.rank = f.pos;
        const c = this.visit(copy[k]);
        if (k === '__proto__') Object.defineProperty(copy, k, { value: c, writable: true, enumerable: true, configurable: true });
        else copy[k] = c;
        if (this.handles !== undefined && c instanceof HandleMarker && this.jsonWithHandles) this.slot(copy, k, c);
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
