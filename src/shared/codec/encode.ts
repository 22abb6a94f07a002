/**
 * Encoding: a value -> one message body (parts to write back to back) plus its handle objects.
 */
import { DevalueError, stringify } from 'devalue';
import { IpcError } from '../errors.js';
import { DEFAULT_LIMITS } from '../limits.js';
import {
  BIGINT_LIMIT,
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  BODY_HEADER_BYTES,
  BODY_VERSION,
  MAX_BIGINT_DIGITS,
  REDUCER_BINARY,
  REDUCER_HANDLE,
  align8,
  binaryOf,
  describe,
  setU32,
  unserializable,
} from './format.js';
import type { EncodeHooks, EncodeOptions, EncodedMessage } from './format.js';
import { HandleMarker, releaseSnapshot, snapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';

// ---------------------------------------------------------------------------------------------
// Encoding

const encoder = new TextEncoder();

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
 * The last SCRATCH_BYTES of a slab are no part's: a text is encoded there first, then moved
 * into its part (one view per message instead of two).
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_PART = 4096;
const SCRATCH_BYTES = 4096;
const PARTS_END = SLAB_BYTES - SCRATCH_BYTES;
/**
 * True on a little-endian host (all that run Electron): a Uint32Array then writes the body's
 * little-endian u32 fields in one store each instead of four byte stores.
 */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabBytes = new Uint8Array(slab);
/** The slab as u32 words (parts start at multiples of 8), or undefined on a big-endian host. */
let slabWords = LITTLE_ENDIAN ? new Uint32Array(slab) : undefined;
let slabScratch = new Uint8Array(slab, PARTS_END, SCRATCH_BYTES);
let slabUsed = 0;

function newSlab(): void {
  slab = new ArrayBuffer(SLAB_BYTES);
  slabBytes = new Uint8Array(slab);
  slabWords = LITTLE_ENDIAN ? new Uint32Array(slab) : undefined;
  slabScratch = new Uint8Array(slab, PARTS_END, SCRATCH_BYTES);
  slabUsed = 0;
}

/** A zeroed Uint8Array of `n` bytes (`n` a multiple of 8, so slab parts stay 8-aligned). */
function allocPart(n: number): Uint8Array {
  if (n > SLAB_MAX_PART) {
    partWords = undefined;
    return new Uint8Array(n);
  }
  // A detached slab (someone transferred a part's buffer) is replaced too.
  if (slabUsed + n > PARTS_END || slab.byteLength === 0) newSlab();
  const part = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  partWords = slabWords;
  return part;
}

/**
 * The words of the buffer of the part {@link allocPart} or {@link writeText} made last (the
 * slab's; its `.buffer`, read instead, costs a runtime call), or undefined for a part of its own.
 */
let partWords: Uint32Array | undefined;

/** UTF-8 bytes of the text {@link writeText} wrote last. */
let textBytesWritten = 0;

/**
 * Allocates the first part (header + binary table + text + padding) and writes the text;
 * its UTF-8 length is left in {@link textBytesWritten}.
 */
function writeText(text: string, headerBytes: number): Uint8Array {
  const n = text.length;
  if (n <= SCRATCH_BYTES) {
    if (slab.byteLength === 0) newSlab();
    const { read, written } = encoder.encodeInto(text, slabScratch);
    if (read === n) {
      textBytesWritten = written;
      const size = align8(headerBytes + written);
      if (size <= SLAB_MAX_PART && slabUsed + size <= PARTS_END) {
        const first = new Uint8Array(slab, slabUsed, size);
        slabBytes.copyWithin(slabUsed + headerBytes, PARTS_END, PARTS_END + written);
        slabUsed += size;
        partWords = slabWords;
        return first;
      }
      const scratch = slabScratch;
      const first = allocPart(size);
      first.set(scratch.subarray(0, written), headerBytes);
      return first;
    }
  } else if (n <= 1 << 20) {
    // Guess the UTF-8 size is the string length (ASCII); fall back when it does not fit.
    const size = align8(headerBytes + n);
    const first = allocPart(size);
    const { read, written } = encoder.encodeInto(text, new Uint8Array(first.buffer, first.byteOffset + headerBytes, size - headerBytes));
    if (read === n) {
      textBytesWritten = written;
      const end = align8(headerBytes + written);
      return end === size ? first : first.subarray(0, end);
    }
    first.fill(0, headerBytes);
  }
  const encoded = encoder.encode(text);
  const first = allocPart(align8(headerBytes + encoded.length));
  first.set(encoded, headerBytes);
  textBytesWritten = encoded.length;
  return first;
}

/** A body of format 0 or 2 (JSON text, no binaries). */
function buildJsonBody(format: number, text: string, handles: object[]): EncodedMessage {
  const first = writeText(text, BODY_HEADER_BYTES);
  // The part is zeroed: only the non-zero fields are written.
  const words = partWords;
  if (words !== undefined) {
    const w = first.byteOffset >>> 2;
    words[w] = format | (BODY_VERSION << 8);
    words[w + 1] = textBytesWritten;
    words[w + 3] = handles.length;
  } else {
    first[0] = format;
    first[1] = BODY_VERSION;
    setU32(first, 4, textBytesWritten);
    setU32(first, 12, handles.length);
  }
  return { parts: [first], byteLength: first.length, handles };
}

/** Bytes of format 3's table of `words` position words and these kinds, padded to a multiple of 8. */
function handlesTableBytes(words: number, kinds: readonly string[]): number {
  let tableBytes = 4 * words;
  for (let i = 0; i < kinds.length; i++) tableBytes += 4 + kinds[i].length;
  return align8(tableBytes);
}

/**
 * Writes a format-3 header (but the text's length) and table into `first`, whose text starts at
 * `textStart` (16 + the table's bytes): the position table (u32 words: the number of positions,
 * then each one's number of keys and its keys' ranks), the kinds (each a u32 length and its
 * ASCII bytes), zero padding to the text. docs/wire-format.md, "Format 3".
 */
function writeHandlesTable(
  first: Uint8Array,
  u32: Uint32Array | undefined,
  table: readonly number[],
  words: number,
  kinds: readonly string[],
  textStart: number,
): void {
  if (u32 !== undefined) {
    // The same bytes, a word at a time where they are words (`first` starts on a word of `u32`).
    const base = (first.byteOffset - u32.byteOffset) >>> 2;
    u32[base] = BODY_FORMAT_JSON_HANDLES | (BODY_VERSION << 8);
    u32[base + 2] = (textStart - BODY_HEADER_BYTES) >>> 3;
    u32[base + 3] = kinds.length;
    let w = base + (BODY_HEADER_BYTES >>> 2);
    for (let i = 0; i < words; i++) u32[w++] = table[i];
    // The kinds and the padding: zeroed up to the text, then the kinds written over.
    for (const end = base + (textStart >>> 2); w < end; w++) u32[w] = 0;
    let at = BODY_HEADER_BYTES + 4 * words;
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[i];
      if ((at & 3) === 0) u32[base + (at >>> 2)] = kind.length;
      else setU32(first, at, kind.length);
      at += 4;
      for (let j = 0; j < kind.length; j++) first[at++] = kind.charCodeAt(j);
    }
    return;
  }
  first[0] = BODY_FORMAT_JSON_HANDLES;
  first[1] = BODY_VERSION;
  first[2] = 0;
  first[3] = 0;
  setU32(first, 8, (textStart - BODY_HEADER_BYTES) >>> 3);
  setU32(first, 12, kinds.length);
  let at = BODY_HEADER_BYTES;
  for (let i = 0; i < words; i++, at += 4) setU32(first, at, table[i]);
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i];
    setU32(first, at, kind.length);
    at += 4;
    // Printable ASCII (the walk took format 3 only then): one byte per character.
    for (let j = 0; j < kind.length; j++) first[at++] = kind.charCodeAt(j);
  }
  for (; at < textStart; at++) first[at] = 0;
}

