/**
 * Decoding a received record into a value: reviving the handles it carries (kind tags with
 * switch secrets), closing the ones a schema dropped, and a record's bytes as parts (to send it
 * on when its receiver moves).
 */
import { decodeMessage as decodeMessageExport, peekHandleCount } from '../../shared/codec.js';
import type { DecodeHooks } from '../../shared/codec.js';
import { IpcError } from '../../shared/errors.js';
import type { Limits } from '../../shared/limits.js';
import { fdList, malformed } from '../framing.js';
import type { WireRecord } from '../framing.js';
import { handleKind, handleKindsVersion, isHandleSource } from '../handles.js';
import type { ReviveContext } from '../handles.js';
import { fdInfo, fdInfoPacked } from '../native.js';
import { closeFds } from './thread-state.js';

/**
 * Read once. In the CommonJS bundle every import from src/shared is a getter on that module's
 * exports, itself forwarding to another getter: read per message it cost two calls and a
 * megamorphic lookup on each decode (perf of bench/cpu-rtt.mjs).
 */
const decodeMessage = decodeMessageExport;

/** No switch secrets. */
const NO_SECRETS: readonly string[] = Object.freeze([]);


/** Revives no handle: a message without descriptors that names one is malformed. */
const noHandleHooks = {
  reviveHandle(): never {
    throw malformed('a handle reference in a message that carried no descriptors');
  },
};

/** The bare kind of the last tag tagEntry() looked up (for error messages; no object per lookup). */
let tagKind = '';
/**
 * The last tag without secrets that tagEntry() found, its entry, and handleKindsVersion then: a
 * stream of messages carries the same kind again and again ('F' for files), and looking it up
 * (the tag scanned for secrets, hashed, the registry's Map probed) cost ~260 instructions each.
 */
let lastTag = '';
let lastEntry: NonNullable<ReturnType<typeof handleKind>> | undefined;
let lastVersion = -1;

/**
 * The registered kind of a handle tag (`kind`, or `kind.secret...` for receivers, whose secrets
 * go to ctx.secrets), or MALFORMED for a kind this process does not know.
 */
function tagEntry(tag: string, ctx: { secrets: readonly string[] }): NonNullable<ReturnType<typeof handleKind>> {
  if (tag === lastTag && lastVersion === handleKindsVersion) {
    tagKind = tag;
    ctx.secrets = NO_SECRETS;
    return lastEntry!;
  }
  let kind = tag;
  let secrets = NO_SECRETS;
  if (tag.indexOf('.') >= 0) ({ kind, secrets } = parseKindTag(tag));
  const entry = handleKind(kind);
  if (!entry) throw malformed(`unknown handle kind ${JSON.stringify(tag.slice(0, 40))}`);
  tagKind = kind;
  ctx.secrets = secrets;
  if (secrets === NO_SECRETS) {
    lastTag = tag;
    lastEntry = entry;
    lastVersion = handleKindsVersion;
  }
  return entry;
}

/**
 * The hooks of one record's decoding with descriptors: revives handle #i from `rec.fds[i]`,
 * once each (a class, so that no closure is made per message).
 */
class RecordReviver implements DecodeHooks {
  /**
   * Descriptors taken by a handle object (which owns it from then on): index -> true; made at
   * the first revival of a record of several (one descriptor: usedCount says it all).
   */
  used: boolean[] | undefined;
  usedCount = 0;
  readonly ctx: ReviveContext;
  constructor(
    readonly fds: number[],
    limits: Limits,
    readonly revived: Array<{ close(): void }>,
  ) {
    this.ctx = { limits, sharedBytes: 0, secrets: NO_SECRETS };
  }

  reviveHandle(tag: string, index: number): unknown {
    const ctx = this.ctx;
    const entry = tagEntry(tag, ctx);
    const kind = tagKind;
    const fds = this.fds;
    const one = fds.length === 1;
    if (!(index >= 0 && index < fds.length) || (one ? this.usedCount !== 0 : this.used?.[index] === true)) {
      throw malformed(`a bad or repeated handle reference #${index}`);
    }
    const fd = fds[index]!;
    const info = fdInfo(fd);
    const problem = entry.check(info, ctx, fd);
    if (problem) throw malformed(`handle #${index} (${kind}) ${problem}`);
    if (!one) (this.used ??= [])[index] = true;
    this.usedCount++;
    const obj = entry.revive(fd, info, ctx) as { close(): void };
    this.revived.push(obj);
    return obj;
  }

