/**
 * Supervision with the RPC layer: a pool of RPC helpers (test/fixtures/rpc/server.mjs, H4's Jobs
 * protocol), one rpcClient per instance made in onStart, calls spread by pool.use(); a member
 * killed mid-call rejects that call with the pool's DISCONNECTED and is replaced; a supervised
 * RPC helper is re-wired on restart. Helpers load the built library (run `npx tsup` first).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Helper } from '../src/main/helper.js';
import { rpcClient, type RpcClient } from '../src/main/rpc/client.js';
import { helperPool, superviseHelper, type HelperPool, type HelperSupervisor } from '../src/main/supervisor.js';
import { IpcError } from '../src/shared/errors.js';
import type { Protocol } from '../src/shared/protocol.js';
// @ts-expect-error a plain .mjs fixture shared with the helpers (one protocol definition for both sides)
import { Jobs as JobsAny } from './fixtures/rpc/protocol.mjs';
import { root } from './helpers.js';

const Jobs = JobsAny as Protocol;
const server = path.join(root, 'test', 'fixtures', 'rpc', 'server.mjs');
const T = { timeout: 60_000 };
const owned: Array<HelperSupervisor<any, any> | HelperPool<any, any>> = [];
afterEach(async () => {
  for (const o of owned.splice(0)) await o.close();
});

describe('RPC over supervised helpers', () => {
  it('a pool of RPC helpers: calls spread, a member killed mid-call rejects that call and is replaced', T, async () => {
    const clients = new WeakMap<Helper<any, any>, RpcClient<any>>();
    const pool = await helperPool<any, any>(server, {
      size: 2,
      restart: { backoff: () => 20 },
      onStart: (h) => void clients.set(h, rpcClient(Jobs, h)),
    });
    owned.push(pool);
    const call = (method: string, input?: unknown) => pool.use((h, signal) => (clients.get(h) as any).call(method, input, { signal }));
    const pids = await Promise.all([call('pid'), call('pid'), call('pid'), call('pid')]);
    expect(new Set(pids)).toEqual(new Set(pool.helpers.map((h) => h.pid)));
    expect(await call('add', { a: 20, b: 22 })).toBe(42);

    // A call that cannot finish, on the member that gets killed.
    let aborted: AbortSignal | undefined;
    const stuck = pool.use((h, signal) => {
      aborted = signal;
      return (clients.get(h) as any).call('slow', { ms: 60_000 }, { signal });
    });
    await new Promise((r) => setTimeout(r, 100));
    const busy = pool.helpers.find((h) => pool.inFlight(h) === 1)!;
    busy.kill('SIGKILL');
    const err = await stuck.catch((e) => e);
    expect(err).toBeInstanceOf(IpcError);
    expect(err.code).toBe('DISCONNECTED');
    expect(err.message).toBe(`helper server.mjs (pid ${busy.pid}) was killed by SIGKILL while this work was in flight; the pool starts a replacement`);
    expect(aborted!.aborted).toBe(true);
    await expect.poll(() => pool.helpers.length === 2 && !pool.helpers.includes(busy), { timeout: 20_000 }).toBe(true);
    const after = await Promise.all([call('pid'), call('pid')]);
    expect(new Set(after)).toEqual(new Set(pool.helpers.map((h) => h.pid)));
    expect(after).not.toContain(busy.pid);
  });

  it('a supervised RPC helper is re-wired in onStart: the old client fails DISCONNECTED, the new one works', T, async () => {
    let client: RpcClient<any> | undefined;
    const sup = await superviseHelper<any, any>(server, {
      restart: { backoff: () => 20 },
      onStart: (h) => {
        client = rpcClient(Jobs, h);
      },
    });
    owned.push(sup);
    const first = client!;
    const pid1 = await (first as any).call('pid');
    sup.helper!.kill('SIGKILL');
    const err = await (first as any).call('slow', { ms: 60_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DISCONNECTED' });
    await expect.poll(() => client !== first && sup.helper !== undefined, { timeout: 20_000 }).toBe(true);
    expect(await (client as any).call('pid')).toBe(sup.helper!.pid);
    expect(sup.helper!.pid).not.toBe(pid1);
  });
});
