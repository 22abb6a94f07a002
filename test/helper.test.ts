/**
 * spawnHelper/connectToParent with real Node child processes (the runner used outside Electron's
 * main process). Children load the built library: run `npm run build:ts` first.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { channel } from '../src/main/channel.js';
import { connectToParent, spawnHelper, type Helper } from '../src/main/helper.js';
import { IpcError } from '../src/shared/errors.js';
import { fdCount, skipOnWin32 } from './helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/helpers/${name}`, import.meta.url));
const T = { timeout: 20_000 };

const live: Array<Helper<unknown, unknown>> = [];
async function spawn<Out = any, In = any>(name: string, options: Parameters<typeof spawnHelper<Out, In>>[1] = {}) {
  const h = await spawnHelper<Out, In>(fixture(name), { timeout: 10_000, ...options });
  live.push(h as Helper<unknown, unknown>);
  return h;
}
afterEach(async () => {
  for (const h of live.splice(0)) {
    h.kill('SIGKILL');
    await h.exited;
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejection(p: Promise<unknown>): Promise<IpcError> {
  try {
    await p;
  } catch (e) {
    return e as IpcError;
  }
  throw new Error('did not reject');
}

describe('spawnHelper', () => {
  it('starts a helper that connects back, with the pid that was checked', T, async () => {
    const h = await spawn('echo.mjs');
    expect(h.runner).toBe('node');
    expect(h.pid).toBeGreaterThan(0);
    expect(h.pid).not.toBe(process.pid);
    h.send({ op: 'echo', value: { nested: [1, 'two', new Uint8Array([3])] } });
    expect(await h.recv()).toEqual({ op: 'echo', value: { nested: [1, 'two', new Uint8Array([3])] } });
    h.send({ op: 'pid' });
    expect(await h.recv()).toEqual({ op: 'pid', pid: h.pid, ppid: process.pid });
    expect(h.exitStatus).toBeUndefined();
  });

  it('validates messages from the helper with the parent schema', T, async () => {
    const Msg = z.object({ ok: z.boolean() });
    const h = await spawn<unknown, z.infer<typeof Msg>>('echo.mjs', { schema: Msg });
    h.send({ op: 'say', value: { ok: 'yes' } });
    const e = await rejection(h.recv());
    expect(e).toBeInstanceOf(IpcError);
    expect(e.code).toBe('INVALID');
    expect(e.message).toMatch(/ok: /);
    h.send({ op: 'say', value: { ok: true } });
    expect(await h.recv()).toEqual({ ok: true });
  });

  it('closes the descriptors of a message its schema refuses', T, async () => {
    const Msg = z.object({ ok: z.boolean() });
    const h = await spawn<unknown, z.infer<typeof Msg>>('echo.mjs', { schema: Msg });
    const [s, r] = channel<number>();
    const before = fdCount();
    h.send({ op: 'say', value: { ok: 'no', s } });
    expect((await rejection(h.recv())).code).toBe('INVALID');
    expect(fdCount()).toBe(before);
    s.close();
    r.close();
  });

  it('lets the helper validate what the parent sends', T, async () => {
    const h = await spawn('strict.mjs');
    h.send({ op: 'ping', n: 1 });
    expect(await h.recv()).toEqual({ pong: 1 });
    h.send({ op: 'rm', n: 'x' });
    expect(await h.recv()).toMatchObject({ error: 'INVALID', message: expect.stringMatching(/expected \{ op: "ping"/) });
    h.send({ op: 'ping', n: 2 });
    expect(await h.recv()).toEqual({ pong: 2 });
  });

  it('names the module, exit code and stderr when the helper dies before connecting', T, async () => {
    const e = await rejection(spawnHelper(fixture('exits-early.mjs'), { stdio: 'inherit' }));
    expect(e).toBeInstanceOf(IpcError);
    expect(e.code).toBe('DISCONNECTED');
    expect(e.message).toMatch(/helper exits-early\.mjs \(.*exits-early\.mjs, pid \d+\) exited with code 3 before it connected/);
    expect(e.message).toMatch(/cannot find my configuration/);
  });

  it('reports a missing module as the helper exiting with code 1', T, async () => {
    const e = await rejection(spawnHelper(fixture('no-such-helper.mjs')));
    expect(e.code).toBe('DISCONNECTED');
    expect(e.message).toMatch(/no-such-helper\.mjs.*exited with code 1 before it connected[\s\S]*Cannot find module/);
  });

  it('times out a helper that never connects, and kills it', T, async () => {
    const started = Date.now();
    const e = await rejection(spawnHelper(fixture('never-connects.mjs'), { timeout: 500 }));
    expect(e.code).toBe('TIMEOUT');
    expect(e.message).toMatch(/helper never-connects\.mjs .*did not connect within 500 ms; it was killed/);
    expect(Date.now() - started).toBeLessThan(5000);
    const pid = Number(/pid (\d+)/.exec(e.message)?.[1]);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });

  it('refuses a connection from another process than the one it spawned', T, async () => {
    const e = await rejection(spawnHelper(fixture('impostor.mjs'), { timeout: 1500 }));
    expect(e.code).toBe('TIMEOUT');
  });

  it('refuses a helper whose first message is not a sender', T, async () => {
    const e = await rejection(spawnHelper(fixture('bad-first.mjs')));
    expect(e.code).toBe('MALFORMED');
    expect(e.message).toMatch(/bad-first\.mjs.*first message is not a sender/);
  });

  it('rejects a pending receive with DISCONNECTED when the helper is killed', skipOnWin32('Windows has no POSIX signals: a killed process ends with an exit code, never a signal', T), async () => {
    const h = await spawn('echo.mjs');
    const pending = h.recv();
    h.send({ op: 'crash' });
    const e = await rejection(pending);
    expect(e.code).toBe('DISCONNECTED');
    expect(e.message).toMatch(/helper echo\.mjs \(pid \d+\) was killed by SIGKILL/);
    expect(await h.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(() => h.send({ op: 'pid' })).toThrow(expect.objectContaining({ code: 'DISCONNECTED' }));
  });

  it('delivers messages sent before the helper exited, then DISCONNECTED with the exit code', T, async () => {
    const h = await spawn('echo.mjs');
    h.send({ op: 'echo', value: 'last words' });
    h.send({ op: 'exit', code: 7 });
    expect(await h.recv()).toEqual({ op: 'echo', value: 'last words' });
    const e = await rejection(h.recv());
    expect(e.message).toMatch(/exited with code 7/);
    expect(await h.exited).toEqual({ code: 7, signal: null });
  });

  it('close() ends the channel and the helper exits by itself', T, async () => {
    const h = await spawn('echo.mjs');
    expect(await h.close()).toEqual({ code: 0, signal: null });
    expect(h.close()).toBe(h.close());
  });

  it('the async iterator ends when the helper exits', T, async () => {
    const h = await spawn('echo.mjs');
    h.send({ op: 'echo', value: 1 });
    h.send({ op: 'echo', value: 2 });
    h.send({ op: 'exit', code: 0 });
    const got = [];
    for await (const m of h) got.push(m);
    expect(got).toEqual([
      { op: 'echo', value: 1 },
      { op: 'echo', value: 2 },
    ]);
  });
});

describe('helpers talk to each other without the parent in the middle', () => {
  it('over a channel the parent created', T, async () => {
    const a = await spawn('echo.mjs');
    const b = await spawn('echo.mjs');
    const [tx, rx] = channel<{ from: number; i: number }>();
    a.send({ op: 'sendTo', to: tx, count: 3 });
    tx.close(); // a has its own copy
    b.send({ op: 'drain', rx }); // moves rx: the parent no longer has it
    expect(rx.closed).toBe(true);
    expect(await a.recv()).toEqual({ op: 'sent', count: 3 });
    expect(await b.recv()).toEqual({
      op: 'drained',
      got: [0, 1, 2].map((i) => ({ from: a.pid, i })),
    });
  });

  it('over a channel one helper created', T, async () => {
    const a = await spawn('echo.mjs');
    const b = await spawn('echo.mjs');
    a.send({ op: 'makeChannel', count: 2 });
    const { rx } = (await a.recv()) as { rx: unknown };
    b.send({ op: 'drain', rx });
    expect(await b.recv()).toEqual({ op: 'drained', got: [0, 1].map((i) => ({ from: a.pid, i })) });
  });
});

describe('connectToParent', () => {
  it('says how to start the module when it was not spawned by spawnHelper', () => {
    expect(() => connectToParent()).toThrow(/ELECTRON_IPC_CHANNEL_SERVER is not set; start this module with spawnHelper\(\)/);
  });
});

/**
 * The utility-process runner against a stand-in for Electron's `utilityProcess.fork` (a Node
 * child process with UtilityProcess's events: 'spawn', 'exit' with a code only, kill() = SIGTERM).
 */
