/**
 * Finding the descriptor-backed objects (senders, receivers, file handles, shared memory) inside
 * a value, for the renderer bridge: such objects never reach a renderer, and those a refused
 * message carried are closed.
 */
import { isHandleSource, kHandle } from './handles.js';

/** Class names of the handle objects, recognised even when another copy of the library made them. */
const HANDLE_CLASS_NAMES = new Set([
  'IpcSender',
  'IpcReceiver',
  'IpcBytesSender',
  'IpcBytesReceiver',
  'IpcFileHandle',
  'IpcSharedMemory',
  'IpcOneShotServer',
]);

/**
 * Looks for a descriptor-backed object (sender, receiver, file handle, shared memory) anywhere
 * inside `value` (arrays, plain objects, Maps, Sets) and returns where it is, e.g.
 * `"value.files[2] (IpcFileHandle)"`, or undefined when there is none.
 */
export function findHandle(value: unknown): string | undefined {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): string | undefined => {
    if (typeof v !== 'object' || v === null) return undefined;
    if (seen.has(v)) return undefined;
    seen.add(v);
    const kind = handleKindOf(v);
    if (kind !== undefined) return `${path} (${kind})`;
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return undefined;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const hit = walk(v[i], `${path}[${i}]`);
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    if (v instanceof Map) {
      for (const [k, item] of v) {
        const hit = walk(k, `${path}.<key>`) ?? walk(item, `${path}.get(${JSON.stringify(String(k))})`);
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    if (v instanceof Set) {
      for (const item of v) {
        const hit = walk(item, `${path}.<item>`);
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    for (const key of Object.keys(v)) {
      const hit = walk((v as Record<string, unknown>)[key], `${path}.${key}`);
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
  return walk(value, 'value');
}

function handleKindOf(v: object): string | undefined {
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === 'string' && HANDLE_CLASS_NAMES.has(name)) return name;
  if (isHandleSource(v)) {
    try {
      return v[kHandle]().kind;
    } catch {
      return 'closed handle';
    }
  }
  return undefined;
}

/** Closes every descriptor-backed object inside `value` (what a refused message carried). */
export function closeHandles(value: unknown): void {
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (handleKindOf(v) !== undefined) {
      try {
        (v as { close?: () => void }).close?.();
      } catch {
        /* already closed */
      }
      return;
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return;
    const items = v instanceof Map ? [...v.keys(), ...v.values()] : v instanceof Set ? [...v] : Object.values(v);
    for (const item of items) walk(item);
  };
  walk(value);
}

/** Throws a TypeError naming the first handle in `value`: such objects never reach a renderer. */
export function assertNoHandles(value: unknown, where: string): void {
  const hit = findHandle(value);
  if (hit !== undefined) {
    throw new TypeError(
      `${where}: ${hit} cannot be sent to a renderer. Senders, receivers, file handles and shared memory stay in ` +
        `Node processes (the renderer has no descriptors); send plain data, or read the file/memory in main and send its bytes`,
    );
  }
}
