/**
 * Decoding: a message body (whole, or split by {@link bodyLayout}) -> a value, after validation.
 */
import { unflatten } from 'devalue';
import { IpcError } from '../errors.js';
import type { DecodeLimits } from '../limits.js';
import { TEMPORAL_PREFIX, isSpecialValue, temporalClass } from './cost.js';
import {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  BODY_HEADER_BYTES,
  BODY_VERSION,
  KIND_ARRAY_BUFFER,
  KIND_DATA_VIEW,
  KIND_ELEMENT_BYTES,
  KIND_NAMES,
  REDUCER_BINARY,
  REDUCER_HANDLE,
  align8,
  getU32,
  malformed,
  tooLarge,
} from './format.js';
import type { DecodeHooks } from './format.js';
import { MAY_HAVE_PROTO, NOT_SCANNED, checkDevalueText, checkJsonBytes, checkJsonText, decodeText, hasProtoKey, scanFlat } from './scan.js';

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
  // The common case first: a JSON body (format 0, no binaries, no handles) whose header and
  // padding are what the encoder writes; anything else takes the general checks below.
  if (
    body instanceof Uint8Array &&
    handleCount === 0 &&
    body.length >= BODY_HEADER_BYTES &&
    body[0] === BODY_FORMAT_JSON &&
    body[1] === BODY_VERSION &&
    body[2] === 0 &&
    body[3] === 0 &&
    getU32(body, 8) === 0 &&
    getU32(body, 12) === 0
  ) {
    const textBytes = getU32(body, 4);
    const textEnd = BODY_HEADER_BYTES + textBytes;
    if (textBytes <= body.length - BODY_HEADER_BYTES && align8(textEnd) === body.length) {
      checkZero(body, textEnd, body.length);
      if (textBytes < 0x80) {
        // Every header byte is then below 0x80 and the padding is zeros: the whole body is valid
        // UTF-8 exactly when the text is, one character per byte outside the text, so decoding
        // it whole (no view of the text) and slicing gives the same text, or the same error.
        const whole = decodeText(body, 0, -1);
        return decodeJson(whole.slice(BODY_HEADER_BYTES, whole.length - (body.length - textEnd)), limits);
      }
      return decodeJsonBody(body, textEnd, limits);
    }
  }
  const header = readHeader(body);
  const { format, textStart, textBytes, binaryCount } = header;
  if (header.handleCount !== handleCount) {
    throw malformed(`the header announces ${header.handleCount} handles but ${handleCount} came with it`);
  }
  if (format === BODY_FORMAT_JSON_HANDLES) return decodeJsonHandles(body, textStart, textBytes, handleCount, hooks, limits);
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
  return decodeDevalue(body, text, starts, handleCount, hooks, limits, (index, length) => {
    const copy = new Uint8Array(length);
    copy.set(new Uint8Array(body.buffer, body.byteOffset + starts[index], length));
    return copy.buffer;
  });
}

/**
 * The text of a format-0 body checked as decodeMessage's common case checks it (its header and
 * padding), 128 bytes or more, decoded: valid UTF-8 first (the same error as the general path),
 * then the limits, on the bytes (see checkJsonBytes). Out of decodeMessage: a small message's
 * path does not take it.
 */
function decodeJsonBody(body: Uint8Array, textEnd: number, limits: DecodeLimits): unknown {
  const text = decodeText(body, BODY_HEADER_BYTES, textEnd - BODY_HEADER_BYTES);
  const scan = checkJsonBytes(body, BODY_HEADER_BYTES, textEnd, limits);
  if (scan === NOT_SCANNED) return decodeJson(text, limits);
  const value = parseChecked(text);
  if (scan === MAY_HAVE_PROTO && hasProtoKey(value)) throw malformed('an object has a __proto__ key');
  return value;
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

/** The JSON text's limits checked, then parsed: MALFORMED if it does not parse. */
function parseJsonText(text: string, limits: DecodeLimits): unknown {
  checkJsonText(text, limits);
  return parseChecked(text);
}

/** JSON.parse of text whose limits are checked: MALFORMED if it does not parse. */
function parseChecked(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw malformed('the JSON text does not parse', cause);
  }
}