describe('spawnHelper in Electron main (fake utilityProcess)', () => {
  it('forks with the server name in env, checks the pid, and reports exits by code', skipOnWin32('expects a POSIX server path (eipc-…/s); win32 names are C:\\\\…\\\\s', T), async () => {
    const { EventEmitter } = await import('node:events');
    const { spawn: spawnChild } = await import('node:child_process');
    const { setElectronForTesting } = await import('../src/main/helper.js');
    const forks: Array<{ modulePath: string; args: string[]; options: any }> = [];
    const utilityProcess = {
      fork(modulePath: string, args: string[], options: any) {
        forks.push({ modulePath, args, options });
        const up: any = new EventEmitter();
        const child = spawnChild(process.execPath, [modulePath, ...args], { env: options.env, stdio: ['ignore', 'inherit', 'pipe'] });
        up.pid = undefined;
        up.stdout = null;
        up.stderr = child.stderr;
        child.once('spawn', () => {
          up.pid = child.pid;
          up.emit('spawn');
        });
        child.once('exit', (code, signal) => up.emit('exit', code ?? (signal ? 128 + 9 : 0)));
        up.kill = () => child.kill('SIGTERM');
        return up;
      },
    };
    setElectronForTesting({ utilityProcess });
    try {
      const h = await spawn('echo.mjs', { serviceName: 'echo service' });
      expect(h.runner).toBe('utility');
      expect(forks).toHaveLength(1);
      expect(forks[0]!.options.serviceName).toBe('echo service');
      expect(forks[0]!.options.env.ELECTRON_IPC_CHANNEL_SERVER).toMatch(/eipc-[0-9a-f]+\/s$/);
      h.send({ op: 'pid' });
      expect(await h.recv()).toMatchObject({ op: 'pid', pid: h.pid });
      const pending = h.recv();
      h.send({ op: 'crash' });
      const e = await rejection(pending);
      expect(e.code).toBe('DISCONNECTED');
      expect(e.message).toMatch(/helper echo\.mjs \(pid \d+\) exited with code 137/);
      expect(await h.exited).toEqual({ code: 137, signal: null });

      const early = await rejection(spawnHelper(fixture('exits-early.mjs')));
      expect(early.message).toMatch(/exits-early\.mjs.*exited with code 3 before it connected[\s\S]*cannot find my configuration/);
    } finally {
      setElectronForTesting(undefined);
    }
  });
});
