/**
 * The frames the mux writes itself, read straight from a record's body bytes (docs/multiplexing.md,
 * "Sixth round"): a format-0 body (the codec's JSON body, see writer.ts) whose text is an array
 * of integers, `null`, `true`, `false`, short printable-ASCII strings without escapes, and
 * objects of those (no nesting deeper). That is every reply `[id, primitive]`, the usual request
 * `[id, { op, reply: null }, 's', id, 'reply']` and every control frame `[0, op, id, n, ...]`.
 *
 * {@link parseFrame} accepts a strict subset of what the codec's general decode accepts and
 * returns the same value for it (test/mux-raw-frames.test.ts compares the two on hostile bodies):
 * anything else (another shape, a float, an escape, a byte out of place, a header, length or
 * padding the codec would refuse, a limit reached) is `undefined`, never an error, and the
 * record takes the general decode, which reports what is wrong with it as before. The frame it
 * returns is then checked by onFrame as any decoded frame.
 */
import { BODY_FORMAT_JSON, BODY_HEADER_BYTES, BODY_VERSION } from '../../shared/codec.js';
import type { DecodeLimits } from '../../shared/limits.js';

// Read once: in the bundles an imported binding of another entry is read through a getter.
const FORMAT = BODY_FORMAT_JSON;
const VERSION = BODY_VERSION;
const HEADER = BODY_HEADER_BYTES;

/** Most digits of an integer read here (below 2 ** 53: the value is exact); longer ones take the general decode. */
const MAX_DIGITS = 15;
/** Longest string read here; longer ones take the general decode. */
const MAX_STRING = 64;

/** What a step returns for a body it does not read (the general decode takes it). */
const FAIL: object = Object.freeze(Object.create(null) as object);

/** The read position in the body (the parser does not nest calls of itself). */
let pos = 0;
/** Values read (the root, every array item, every object property): checked against maxElements. */
let count = 0;

/**
 * The frame `body` holds, when it is one the mux reads itself (see the module comment); else
 * undefined, with nothing changed.
 */
export function parseFrame(body: Uint8Array, limits: DecodeLimits): unknown[] | undefined {
  const n = body.length;
  if (n < HEADER + 8 || body[0] !== FORMAT || body[1] !== VERSION || (body[2]! | body[3]!) !== 0) return undefined;
  if ((body[8]! | body[9]! | body[10]! | body[11]! | body[12]! | body[13]! | body[14]! | body[15]!) !== 0) return undefined;
  const textBytes = (body[4]! | (body[5]! << 8) | (body[6]! << 16) | (body[7]! << 24)) >>> 0;
  if (textBytes > n - HEADER) return undefined;
  const end = HEADER + textBytes;
  if (((end + 7) & ~7) !== n) return undefined;
  for (let i = end; i < n; i++) if (body[i] !== 0) return undefined;
  if (textBytes < 2 || body[HEADER] !== 0x5b || body[end - 1] !== 0x5d) return undefined;
  // A frame whose value nests (not one of the mux's own) mostly ends with it: `]]`, or `}]`
  // after a `}` or `]`. Given up at once, before its objects and strings are made for nothing
  // (looking for an inner bracket in the whole text cost a frame the mux reads 10-25 %).
  const last = body[end - 2];
  if (last === 0x5d || (last === 0x7d && (body[end - 3] === 0x7d || body[end - 3] === 0x5d))) return undefined;
  pos = HEADER + 1;
  count = 1;
  let depth = 1;
  const frame: unknown[] = [];
  if (body[pos] === 0x5d) return undefined; // [] is no frame: the general path says so
  for (;;) {
    let v: unknown;
    if (body[pos] === 0x7b) {
      v = object(body, end);
      depth = 2;
    } else v = primitive(body, end);
    if (v === FAIL) return undefined;
    frame.push(v);
    count++;
    const c = body[pos++];
    if (c === 0x2c) continue;
    if (c !== 0x5d || pos !== end) return undefined;
    break;
  }
  if (count > limits.maxElements || depth > limits.maxDepth) return undefined;
  return frame;
}

