/**
 * RPC across real processes: main calling a helper over the spawnHelper/connectToParent link,
 * main serving a hostile helper, and two helpers calling each other over channels main handed
 * them. The helpers (test/fixtures/rpc) load the built library: run `npx tsup` first.
 */
import { readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { channel } from '../src/main/channel.js';
import { spawnHelper, type Helper } from '../src/main/helper.js';
import { rpcClient } from '../src/main/rpc/client.js';
import { serve } from '../src/main/rpc/server.js';
import { IpcError } from '../src/shared/errors.js';
import { isRpcError, RpcError } from '../src/shared/protocol.js';
import { fdCount, spawnFixture } from './helpers.js';
// @ts-expect-error a plain .mjs fixture, shared with the helpers (one protocol definition for both sides)
import { Jobs as JobsAny } from './fixtures/rpc/protocol.mjs';
// @ts-expect-error the same
import { handlers as jobHandlers } from './fixtures/rpc/handlers.mjs';
import type { Protocol } from '../src/shared/protocol.js';

const Jobs = JobsAny as Protocol;
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/rpc/${name}`, import.meta.url));
const T = { timeout: 30_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const live: Array<Helper<unknown, unknown>> = [];
async function spawn(name: string, args: string[] = []) {
  const h = await spawnHelper(fixture(name), { timeout: 15_000, args });
  live.push(h);
  return h;
}
afterEach(async () => {
  for (const h of live.splice(0)) {
    h.kill('SIGKILL');
    await h.exited;
  }
});

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('did not reject');
}

describe('RPC between main and a helper', () => {
  it('calls, validation, errors, progress and handles in results cross the process boundary', T, async () => {
    const h = await spawn('server.mjs');
    const client = rpcClient(Jobs, h, { timeout: 10_000 });
    expect(await client.call('pid')).toBe(h.pid);
    expect(await client.call('add', { a: 2, b: 40 })).toBe(42);

    const invalid = await rejection(client.call('add', { a: 'two', b: 40 }));
    expect(invalid).toMatchObject({ name: 'RpcError', code: 'INVALID', remote: true });
    expect(invalid.issues[0].path).toEqual(['a']);

    const failed = await rejection(client.call('fail'));
    expect(isRpcError(failed, 'NO_SUCH_JOB')).toBe(true);
    expect(failed.message).toBe('no such job');
    expect(failed.remoteStack).toBeUndefined();
    expect(failed.stack).not.toMatch(/handlers\.mjs/); // the helper's stack stays in the helper

    const progress: number[] = [];
    expect(await client.call('count', 5, { onProgress: (v) => progress.push(v as number) })).toBe('counted');
    expect(progress).toEqual([1, 2, 3, 4, 5]);

    const { file } = (await client.call('openFile', { text: 'written by the helper' })) as { file: { fd: number; close(): void } };
    const buf = Buffer.alloc(64);
    expect(buf.subarray(0, readSync(file.fd, buf, 0, 64, 0)).toString()).toBe('written by the helper');
    file.close();

    const { rx } = (await client.call('stream', { n: 5 })) as { rx: AsyncIterable<number> & { close(): void } };
    const got: number[] = [];
    for await (const n of rx) got.push(n);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    rx.close();

    client.close(); // closes the helper link: the helper's server ends and the helper exits
    expect(await h.exited).toEqual({ code: 0, signal: null });
  });

  it('cancellation and timeouts reach the handler in the helper', T, async () => {
    const h = await spawn('server.mjs');
    const client = rpcClient(Jobs, h);
    const aborted: string[] = [];
    client.on('aborted', (e) => aborted.push((e as { code: string }).code));
    await client.call('pid'); // the subscription has reached the helper

    const ac = new AbortController();
    const call = client.call('slow', {}, { signal: ac.signal });
    await sleep(100);
    ac.abort(new Error('stop'));
    expect((await rejection(call)).message).toBe('stop');
    for (let i = 0; i < 200 && aborted.length < 1; i++) await sleep(10);
    expect(aborted).toEqual(['CANCELLED']); // reported by the helper's handler, from its signal

    const timedOut = await rejection(client.call('slow', {}, { timeout: 100 }));
    expect(timedOut).toBeInstanceOf(IpcError);
    expect(timedOut.code).toBe('TIMEOUT');
    for (let i = 0; i < 200 && aborted.length < 2; i++) await sleep(10);
    expect(aborted).toEqual(['CANCELLED', 'CANCELLED']);
    expect(await client.call('slow', { ms: 10 })).toBe('slept'); // not cancelled: it completes
    client.close();
  });

  it('a helper that dies mid-call rejects every call in flight with DISCONNECTED', T, async () => {
    const h = await spawn('server.mjs');
    const client = rpcClient(Jobs, h);
    const calls = [client.call('slow', {}), client.call('slow', { ms: 60_000 }), client.call('slow', {}, { onProgress: () => {} })];
    await sleep(100);
    h.kill('SIGKILL');
    for (const p of calls) {
      const e = await rejection(p);
      expect(e).toBeInstanceOf(IpcError);
      expect(e.code).toBe('DISCONNECTED');
      expect(e.message).toMatch(/SIGKILL/); // the Helper endpoint says why
    }
    expect(client.closed).toBe(true);
    expect(client.pending).toBe(0);
  });
});

describe('RPC served by main to a hostile helper', () => {
  it('refuses bad frames, answers the flood in order, closes the handles it was sent', T, async () => {
    const errors: Error[] = [];
    const before = fdCount();
    const h = await spawn('hostile.mjs');
    let server: ReturnType<typeof serve> | undefined;
    server = serve(Jobs, h, jobHandlers(() => server), { onError: (e) => errors.push(e) });
    expect(await h.exited).toEqual({ code: 0, signal: null }); // the helper checked every reply
    await server.done;
    expect(errors.map((e) => (e as IpcError).code)).toEqual(['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED']);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/not an RPC frame[\s\S]*bad id[\s\S]*subscription to "nope"[\s\S]*unknown type "result"/);
    await sleep(100);
    expect(fdCount()).toBe(before);
  });
});

describe('RPC between two helpers', () => {
  it('a client helper calls a server helper directly over channels main handed out', T, async () => {
    const serverHelper = await spawn('server.mjs', ['peer']);
    const clientHelper = await spawn('client.mjs');
    const [reqTx, reqRx] = channel();
    const [repTx, repRx] = channel();
    serverHelper.send({ tx: repTx, rx: reqRx }); // reqRx moves
    clientHelper.send({ tx: reqTx, rx: repRx }); // repRx moves
    reqTx.close(); // main keeps no end: each sender has one writer, in the helper
    repTx.close();
    const report = (await clientHelper.recv({ timeout: 20_000 })) as Record<string, unknown>;
    expect(report).toMatchObject({
      sum: 42,
      counted: 'counted',
      progress: [1, 2, 3, 4],
      text: 'from helper to helper',
      error: { name: 'RpcError', code: 'NO_SUCH_JOB', message: 'no such job', remote: true },
      serverPid: serverHelper.pid,
      pid: clientHelper.pid,
    });
    // The client helper closed its client: the server helper's link ended.
    expect(await serverHelper.recv({ timeout: 10_000 })).toEqual({ done: true });
  });
});

describe('an idle client', () => {
  it('does not keep the process alive; a waiting call or a listener does', T, async () => {
    const idle = await spawnFixture('rpc/idle-client.mjs', {}, 10_000).done;
    expect(idle.code).toBe(0);
    const call = await spawnFixture('rpc/idle-client.mjs', {}, 10_000, ['call']).done;
    expect(call).toMatchObject({ code: 0, stdout: 'TIMEOUT\n' }); // alive until the call timed out
    const listening = spawnFixture('rpc/idle-client.mjs', {}, 1500, ['listen']);
    await expect(listening.done).rejects.toThrow(/did not finish within 1500 ms/);
  });
});

describe('two copies of the library in one process', () => {
  it('an RpcError of one copy is an RpcError of the other (ESM and CJS builds; the built package and the sources)', T, async () => {
    const dist = fileURLToPath(new URL('../dist/main/', import.meta.url));
    const cjs = createRequire(import.meta.url)(`${dist}index.cjs`);
    const esm = await import(pathToFileURL(`${dist}index.js`).href);
    const fromCjs = new cjs.RpcError('NOT_FOUND', 'x', { remote: true });
    expect(fromCjs instanceof esm.RpcError).toBe(true);
    expect(esm.isRpcError(fromCjs, 'NOT_FOUND')).toBe(true);
    expect(cjs.isRpcError(new esm.RpcError('X', 'y'))).toBe(true);
    // The built class and the one this test imports from src/ are two distinct classes.
    expect(cjs.RpcError).not.toBe(RpcError);
    expect(fromCjs instanceof RpcError).toBe(true);
    expect(isRpcError(fromCjs, 'NOT_FOUND')).toBe(true);
    expect(new RpcError('X', 'y') instanceof cjs.RpcError).toBe(true);
  });
});