function decodeJson(text: string, limits: DecodeLimits): unknown {
  const value = parseJsonText(text, limits);
  if ((text.includes('__proto__') || text.includes('\\u')) && hasProtoKey(value)) {
    throw malformed('an object has a __proto__ key');
  }
  return value;
}

/** Longest kind tag a format-3 body may carry (as the encoder's MAX_KIND_CHARS). */
const MAX_KIND_BYTES = 4096;

/**
 * Format 3 (see BODY_FORMAT_JSON_HANDLES): the JSON text (as format 0) holds each handle's
 * index where the handle is; the table before it (`textStart - 16` bytes) says where: the number
 * of positions, then each one's number of keys and its keys (an array index, or an object key's
 * rank in `Object.keys` order), then each handle's kind (a u32 length and printable ASCII), then
 * zero padding to the text. Each position must lead to a handle's index, at most once, every
 * handle at least once, at a depth maxDepth allows; MALFORMED or TOO_LARGE otherwise. Nothing
 * else is walked; hooks run after every check, once per handle, in index order.
 */
function decodeJsonHandles(
  body: Uint8Array,
  textStart: number,
  textBytes: number,
  handleCount: number,
  hooks: DecodeHooks | undefined,
  limits: DecodeLimits,
): unknown {
  if (handleCount === 0) throw malformed('a JSON body with handles names no handle');
  if (hooks === undefined) throw malformed('the body has handles but the receiver cannot take any');
  const textEnd = textStart + textBytes;
  if (align8(textEnd) !== body.length) throw malformed(`${body.length} bytes is not the length of a JSON body with handles`);
  checkZero(body, textEnd, body.length);
  let root = decodeJson(decodeText(body, textStart, textBytes), limits);

  const end = textStart;
  const maxDepth = limits.maxDepth;
  let p = BODY_HEADER_BYTES;
  if (end - p < 4) throw malformed('the handle table is empty');
  const count = getU32(body, p);
  p += 4;
  if (count < handleCount) throw malformed(`${count} handle positions for ${handleCount} handles: a handle is never referenced`);
  if (count > limits.maxElements) throw tooLarge(`${count} handle positions, more than maxElements ${limits.maxElements}`);
  if (count > (end - p) / 4) throw malformed(`${count} handle positions do not fit in the handle table`);
  if (count === 1) {
    // One handle at one place (the common case): no arrays.
    p = follow(body, p, end, 0, root, handleCount, maxDepth, false, undefined);
    const container = followed;
    const key = followedKey;
    followed = undefined;
    const kind = readKind(body, p, end, 0);
    checkTableEnd(body, p + 4 + kind.length, end);
    const revived = hooks.reviveHandle(kind, 0);
    if (container === undefined) return revived;
    container[key] = revived;
    return root;
  }
  // Where each position leads: (container, key, index) triples; container undefined: the root.
  const found: unknown[] = [];
  const referenced = new Uint8Array(handleCount);
  const keysCache = new Map<object, string[]>();
  let rootTaken = false;
  for (let i = 0; i < count; i++) {
    p = follow(body, p, end, i, root, handleCount, maxDepth, rootTaken, keysCache);
    const container = followed;
    // Taken: the same position again finds null there.
    if (container === undefined) rootTaken = true;
    else container[followedKey] = null;
    referenced[followedIndex] = 1;
    found.push(container, followedKey, followedIndex);
  }
  followed = undefined;
  const unused = referenced.indexOf(0);
  if (unused >= 0) throw malformed(`handle ${unused} is never referenced`);
  const kinds = new Array<string>(handleCount);
  for (let i = 0; i < handleCount; i++) {
    kinds[i] = readKind(body, p, end, i);
    p += 4 + kinds[i].length;
  }
  checkTableEnd(body, p, end);
  const values = new Array<unknown>(handleCount);
  for (let i = 0; i < handleCount; i++) values[i] = hooks.reviveHandle(kinds[i], i);
  for (let i = 0; i < found.length; i += 3) {
    const container = found[i] as Record<string | number, unknown> | undefined;
    const value = values[found[i + 2] as number];
    if (container === undefined) root = value;
    else container[found[i + 1] as string | number] = value;
  }
  return root;
}