/** A body of format 3 in a part of its own: the table (see {@link writeHandlesTable}), then the JSON text. */
function buildHandlesBody(text: string, snap: Snapshot, kinds: readonly string[], tableBytes: number, handles: object[]): EncodedMessage {
  const textStart = BODY_HEADER_BYTES + tableBytes;
  const first = writeText(text, textStart);
  const u32 = partWords;
  writeHandlesTable(first, u32, snap.table, snap.tableLength, kinds, textStart);
  if (u32 !== undefined) u32[(first.byteOffset >>> 2) + 1] = textBytesWritten;
  else setU32(first, 4, textBytesWritten);
  return { parts: [first], byteLength: first.length, handles };
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
  const first = writeText(text, headerBytes);
  const textBytes = textBytesWritten;
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
  return encode(value, hooks, options, undefined);
}

/**
 * {@link encodeMessage}, but a format-0 body that fits in `into` (a sender's scratch, at least
 * 16 bytes) is written there from its byte 0, and the result is a reused object whose only part
 * is `into` itself (its `byteLength` says how much of it is the body): read it before anything
 * else encodes. So is a format-3 body (JSON with handles) whose kinds `hooks.inPlace` all allows
 * (its result is a new object, its parts array the reused one). Any other body is encodeMessage's.
 */
