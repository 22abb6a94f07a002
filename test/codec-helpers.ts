// What the codec test files share: handle objects the encoder's handleKind hook recognises (the
// library's own hooks recognise senders, receivers, files and shared memory), the check that
// a call throws one IpcError, and an encode + decode round trip that reports the body's format.
import { expect } from 'vitest';
import { BODY_FORMAT_JSON_HANDLES, DEFAULT_LIMITS, IpcError, decodeMessage, encodeMessage, joinParts } from '../src/shared/index.js';
import type { DecodeHooks, DecodeLimits, EncodeHooks } from '../src/shared/index.js';

export class Handle {
  constructor(readonly kind: string) {}
}

/** Encode hooks that make every {@link Handle} a handle of its kind. */
export const handleHooks: EncodeHooks = { handleKind: (v) => (v instanceof Handle ? v.kind : undefined) };

/** Decode hooks that revive handle `index` of `kind` as `{ revived: kind, index }`. */
export const reviveHooks: DecodeHooks = { reviveHandle: (kind, index) => ({ revived: kind, index }) };

/** Encodes `value` (with `hooks`), decodes the joined body with {@link reviveHooks}; the body's format and the value. */
export function roundTrip(value: unknown, hooks?: EncodeHooks, limits: DecodeLimits = DEFAULT_LIMITS): { format: number; value: unknown } {
  const encoded = encodeMessage(value, hooks);
  const body = joinParts(encoded);
  return { format: body[0]!, value: decodeMessage(body, encoded.handles.length, reviveHooks, limits) };
}

/** Expects `f()` to throw an IpcError with `code` (and a message matching `message`); returns it. */
export function expectIpcError(f: () => unknown, code: string, message?: RegExp): IpcError {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(IpcError);
  expect((error as IpcError).code).toBe(code);
  if (message) expect((error as IpcError).message).toMatch(message);
  return error as IpcError;
}

/**
 * A format-3 body as a peer could write it: the table (the number of positions, or `count`;
 * each position's number of keys and its keys; each kind as a u32 length and its bytes; `extra`
 * bytes; zero padding), then the JSON text and its padding.
 */
export function format3(
  json: string,
  positions: number[][],
  kinds: string[],
  handleCount = kinds.length,
  options: { count?: number; extra?: number[]; kindLengths?: number[] } = {},
): Uint8Array {
  const table: number[] = [];
  const u32 = (n: number): void => {
    table.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  };
  u32(options.count ?? positions.length);
  for (const p of positions) {
    u32(p.length);
    for (const k of p) u32(k);
  }
  kinds.forEach((kind, i) => {
    u32(options.kindLengths?.[i] ?? kind.length);
    for (let j = 0; j < kind.length; j++) table.push(kind.charCodeAt(j));
  });
  table.push(...(options.extra ?? []));
  while (table.length % 8) table.push(0);
  const t = new TextEncoder().encode(json);
  const body = new Uint8Array(16 + table.length + ((t.length + 7) & ~7));
  body[0] = BODY_FORMAT_JSON_HANDLES;
  body[1] = 1;
  const v = new DataView(body.buffer);
  v.setUint32(4, t.length, true);
  v.setUint32(8, table.length / 8, true);
  v.setUint32(12, handleCount, true);
  body.set(table, 16);
  body.set(t, 16 + table.length);
  return body;
}