/** Kind number `i` of a format-3 table, at `p`: a u32 length, then as many printable ASCII bytes. */
function readKind(body: Uint8Array, p: number, end: number, i: number): string {
  if (end - p < 4) throw malformed(`the kind of handle ${i} does not fit in the handle table`);
  const length = getU32(body, p);
  p += 4;
  if (length === 0 || length > MAX_KIND_BYTES || length > end - p) throw malformed(`the kind of handle ${i} is empty, too long or does not fit`);
  let kind = '';
  for (let j = 0; j < length; j++) {
    const c = body[p + j];
    if (c < 0x20 || c > 0x7e) throw malformed(`the kind of handle ${i} is not printable ASCII`);
    kind += String.fromCharCode(c);
  }
  return kind;
}

/** The table ends at `p`: zero padding up to `end` (less than 8 bytes of it). */
function checkTableEnd(body: Uint8Array, p: number, end: number): void {
  if (align8(p) !== end) throw malformed(`the handle table has ${end - p} bytes more than its entries`);
  checkZero(body, p, end);
}

/** Where {@link follow} arrived: the container (undefined: the root), the key in it, the index there. */
let followed: Record<string | number, unknown> | undefined;
let followedKey: string | number = '';
let followedIndex = 0;

/**
 * Follows position number `i`, at `p` in the table (its number of keys, then the keys, before
 * `end`), from `root`, through arrays by index and objects by key rank, to a handle index below
 * `handleCount`; returns where the table goes on, and leaves where it arrived in
 * {@link followed}, {@link followedKey}, {@link followedIndex}. MALFORMED when it leads anywhere
 * else or to the root already taken; TOO_LARGE when a handle there would be deeper than maxDepth.
 * `keysCache` (several positions) keeps each object's keys, so that a table cannot make the
 * same object's keys be listed again and again.
 */
function follow(
  body: Uint8Array,
  p: number,
  end: number,
  i: number,
  root: unknown,
  handleCount: number,
  maxDepth: number,
  rootTaken: boolean,
  keysCache: Map<object, string[]> | undefined,
): number {
  if (end - p < 4) throw malformed(`handle position ${i} does not fit in the handle table`);
  const count = getU32(body, p);
  p += 4;
  // A handle is an object: at level count + 1.
  if (count + 1 > maxDepth) throw tooLarge(`a handle deeper than maxDepth ${maxDepth}`);
  if (count > (end - p) / 4) throw malformed(`handle position ${i} does not fit in the handle table`);
  let container: Record<string | number, unknown> | undefined;
  let key: string | number = '';
  let at = root;
  for (let j = 0; j < count; j++, p += 4) {
    const k = getU32(body, p);
    if (typeof at !== 'object' || at === null) throw malformed(`handle position ${i} leads through a non-container`);
    if (Array.isArray(at)) {
      if (k >= at.length) throw malformed(`handle position ${i} has an array index out of range`);
      key = k;
    } else {
      let keys = keysCache?.get(at);
      if (keys === undefined) {
        keys = Object.keys(at);
        keysCache?.set(at, keys);
      }
      if (k >= keys.length) throw malformed(`handle position ${i} has a key rank out of range`);
      key = keys[k];
    }
    container = at as Record<string | number, unknown>;
    at = container[key];
  }
  if (typeof at !== 'number' || !Number.isInteger(at) || at < 0 || at >= handleCount || (container === undefined && rootTaken)) {
    throw malformed(`handle position ${i} is not at a handle index (or is repeated)`);
  }
  followed = container;
  followedKey = key;
  followedIndex = at;
  return p;
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