export function encodeMessageInto(value: unknown, hooks: EncodeHooks | undefined, into: Uint8Array): EncodedMessage {
  return encode(value, hooks, undefined, into);
}

/** What {@link encodeMessageInto} returns for a format-0 body written in place (reused). */
const IN_PLACE: EncodedMessage = { parts: [], byteLength: 0, handles: [] };
/** The handles of a value without any (never written to). */
const NO_HANDLES: readonly object[] = Object.freeze([]);
/** The last `into` of {@link encodeMessageInto}, and its view past the body header. */
let intoBytes: Uint8Array | undefined;
let intoText: Uint8Array | undefined;
/** That `into` as u32 words, when it starts on a word (and the host is little-endian). */
let intoWords: Uint32Array | undefined;
/** Views of that `into` from byte 8 * i on, for the text of format 3 after its table (made on first use). */
let intoViews: Array<Uint8Array | undefined> = [];

/** Switches the cached views to `into`. */
function useInto(into: Uint8Array): void {
  intoBytes = into;
  intoText = into.subarray(BODY_HEADER_BYTES);
  intoViews = [];
  intoWords = LITTLE_ENDIAN && (into.byteOffset & 3) === 0 ? new Uint32Array(into.buffer, into.byteOffset, into.length >>> 2) : undefined;
}

/**
 * Zeroes the padding of a body written in `words` from word 0: bytes `end` to `size` (`size`
 * the multiple of 8 after `end`), in the last two words, keeping the body's bytes in them.
 */
function zeroPadding(words: Uint32Array, end: number, size: number): void {
  if (end === size) return;
  for (let w = (size - 8) >>> 2; w < size >>> 2; w++) {
    // Bytes of this word that are the body's (little-endian: the low ones).
    const keep = end - 4 * w;
    if (keep <= 0) words[w] = 0;
    else if (keep < 4) words[w] &= (1 << (8 * keep)) - 1;
  }
}

/** Writes a format-0 body of `text` into `into`; its length, or -1 when it does not fit. */
function writeInPlace(text: string, into: Uint8Array): number {
  if (text.length > into.length - BODY_HEADER_BYTES) return -1;
  if (into !== intoBytes) useInto(into);
  const { read, written } = encoder.encodeInto(text, intoText!);
  if (read !== text.length) return -1;
  return finishJsonBody(into, written);
}

/**
 * Writes the header and the zero padding of a format-0 body whose `written` bytes of UTF-8 JSON
 * text are in `into` from byte 16 on (as {@link encodeMessageInto} leaves one; the multiplexer
 * writes its own frames' text there too); the body's length, or -1 when it does not fit.
 */
export function finishJsonBody(into: Uint8Array, written: number): number {
  if (into !== intoBytes) useInto(into);
  const end = BODY_HEADER_BYTES + written;
  const size = align8(end);
  if (size > into.length) return -1;
  const words = intoWords;
  if (words !== undefined) {
    zeroPadding(words, end, size);
    words[0] = BODY_FORMAT_JSON | (BODY_VERSION << 8);
    words[1] = written;
    words[2] = 0;
    words[3] = 0;
    return size;
  }
  for (let i = end; i < size; i++) into[i] = 0;
  into[0] = BODY_FORMAT_JSON;
  into[1] = BODY_VERSION;
  into[2] = 0;
  into[3] = 0;
  setU32(into, 4, written);
  setU32(into, 8, 0);
  setU32(into, 12, 0);
  return size;
}

/**
 * Writes a format-3 body of `text` into `into`, its table (`tableBytes`) reserved before the text
 * (the text is encoded where it stays: no copy, no view per message); its length, or -1 when it
 * does not fit (`into` then holds garbage, never sent).
 */
function writeHandlesInPlace(text: string, snap: Snapshot, kinds: readonly string[], tableBytes: number, into: Uint8Array): number {
  const textStart = BODY_HEADER_BYTES + tableBytes;
  if (textStart > into.length || text.length > into.length - textStart) return -1;
  if (into !== intoBytes) useInto(into);
  const view = (intoViews[textStart >>> 3] ??= into.subarray(textStart));
  const { read, written } = encoder.encodeInto(text, view);
  if (read !== text.length) return -1;
  const end = textStart + written;
  const size = align8(end);
  if (size > into.length) return -1;
  const words = intoWords;
  if (words !== undefined) {
    zeroPadding(words, end, size);
    writeHandlesTable(into, words, snap.table, snap.tableLength, kinds, textStart);
    words[1] = written;
    return size;
  }
  for (let i = end; i < size; i++) into[i] = 0;
  writeHandlesTable(into, undefined, snap.table, snap.tableLength, kinds, textStart);
  setU32(into, 4, written);
  return size;
}

