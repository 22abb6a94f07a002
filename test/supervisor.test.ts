/**
 * Supervision (src/main/supervisor.ts): superviseHelper restarts crashed helpers with backoff,
 * reports each exit with its cause, gives up after too many restarts; helperPool spreads work and
 * replaces crashed members; Helper's Symbol.asyncDispose and util.inspect. Helpers are real node
 * children loading the built library (run `npx tsup` first).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { channel } from '../src/main/channel.js';
import { connectToParent, spawnHelper } from '../src/main/helper.js';
import { helperPool, superviseHelper, type HelperExitEvent, type HelperPool, type HelperSupervisor } from '../src/main/supervisor.js';
import { IpcError } from '../src/shared/errors.js';
import { root, settledFdCount, until, skipOnWin32 } from './helpers.js';

const T = { timeout: 60_000 };
const worker = path.join(root, 'test', 'fixtures', 'services', 'worker.mjs');
const owned: Array<HelperSupervisor<any, any> | HelperPool<any, any>> = [];
afterEach(async () => {
  for (const o of owned.splice(0)) await o.close();
});

type Msg = { op: string; [k: string]: unknown };
const fast = { backoff: (n: number) => 20 * n };

async function pidOf(h: { send(v: Msg): void; recv(): Promise<any> }): Promise<number> {
  h.send({ op: 'pid' });
  return (await h.recv()).pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('superviseHelper', () => {
  it('restarts a crashed helper after the backoff; onStart runs per instance; onExit gets the cause; the old instance reads DISCONNECTED', skipOnWin32('Windows has no POSIX signals: a killed process ends with an exit code, never a signal', T), async () => {
    const events: HelperExitEvent[] = [];
    const starts: Array<{ pid: number; restarts: number }> = [];
    const sup = await superviseHelper<Msg, any>(worker, {
      restart: { maxRestarts: 3, backoff: { initialMs: 50, factor: 2 } },
      onStart: (h, info) => void starts.push({ pid: h.pid, restarts: info.restarts }),
      onExit: (e) => void events.push(e),
    });
    owned.push(sup);
    const first = await sup.ready();
    expect(sup.state).toBe('running');
    expect(await pidOf(first)).toBe(first.pid);
    const t0 = performance.now();
    first.send({ op: 'crash' });
    const err = await first.recv().then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(IpcError);
    expect(err.code).toBe('DISCONNECTED');
    expect(err.message).toMatch(/killed by SIGKILL/);
    const second = await sup.ready({ timeout: 20_000 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect(second.pid).not.toBe(first.pid);
    expect(await pidOf(second)).toBe(second.pid);
    expect(sup.helper).toBe(second);
    expect(sup.restarts).toBe(1);
    expect(starts).toEqual([
      { pid: first.pid, restarts: 0 },
      { pid: second.pid, restarts: 1 },
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ helper: first, pid: first.pid, cause: 'signal', signal: 'SIGKILL', code: null, restart: true, delayMs: 50, restarts: 0 });
    // A second crash waits twice as long.
    second.send({ op: 'exit', code: 7 });
    await sup.ready({ timeout: 20_000 }).then(async (h) => (h === second ? new Promise((r) => setTimeout(r, 50)).then(() => sup.ready({ timeout: 20_000 })) : h));
    // The exit event comes from the child's 'exit' (its own event-loop turn): wait for it, bounded.
    await until(() => events.length >= 2);
    expect(events[1]).toMatchObject({ pid: second.pid, cause: 'exit', code: 7, signal: null, restart: true, delayMs: 100, restarts: 1 });
    expect(inspect(sup)).toMatch(/^HelperSupervisor \{ module: 'worker\.mjs', state: '(running|restarting)', pid: (\d+|none), restarts: [12] \}$/);
  });

  it('gives up after maxRestarts within the window: state failed, ready() rejects DISCONNECTED naming the limit', skipOnWin32('Windows has no POSIX signals: a killed process ends with an exit code, never a signal', T), async () => {
    const events: HelperExitEvent[] = [];
    const sup = await superviseHelper<Msg, any>(worker, {
      restart: { maxRestarts: 2, windowMs: 60_000, backoff: fast.backoff },
      // Every instance crashes as soon as it is started.
      onStart: (h) => h.send({ op: 'crash' }),
      onExit: (e) => void events.push(e),
    });
    owned.push(sup);
    await expect.poll(() => sup.state, { timeout: 20_000 }).toBe('failed');
    expect(events.map((e) => [e.cause, e.restart])).toEqual([
      ['signal', true],
      ['signal', true],
      ['signal', false],
    ]);
    const err = await sup.ready().catch((e) => e);
    expect(err).toMatchObject({ code: 'DISCONNECTED' });
    expect(err.message).toMatch(/was killed by SIGKILL; it was restarted 2 times within 60000 ms \(restart.maxRestarts 2\), so the supervisor gave up/);
    expect(sup.helper).toBeUndefined();
    for (const e of events) expect(alive(e.pid!)).toBe(false);
  });

  it('reports failed restarts as start-failed with the error, and recovers when the helper can start again', skipOnWin32('Windows has no POSIX signals: a killed process ends with an exit code, never a signal', T), async () => {
    const marker = path.join(tmpdir(), `eipc-h5-fail-${process.pid}`);
    rmSync(marker, { force: true });
    const events: HelperExitEvent[] = [];
    const sup = await superviseHelper<Msg, any>(worker, {
      env: { ...process.env, WORKER_FAIL_IF_EXISTS: marker },
      stdio: 'pipe',
      restart: { maxRestarts: 10, backoff: () => 100 },
      onExit: (e) => {
        events.push(e);
        // After two failed starts, let the next one succeed.
        if (events.filter((x) => x.cause === 'start-failed').length === 2) rmSync(marker, { force: true });
      },
    });
    owned.push(sup);
    const first = await sup.ready();
    writeFileSync(marker, '');
    first.send({ op: 'crash' });
    await expect.poll(() => sup.helper !== undefined && sup.helper !== first, { timeout: 20_000 }).toBe(true);
    expect(events.map((e) => e.cause)).toEqual(['signal', 'start-failed', 'start-failed']);
    expect(events[1]!.error).toBeInstanceOf(IpcError);
    expect(events[1]!.error!.message).toMatch(/exited with code 3 before it connected/);
    expect(events[1]!.helper).toBeUndefined();
    expect(sup.restarts).toBe(3);
    rmSync(marker, { force: true });
  });

  it('an exit with code 0 ends the supervision unless restart.on is always', T, async () => {
    const sup = await superviseHelper<Msg, any>(worker, { restart: fast });
    owned.push(sup);
    (await sup.ready()).send({ op: 'exit', code: 0 });
    await expect.poll(() => sup.state, { timeout: 20_000 }).toBe('stopped');
    await expect(sup.ready()).rejects.toThrow(/exited with code 0; it is not restarted \(restart.on is 'failure'\)/);

    const always = await superviseHelper<Msg, any>(worker, { restart: { ...fast, on: 'always' } });
    owned.push(always);
    const a = await always.ready();
    a.send({ op: 'exit', code: 0 });
    await expect.poll(() => always.helper !== undefined && always.helper !== a, { timeout: 20_000 }).toBe(true);
    expect(always.state).toBe('running');
  });

  it('a first start that fails rejects at once, without restarts', T, async () => {
    const marker = path.join(tmpdir(), `eipc-h5-first-${process.pid}`);
    writeFileSync(marker, '');
    const events: HelperExitEvent[] = [];
    try {
      const p = superviseHelper(worker, { env: { ...process.env, WORKER_FAIL_IF_EXISTS: marker }, stdio: 'pipe', onExit: (e) => void events.push(e) });
      await expect(p).rejects.toMatchObject({ code: 'DISCONNECTED' });
      expect(events).toEqual([]);
    } finally {
      rmSync(marker, { force: true });
    }
  });

  it('close() stops the helper, cancels a pending restart, rejects ready() with CLOSED; asyncDispose closes', T, async () => {
    const before = await settledFdCount();
    const events: HelperExitEvent[] = [];
    const sup = await superviseHelper<Msg, any>(worker, { restart: { backoff: () => 30_000 }, onExit: (e) => void events.push(e) });
    const h = await sup.ready();
    h.send({ op: 'crash' });
    await expect.poll(() => sup.state, { timeout: 20_000 }).toBe('restarting');
    const waiting = sup.ready();
    const t0 = performance.now();
    await sup.close();
    expect(performance.now() - t0).toBeLessThan(5000);
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(sup.state).toBe('closed');
    expect(events).toHaveLength(1);

    const sup2 = await superviseHelper<Msg, any>(worker, { onExit: (e) => void events.push(e) });
    const h2 = await sup2.ready();
    await sup2[Symbol.asyncDispose]();
    expect(h2.exitStatus).toBeDefined();
    expect(events.at(-1)).toMatchObject({ cause: 'closed', restart: false, pid: h2.pid });
    expect(await settledFdCount()).toBe(before);
  });

  it('rejects unknown restart options and bad values', async () => {
    await expect(superviseHelper(worker, { restart: { maxRestart: 1 } as never })).rejects.toThrow(/unknown option 'maxRestart'; the options are: maxRestarts, windowMs, backoff, on/);
    await expect(superviseHelper(worker, { restart: { backoff: { initial: 1 } } as never })).rejects.toThrow(/unknown option 'initial'/);
    await expect(superviseHelper(worker, { restart: { on: 'sometimes' } as never })).rejects.toThrow(TypeError);
    await expect(helperPool(worker, { size: 0 })).rejects.toThrow(RangeError);
    await expect(superviseHelper(worker, { timout: 5 } as never)).rejects.toThrow(/superviseHelper\(\): unknown option 'timout'; the options are: args, env, .*, restart, onStart, onExit$/);
    await expect(helperPool(worker, { size: 2, sise: 1 } as never)).rejects.toThrow(/helperPool\(\): unknown option 'sise'; .*, size$/);
    // spawnHelper: a typo is named, and `restart` points at the supervisor.
    await expect(spawnHelper(worker, { timout: 100 } as never)).rejects.toThrow(/spawnHelper\(\): unknown option 'timout'; the options are: args, env, cwd, execArgv, timeout,/);
    await expect(spawnHelper(worker, { restart: { maxRestarts: 1 } } as never)).rejects.toThrow(/does not restart helpers: use superviseHelper\(modulePath, \{ restart \}\)/);
    expect(() => connectToParent({ nme: 'x' } as never)).toThrow(/connectToParent\(\): unknown option 'nme'; the options are: schema, limits, name/);
  });
});

describe('Helper', () => {
  it('has Symbol.asyncDispose (resolves once exited) and prints usefully', T, async () => {
    const h = await spawnHelper<Msg, any>(worker);
    expect(inspect(h)).toBe(`Helper { module: 'worker.mjs', pid: ${h.pid}, runner: 'node', state: 'running' }`);
    await h[Symbol.asyncDispose]();
    expect(h.exitStatus).toEqual({ code: 0, signal: null });
    expect(inspect(h)).toBe(`Helper { module: 'worker.mjs', pid: ${h.pid}, runner: 'node', state: 'exited with code 0' }`);
  });
});

/** One job on a pool member: a reply channel of its own, the helper answers on it. */
async function job(h: { send(v: Msg): void }, n: number, delayMs = 0, signal?: AbortSignal): Promise<{ pid: number; result: number }> {
  const [tx, rx] = channel<{ pid: number; result: number }>();
  try {
    h.send({ op: 'job', n, delayMs, reply: tx });
    tx.close();
    return await rx.recv({ signal });
  } finally {
    rx.close();
  }
}

