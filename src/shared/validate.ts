/**
 * Runtime validation of incoming messages against a Standard Schema (zod, valibot, arktype...).
 * Imports neither Node nor Electron: it runs in main, helpers and the preload bundle.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { IpcError } from './errors.js';

export type { StandardSchemaV1 };

/** The largest number of issues spelled out in an error message; all of them are in `issues`. */
const MAX_ISSUES_IN_MESSAGE = 5;

/**
 * Checks `value` against `schema` and returns the schema's output (which may be a transformed
 * copy). Returns a Promise only when the schema validates asynchronously.
 *
 * Throws `IpcError('INVALID')` whose message lists the first issues with their paths and whose
 * `issues` holds every issue the schema reported. A schema that throws is reported the same way,
 * with the thrown value as `cause`. A `schema` that is not a Standard Schema is a `TypeError`.
 */
export function validate<T>(schema: StandardSchemaV1<unknown, T>, value: unknown): T | Promise<T> {
  assertStandardSchema(schema);
  let result: StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>>;
  try {
    result = schema['~standard'].validate(value);
  } catch (cause) {
    throw schemaThrew(schema, cause);
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (r) => unwrap(schema, r),
      (cause: unknown) => {
        throw schemaThrew(schema, cause);
      },
    );
  }
  return unwrap(schema, result);
}

/** True when `schema` has a `~standard` property with a `validate` function (version 1). */
export function isStandardSchema(schema: unknown): schema is StandardSchemaV1 {
  if ((typeof schema !== 'object' && typeof schema !== 'function') || schema === null) return false;
  const props = (schema as { '~standard'?: unknown })['~standard'];
  return (
    typeof props === 'object' &&
    props !== null &&
    (props as { version?: unknown }).version === 1 &&
    typeof (props as { validate?: unknown }).validate === 'function'
  );
}

/** Throws a `TypeError` unless `schema` is a Standard Schema; `what` names the option in the message. */
export function assertStandardSchema(schema: unknown, what = 'schema'): asserts schema is StandardSchemaV1 {
  if (!isStandardSchema(schema)) {
    throw new TypeError(
      `${what} must be a Standard Schema (an object with a "~standard" property of version 1, such as a zod 4, valibot or arktype schema)`,
    );
  }
}

/** One line per issue: `path.to.field: message` (or just the message at the root). */
export function formatIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  const shown = issues.slice(0, MAX_ISSUES_IN_MESSAGE).map((issue) => {
    const path = formatPath(issue.path);
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  if (issues.length > MAX_ISSUES_IN_MESSAGE) shown.push(`(${issues.length - MAX_ISSUES_IN_MESSAGE} more)`);
  return shown.join('; ');
}

function formatPath(path: StandardSchemaV1.Issue['path']): string {
  if (path === undefined || path.length === 0) return '';
  let out = '';
  for (const segment of path) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'symbol') out += `[${key.toString()}]`;
    else out += out === '' ? key : `.${key}`;
  }
  return out;
}

function unwrap<T>(schema: StandardSchemaV1<unknown, T>, result: StandardSchemaV1.Result<T>): T {
  if (result.issues) {
    const vendor = schema['~standard'].vendor;
    throw new IpcError('INVALID', `message failed ${vendor} schema validation: ${formatIssues(result.issues)}`, {
      issues: result.issues,
    });
  }
  return result.value;
}

function schemaThrew(schema: StandardSchemaV1, cause: unknown): IpcError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new IpcError('INVALID', `${schema['~standard'].vendor} schema threw while validating a message: ${reason}`, {
    cause,
    issues: [{ message: reason }],
  });
}

function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
