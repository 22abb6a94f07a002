/**
 * Typed protocols and RPC over channel pairs, both ends in this process over real sockets (the
 * cross-process cases are in rpc.process.test.ts). Hostile cases drive one end by hand: a raw
 * sender writes frames a well-behaved peer never sends.
 */
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { channel, IpcReceiver, IpcSender } from '../src/main/channel.js';
import { IpcSharedMemory } from '../src/main/shm.js';
import { IpcError } from '../src/shared/errors.js';
import { defineProtocol, event, isRpcError, method, RpcError } from '../src/shared/protocol.js';
import type { Protocol } from '../src/shared/protocol.js';
import type { StandardSchemaV1 } from '../src/shared/validate.js';
import { rpcClient } from '../src/main/rpc/client.js';
import type { RpcClient, RpcClientOptions } from '../src/main/rpc/client.js';
import { serve } from '../src/main/rpc/server.js';
import type { RpcHandlers, RpcServer, ServeOptions } from '../src/main/rpc/server.js';
import { IpcServer } from '../src/main/ipc-server.js';
import { fdCount } from './helpers.js';

const Calc = defineProtocol({
  methods: {
    parse: {
      input: z.object({ text: z.string().max(100) }),
      output: z.object({ n: z.number() }).transform((o) => o.n),
    },
    add: method<{ a: number; b: number }, number>(),
    ping: method(),
    wait: method<{ ms?: number }, string>(),
    steps: { input: z.number().int().min(0), output: z.literal('done'), progress: z.number() },
    fail: method<{ code?: string; message: string; plain?: boolean }, never>(),
    badOutput: { output: z.string() },
    unsendable: method<void, unknown>(),
    strip: { output: z.object({ n: z.number() }) },
    pipe: method<{ to: IpcSender<string> }, { rx: IpcReceiver<number>; mem: IpcSharedMemory }>(),
  },
  events: {
    tick: z.object({ n: z.number() }),
    note: event<string>(),
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

function link<P extends Protocol>(protocol: P, handlers: RpcHandlers<P>, serveOptions: ServeOptions = {}, clientOptions: RpcClientOptions = {}) {
  const [reqTx, reqRx] = channel();
  const [repTx, repRx] = channel();
  const server = serve(protocol, repTx, reqRx, handlers, serveOptions);
  const client = rpcClient(protocol, reqTx, repRx, clientOptions);
  opened.push(client, server);
  return { client, server };
}

/** Handlers for Calc; `seen` records what the handlers saw. */
function calc(seen: { calls: string[]; aborts: unknown[] } = { calls: [], aborts: [] }): RpcHandlers<typeof Calc> {
  return {
    parse: ({ text }) => {
      seen.calls.push('parse');
      return { n: Number(text) };
    },
    add: ({ a, b }) => a + b,
    ping: () => undefined,
    wait: ({ ms }, { signal }) =>
      new Promise<string>((resolve, reject) => {
        const t = ms === undefined ? undefined : setTimeout(() => resolve('waited'), ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          seen.aborts.push(signal.reason);
          reject(signal.reason);
        });
      }),
    steps: async (n, { progress }) => {
      for (let i = 1; i <= n; i++) {
        progress(i);
        await sleep(1);
      }
      return 'done' as const;
    },
    fail: ({ code, message, plain }) => {
      if (plain) throw message; // eslint-disable-line no-throw-literal
      throw Object.assign(new Error(message), code === undefined ? {} : { code });
    },
    badOutput: () => 42 as unknown as string,
    unsendable: () => ({ f: () => 1 }),
    strip: (_, { transfer }) => {
      const [tx, rx] = channel();
      rx.close();
      return { n: 1, extra: transfer(tx) };
    },
    pipe: ({ to }, { transfer }) => {
      to.send('hello through the sender in the input');
      to.close();
      const [tx, rx] = channel<number>();
      tx.send(7);
      tx.close();
      return { rx, mem: transfer(IpcSharedMemory.fromBytes(new Uint8Array([1, 2, 3]))) };
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('did not reject');
}

describe('defineProtocol', () => {
  it('gives both sides their types from the schemas and method<>()', () => {
    const c = null as unknown as RpcClient<typeof Calc>;
    const s = null as unknown as RpcServer<typeof Calc>;
    if (c) {
      // The caller passes the input schema's input and gets the output schema's (transformed) output.
      expectTypeOf(c.call('parse', { text: '1' })).toEqualTypeOf<Promise<number>>();
      expectTypeOf(c.call('add', { a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
      expectTypeOf(c.call('ping')).toEqualTypeOf<Promise<void>>();
      // @ts-expect-error a wrong input type
      void c.call('add', { a: 'x', b: 2 });
      // @ts-expect-error an unknown method
      void c.call('nope');
      c.on('tick', (p) => expectTypeOf(p).toEqualTypeOf<{ n: number }>());
      c.on('note', (p) => expectTypeOf(p).toEqualTypeOf<string>());
      c.call('steps', 3, { onProgress: (v) => expectTypeOf(v).toEqualTypeOf<number>() });
      s.emit('note', 'x');
      // @ts-expect-error a wrong payload
      s.emit('tick', { n: 'x' });
    }
    const handlers: RpcHandlers<typeof Calc> = calc();
    expectTypeOf(handlers.parse).parameter(0).toEqualTypeOf<{ text: string }>();
    // The handler returns the output schema's input.
    expectTypeOf(handlers.parse).returns.toEqualTypeOf<{ n: number } | PromiseLike<{ n: number }>>();
  });

  it('refuses definitions it cannot use, naming what is wrong', () => {
    expect(() => defineProtocol({ methods: { a: { input: 'x' as never } } })).toThrow(/a.input must be a Standard Schema/);
    expect(() => defineProtocol({ methods: { a: { inptu: z.string() } as never } })).toThrow(/unknown key "inptu"/);
    expect(() => defineProtocol({ methods: {}, evnts: {} } as never)).toThrow(/unknown key "evnts"/);
    expect(() => defineProtocol({ methods: {}, events: { e: 5 as never } })).toThrow(/event "e"/);
    expect(Object.isFrozen(Calc.methods)).toBe(true);
  });

  it('RpcError: instanceof works for subclasses and plain errors as usual', () => {
    class AppError extends RpcError {}
    expect(new AppError('X', 'm') instanceof RpcError).toBe(true);
    expect(new RpcError('X', 'm') instanceof AppError).toBe(false);
    expect(new Error('m') instanceof RpcError).toBe(false);
    expect(isRpcError({ code: 'X', message: 'm' })).toBe(false);
    expect(isRpcError(new RpcError('X', 'm'), 'X')).toBe(true);
  });

  it('serve() and call() refuse misuse with TypeError/RangeError', () => {
    const [tx, rx] = channel();
    opened.push(tx, rx);
    expect(() => serve(Calc, tx, rx, { ...calc(), parse: undefined } as never)).toThrow(/no handler for method "parse"/);
    expect(() => serve(Calc, tx, rx, { ...calc(), extra: () => 1 } as never)).toThrow(/handler "extra" is not a method/);
    expect(() => serve(Calc, tx, rx, calc(), { maxConcurentCalls: 1 } as never)).toThrow(/unknown option "maxConcurentCalls"/);
    expect(() => rpcClient(Calc, tx, rx, { maxPendingCalls: 0 })).toThrow(RangeError);
    const { client } = link(Calc, calc());
    expect(() => (client.call as (m: string) => unknown)('nope')).toThrow(/no method "nope"/);
    expect(() => client.call('ping', undefined, { timout: 5 } as never)).toThrow(/unknown option "timout"/);
    expect(() => client.on('nope' as never, () => {})).toThrow(/no event "nope"/);
  });
});

describe('calls', () => {
  it('validates inputs on the server and outputs on the client', async () => {
    const seen = { calls: [] as string[], aborts: [] as unknown[] };
    const { client } = link(Calc, calc(seen));
    expect(await client.call('parse', { text: '12' })).toBe(12);
    expect(await client.call('add', { a: 2, b: 3 })).toBe(5);
    expect(await client.call('ping')).toBeUndefined();

    const bad = await rejection(client.call('parse', { text: 5 } as never));
    expect(bad).toBeInstanceOf(RpcError);
    expect(bad).toMatchObject({ code: 'INVALID', remote: true, method: 'parse' });
    expect(bad.issues[0].path).toEqual(['text']);
    expect(seen.calls).toEqual(['parse']); // the handler never saw the bad input

    const out = await rejection(client.call('badOutput'));
    expect(out).toBeInstanceOf(IpcError);
    expect(out.code).toBe('INVALID');
    expect(out.message).toMatch(/result of badOutput failed its output schema/);
  });

  it('carries an error code and message across, never the stack unless asked', async () => {
    const { client } = link(Calc, calc());
    const e = await rejection(client.call('fail', { code: 'NOT_FOUND', message: 'no such thing' }));
    expect(isRpcError(e, 'NOT_FOUND')).toBe(true);
    expect(e.message).toBe('no such thing');
    expect(e.remoteStack).toBeUndefined();
    expect(e.stack).not.toMatch(/calc|server\.ts/);
    expect((await rejection(client.call('fail', { message: 'x', code: 'bad code!' }))).code).toBe('INTERNAL');
    const plain = await rejection(client.call('fail', { message: 'a string', plain: true }));
    expect(plain).toMatchObject({ code: 'INTERNAL', message: 'the handler threw a string instead of an Error' });

    const unsendable = await rejection(client.call('unsendable'));
    expect(unsendable).toMatchObject({ name: 'RpcError', code: 'UNSERIALIZABLE', remote: true });
    expect(unsendable.message).toMatch(/unsendable: its result cannot be sent: .*f/);

    const { client: c2 } = link(Calc, calc(), { exposeStack: true });
    const withStack = await rejection(c2.call('fail', { message: 'boom' }));
    expect(withStack.remoteStack).toMatch(/boom[\s\S]*at /);
  });

  it('times out, and the cancellation reaches the handler', async () => {
    const seen = { calls: [] as string[], aborts: [] as unknown[] };
    const { client, server } = link(Calc, calc(seen));
    const e = await rejection(client.call('wait', {}, { timeout: 50 }));
    expect(e).toBeInstanceOf(IpcError);
    expect(e.code).toBe('TIMEOUT');
    for (let i = 0; i < 100 && seen.aborts.length === 0; i++) await sleep(10);
    expect(seen.aborts).toHaveLength(1);
    expect(isRpcError(seen.aborts[0], 'CANCELLED')).toBe(true);
    await sleep(20);
    expect(server.inFlight).toBe(0);
    expect(await client.call('add', { a: 1, b: 1 })).toBe(2); // still usable
  });

  it('an aborted signal rejects with its reason and aborts the handler', async () => {
    const seen = { calls: [] as string[], aborts: [] as unknown[] };
    const { client } = link(Calc, calc(seen));
    const ac = new AbortController();
    const p = client.call('wait', {}, { signal: ac.signal });
    await sleep(30);
    ac.abort(new Error('user gave up'));
    expect((await rejection(p)).message).toBe('user gave up');
    for (let i = 0; i < 100 && seen.aborts.length === 0; i++) await sleep(10);
    expect(isRpcError(seen.aborts[0], 'CANCELLED')).toBe(true);
    // An already aborted signal sends nothing.
    expect(await rejection(client.call('wait', {}, { signal: AbortSignal.abort('early') }))).toBe('early');
    expect(client.pending).toBe(0);
  });

  it('delivers progress in order before the result, validated by the progress schema', async () => {
    const errors: Error[] = [];
    const { client } = link(Calc, { ...calc(), steps: async (n, { progress }) => {
      for (let i = 1; i <= n; i++) progress(i);
      progress('not a number' as never);
      return 'done' as const;
    } }, {}, { onError: (e) => errors.push(e) });
    const got: number[] = [];
    expect(await client.call('steps', 5, { onProgress: (v) => got.push(v) })).toBe('done');
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(errors.map((e) => (e as IpcError).code)).toEqual(['INVALID']);
    // Without onProgress nothing is sent: no error for the bad value either.
    expect(await client.call('steps', 3)).toBe('done');
    expect(errors).toHaveLength(1);
    // An onProgress that throws is reported; the call goes on.
    const seen: number[] = [];
    const onProgress = (v: number) => {
      seen.push(v);
      if (v === 2) throw new Error('progress bar bug');
    };
    expect(await client.call('steps', 3, { onProgress })).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
    expect(errors[1]!.message).toMatch(/onProgress of call steps threw: progress bar bug/);
    expect((errors[2] as IpcError).code).toBe('INVALID'); // the bad value after it
  });

  it('an onError that throws is ignored: no uncaught exception, the link goes on', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      const [reqTx, reqRx] = channel<unknown>();
      const [repTx, repRx] = channel<unknown>();
      let reports = 0;
      const onError = () => {
        reports++;
        throw new Error('onError bug');
      };
      const server = serve(Calc, repTx, reqRx, calc(), { onError });
      const client = rpcClient(Calc, reqTx, repRx, { onError });
      opened.push(server, client);
      reqTx.send('junk for the server');
      client.on('tick', () => {
        throw new Error('listener bug');
      });
      await client.call('ping');
      server.emit('tick', { n: 1 });
      expect(await client.call('add', { a: 1, b: 2 })).toBe(3);
      await sleep(20);
      expect(reports).toBe(2);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
  });

  it('carries handles in inputs and results; transferred ones are closed on the server', async () => {
    const { client } = link(Calc, calc());
    const before = fdCount();
    const [to, from] = channel<string>();
    const { rx, mem } = await client.call('pipe', { to });
    to.close();
    expect(await from.recv()).toBe('hello through the sender in the input');
    expect(await rx.recv()).toBe(7);
    expect([...mem.bytes]).toEqual([1, 2, 3]);
    rx.close();
    mem.close();
    from.close();
    await sleep(50);
    expect(fdCount()).toBe(before);
  });

  it('closes the handles a schema strips from an input (server) or a result (client)', async () => {
    const { client } = link(Calc, calc());
    await client.call('ping');
    const before = fdCount();
    const [s, r] = channel();
    s.close(); // only its duplicates travel: the caller closed its own
    expect(await client.call('parse', { text: '3', extra: r } as never)).toBe(3);
    expect(await client.call('strip')).toEqual({ n: 1 });
    await sleep(50);
    expect(fdCount()).toBe(before);
  });
});

describe('events', () => {
  it('are sent to subscribed clients only, validated, and a throwing listener is reported', async () => {
    const errors: Error[] = [];
    const { client, server } = link(Calc, calc(), {}, { onError: (e) => errors.push(e) });
    expect(server.emit('tick', { n: 0 })).toBe(false); // nobody listens
    const ticks: number[] = [];
    const off = client.on('tick', ({ n }) => {
      ticks.push(n);
      if (n === 2) throw new Error('listener bug');
    });
    await client.call('ping'); // the subscription is read before the call
    expect(server.emit('tick', { n: 1 })).toBe(true);
    expect(server.emit('tick', { n: 2 })).toBe(true);
    expect(server.emit('tick', { n: 'three' } as never)).toBe(true); // the client's schema drops it
    expect(server.emit('tick', { n: 4 })).toBe(true);
    await client.call('ping');
    expect(ticks).toEqual([1, 2, 4]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/listener of event tick threw: listener bug/), expect.stringMatching(/tick event failed its schema/)]);
    off();
    await client.call('ping');
    expect(server.emit('tick', { n: 5 })).toBe(false);
    expect(() => server.emit('nope' as never, 1 as never)).toThrow(TypeError);
  });
});

describe('asynchronous schemas', () => {
  it('keep frames in order and check one frame at a time (a flooding server waits in the kernel)', async () => {
    let checking = 0;
    let most = 0;
    const slowNumber: StandardSchemaV1<number, number> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: async (v: unknown) => {
          most = Math.max(most, ++checking);
          await sleep(Math.random() * 2);
          checking--;
          return typeof v === 'number' ? { value: v } : { issues: [{ message: 'not a number' }] };
        },
      },
    };
    const Slow = defineProtocol({
      methods: { count: { input: z.number(), output: slowNumber, progress: slowNumber } },
      events: { n: slowNumber },
    });
    const { client, server } = link(Slow, {
      count: (n, { progress }) => {
        for (let i = 1; i <= n; i++) progress(i);
        return n;
      },
    });
    const got: number[] = [];
    client.on('n', (n) => got.push(n));
    const progress: number[] = [];
    expect(await client.call('count', 30, { onProgress: (v) => progress.push(v) })).toBe(30);
    expect(progress).toEqual(Array.from({ length: 30 }, (_, i) => i + 1)); // all before the result
    for (let i = 0; i < 300; i++) server.emit('n', i);
    await client.call('count', 0);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(most).toBe(1);
  });
});

describe('over an IpcServer', () => {
  it('serves each connection of a multi-client server; events go to the clients that listen', async () => {
    const listener = new IpcServer();
    opened.push(listener);
    const servers: Array<RpcServer<typeof Calc>> = [];
    void (async () => {
      for await (const conn of listener) {
        const server = serve(Calc, conn, { ...calc(), add: ({ a, b }) => a + b + conn.id * 1000 });
        servers.push(server);
        opened.push(server);
      }
    })();
    const a = rpcClient(Calc, ...(await IpcServer.connect(listener.name)));
    const b = rpcClient(Calc, ...(await IpcServer.connect(listener.name)));
    opened.push(a, b);
    const [ra, rb] = await Promise.all([a.call('add', { a: 1, b: 1 }), b.call('add', { a: 1, b: 1 })]);
    expect(ra % 1000).toBe(2);
    expect(rb % 1000).toBe(2);
    expect(ra).not.toBe(rb); // each client reached its own connection
    const got: string[] = [];
    b.on('note', (n) => got.push(n));
    await b.call('ping');
    expect(servers.map((s) => s.emit('note', 'hi')).sort()).toEqual([false, true]); // only b's connection listens
    await b.call('ping');
    expect(got).toEqual(['hi']);
  });
});

describe('events as an async iterator', () => {
  it('yields in order, unsubscribes when the loop is left, ends with the client', async () => {
    const { client, server } = link(Calc, calc());
    const it1 = client.events('tick');
    await client.call('ping'); // subscribed
    for (let n = 1; n <= 4; n++) server.emit('tick', { n });
    const got: number[] = [];
    for await (const { n } of it1) {
      got.push(n);
      if (n === 3) break;
    }
    expect(got).toEqual([1, 2, 3]);
    await client.call('ping');
    expect(server.emit('tick', { n: 5 })).toBe(false); // the loop's end unsubscribed

    const it2 = client.events('note');
    await client.call('ping');
    server.emit('note', 'last');
    await client.call('ping');
    client.close();
    expect(await it2.next()).toEqual({ value: 'last', done: false }); // what arrived before the end
    expect(await it2.next()).toEqual({ value: undefined, done: true });
  });

  it('a signal ends a waiting next(); more than maxBuffered unread events end it with TOO_LARGE', async () => {
    const { client, server } = link(Calc, calc());
    const ac = new AbortController();
    const waiting = client.events('tick', { signal: ac.signal }).next();
    ac.abort(new Error('enough'));
    expect((await rejection(waiting)).message).toBe('enough');

    const it = client.events('tick', { maxBuffered: 5 });
    await client.call('ping');
    for (let n = 1; n <= 6; n++) server.emit('tick', { n });
    await client.call('ping');
    expect(await rejection(it.next())).toMatchObject({ code: 'TOO_LARGE' });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    await client.call('ping');
    expect(server.emit('tick', { n: 7 })).toBe(false); // the overflow unsubscribed
    expect(() => client.events('tick', { maxBufered: 1 } as never)).toThrow(/unknown option "maxBufered"/);
  });
});

describe('limits and ends', () => {
  it('refuses calls over maxConcurrentCalls with BUSY, and over maxPendingCalls locally', async () => {
    const { client } = link(Calc, calc(), { maxConcurrentCalls: 2 }, { maxPendingCalls: 3 });
    const a = client.call('wait', { ms: 200 });
    const b = client.call('wait', { ms: 200 });
    const c = client.call('wait', { ms: 200 });
    const d = await rejection(client.call('wait', { ms: 200 }));
    expect(d).toMatchObject({ code: 'BUSY', remote: false });
    const e = await rejection(c);
    expect(e).toMatchObject({ code: 'BUSY', remote: true });
    expect(await Promise.all([a, b])).toEqual(['waited', 'waited']);
  });

  it('rejects every call in flight with DISCONNECTED when the server goes, and aborts handlers when the client goes', async () => {
    const seen = { calls: [] as string[], aborts: [] as unknown[] };
    const { client, server } = link(Calc, calc(seen));
    const calls = [client.call('wait', {}), client.call('wait', {})];
    await sleep(30);
    server.close();
    for (const p of calls) expect(await rejection(p)).toMatchObject({ code: 'DISCONNECTED' });
    expect(seen.aborts.map((r) => (r as IpcError).code)).toEqual(['CLOSED', 'CLOSED']);
    expect(client.closed).toBe(true);
    expect((await rejection(client.call('ping'))).code).toBe('DISCONNECTED');

    const seen2 = { calls: [] as string[], aborts: [] as unknown[] };
    const { client: c2, server: s2 } = link(Calc, calc(seen2));
    const pending = c2.call('wait', {});
    await sleep(30);
    c2.close();
    expect((await rejection(pending)).code).toBe('CLOSED');
    await s2.done;
    expect(seen2.aborts.map((r) => (r as IpcError).code)).toEqual(['DISCONNECTED']);
  });
});

describe('a hostile peer', () => {
  it('a client sending bad frames gets refusals or nothing; the server keeps serving and closes their handles', async () => {
    const errors: Error[] = [];
    const [reqTx, reqRx] = channel<unknown>();
    const [repTx, repRx] = channel<any>();
    const server = serve(Calc, repTx, reqRx, calc(), { onError: (e) => errors.push(e) });
    opened.push(server, reqTx, repRx);
    const before = fdCount();
    const [s1, r1] = channel();
    reqTx.send('not a frame');
    reqTx.send({ rpc: 'launch', id: 1 });
    reqTx.send({ rpc: 'call', id: -1, method: 'add', input: { s1 } });
    reqTx.send({ rpc: 'call', id: 1.5, method: 'add' });
    reqTx.send({ rpc: 'call', id: 2, method: 'toString', input: { s1 } });
    reqTx.send({ rpc: 'call', id: 3, method: 'parse', input: { text: 7, s1 } });
    reqTx.send({ rpc: 'call', id: 4, method: 'wait', input: {} });
    reqTx.send({ rpc: 'call', id: 4, method: 'add', input: { a: 1, b: 1, s1 } }); // id 4 is running
    reqTx.send({ rpc: 'cancel', id: 99 });
    reqTx.send({ rpc: 'cancel', id: 'x' });
    reqTx.send({ rpc: 'sub', event: '__proto__' });
    reqTx.send({ rpc: 'call', id: 5, method: 'add', input: { a: 2, b: 2 } });
    reqTx.send({ rpc: 'cancel', id: 4 });
    s1.close();
    r1.close();
    expect(await repRx.recv()).toMatchObject({ rpc: 'error', id: 2, code: 'UNKNOWN_METHOD' });
    expect(await repRx.recv()).toMatchObject({ rpc: 'error', id: 3, code: 'INVALID' });
    expect(await repRx.recv()).toEqual({ rpc: 'result', id: 5, output: 4 });
    // The cancelled call 4 sends nothing; the next reply is for the next call.
    reqTx.send({ rpc: 'call', id: 6, method: 'ping' });
    expect(await repRx.recv()).toEqual({ rpc: 'result', id: 6, output: undefined });
    expect(errors.map((e) => (e as IpcError).code)).toEqual(Array(6).fill('MALFORMED'));
    expect(server.inFlight).toBe(0);
    await sleep(50);
    expect(fdCount()).toBe(before);
  });

  it('a server sending bad frames is reported; the waiting call still gets its answer; handles are closed', async () => {
    const errors: Error[] = [];
    const [reqTx, reqRx] = channel<any>();
    const [repTx, repRx] = channel<unknown>();
    const client = rpcClient(Calc, reqTx, repRx, { onError: (e) => errors.push(e) });
    opened.push(client, reqRx, repTx);
    const before = fdCount();
    const p = client.call('add', { a: 1, b: 2 });
    const q = client.call('fail', { message: 'x' });
    const call = await reqRx.recv();
    expect(call).toEqual({ rpc: 'call', id: 1, method: 'add', input: { a: 1, b: 2 } });
    const [s1, r1] = channel();
    repTx.send(42);
    repTx.send({ rpc: 'result', id: 77, output: { s1 } }); // never used
    repTx.send({ rpc: 'progress', id: 1, value: { s1 } }); // no progress asked
    repTx.send({ rpc: 'event', event: 'nope', payload: { s1 } });
    repTx.send({ rpc: 'event', event: 'tick', payload: { n: 1, s1 } }); // nobody listens: dropped quietly
    repTx.send({ rpc: 'error', id: 2, code: 'BAD CODE', message: 'x' });
    repTx.send({ rpc: 'result', id: 1, output: 3 });
    s1.close();
    r1.close();
    expect(await p).toBe(3);
    expect((await rejection(q)).code).toBe('MALFORMED');
    expect(errors.map((e) => (e as IpcError).code)).toEqual(['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED']);
    await sleep(50);
    expect(fdCount()).toBe(before);
  });

  it('a flood of calls from a client that does not read the replies is not read either (bounded)', async () => {
    const [reqTx, reqRx] = channel<unknown>();
    const [repTx, repRx] = channel<any>();
    let handled = 0;
    const server = serve(Calc, repTx, reqRx, { ...calc(), ping: () => void handled++ });
    opened.push(server, reqTx, repRx);
    const N = 5000;
    for (let id = 0; id < N; id++) reqTx.send({ rpc: 'call', id, method: 'ping' });
    // Wait until the server stops handling calls (or has handled them all).
    let last = -1;
    for (let stable = 0; stable < 5 && handled < N; ) {
      await sleep(100);
      stable = handled === last ? stable + 1 : 0;
      last = handled;
    }
    // The replies filled the socket; the server stopped reading calls (they wait in the kernel
    // and in the flooding process), instead of queueing N replies in its memory.
    expect(handled).toBeGreaterThan(0);
    expect(handled).toBeLessThan(N / 4);
    let got = 0;
    while (got < N) {
      const r = await repRx.recv();
      expect(r.rpc).toBe('result');
      got++;
    }
    expect(handled).toBe(N);
  });

  it('without onError, the first unexpected error is one process warning, never an exception', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const [reqTx, reqRx] = channel<unknown>();
      const [repTx, repRx] = channel<any>();
      const server = serve(Calc, repTx, reqRx, calc());
      opened.push(server, reqTx, repRx);
      reqTx.send('junk');
      reqTx.send('more junk');
      reqTx.send({ rpc: 'call', id: 1, method: 'ping' });
      expect(await repRx.recv()).toMatchObject({ id: 1 });
      await sleep(10);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/RPC server: the RPC client sent a message that is not an RPC frame/);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