function encode(value: unknown, hooks: EncodeHooks | undefined, options: EncodeOptions | undefined, into: Uint8Array | undefined): EncodedMessage {
  const maxDepth = options?.maxDepth ?? DEFAULT_LIMITS.maxDepth;
  try {
    if (maxDepth < 1 && typeof value === 'object' && value !== null) {
      throw unserializable('an object', '', `it nests deeper than maxDepth ${maxDepth}`);
    }
    const snap = snapshot(value, hooks, maxDepth);
    if (snap.json || !snap.jsonWithHandles || snap.handles === undefined) {
      // Let go of the walk first (a large value's map of objects met is garbage before the text
      // is made): only format 3 reads more of it.
      const copy = snap.value;
      const json = snap.json;
      const handles = snap.handles;
      releaseSnapshot(snap);
      return json ? encodeJson(copy, into) : encodeDevalue(copy, handles ?? NO_HANDLES);
    }
    try {
      return encodeHandles(snap, hooks, into);
    } finally {
      releaseSnapshot(snap);
    }
  } catch (error) {
    if (error instanceof IpcError || isHookMisuse(error)) throw error;
    // A getter, proxy trap or hook threw, or a raised maxDepth exhausted the stack.
    throw unserializable('the value', '', `serializing it threw ${String(error)}`, error);
  }
}

/** True when `hooks.inPlace` allows every one of these kinds. */
function inPlaceKinds(hooks: EncodeHooks, kinds: readonly string[]): boolean {
  if (hooks.inPlace === undefined) return false;
  for (let i = 0; i < kinds.length; i++) if (hooks.inPlace(kinds[i]) !== true) return false;
  return true;
}

/** A format-0 body of the JSON-exact copy `value` (in `into` when given and it fits). */
function encodeJson(value: unknown, into: Uint8Array | undefined): EncodedMessage {
  const text = JSON.stringify(value);
  if (into !== undefined) {
    const size = writeInPlace(text, into);
    if (size >= 0) {
      IN_PLACE.parts[0] = into;
      IN_PLACE.byteLength = size;
      return IN_PLACE;
    }
  }
  return buildJsonBody(BODY_FORMAT_JSON, text, []);
}

/** The format-3 body of a snapshot that is JSON-exact but for handles; the caller releases the snapshot. */
function encodeHandles(snap: Snapshot, hooks: EncodeHooks | undefined, into: Uint8Array | undefined): EncodedMessage {
  const handles = snap.handles!;
  // Each marker becomes its handle's index in the copy (the walk's own, read by no one else).
  let root = snap.value;
  if (root instanceof HandleMarker) root = root.index;
  const slots = snap.slots;
  if (slots !== undefined) {
    for (let i = 0; i < slots.length; i += 3) {
      (slots[i] as Record<string | number, unknown>)[slots[i + 1] as string | number] = (slots[i + 2] as HandleMarker).index;
    }
  }
  const text = JSON.stringify(root);
  const kinds = snap.kinds!;
  const tableBytes = handlesTableBytes(snap.tableLength, kinds);
  if (into !== undefined && inPlaceKinds(hooks!, kinds)) {
    const size = writeHandlesInPlace(text, snap, kinds, tableBytes, into);
    // A new result (not IN_PLACE): a reused one would keep the handles reachable.
    if (size >= 0) {
      IN_PLACE.parts[0] = into;
      return { parts: IN_PLACE.parts, byteLength: size, handles };
    }
  }
  return buildHandlesBody(text, snap, kinds, tableBytes, handles);
}

function isHookMisuse(error: unknown): boolean {
  return error instanceof TypeError && error.message.startsWith('EncodeHooks.');
}

/** Numbers and BigInts that devalue's index may key by value (see encodeDevalue). */
const DIRECT_NUMBERS = 1024;

/**
 * The devalue path of {@link encodeMessage}, for a snapshot (its depth known to be bounded);
 * `found` are the handle objects whose {@link HandleMarker}s the copy holds (numbered in it).
 */
function encodeDevalue(value: unknown, found: readonly object[]): EncodedMessage {
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
        if (!(v instanceof HandleMarker)) return undefined;
        const payload = [v.kind, handles.length];
        handles.push(found[v.index]);
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
