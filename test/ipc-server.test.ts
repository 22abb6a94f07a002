/**
 * IpcServer (src/main/ipc-server.ts): many clients, each with its own channel pair; limits,
 * peer checks, clean-up of the name, and hostile clients (silent, garbage, floods). The server
 * runs in this process (from src); clients are real processes: node children that load the
 * built library (run `npx tsup` first) and raw Python peers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { IpcServer, type IpcServerConnection } from '../src/main/ipc-server.js';
import { IpcError } from '../src/shared/errors.js';
import { fdCount, root, settledFdCount, skipOnWin32 } from './helpers.js';

const T = { timeout: 60_000 };
const fixture = (name: string) => path.join(root, 'test', 'fixtures', 'services', name);

const children: ChildProcess[] = [];
const servers: IpcServer[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers.splice(0)) s.close();
});

interface Run {
  child: ChildProcess;
  /** The next stdout line. */
  line(): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let buf = '';
  let stderr = '';
  const lines: string[] = [];
  const wake: Array<() => void> = [];
  child.stdout!.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      wake.splice(0).forEach((w) => w());
    }
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => {
      wake.splice(0).forEach((w) => w());
      setImmediate(() => resolve({ code, signal, stderr }));
    }),
  );
  const line = async (): Promise<string> => {
    for (;;) {
      if (lines.length) return lines.shift()!;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited without printing a line; stderr: ${stderr}`);
      await new Promise<void>((r) => wake.push(r));
    }
  };
  return { child, line, exited };
}

const client = (mode: string, name: string, arg?: string) => run(process.execPath, [fixture('client.mjs'), mode, name, ...(arg === undefined ? [] : [arg])]);
const hostile = (mode: string, name: string, count: number) => run('python3', [fixture('hostile-client.py'), mode, name, String(count)]);
const json = async (r: Run) => JSON.parse(await r.line());

function newServer<Req = any, Res = any>(options?: ConstructorParameters<typeof IpcServer<Req, Res>>[0]): IpcServer<Req, Res> {
  const s = new IpcServer<Req, Res>(options);
  servers.push(s as IpcServer);
  return s;
}

/** Answers every request of a connection with { from: id, echo: request }, then closes it. */
async function echo(conn: IpcServerConnection<any, any>): Promise<void> {
  for await (const m of conn.receiver) conn.sender.send({ id: conn.id, pid: conn.peer.pid, echo: m });
  conn.close();
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('IpcServer', () => {
  it('serves several client processes at once, each on its own channel pair, and counts them', skipOnWin32('checks uids (process.getuid, SO_PEERCRED); Windows has SIDs, and win32 peers report uid -1', T), async () => {
    const before = await settledFdCount();
    const server = newServer();
    const clients = [client('echo', server.name), client('echo', server.name), client('echo', server.name)];
    const conns: IpcServerConnection[] = [];
    const served: Promise<void>[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await server.accept({ timeout: 20_000 });
      conns.push(c);
      served.push(echo(c));
    }
    // Every client is one of the processes, with its own pid and the uid of this user.
    const pids = clients.map((c) => c.child.pid).sort();
    expect(conns.map((c) => c.peer.pid).sort()).toEqual(pids);
    for (const c of conns) expect(c.peer.uid).toBe(process.getuid!());
    expect(new Set(conns.map((c) => c.id)).size).toBe(3);
    for (const cl of clients) {
      const r = await json(cl);
      expect(r.ok).toBe(true);
      // Each client got exactly its own three answers, in order.
      expect(r.replies.map((x: any) => x.echo)).toEqual([0, 1, 2].map((i) => ({ pid: cl.child.pid, i })));
      expect(new Set(r.replies.map((x: any) => x.pid))).toEqual(new Set([cl.child.pid]));
    }
    await Promise.all(served);
    await Promise.all(conns.map((c) => c.ended));
    expect(server.clientCount).toBe(0);
    server.close();
    expect(existsSync(path.dirname(server.name))).toBe(false);
    for (const cl of clients) expect((await cl.exited).code).toBe(0);
    expect(await settledFdCount()).toBe(before);
  });

  it('frees a slot when a client process dies, without any read by the server', T, async () => {
    const server = newServer();
    const c = client('try', server.name);
    const conn = await server.accept({ timeout: 20_000 });
    expect(await json(c)).toEqual({ ok: true });
    expect(server.clientCount).toBe(1);
    c.child.kill('SIGKILL');
    await conn.ended;
    expect(conn.isEnded).toBe(true);
    expect(server.clientCount).toBe(0);
    conn.close();
  });

  it('closing or sending away the connection\'s receiver ends it; the client\'s sends then fail DISCONNECTED', T, async () => {
    const before = await settledFdCount();
    const server = newServer();
    const pending = IpcServer.connect<string, string>(server.name);
    const conn = await server.accept({ timeout: 10_000 });
    const [tx, rx] = await pending;
    expect(server.clientCount).toBe(1);
    conn.receiver.close();
    await conn.ended;
    expect(server.clientCount).toBe(0);
    // Nothing keeps the server's end of the connection open: the client learns it.
    let err: unknown;
    for (let i = 0; i < 100 && !err; i++) {
      try {
        tx.send('hello?');
        await tx.flush();
        await new Promise((r) => setTimeout(r, 10));
      } catch (e) {
        err = e;
      }
    }
    expect(err).toMatchObject({ code: 'DISCONNECTED' });
    conn.close();
    tx.close();
    rx.close();
    server.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('refuses clients past maxClients with a reason, and takes new ones once a slot is free', T, async () => {
    const server = newServer({ maxClients: 2 });
    const a = client('try', server.name);
    const b = client('try', server.name);
    const ca = await server.accept({ timeout: 20_000 });
    const cb = await server.accept({ timeout: 20_000 });
    expect(await json(a)).toEqual({ ok: true });
    expect(await json(b)).toEqual({ ok: true });
    expect(server.clientCount).toBe(2);
    const c = client('try', server.name);
    const refused = await json(c);
    expect(refused).toMatchObject({ ok: false, code: 'DISCONNECTED', name: 'IpcError' });
    expect(refused.message).toMatch(/refused this client: the server has 2 clients, its limit \(maxClients\)/);
    expect(server.clientCount).toBe(2);
    // Closing a connection frees its slot: the client sees DISCONNECTED and exits. (The first
    // welcomed client is whichever connected first: a or b.)
    const ofCa = [a, b].find((r) => r.child.pid === ca.peer.pid)!;
    ca.close();
    expect((await ofCa.exited).code).toBe(0);
    expect(server.clientCount).toBe(1);
    const d = client('try', server.name);
    const cd = await server.accept({ timeout: 20_000 });
    expect(await json(d)).toEqual({ ok: true });
    expect(cd.peer.pid).toBe(d.child.pid);
    cb.close();
    cd.close();
    expect(server.clientCount).toBe(0);
  });

  it('checks peer credentials: fixed ones, a callback given them, a callback that throws', skipOnWin32('checks uids (process.getuid, SO_PEERCRED); Windows has SIDs, and win32 peers report uid -1', T), async () => {
    const uid = process.getuid!();
    const wrongUid = newServer({ peer: { uid: uid + 1 } });
    const r1 = await json(client('try', wrongUid.name));
    expect(r1).toMatchObject({ ok: false, code: 'DISCONNECTED' });
    expect(r1.message).toMatch(/closed the connection before welcoming this client/);
    expect(wrongUid.clientCount).toBe(0);

    const seen: Array<{ pid: number; uid: number; gid: number }> = [];
    let allow = 0;
    const byCallback = newServer({
      peer: (cred) => {
        seen.push(cred);
        return cred.pid === allow;
      },
    });
    const no = client('try', byCallback.name);
    expect(await json(no)).toMatchObject({ ok: false, code: 'DISCONNECTED' });
    const yes = client('try', byCallback.name);
    allow = yes.child.pid!;
    const conn = await byCallback.accept({ timeout: 20_000 });
    expect(await json(yes)).toEqual({ ok: true });
    expect(conn.peer.pid).toBe(allow);
    expect(seen.map((s) => s.pid)).toEqual([no.child.pid, yes.child.pid]);
    expect(seen[0]).toEqual({ pid: no.child.pid, uid, gid: process.getgid!() });
    conn.close();

    const throwing = newServer({
      peer: () => {
        throw new Error('boom');
      },
    });
    expect(await json(client('try', throwing.name))).toMatchObject({ ok: false, code: 'DISCONNECTED' });
    expect(throwing.clientCount).toBe(0);
  });

  it('close() removes the name, rejects waiting accepts with CLOSED, ends iteration; connect afterwards is OS', skipOnWin32('checks that the Unix socket file of the name exists and is removed; a win32 server name is a named pipe, not a file', T), async () => {
    const server = newServer();
    const dir = path.dirname(server.name);
    expect(existsSync(server.name)).toBe(true);
    const waiting = server.accept();
    const iter = (async () => {
      const got = [];
      for await (const c of server) got.push(c);
      return got;
    })();
    server.close();
    server.close();
    expect(server.closed).toBe(true);
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(await iter).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    await expect(server.accept()).rejects.toMatchObject({ code: 'CLOSED' });
    const r = await json(client('try', server.name));
    expect(r).toMatchObject({ ok: false, code: 'OS' });
    expect(r.message).toMatch(/no IpcServer is listening at/);
    await expect(IpcServer.connect(server.name)).rejects.toMatchObject({ code: 'OS' });
  });

  it('accept() times out and honours an abort signal', T, async () => {
    const server = newServer();
    await expect(server.accept({ timeout: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    const ac = new AbortController();
    const p = server.accept({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });

  it('rejects unknown and invalid options with TypeError/RangeError naming them', () => {
    expect(() => new IpcServer({ maxClient: 3 } as never)).toThrow(/unknown option 'maxClient'; the options are: receiver, maxClients/);
    expect(() => new IpcServer({ maxClients: 0 })).toThrow(RangeError);
    expect(() => new IpcServer({ receiver: { maxQueue: -1 } })).toThrow(/receiver.maxQueue must be a positive integer/);
    expect(() => new IpcServer({ peer: { pidd: 1 } as never })).toThrow(/unknown field 'pidd'/);
    expect(() => new IpcServer({ handshakeTimeout: -5 })).toThrow(RangeError);
    return Promise.all([
      expect(IpcServer.connect('')).rejects.toThrow(TypeError),
      expect(IpcServer.connect('/x', { timout: 5 } as never)).rejects.toThrow(/unknown option 'timout'/),
    ]);
  });

  it('prints usefully in util.inspect', skipOnWin32('expects a POSIX socket path (…/s) as the name; win32 names are C:\\\\…\\\\s', T), async () => {
    const server = newServer({ maxClients: 3 });
    expect(inspect(server)).toMatch(/^IpcServer \{ name: '.*\/s', clients: 0, pending: 0, maxClients: 3, closed: false \}$/);
    const c = client('try', server.name);
    const conn = await server.accept({ timeout: 20_000 });
    expect(inspect(conn)).toBe(`IpcServerConnection { id: ${conn.id}, pid: ${c.child.pid}, uid: ${process.getuid!()}, ended: false }`);
    conn.close();
    expect(inspect(conn)).toMatch(/ended: true/);
  });

  it('removes its name when the process dies of SIGTERM, SIGINT or SIGHUP', skipOnWin32('Windows has no POSIX signals: a killed process ends with an exit code, never a signal', T), async () => {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const p = run(process.execPath, [fixture('server-proc.mjs')]);
      const { name } = JSON.parse(await p.line());
      expect(existsSync(name)).toBe(true);
      p.child.kill(sig);
      const e = await p.exited;
      expect(e.signal).toBe(sig);
      expect(existsSync(path.dirname(name))).toBe(false);
    }
  });
});

describe('IpcServer against hostile clients', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), () => {
  it('closes connections that never say hello after handshakeTimeout; past maxPending it closes them at once', T, async () => {
    const before = await settledFdCount();
    const server = newServer({ maxPending: 8, handshakeTimeout: 500 });
    const silent = hostile('silent', server.name, 40);
    expect(await silent.line()).toMatch(/^ready \d+$/);
    // At most maxPending handshakes are held; the others were closed on arrival.
    expect(server.pendingCount).toBeLessThanOrEqual(8);
    expect(fdCount() - before).toBeLessThan(8 + 8);
    // A good client connecting while the silent ones are held is refused (pending full) or, once
    // they timed out, welcomed: it never hangs.
    await until(() => server.pendingCount === 0, 5000);
    const good = client('echo', server.name);
    const conn = await server.accept({ timeout: 20_000 });
    void echo(conn);
    expect((await json(good)).ok).toBe(true);
    expect((await good.exited).code).toBe(0);
    silent.child.stdin!.end();
    await silent.exited;
    await conn.ended;
    server.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('closes connections that send garbage, a message that is no hello, a hello without a sender, or one over 4 KiB', T, async () => {
    const before = await settledFdCount();
    const server = newServer({ handshakeTimeout: 5000 });
    let accepted = 0;
    void (async () => {
      for await (const c of server) {
        accepted++;
        void echo(c);
      }
    })();
    const garbage = hostile('garbage', server.name, 20);
    expect(await garbage.line()).toMatch(/^ready/);
    await until(() => server.pendingCount === 0);
    for (const mode of ['not-hello', 'hello-without-sender']) {
      const c = client(mode, server.name);
      expect(await json(c)).toEqual({ ok: true });
      expect((await c.exited).code).toBe(0);
    }
    // A hello over the handshake's 4 KiB is refused unread (TOO_LARGE): the client's reply
    // receiver ends without an answer.
    const big = client('big-hello', server.name);
    expect(await json(big)).toEqual({ ok: true, answer: { code: 'DISCONNECTED' } });
    await until(() => server.pendingCount === 0);
    expect(accepted).toBe(0);
    expect(server.clientCount).toBe(0);
    garbage.child.stdin!.end();
    await garbage.exited;
    // The server still works.
    const good = client('echo', server.name);
    expect((await json(good)).ok).toBe(true);
    expect((await good.exited).code).toBe(0);
    expect(accepted).toBe(1);
    server.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('survives 10,000 connects: descriptors bounded, event loop responsive, then serves a good client', T, async () => {
    const before = await settledFdCount();
    const server = newServer({ maxPending: 16, handshakeTimeout: 1000 });
    let maxFds = 0;
    let maxGap = 0;
    let last = performance.now();
    const beat = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      maxFds = Math.max(maxFds, fdCount());
    }, 5);
    const flood = hostile('flood', server.name, 10_000);
    const done = await flood.line();
    clearInterval(beat);
    expect(done).toMatch(/^done \d+$/);
    expect(Number(done.split(' ')[1])).toBeGreaterThan(9000);
    expect(maxFds - before).toBeLessThan(16 + 10);
    expect(maxGap).toBeLessThan(1000);
    await until(() => server.pendingCount === 0);
    const good = client('echo', server.name);
    const conn = await server.accept({ timeout: 20_000 });
    void echo(conn);
    expect((await json(good)).ok).toBe(true);
    expect((await good.exited).code).toBe(0);
    await conn.ended;
    server.close();
    expect(await settledFdCount()).toBe(before);
  });
});
