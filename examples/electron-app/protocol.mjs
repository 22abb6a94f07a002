/**
 * Messages between the renderer and main, checked in main with a Standard Schema (written by
 * hand here so the example has no dependency; zod, valibot or arktype schemas work the same).
 *
 * Renderer -> main:  { op: 'open', path?: string } | { op: 'crash' } | { op: 'pids' }
 * Main -> renderer:  events, see Inspector in inspector.mjs
 */

/** A Standard Schema from a function that returns the value or an issue. */
function standardSchema(vendor, check) {
  return {
    '~standard': {
      version: 1,
      vendor,
      validate(value) {
        const r = check(value);
        return r.issue ? { issues: [r.issue] } : { value: r.value };
      },
    },
  };
}

const MAX_PATH = 4096;

export const Request = standardSchema('file-inspector', (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { issue: { message: 'expected an object' } };
  switch (v.op) {
    case 'open':
      if (v.path === undefined) return { value: { op: 'open' } };
      if (typeof v.path !== 'string' || v.path.length === 0 || v.path.length > MAX_PATH || v.path.includes('\0')) {
        return { issue: { message: `expected a path of 1 to ${MAX_PATH} characters`, path: ['path'] } };
      }
      return { value: { op: 'open', path: v.path } };
    case 'crash':
    case 'pids':
      return { value: { op: v.op } };
    default:
      return { issue: { message: "expected 'open', 'crash' or 'pids'", path: ['op'] } };
  }
});
