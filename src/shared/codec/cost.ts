/**
 * What a devalue entry costs to build, and the hash-table work of Map and Set keys: the numbers
 * the decoder's scan counts against maxElements (docs/wire-format.md, "What maxElements counts").
 */

/** devalue's special reference for `undefined`. */
export const UNDEFINED = -1;
/** devalue's special reference for an array hole. */
export const HOLE = -2;
/** devalue's special reference for NaN. */
export const NAN = -3;
/** devalue's special reference for Infinity. */
export const POSITIVE_INFINITY = -4;
/** devalue's special reference for -Infinity. */
export const NEGATIVE_INFINITY = -5;
/** devalue's special reference for -0. */
export const NEGATIVE_ZERO = -6;
/** devalue's marker of a sparse array entry. */
export const SPARSE = -7;
/** Longest array length JavaScript allows. */
export const MAX_ARRAY_LEN = 2 ** 32 - 1;

/** True for the special references that stand for a value (not HOLE or SPARSE). */
export function isSpecialValue(ref: number): boolean {
  return ref === UNDEFINED || ref === NAN || ref === POSITIVE_INFINITY || ref === NEGATIVE_INFINITY || ref === NEGATIVE_ZERO;
}

/** The text devalue writes for a BigInt. */
export const BIGINT_TEXT = /^-?[0-9]+$/;
/** What `Date.prototype.toISOString` writes (devalue sends an invalid Date as ''). */
export const ISO_DATE_TEXT = /^(?:[0-9]{4}|[+-][0-9]{6})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
/** The prefix of devalue's type names for Temporal values. */
export const TEMPORAL_PREFIX = 'Temporal.';
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
export const MAX_TEMPORAL_TEXT = 256;

/** The Temporal class devalue would revive `Temporal.<name>` with, if this runtime has it. */
export function temporalClass(name: string): { from(text: string): unknown } | undefined {
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
export const URL_ELEMENTS = 4;
/** Text characters per element of a URL or URLSearchParams (up to 120 ns each: IDNA hosts, '+'). */
export const URL_CHARS_PER_ELEMENT = 4;
/** Elements per name=value pair of a URLSearchParams (a URL's too: `url.searchParams` builds them). */
export const QUERY_PAIR_ELEMENTS = 2;
/** A Temporal value: its parse. */
export const TEMPORAL_ELEMENTS = 16;

/** The elements a RegExp counts (see above), from its source and flags, without parsing it. */
export function regExpElements(source: string, flags: string): number {
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
export function queryPairs(text: string, limit: number): number {
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
export function bigIntElements(digits: number): number {
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
export const HASH_WORK_BASE = 1 << 20;
/** Comparisons allowed per Map or Set key, on top of HASH_WORK_BASE. */
export const HASH_WORK_PER_KEY = 8;

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
export function numberHash(x: number): number {
  if (x !== x) return 0x3fffffff; // NaN: Smi::kMaxValue (all ones in any bucket mask)
  if ((x | 0) === x) return unseededHash(x | 0); // int32, and -0 (hashed as 0)
  f64[0] = x;
  return longHash(f64Words[1], f64Words[0]); // little-endian: the words are lo, hi
}

/** V8's hash of a BigInt written in decimal: ComputeLongHash of |n| mod 2^64 (0 for zero). */
export function bigIntHash(text: string): number {
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
export function insertComparisons(hashes: Int32Array, count: number, counts: Int32Array): number {
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
