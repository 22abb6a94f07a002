import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EAGAIN } from '../../src/main/native.js';
import { O_CLOEXEC, O_NONBLOCK, fdFlags, n, recv } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'eic-server-'));
let seq = 0;
const sockPath = () => path.join(dir, `s${seq++}`);
const opened: number[] = [];
const own = (fd: number) => (opened.push(fd), fd);
afterEach(() => {
  for (const fd of opened.splice(0)) {
    try {
      n.close(fd);
    } catch {
      // closed by the test
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errnoOf(f: () => unknown): NodeJS.ErrnoException {
  try {
    f();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('expected a throw');
}

describe('listen / accept / connect', () => {
  it('connects, accepts, and carries packets both ways', () => {
    const p = sockPath();
    const server = own(n.listen(p));
    expect(n.fdInfo(server)).toMatchObject({ kind: 'seqpacket', listening: true });
    expect(n.accept(server)).toBe(EAGAIN);
    const client = own(n.connect(p));
    const conn = own(n.accept(server));
    expect(conn).toBeGreaterThanOrEqual(0);
    for (const fd of [server, client, conn]) {
      expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    }
    expect(n.fdInfo(conn)).toMatchObject({ kind: 'seqpacket', listening: false });
    n.sendPacket(client, [new Uint8Array([1, 2, 3])], null);
    expect([...recv(conn).packets[0].bytes]).toEqual([1, 2, 3]);
    n.sendPacket(conn, [new Uint8Array([4])], [conn]);
    const back = recv(client).packets[0];
    expect([...back.bytes]).toEqual([4]);
    expect(back.fds).toHaveLength(1);
    own(back.fds[0]);
    // The client side is non-blocking after the (blocking) connect.
    expect(recv(client).status).toBe(EAGAIN);
  });

  it('reports the peer credentials of both ends', () => {
    const p = sockPath();
    const server = own(n.listen(p));
    const client = own(n.connect(p));
    const conn = own(n.accept(server));
    const expected = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    expect(n.peerCredentials(conn)).toEqual(expected);
    expect(n.peerCredentials(client)).toEqual(expected);
    const [a, b] = n.socketpair().map(own);
    expect(n.peerCredentials(a).pid).toBe(process.pid);
    expect(n.peerCredentials(b).pid).toBe(process.pid);
  });

  it('throws ENOENT for a missing path and ECONNREFUSED for a closed server', () => {
    const missing = errnoOf(() => n.connect(path.join(dir, 'missing')));
    expect(missing).toMatchObject({ code: 'ENOENT', errno: 2, syscall: 'connect' });
    const p = sockPath();
    n.close(n.listen(p));
    expect(errnoOf(() => n.connect(p))).toMatchObject({ code: 'ECONNREFUSED', errno: 111, syscall: 'connect' });
  });

  it('throws EADDRINUSE for a taken path and ENAMETOOLONG for a path longer than sun_path', () => {
    const p = sockPath();
    own(n.listen(p));
    const before = n.openCount();
    expect(errnoOf(() => n.listen(p))).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect(n.openCount()).toBe(before); // the failed socket was closed
    expect(errnoOf(() => n.listen(path.join(dir, 'x'.repeat(120))))).toMatchObject({ code: 'ENAMETOOLONG' });
    expect(() => n.listen('a\0b')).toThrow(TypeError);
  });

  it('accepts a connection whose client already closed, then sees end-of-file', () => {
    const p = sockPath();
    const server = own(n.listen(p));
    const client = n.connect(p);
    n.sendPacket(client, [new Uint8Array([5])], null);
    n.close(client);
    const conn = own(n.accept(server));
    const r = recv(conn);
    expect([...r.packets[0].bytes]).toEqual([5]);
    expect(r.eof).toBe(true);
  });
});
