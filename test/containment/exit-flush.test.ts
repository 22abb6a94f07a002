// Issue 11, class 14: a send that returned is never lost silently at process.exit(), and a
// tryRecv() loop sees what the same thread sent before.
import { describe, expect, it } from 'vitest';
import { IpcOneShotServer, channel } from '../../src/main/index.js';
import { spawnFixture } from '../helpers.js';

async function collect(mode: string, expected: number): Promise<{ got: unknown[]; code: number | null; stderr: string }> {
  const server = new IpcOneShotServer<unknown>({ maxQueue: 256 });
  const child = spawnFixture('containment/exit-flush.mjs', {}, 30_000, [server.name, mode]);
  const [rx, first] = await server.accept({ timeout: 10_000 });
  const got: unknown[] = [first];
  for (;;) {
    try {
      got.push(await rx.recv({ timeout: 10_000 }));
    } catch (e) {
      expect((e as { code?: string }).code).toBe('DISCONNECTED');
      break;
    }
  }
  rx.close();
  const done = await child.done;
  expect(got.length).toBe(expected);
  return { got, code: done.code, stderr: done.stderr };
}

describe('sends before exit', () => {
  it('send(a); send(b); send(c); process.exit(0) delivers all three', async () => {
    const r = await collect('exit', 4);
    expect(r.got.slice(1)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    expect(r.code).toBe(0);
  });
  it('also when an uncaught exception ends the process', async () => {
    const r = await collect('throw', 4);
    expect(r.got.slice(1)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    expect(r.code).not.toBe(0);
  });
  it('also from a worker that calls process.exit()', async () => {
    const r = await collect('worker', 4);
    expect(r.got.slice(1)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
  });
  it('also when the socket is full: exit waits (bounded) for the reader', async () => {
    const r = await collect('full', 2004);
    expect(r.got.at(-1)).toEqual({ c: 3 });
    expect(r.code).toBe(0);
  });
  it('a tryRecv() loop sees a message this thread sent in the same tick', () => {
    const [tx, rx] = channel<number>();
    tx.send(1);
    tx.send(2); // batched: written from a microtask unless tryRecv writes it first
    tx.send(3);
    const got: number[] = [];
    for (let i = 0; i < 10 && got.length < 3; i++) {
      const m = rx.tryRecv();
      if (m) got.push(m.message);
    }
    expect(got).toEqual([1, 2, 3]);
    tx.close();
    rx.close();
  });
});
