// Issue 11, item 2: a decode inside the default limits is never fatal or superlinear. A hostile
// peer process (test/fixtures/containment/codec-revivers-peer.py, python3, written from
// docs/wire-format.md) sends a victim with the DEFAULT limits one message per class of bomb:
// the reported 120 MiB URLSearchParams (one pair per 2 bytes: V8's "invalid size" fatal error
// before), 22 million unused objects for JSON.parse, a sparse array of length 2^32-1, 1.5
// million holes, a BigInt of 3 million digits, 1,100 BigInts of 10,000 digits (quadratic parse),
// RegExps whose Unicode properties or case folding take seconds to compile, a URL whose
// searchParams would build 600,000 pairs, Set and Map keys crafted to collide in V8's hash
// tables and a megabyte Date text; each followed by a good message, and a valid
// message with every reviver first and last. The victim runs with a 1 GiB heap, so that a
// regression is a crash, not a slow pass: it must get one TOO_LARGE or MALFORMED per bad
// message, every good message intact, keep its heap small and its loop running, and end at its
// baseline descriptor count.
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface CaseResult {
  case: string;
  error?: { code: string; message: string };
  value?: Record<string, unknown>;
  ms: number;
  good: unknown;
}
interface Result {
  heapBefore: number;
  heapPeak: number;
  rssBefore: number;
  rssPeak: number;
  results: CaseResult[];
}

const BOMBS: Array<[string, 'TOO_LARGE' | 'MALFORMED', RegExp]> = [
  ['usp-120m', 'TOO_LARGE', /maxElements/],
  ['objects-64m', 'TOO_LARGE', /devalue text of \d+ JSON values/],
  ['sparse-4g', 'TOO_LARGE', /maxElements/],
  ['holes-1.5m', 'TOO_LARGE', /maxElements/],
  ['bigint-3m-digits', 'TOO_LARGE', /BigInt of over 10000 digits/],
  ['bigints-1100x10k', 'TOO_LARGE', /maxElements/],
  ['regexp-emoji', 'TOO_LARGE', /maxElements/],
  ['regexp-case-folding', 'TOO_LARGE', /maxElements/],
  ['url-pairs', 'TOO_LARGE', /maxElements/],
  ['set-bigint-collide', 'TOO_LARGE', /collide in V8's hash tables/],
  ['map-int32-collide', 'TOO_LARGE', /collide in V8's hash tables/],
  ['date-1m', 'MALFORMED', /not in ISO form/],
];

const LEGIT = {
  map: [[1, 'one']],
  set: [2, 'two'],
  url: { href: 'https://example.com/a?b=c&d=e', pairs: [['b', 'c'], ['d', 'e']] },
  usp: [['a', '1'], ['b', '2']],
  re: { source: '^[\\p{L}\\p{N}]+$', flags: 'u' },
  big: '123456789012345678901234567890n',
  date: '2020-01-02T03:04:05.678Z',
  sparse: { length: 5, items: [['1', 'x'], ['3', 'y']] },
  box: '[object BigInt] 7',
};

describe('containment: message bodies that ask for more than the limits (issue 11, item 2)', () => {
  it('refuses each bomb with one TOO_LARGE or MALFORMED, keeps its heap small and delivers the good messages', async () => {
    const cases = ['legit', ...BOMBS.map(([name]) => name), 'legit'];
    const r = await runVictim<Result>('codec-revivers', {
      args: cases,
      nodeArgs: ['--expose-gc', '--max-old-space-size=1024'],
      timeoutMs: 180_000,
    });
    // Decoding a 120 MiB body takes a moment (UTF-8, a text scan, JSON.parse of one string).
    expectContained(r, 3000);
    const { results } = r.result;
    expect(results.map((c) => c.case)).toEqual(cases);
    expect(results.map((c) => c.good)).toEqual(cases.map((_, i) => ({ good: i })));
    expect(results[0].value).toEqual(LEGIT);
    expect(results[results.length - 1].value).toEqual(LEGIT);
    for (const [i, [name, code, message]] of BOMBS.entries()) {
      const c = results[i + 1];
      expect(c.value, `${name} was accepted`).toBeUndefined();
      expect(c.error?.code, name).toBe(code);
      expect(c.error?.message, name).toMatch(message);
    }
    // The 120 MiB body is in the heap twice at most (its text, and the one string JSON.parse
    // makes of it); before, the URLSearchParams alone needed 1.6 GiB for 57 MiB.
    expect(r.result.heapPeak - r.result.heapBefore, JSON.stringify(r.result)).toBeLessThan(400);
    expect(r.result.rssPeak, JSON.stringify(r.result)).toBeLessThan(900);
  }, 200_000);
});
