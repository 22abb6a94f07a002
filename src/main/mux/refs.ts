/**
 * Logical endpoints inside values (see mux.ts and docs/multiplexing.md): finding those of one
 * connection in a value before it is encoded, the copy that carries `null` in their slots, putting
 * received ones back, and closing what a discarded value holds.
 */
import { isHandleSource } from '../handles.js';

import { MuxEndpoint } from './endpoints.js';
import type { IpcMux } from './mux.js';
import { MAX_PATH, frameError } from './mux.js';

export type PathKey = string | number | [string | number];
export interface Ref {
  ep: MuxEndpoint;
  path: PathKey[];
}

/**
 * Finds the logical endpoints of `mux` in `value` (plain objects, arrays and Map values with
 * string or number keys). Anything else (class instances, other handles, endpoints of another
 * connection) is left to the codec: endpoints it meets there travel by upgrade (see kHandle).
 * `seen` (the containers already walked) may be undefined: it is made when the walk first goes
 * below `v`'s own items (a flat message, the usual one, makes none).
 */
export function findRefs(mux: IpcMux<unknown, unknown>, v: unknown, path: PathKey[], out: Ref[], seen?: Set<object>): void {
  if (typeof v !== 'object' || v === null || seen?.has(v) || path.length > MAX_PATH) return;
  if (v instanceof MuxEndpoint) {
    if (v.mux === mux) out.push({ ep: v, path: path.slice() });
    return;
  }
  seen?.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'object' && x !== null) seen = findIn(mux, v, x, i, path, out, seen);
    }
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      if ((typeof k === 'string' || typeof k === 'number') && typeof x === 'object' && x !== null) seen = findIn(mux, v, x, [k], path, out, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return;
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'object' && x !== null) seen = findIn(mux, v, x, k, path, out, seen);
    }
  }
}

/** One item `x` of container `v` at `key`: an endpoint is taken, a container walked (`seen` made on first need, returned). */
function findIn(mux: IpcMux<unknown, unknown>, v: object, x: object, key: PathKey, path: PathKey[], out: Ref[], seen: Set<object> | undefined): Set<object> | undefined {
  if (x instanceof MuxEndpoint) {
    if (x.mux === mux && path.length < MAX_PATH) {
      path.push(key);
      out.push({ ep: x, path: path.slice() });
      path.pop();
    }
    return seen;
  }
  seen ??= new Set([v]);
  path.push(key);
  findRefs(mux, x, path, out, seen);
  path.pop();
  return seen;
}

/** A copy of `v` with `null` in the slots the refs point at (containers on their paths copied). */
export function substitute(v: unknown, refs: Ref[]): unknown {
  const root = { v };
  // Paths of several refs may share containers, each copied once; one path never meets a container twice.
  const copies = refs.length > 1 ? new Map<object, object>() : undefined;
  const copyOf = (c: object): object => {
    let x = copies?.get(c);
    if (x !== undefined) return x;
    if (Array.isArray(c)) x = c.slice();
    else if (c instanceof Map) x = new Map(c);
    else x = Object.assign(Object.create(Object.getPrototypeOf(c)) as object, c);
    copies?.set(c, x);
    return x;
  };
  for (const { path } of refs) {
    let orig: unknown = root.v;
    let parent: { v: unknown } | Record<string | number, unknown> | Map<unknown, unknown> = root;
    let parentKey: PathKey = 'v';
    for (let i = 0; i <= path.length; i++) {
      const last = i === path.length;
      // Replace the current node in its (already copied) parent.
      const next = last ? null : copyOf(orig as object);
      if (Array.isArray(parentKey)) (parent as unknown as Map<unknown, unknown>).set(parentKey[0], next);
      else (parent as Record<string | number, unknown>)[parentKey] = next;
      if (last) break;
      const k = path[i]!;
      parent = next as Record<string, unknown>;
      parentKey = k;
      orig = Array.isArray(k) ? (orig as Map<unknown, unknown>).get(k[0]) : (orig as Record<string | number, unknown>)[k];
    }
  }
  return root.v;
}

/**
 * Reads a frame's reference path (an array of keys, or one string or number key) and puts `ep` at its slot of `value` (which must hold
 * null). Returns a function that puts something else at that slot later (revive checks every
 * slot with a placeholder before it makes any endpoint).
 */
export function place(root: { v: unknown }, wirePath: unknown, ep: object): (x: object) => void {
  // A path of one string or number key travels as the key itself (see wirePath in writer.ts).
  const path = typeof wirePath === 'string' || typeof wirePath === 'number' ? [wirePath] : wirePath;
  if (!Array.isArray(path) || path.length > MAX_PATH) throw frameError('a logical endpoint reference has a bad path');
  let node: unknown = root;
  let key: unknown = 'v';
  for (let i = 0; i <= path.length; i++) {
    const isMapKey = Array.isArray(key);
    const cur = isMapKey ? (node as Map<unknown, unknown>).get((key as unknown[])[0]) : (node as Record<string, unknown>)[key as string];
    if (i === path.length) {
      if (cur !== null) throw frameError('a logical endpoint reference points at a slot that does not hold null');
      const at = node;
      const k0 = key;
      const put = (x: object): void => {
        if (isMapKey) (at as Map<unknown, unknown>).set((k0 as unknown[])[0], x);
        else (at as Record<string, unknown>)[k0 as string] = x;
      };
      put(ep);
      return put;
    }
    const k = path[i];
    if (typeof cur !== 'object' || cur === null) throw frameError('a logical endpoint reference follows a path through a non-object');
    if (Array.isArray(k)) {
      if (!(cur instanceof Map) || k.length !== 1 || !cur.has(k[0])) throw frameError('a logical endpoint reference names a missing Map entry');
    } else if (typeof k === 'number') {
      if (!Array.isArray(cur) || !Number.isInteger(k) || k < 0 || k >= cur.length) throw frameError('a logical endpoint reference names a missing array item');
    } else if (typeof k === 'string') {
      const proto = Object.getPrototypeOf(cur);
      if (Array.isArray(cur) || (proto !== Object.prototype && proto !== null) || !Object.hasOwn(cur, k) || k === '__proto__') {
        throw frameError('a logical endpoint reference names a missing property');
      }
    } else throw frameError('a logical endpoint reference has a bad path key');
    node = cur;
    key = k;
  }
  throw frameError('a logical endpoint reference has a bad path');
}

/**
 * True when `value` holds a handle object or a logical endpoint (what closeValue would close).
 * Checked as a message is queued, so that dropping a long queue walks only the messages that
 * hold something to close (a flood of plain data costs nothing to drop).
 */
export function holdsHandles(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const seen = new Set<object>();
  const stack: object[] = [value];
  const push = (x: unknown): void => {
    if (typeof x === 'object' && x !== null && !seen.has(x)) stack.push(x);
  };
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v instanceof MuxEndpoint || isHandleSource(v)) return true;
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (v instanceof Map) for (const [k, x] of v) (push(k), push(x));
    else if (v instanceof Set) for (const x of v) push(x);
    else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) push(v[i]);
    else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) for (const k of Object.keys(v)) push((v as Record<string, unknown>)[k]);
  }
  return false;
}

/** Closes every handle object a discarded value holds (without upgrading logical endpoints). */
export function closeValue(value: unknown): void {
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof MuxEndpoint || isHandleSource(v)) {
      try {
        (v as { close(): void }).close();
      } catch {
        /* already closed */
      }
      continue;
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else if (Array.isArray(v)) for (const x of v) stack.push(x);
    else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
  }
}