describe('helperPool', () => {
  it('spreads work over its members: least busy first, round-robin among equals', T, async () => {
    const before = await settledFdCount();
    const pool = await helperPool<Msg, any>(worker, { size: 3 });
    owned.push(pool);
    const pids = pool.helpers.map((h) => h.pid);
    expect(new Set(pids).size).toBe(3);
    // Sequential: one after the other, in turn.
    const seq = [];
    for (let i = 0; i < 6; i++) seq.push((await pool.use((h) => job(h, i))).pid);
    expect(seq.slice(0, 3).sort()).toEqual([...pids].sort());
    expect(seq.slice(3)).toEqual(seq.slice(0, 3));
    // Concurrent: 30 jobs of 20 ms are spread evenly (least busy).
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => pool.use((h) => job(h, i, 20))));
    expect(results.map((r) => r.result)).toEqual(Array.from({ length: 30 }, (_, i) => i * 2));
    const per = new Map<number, number>();
    for (const r of results) per.set(r.pid, (per.get(r.pid) ?? 0) + 1);
    expect([...per.values()]).toEqual([10, 10, 10]);
    expect(inspect(pool)).toMatch(/^HelperPool \{ size: 3, live: 3, members \(pid:in-flight\): \[\d+:0, \d+:0, \d+:0\] \}$/);
    await pool.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('a member that dies mid-work: that work rejects DISCONNECTED naming it, its signal aborts, the pool replaces it, the rest completes', T, async () => {
    const exits: HelperExitEvent[] = [];
    const pool = await helperPool<Msg, any>(worker, { size: 2, restart: fast, onExit: (e) => void exits.push(e) });
    owned.push(pool);
    const [a, b] = pool.helpers;
    let seenSignal: AbortSignal | undefined;
    let innerError: unknown;
    const doomed = pool.use(async (h, signal) => {
      seenSignal = signal;
      try {
        return await job(h, 1, 10_000);
      } catch (e) {
        innerError = e;
        throw e;
      }
    });
    const fine = pool.use((h) => job(h, 2, 300));
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.inFlight(a!)).toBe(1);
    expect(pool.inFlight(b!)).toBe(1);
    a!.kill('SIGKILL');
    const err = await doomed.catch((e) => e);
    expect(err).toBeInstanceOf(IpcError);
    expect(err.code).toBe('DISCONNECTED');
    expect(err.message).toBe(`helper worker.mjs (pid ${a!.pid}) was killed by SIGKILL while this work was in flight; the pool starts a replacement`);
    expect(seenSignal!.aborted).toBe(true);
    expect((await fine).pid).toBe(b!.pid);
    // The work's own reply receiver saw the helper die too (the reply sender died with it).
    await expect.poll(() => (innerError as IpcError | undefined)?.code, { timeout: 5000 }).toBe('DISCONNECTED');
    await expect.poll(() => pool.helpers.length === 2 && !pool.helpers.includes(a!), { timeout: 20_000 }).toBe(true);
    expect(exits).toHaveLength(1);
    expect(exits[0]).toMatchObject({ pid: a!.pid, cause: 'signal', restart: true });
    const r = await Promise.all([pool.use((h) => job(h, 5)), pool.use((h) => job(h, 6))]);
    expect(r.map((x) => x.result)).toEqual([10, 12]);
    expect(new Set(r.map((x) => x.pid)).size).toBe(2);
  });

  it('use() waits for a restarting member, times out, and is CLOSED after close()', T, async () => {
    const pool = await helperPool<Msg, any>(worker, { size: 1, restart: { backoff: () => 500 } });
    owned.push(pool);
    const [a] = pool.helpers;
    a!.kill('SIGKILL');
    await expect.poll(() => pool.helpers.length, { timeout: 5000 }).toBe(0);
    await expect(pool.use((h) => job(h, 1), { timeout: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    const r = await pool.use((h) => job(h, 4), { timeout: 20_000 });
    expect(r.result).toBe(8);
    expect(r.pid).not.toBe(a!.pid);
    await pool.close();
    await expect(pool.use((h) => job(h, 1))).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
