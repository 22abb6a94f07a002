import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { IpcError } from '../src/shared/errors.js';
import { formatIssues, isStandardSchema, validate } from '../src/shared/validate.js';
import { catchError } from './helpers.js';

const Request = z.object({ kind: z.literal('open'), path: z.string().min(1), lines: z.array(z.number()).optional() });


describe('validate', () => {
  it('returns the parsed value synchronously for a synchronous schema', () => {
    const out = validate(Request, { kind: 'open', path: '/tmp/x' });
    expect(out).toEqual({ kind: 'open', path: '/tmp/x' });
    expect(out).not.toBeInstanceOf(Promise);
  });

  it('returns the schema output, not the input, when the schema transforms', () => {
    const schema = z.string().transform((s) => s.length);
    expect(validate(schema, 'abcd')).toBe(4);
  });

  it('throws IpcError INVALID with paths in the message and every issue attached', () => {
    const e = catchError(() => validate(Request, { kind: 'close', path: '', lines: [1, 'x'] }));
    expect(e).toBeInstanceOf(IpcError);
    const err = e as IpcError;
    expect(err.code).toBe('INVALID');
    expect(err.message).toMatch(/zod schema validation/);
    expect(err.message).toMatch(/kind: /);
    expect(err.message).toMatch(/path: /);
    expect(err.message).toMatch(/lines\[1\]: /);
    expect(err.issues).toHaveLength(3);
  });

  it('resolves asynchronously for an async schema and rejects with INVALID', async () => {
    const schema = z.string().refine(async (s) => s.startsWith('ok'), 'must start with ok');
    const good = validate(schema, 'okay');
    expect(good).toBeInstanceOf(Promise);
    await expect(good).resolves.toBe('okay');
    await expect(validate(schema, 'nope')).rejects.toMatchObject({ code: 'INVALID', message: expect.stringMatching(/must start with ok/) });
  });

  it('reports a schema that throws as INVALID with the cause', () => {
    const boom = new Error('boom');
    const schema: StandardSchemaV1<unknown, string> = {
      '~standard': { version: 1, vendor: 'custom', validate: () => { throw boom; } },
    };
    const err = catchError(() => validate(schema, 1)) as IpcError;
    expect(err.code).toBe('INVALID');
    expect(err.cause).toBe(boom);
    expect(err.message).toMatch(/custom schema threw.*boom/);
  });

  it('rejects a non-schema with a TypeError', () => {
    expect(() => validate({} as never, 1)).toThrow(TypeError);
    expect(() => validate(null as never, 1)).toThrow(/Standard Schema/);
    expect(isStandardSchema(Request)).toBe(true);
    expect(isStandardSchema({ '~standard': { version: 2, validate() {} } })).toBe(false);
  });

  it('formats root issues, symbol keys and truncates long lists', () => {
    expect(formatIssues([{ message: 'bad' }])).toBe('bad');
    expect(formatIssues([{ message: 'm', path: [{ key: 'a' }, 0, 'b'] }])).toBe('a[0].b: m');
    const many = Array.from({ length: 8 }, (_, i) => ({ message: `m${i}` }));
    expect(formatIssues(many)).toMatch(/m4; \(3 more\)$/);
  });
});