  /** Closes the descriptors no handle object took. */
  closeUnused(): void {
    const fds = this.fds;
    if (this.usedCount === fds.length) return;
    if (this.usedCount === 0) {
      closeFds(fds);
      return;
    }
    const unused: number[] = [];
    for (let i = 0; i < fds.length; i++) if (this.used?.[i] !== true) unused.push(fds[i]!);
    closeFds(unused);
  }
}

/**
 * The hooks of one record's decoding with exactly one descriptor: no arrays, no list of what was
 * revived unless the caller asked for one (a schema's). One per thread, reused (a record decoded
 * while it is busy, which no reviver does today, gets its own).
 */
class OneReviver implements DecodeHooks {
  fd = -1;
  /** The descriptor was taken by a reviver (which owns it from then on, also when it threw). */
  taken = false;
  /** The handle object made, closed if the rest of the message fails. */
  obj: { close(): void } | undefined = undefined;
  busy = false;
  readonly ctx: { limits: Limits; sharedBytes: number; secrets: readonly string[] } = { limits: undefined as unknown as Limits, sharedBytes: 0, secrets: NO_SECRETS };

  reviveHandle(tag: string, index: number): unknown {
    const ctx = this.ctx;
    const entry = tagEntry(tag, ctx);
    const kind = tagKind;
    if (index !== 0 || this.taken) throw malformed(`a bad or repeated handle reference #${index}`);
    const fd = this.fd;
    const packed = entry.packed === undefined ? undefined : fdInfoPacked(fd);
    let obj: { close(): void };
    if (packed !== undefined) {
      // A kind checked on fdInfo's packed flags alone (file handles): no FdInfo object.
      const problem = entry.packed!.check(packed);
      if (problem) throw malformed(`handle #0 (${kind}) ${problem}`);
      this.taken = true;
      obj = entry.packed!.revive(fd) as { close(): void };
    } else {
      const info = fdInfo(fd);
      const problem = entry.check(info, ctx, fd);
      if (problem) throw malformed(`handle #0 (${kind}) ${problem}`);
      this.taken = true;
      obj = entry.revive(fd, info, ctx) as { close(): void };
    }
    this.obj = obj;
    return obj;
  }
}
let oneReviver: OneReviver | undefined;

/** decodeRecord of a record with one descriptor, `fd`, whose header says one. */
function decodeOne<T>(rec: WireRecord, fd: number, limits: Limits, revived: Array<{ close(): void }> | undefined): T {
  let r = (oneReviver ??= new OneReviver());
  if (r.busy) r = new OneReviver();
  r.busy = true;
  r.fd = fd;
  r.taken = false;
  r.obj = undefined;
  const ctx = r.ctx;
  ctx.limits = limits;
  ctx.sharedBytes = 0;
  ctx.secrets = NO_SECRETS;
  try {
    const value = decodeMessage(rec.body, 1, r, limits, rec.sections) as T;
    if (!r.taken) closeFds(fd);
    else if (revived !== undefined && r.obj !== undefined) revived.push(r.obj);
    return value;
  } catch (e) {
    (r.obj as { close(): void } | undefined)?.close();
    if (!r.taken) closeFds(fd);
    throw e instanceof IpcError ? e : malformed((e as Error).message ?? String(e));
  } finally {
    r.busy = false;
    r.obj = undefined;
    ctx.limits = undefined as unknown as Limits;
  }
}

