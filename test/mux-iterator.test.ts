// The iterator of a MuxReceiver (src/main/mux/endpoints.ts, MuxIterator) must behave as
// `for (;;) try { yield await rx.recv() } catch (e) { if DISCONNECTED return; throw e }` would:
// messages in order, DISCONNECTED ends it, any other error is thrown once and ends it, a schema
// (also one configured while a step waits) still applies. Written for a one-promise step tried in
// the fifth round (docs/multiplexing.md), which failed these when broken, and reverted.
import { describe, expect, it } from 'vitest';
import { IpcError, IpcMux, channel } from '../src/main/index.js';
import type { MuxFrame } from '../src/main/index.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';

function localPair(): { a: IpcMux; b: IpcMux } {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return { a: IpcMux.open(aTx, aRx), b: IpcMux.open(bTx, bRx) };
}

const isNumber = { '~standard': { version: 1, vendor: 't', validate: (v: unknown) => (typeof v === 'number' ? { value: v } : { issues: [{ message: 'not a number' }] }) } } as StandardSchemaV1<unknown, number>;

describe('MuxReceiver iteration', () => {
  it('yields queued and later messages from the peer in order and ends (done) once every sender is gone', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<number>();
    a.sender.send({ s } as never);
    s.close();
    const { s: bs } = (await b.receiver.recv({ timeout: 5000 })) as unknown as { s: { send(m: unknown): void; close(): void } };
    bs.send(0);
    bs.send(1);
    const it = r[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 0, done: false }); // from the socket, waited for
    expect(await it.next()).toEqual({ value: 1, done: false });
    const pending = it.next(); // waits (PendingStep)
    bs.send(2);
    expect(await pending).toEqual({ value: 2, done: false });
    const last = it.next();
    bs.close();
    expect(await last).toEqual({ value: undefined, done: true });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    a.close();
    b.close();
  });

  it('a receiver closed while a step waits: that step rejects CLOSED, and the iteration has ended', async () => {
    const { a, b } = localPair();
    const [, r] = a.channel<number>();
    const it = r[Symbol.asyncIterator]();
    const p = it.next();
    r.close();
    await expect(p).rejects.toMatchObject({ code: 'CLOSED' });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    // A closed receiver's first step rejects CLOSED too.
    await expect(r[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'CLOSED' });
    a.close();
    b.close();
  });

  it('a channel that overflowed before the step: TOO_LARGE is thrown once, then done', async () => {
    const { a, b } = localPair();
    const [s, r] = a.channel<number>({ maxQueue: 2 });
    a.sender.send({ s } as never);
    s.close();
    const { s: bs } = (await b.receiver.recv({ timeout: 5000 })) as unknown as { s: { send(m: unknown): void; close(): void } };
    for (let i = 0; i < 3; i++) bs.send(i);
    await new Promise((res) => setTimeout(res, 100));
    const it = r[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    bs.close();
    a.close();
    b.close();
  });

  it('the connection ending while a step waits ends the iteration (done)', async () => {
    const { a, b } = localPair();
    const it = a.receiver[Symbol.asyncIterator]();
    const p = it.next();
    b.close();
    expect(await p).toEqual({ value: undefined, done: true });
    a.close();
  });

  it('a schema configured while a step waits applies to the message it gets', async () => {
    const { a, b } = localPair();
    const it = a.receiver[Symbol.asyncIterator]();
    const p = it.next();
    a.receiver.configure({ schema: isNumber });
    b.sender.send('text');
    const e = await p.then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(IpcError);
    expect((e as IpcError).code).toBe('INVALID');
    a.close();
    b.close();
  });

  it('an asynchronous schema: each step waits for it, a refused message is thrown', async () => {
    const { a, b } = localPair();
    const asyncNumber = { '~standard': { version: 1, vendor: 't', validate: async (v: unknown) => (typeof v === 'number' ? { value: v * 10 } : { issues: [{ message: 'not a number' }] }) } } as StandardSchemaV1<unknown, number>;
    const it = a.receiver[Symbol.asyncIterator]();
    const p = it.next();
    a.receiver.configure({ schema: asyncNumber });
    b.sender.send(4);
    expect(await p).toEqual({ value: 40, done: false });
    b.sender.send('x');
    await expect(it.next()).rejects.toMatchObject({ code: 'INVALID' });
    a.close();
    b.close();
  });
});
