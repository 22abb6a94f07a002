// A receiver's async iterator (`for await (const m of rx)`): each step is one pending receive of
// the receiver's core (no async generator), with the semantics of
// `for (;;) try { yield await rx.recv() } catch (e) { if DISCONNECTED return; throw e }`:
// messages in order, DISCONNECTED ends the iteration, any other error is thrown and ends it,
// the receiver itself stays usable after the iteration ends.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { IpcError, channel } from '../src/main/index.js';
import { rejectsWith } from './helpers.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('a receiver as an async iterator', () => {
  it('yields messages queued and arriving later, in order, and ends when every sender is closed', async () => {
    const [tx, rx] = channel<number>();
    tx.send(1);
    setTimeout(() => {
      tx.send(2);
      setTimeout(() => {
        tx.send(3);
        tx.close();
      }, 5);
    }, 5);
    const got: number[] = [];
    for await (const m of rx) got.push(m);
    expect(got).toEqual([1, 2, 3]);
    // Ended: further steps are done at once, and recv() reports why.
    const it = rx[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: undefined, done: true });
    await rejectsWith(rx.recv(), 'DISCONNECTED');
    rx.close();
  });

  it('a step pending when the last sender closes resolves done', async () => {
    const [tx, rx] = channel<number>();
    const it = rx[Symbol.asyncIterator]();
    const step = it.next();
    await tick();
    expect(rx.core.waiting).toBe(1);
    tx.close();
    expect(await step).toEqual({ value: undefined, done: true });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    rx.close();
  });

  it('a bad message is thrown and ends the iteration; the receiver goes on with recv()', async () => {
    const [tx, rx] = channel<unknown>({ schema: z.number() });
    tx.send(1);
    tx.send('not a number');
    tx.send(3);
    const got: unknown[] = [];
    let thrown: unknown;
    const it = rx[Symbol.asyncIterator]();
    try {
      for await (const m of { [Symbol.asyncIterator]: () => it }) got.push(m);
    } catch (e) {
      thrown = e;
    }
    expect(got).toEqual([1]);
    expect(thrown).toBeInstanceOf(IpcError);
    expect((thrown as IpcError).code).toBe('INVALID');
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(await rx.recv()).toBe(3);
    tx.close();
    rx.close();
  });

  it('a bad message arriving while a step waits rejects that step and ends the iteration', async () => {
    const [tx, rx] = channel<unknown>({ schema: z.number() });
    const it = rx[Symbol.asyncIterator]();
    const step = it.next();
    await tick();
    tx.send('nope');
    await expect(step).rejects.toMatchObject({ code: 'INVALID' });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    tx.send(4);
    expect(await rx.recv()).toBe(4);
    tx.close();
    rx.close();
  });

  it('an asynchronous schema: values are yielded validated, a refused one is thrown and ends the iteration', async () => {
    const schema = z.number().refine(async (n) => n > 0, 'must be positive');
    const [tx, rx] = channel<number>({ schema });
    tx.send(1);
    tx.send(2);
    tx.send(-1);
    tx.send(5);
    const got: number[] = [];
    const it = rx[Symbol.asyncIterator]();
    await expect(
      (async () => {
        for await (const m of { [Symbol.asyncIterator]: () => it }) got.push(m);
      })(),
    ).rejects.toMatchObject({ code: 'INVALID' });
    expect(got).toEqual([1, 2]);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(await rx.recv()).toBe(5);
    tx.close();
    rx.close();
  });

  it('break ends the iteration without taking more; the receiver keeps the rest', async () => {
    const [tx, rx] = channel<number>();
    for (let i = 0; i < 5; i++) tx.send(i);
    const got: number[] = [];
    for await (const m of rx) {
      got.push(m);
      if (m === 1) break;
    }
    expect(got).toEqual([0, 1]);
    expect(await rx.recv()).toBe(2);
    // A new iteration starts where the receiver is.
    tx.close();
    const rest: number[] = [];
    for await (const m of rx) rest.push(m);
    expect(rest).toEqual([3, 4]);
    rx.close();
  });

  it('closing the receiver rejects a pending step with CLOSED and ends the iteration', async () => {
    const [tx, rx] = channel<number>();
    const it = rx[Symbol.asyncIterator]();
    const step = it.next();
    await tick();
    rx.close();
    await rejectsWith(step, 'CLOSED');
    expect(await it.next()).toEqual({ value: undefined, done: true });
    // A step on a receiver closed already: CLOSED too, then done.
    const it2 = rx[Symbol.asyncIterator]();
    await rejectsWith(it2.next(), 'CLOSED');
    expect(await it2.next()).toEqual({ value: undefined, done: true });
    tx.close();
  });

  it('return() and throw() end the iteration', async () => {
    const [tx, rx] = channel<number>();
    tx.send(1);
    const a = rx[Symbol.asyncIterator]();
    expect(await a.return(undefined)).toEqual({ value: undefined, done: true });
    expect(await a.next()).toEqual({ value: undefined, done: true });
    const b = rx[Symbol.asyncIterator]();
    await expect(b.throw(new Error('stop'))).rejects.toThrow('stop');
    expect(await b.next()).toEqual({ value: undefined, done: true });
    expect(await rx.recv()).toBe(1);
    tx.close();
    rx.close();
  });

  it('after a message, a loop that asks again only several microtasks later keeps receiving', async () => {
    // The idle check after a delivered message runs once the loop's continuation ran; a loop
    // that asks later is settled at the end of the turn's microtasks instead: either way the
    // next message arrives.
    const [tx, rx] = channel<number>();
    const got: number[] = [];
    const done = (async () => {
      for (;;) {
        const m = await rx.recv();
        got.push(m);
        if (m === 3) return;
        for (let i = 0; i < 10; i++) await null;
      }
    })();
    for (let i = 1; i <= 3; i++) {
      await tick();
      tx.send(i);
    }
    await done;
    expect(got).toEqual([1, 2, 3]);
    tx.close();
    rx.close();
  });
});
