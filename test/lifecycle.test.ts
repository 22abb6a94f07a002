// Endpoint lifecycle: the garbage-collection safety net, environment teardown of worker threads,
// worker threads as peers, thread ownership, and the hardening of the one-shot server.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcOneShotServer, IpcSender, channel } from '../src/main/index.js';
import { fdCount, root, settledFdCount, spawnFixture } from './helpers.js';

const fixture = (rel: string): string => path.join(root, 'test', 'fixtures', rel);


function runNode(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} timed out\n${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

function workerExit(w: Worker): Promise<number> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', resolve);
  });
}

describe('lifecycle', () => {
  it('endpoints dropped without close() are released by the garbage-collection safety net', async () => {
    const r = await runNode(['--expose-gc', fixture('lifecycle/gc.mjs')]);
    expect(r.stderr).toBe('');
    const { base, made, after } = JSON.parse(r.stdout) as { base: number; made: number; after: number };
    expect(made - base).toBeGreaterThanOrEqual(2500); // they were really open
    expect(after).toBe(base);
  });

  it('a worker thread that exits without closing anything leaves no descriptor behind', async () => {
    const before = await settledFdCount();
    for (const exit of ['natural', 'exit']) {
      const w = new Worker(fixture('lifecycle/worker-leak.mjs'), { workerData: { exit } });
      await workerExit(w);
    }
    // terminate() in the middle of a pending recv() too.
    const w = new Worker(fixture('lifecycle/worker-leak.mjs'), { workerData: { exit: 'terminate' } });
    await new Promise((r) => setTimeout(r, 200));
    await w.terminate();
    expect(await settledFdCount()).toBe(before);
  });

  it('a worker thread talks to the main thread through a one-shot server', async () => {
    const before = await settledFdCount();
    const server = new IpcOneShotServer<unknown>();
    const w = new Worker(fixture('lifecycle/worker-talk.mjs'), { workerData: { name: server.name } });
    // Listen at once: the worker may be gone before the main thread gets to its last step.
    const exited = workerExit(w);
    const [rx, first] = await server.accept({ timeout: 10_000 });
    const { hello, reply } = first as { hello: string; reply: IpcSender<number> };
    expect(hello).toBe('from worker');
    for (let i = 0; i < 100; i++) reply.send(i);
    for (let i = 0; i < 100; i++) expect(await rx.recv()).toBe(i * 2);
    reply.close();
    await expect(rx.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    rx.close();
    expect(await exited).toBe(0);
    expect(await settledFdCount()).toBe(before);
  });

  it('an endpoint cannot be handed to another thread (only its descriptor, through a channel)', async () => {
    const [tx, rx] = channel<number>();
    const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
    expect(() => w.postMessage(tx)).toThrow(/could not be cloned/);
    expect(() => w.postMessage({ rx })).toThrow(/could not be cloned/);
    await w.terminate();
    tx.send(1);
    expect(await rx.recv()).toBe(1);
    tx.close();
    rx.close();
  });
});

describe('one-shot server bootstrap', () => {
  it('listens in a private 0700 directory that is removed once a client is accepted', async () => {
    const server = new IpcOneShotServer<unknown>();
    const dir = path.dirname(server.name);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([path.basename(server.name)]);
    const child = spawnFixture('lifecycle/connect.mjs', { EIPC_SERVER: server.name });
    const [rx, first] = await server.accept({ timeout: 10_000 });
    expect(first).toEqual({ legit: child.child.pid });
    expect(existsSync(dir)).toBe(false);
    await child.done;
    rx.close();
  });

  it('removes the directory on close() and at process exit', async () => {
    const server = new IpcOneShotServer<unknown>();
    server.close();
    expect(existsSync(path.dirname(server.name))).toBe(false);
    for (const how of ['exit', 'throw']) {
      const r = spawnFixture('lifecycle/server-exit.mjs', { EIPC_HOW: how });
      const out = await r.done;
      const dirs = JSON.parse(out.stdout.trim()) as string[];
      expect(dirs).toHaveLength(2);
      for (const d of dirs) expect(existsSync(d), `${how}: ${d}`).toBe(false);
    }
  });

  it('accept({ timeout }) rejects TIMEOUT and removes the name', async () => {
    const server = new IpcOneShotServer<unknown>();
    await expect(server.accept({ timeout: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    server.close();
    expect(existsSync(server.name)).toBe(false);
  });

  it('accept({ peer }) refuses another process that connects first (SO_PEERCRED) and takes the expected one', async () => {
    const before = await settledFdCount();
    const server = new IpcOneShotServer<unknown>();
    const impostor = spawn('python3', [fixture('hostile/peer.py'), 'impostor', server.name], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => impostor.stdout.once('data', () => resolve()));
    // The impostor is connected and has sent a valid first message; now the expected peer starts.
    const legit = spawn(process.execPath, [fixture('lifecycle/connect.mjs')], {
      env: { ...process.env, EIPC_SERVER: server.name },
      stdio: 'ignore',
    });
    const [rx, first] = await server.accept({ timeout: 10_000, peer: { pid: legit.pid!, uid: process.getuid!() } });
    expect(first).toEqual({ legit: legit.pid });
    impostor.stdin.end();
    await new Promise((r) => impostor.once('exit', r));
    await new Promise((r) => (legit.exitCode === null ? legit.once('exit', r) : r(null)));
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('refuses a peer of another uid', async () => {
    const server = new IpcOneShotServer<unknown>();
    const child = spawnFixture('lifecycle/connect.mjs', { EIPC_SERVER: server.name });
    await expect(server.accept({ timeout: 500, peer: { uid: process.getuid!() + 1 } })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await child.done;
    server.close();
  });

  it('a second connect() to a used name fails with a clear error', async () => {
    const server = new IpcOneShotServer<unknown>();
    const first = IpcSender.connect<number>(server.name);
    first.send(1);
    const [rx] = await server.accept({ timeout: 10_000 });
    let err: unknown;
    try {
      IpcSender.connect(server.name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IpcError);
    expect((err as IpcError).message).toMatch(/no one-shot server is listening at .*already used, closed, or never existed/);
    first.close();
    rx.close();
  });
});