/** An object of primitives at `pos` (`{` there), or FAIL. */
function object(body: Uint8Array, end: number): unknown {
  pos++;
  const o: Record<string, unknown> = {};
  if (body[pos] === 0x7d) {
    pos++;
    return o;
  }
  for (;;) {
    if (body[pos] !== 0x22) return FAIL;
    const k = string(body, end);
    // A __proto__ key is the codec's to refuse (JSON.parse would make it an own property).
    if (k === FAIL || k === '__proto__' || body[pos++] !== 0x3a) return FAIL;
    const v = primitive(body, end);
    if (v === FAIL) return FAIL;
    o[k as string] = v;
    count++;
    const c = body[pos++];
    if (c === 0x2c) continue;
    return c === 0x7d ? o : FAIL;
  }
}

/** An integer, null, true, false or a string at `pos`, or FAIL. */
function primitive(body: Uint8Array, end: number): unknown {
  const c = body[pos];
  if (c === 0x22) return string(body, end);
  if (c === 0x2d || (c! >= 0x30 && c! <= 0x39)) return integer(body, end);
  if (c === 0x6e) return word(body, end, 0x6e, 0x75, 0x6c, 0x6c) ? null : FAIL; // null
  if (c === 0x74) return word(body, end, 0x74, 0x72, 0x75, 0x65) ? true : FAIL; // true
  if (c === 0x66) return word(body, end, 0x66, 0x61, 0x6c, 0x73) && body[pos++] === 0x65 ? false : FAIL; // false
  return FAIL;
}

/** True (and `pos` past them) when the four bytes at `pos` are a, b, c, d (inside the text). */
function word(body: Uint8Array, end: number, a: number, b: number, c: number, d: number): boolean {
  const p = pos;
  if (p + 4 >= end || body[p] !== a || body[p + 1] !== b || body[p + 2] !== c || body[p + 3] !== d) return false;
  pos = p + 4;
  return true;
}

/** An integer of at most MAX_DIGITS digits at `pos` (JSON's form: no leading zero, no fraction or exponent), or FAIL. */
function integer(body: Uint8Array, end: number): unknown {
  let p = pos;
  const neg = body[p] === 0x2d;
  if (neg) p++;
  let c = body[p]!;
  if (c < 0x30 || c > 0x39) return FAIL;
  let v = c - 0x30;
  const first = p++;
  if (v !== 0) {
    for (; p < end; p++) {
      c = body[p]!;
      if (c < 0x30 || c > 0x39) break;
      if (p - first === MAX_DIGITS) return FAIL;
      v = v * 10 + (c - 0x30);
    }
  }
  // What follows must end the value (a comma or a bracket): a digit after a leading zero, a
  // fraction or an exponent is the general decode's (checked by the caller's next byte).
  c = body[p]!;
  if (c !== 0x2c && c !== 0x5d && c !== 0x7d) return FAIL;
  pos = p;
  return neg ? -v : v;
}

/** Strings read lately, by a hash of their length and ends (keys and kinds repeat: no new string each time). */
const recent: string[] = new Array<string>(64).fill('');
const latin1 = new TextDecoder('latin1');

/** A string of printable ASCII without a quote or backslash, at most MAX_STRING bytes, at `pos` (its quote), or FAIL. */
function string(body: Uint8Array, end: number): unknown {
  const start = pos + 1;
  let p = start;
  const stop = Math.min(end, start + MAX_STRING + 1);
  for (; p < stop; p++) {
    const c = body[p]!;
    if (c === 0x22) break;
    if (c < 0x20 || c > 0x7e || c === 0x5c) return FAIL;
  }
  if (p >= stop) return FAIL;
  pos = p + 1;
  const len = p - start;
  if (len === 0) return '';
  const h = (len * 7 + body[start]! * 3 + body[p - 1]!) & 63;
  const s = recent[h]!;
  if (s.length === len) {
    let i = 0;
    while (i < len && s.charCodeAt(i) === body[start + i]) i++;
    if (i === len) return s;
  }
  let t: string;
  if (len <= 12) {
    t = '';
    for (let i = start; i < p; i++) t += String.fromCharCode(body[i]!);
  } else t = latin1.decode(body.subarray(start, p));
  recent[h] = t;
  return t;
}