/** Decodes a record; the handle objects it creates are also pushed to `revived` when given. */
export function decodeRecord<T>(rec: WireRecord, limits: Limits, revived?: Array<{ close(): void }>): T {
  const body = rec.body;
  const recFds = rec.fds;
  if (typeof recFds === 'number') {
    // One descriptor (the record's number form), and the header says 1 (decodeMessage checks the rest of it).
    if (body.length >= 16 && body[12] === 1 && (body[13]! | body[14]! | body[15]!) === 0) return decodeOne<T>(rec, recFds, limits, revived);
  } else if (recFds.length === 0) {
    // Most messages carry no descriptor: their header (checked whole by decodeMessage) says 0.
    if (body.length >= 16 && (body[12]! | body[13]! | body[14]! | body[15]!) === 0) return decodeMessage(body, 0, noHandleHooks, limits, rec.sections) as T;
  } else if (recFds.length === 1 && body.length >= 16 && body[12] === 1 && (body[13]! | body[14]! | body[15]!) === 0) {
    // One descriptor in an array (a record built by hand): the same path.
    return decodeOne<T>(rec, recFds[0]!, limits, revived);
  }
  const fds = fdList(recFds);
  let expected: number;
  try {
    expected = peekHandleCount(rec.body);
  } catch (e) {
    closeFds(fds);
    throw e;
  }
  if (expected !== fds.length) {
    closeFds(fds);
    throw malformed(`the message names ${expected} descriptors but ${fds.length} arrived with it`);
  }
  if (fds.length === 0) return decodeMessage(rec.body, 0, noHandleHooks, limits, rec.sections) as T;
  const all = revived ?? [];
  const reviver = new RecordReviver(fds, limits, all);
  try {
    const value = decodeMessage(rec.body, fds.length, reviver, limits, rec.sections) as T;
    reviver.closeUnused();
    return value;
  } catch (e) {
    for (const o of all) o.close();
    reviver.closeUnused();
    throw e instanceof IpcError ? e : malformed((e as Error).message ?? String(e));
  }
}

/** Most switch secrets one receiver's kind tag may carry (a receiver moved this often in a row). */
const MAX_SECRETS = 64;
const SECRET_RE = /^[0-9a-f]{32}$/;

/** Splits a kind tag `R.<secret>.<secret>` into its kind and secrets (only receivers have any). */
export function parseKindTag(tag: string): { kind: string; secrets: readonly string[] } {
  const dot = tag.indexOf('.');
  if (dot < 0) return { kind: tag, secrets: NO_SECRETS };
  const kind = tag.slice(0, dot);
  if (kind !== 'R' && kind !== 'BR') throw malformed(`handle kind ${JSON.stringify(tag.slice(0, 40))} carries secrets, which only receivers have`);
  if (tag.length > dot + 1 + MAX_SECRETS * 33) throw malformed(`a receiver's kind tag carries more than ${MAX_SECRETS} switch secrets`);
  const secrets = tag.slice(dot + 1).split('.');
  for (const x of secrets) if (!SECRET_RE.test(x)) throw malformed(`a receiver's kind tag carries a malformed switch secret`);
  return { kind, secrets };
}

/**
 * Closes the handles a message brought that the validated value no longer holds (a schema that
 * strips unknown keys drops them): the application never sees them, so nobody else would close
 * them. Walks the value once (objects, arrays, Maps, Sets; own enumerable properties, each read
 * once), stopping as soon as every handle is found.
 */
export function closeUnreachable<V>(revived: Array<{ close(): void }>, value: V): V {
  if (revived.length === 0) return value;
  const missing = new Set<object>(revived);
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0 && missing.size > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (missing.delete(v) || isHandleSource(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (v instanceof Map) {
      for (const [k, x] of v) stack.push(k, x);
    } else if (v instanceof Set) {
      for (const x of v) stack.push(x);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else {
      for (const k of Object.keys(v)) {
        const d = Object.getOwnPropertyDescriptor(v, k);
        if (d && 'value' in d) stack.push(d.value);
      }
    }
  }
  for (const h of missing) (h as { close(): void }).close();
  return value;
}

const ZERO_PAD = new Uint8Array(8);

/** The body of a record as parts (a split record's head, sections and their padding). */
export function recordParts(rec: WireRecord): Uint8Array[] {
  if (!rec.sections) return [rec.body];
  const parts = [rec.body];
  for (const sec of rec.sections) {
    parts.push(sec);
    if (sec.byteLength % 8) parts.push(ZERO_PAD.subarray(0, 8 - (sec.byteLength % 8)));
  }
  return parts;
}
