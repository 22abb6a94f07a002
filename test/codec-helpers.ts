// What the codec test files share: handle objects the encoder's handleKind hook recognises (the
// library's own hooks recognise senders, receivers, files and shared memory), and the check that
// a call throws one IpcError.
import { expect } from 'vitest';
import { IpcError } from '../src/shared/index.js';
import type { EncodeHooks } from '../src/shared/index.js';

export class Handle {
  constructor(readonly kind: string) {}
}

/** Encode hooks that make every {@link Handle} a handle of its kind. */
export const handleHooks: EncodeHooks = { handleKind: (v) => (v instanceof Handle ? v.kind : undefined) };

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
