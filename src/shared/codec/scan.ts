/**
 * The decoder's checks of a body's text before anything is built: JSON depth and value counts,
 * and the validation of devalue's flat array ({@link scanFlat}).
 */
import type { DecodeLimits } from '../limits.js';
import {
  BIGINT_TEXT,
  HASH_WORK_BASE,
  HASH_WORK_PER_KEY,
  HOLE,
  ISO_DATE_TEXT,
  MAX_ARRAY_LEN,
  MAX_TEMPORAL_TEXT,
  NAN,
  NEGATIVE_INFINITY,
  NEGATIVE_ZERO,
  POSITIVE_INFINITY,
  QUERY_PAIR_ELEMENTS,
  SPARSE,
  TEMPORAL_ELEMENTS,
  TEMPORAL_PREFIX,
  UNDEFINED,
  URL_CHARS_PER_ELEMENT,
  URL_ELEMENTS,
  bigIntElements,
  bigIntHash,
  insertComparisons,
  isSpecialValue,
  numberHash,
  queryPairs,
  regExpElements,
  temporalClass,
} from './cost.js';
import { MAX_BIGINT_DIGITS, REDUCER_BINARY, REDUCER_HANDLE, malformed, tooLarge } from './format.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Strict UTF-8 decoding of the text (a JS loop with String.fromCharCode was slower, even short);
 * `length` -1 decodes the whole of `body` (no view made).
 */
export function decodeText(body: Uint8Array, start: number, length: number): string {
  const bytes = length < 0 ? body : body.subarray(start, start + length);
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

/** {@link checkJsonBytes}: the text may hold a `__proto__` key (a string `"__proto__"` or a `\u` escape). */
export const MAY_HAVE_PROTO = 1;
/** {@link checkJsonBytes}: the text is short enough not to be scanned (the caller looks for `__proto__` itself). */
export const NOT_SCANNED = 2;

/**
 * {@link checkJsonText} of the UTF-8 text at `start` to `end` of `body`, read as bytes (a typed
 * array's loads are cheaper than a string's `charCodeAt`), for text already known to be valid
 * UTF-8: every byte of a multi-byte character is at least 0x80, so quotes, backslashes, brackets
 * and commas are the same characters in the bytes as in the text. Returns NOT_SCANNED when the
 * text is too short to need the scan (as checkJsonText), else MAY_HAVE_PROTO when a string
 * begins `"__proto__"` or holds a `\u` escape (the only two ways to write a `__proto__` key in
 * JSON), else 0. Throws TOO_LARGE as checkJsonText does.
 */
export function checkJsonBytes(body: Uint8Array, start: number, end: number, limits: DecodeLimits): number {
  const n = end - start;
  if (n <= 2 * limits.maxDepth + 1 && (n + 1) / 2 <= limits.maxElements) return NOT_SCANNED;
  const maxDepth = limits.maxDepth;
  let depth = 0;
  let containers = 0;
  let empty = 0;
  let commas = 0;
  let proto = 0;
  for (let i = start; i < end; i++) {
    const c = body[i];
    if (c === 0x22) {
      if (body[i + 1] === 0x5f && isProtoString(body, i, end)) proto = MAY_HAVE_PROTO;
      for (i++; i < end; i++) {
        const d = body[i];
        if (d === 0x22) break;
        if (d === 0x5c) {
          i++;
          if (body[i] === 0x75) proto = MAY_HAVE_PROTO;
        }
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw tooLarge(`nesting deeper than maxDepth ${maxDepth}`);
      containers++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      const p = body[i - 1];
      if (p === 0x5b || p === 0x7b) empty++;
    } else if (c === 0x2c) {
      commas++;
    }
  }
  const values = commas + containers - empty + 1;
  if (values > limits.maxElements) {
    throw tooLarge(`${values} values, more than maxElements ${limits.maxElements}`);
  }
  return proto;
}

/** `"__proto__"`, quotes included, in bytes. */
const PROTO_STRING = [0x22, 0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f, 0x22];

/** True when the string starting at `i` of `body` (its opening quote) is `"__proto__"`. */
function isProtoString(body: Uint8Array, i: number, end: number): boolean {
  if (end - i < PROTO_STRING.length) return false;
  for (let j = 2; j < PROTO_STRING.length; j++) if (body[i + j] !== PROTO_STRING[j]) return false;
  return true;
}

/** Checks the nesting depth and value count of a JSON body's text (format 0 or 3) before JSON.parse. */
export function checkJsonText(text: string, limits: DecodeLimits): void {
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
export function checkDevalueText(text: string, limits: DecodeLimits, handleCount: number, binaryCount: number): void {
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
export function hasProtoKey(root: unknown): boolean {
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
export function scanFlat(
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
