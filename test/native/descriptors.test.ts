import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fdInfo as fastFdInfo } from '../../src/main/native.js';
import { O_CLOEXEC, O_NONBLOCK, closeQuietly, fdCount, fdFlags, fifo, isOpen, n, waitForCloses } from './helpers.js';

describe('descriptor table', () => {
  it('socketpair gives two close-on-exec, non-blocking SOCK_SEQPACKET descriptors', () => {
    const before = n.openCount();
    const [a, b] = n.socketpair();
    expect(n.openCount()).toBe(before + 2);
    for (const fd of [a, b]) {
      expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
      expect(n.fdInfo(fd)).toEqual({ kind: 'seqpacket', size: 0, seals: 0, listening: false, connected: true, domain: 'unix' });
    }
    n.close(a);
    n.close(b);
    expect(n.openCount()).toBe(before);
    expect(isOpen(a)).toBe(false);
  });

  it('returns to the baseline after 1,000 socketpairs are closed', () => {
    const count = n.openCount();
    const fds = fdCount();
    const pairs: number[][] = [];
    for (let i = 0; i < 1000; i++) pairs.push(n.socketpair());
    expect(n.openCount()).toBe(count + 2000);
    expect(fdCount()).toBe(fds + 2000);
    for (const [a, b] of pairs) {
      n.close(a);
      n.close(b);
    }
    expect(n.openCount()).toBe(count);
    expect(fdCount()).toBe(fds);
  });

  it('close throws EBADF for a descriptor that is not open', () => {
    const [a, b] = n.socketpair();
    n.close(a);
    n.close(b);
    expect(() => n.close(a)).toThrow(expect.objectContaining({ code: 'EBADF', errno: 9, syscall: 'close' }));
  });

  it('close never closes a descriptor this environment does not own (a stale or foreign number)', () => {
    const foreign = openSync('/dev/null', 'r'); // opened by Node, not through the addon
    expect(() => n.close(foreign)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(isOpen(foreign)).toBe(true);
    closeSync(foreign);
    // A number closed through the addon and then reused by someone else stays theirs.
    const [a, b] = n.socketpair();
    n.close(a);
    const reused = openSync('/dev/null', 'r');
    expect(reused).toBe(a);
    expect(() => n.close(a)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(isOpen(reused)).toBe(true);
    closeSync(reused);
    n.close(b);
  });

  it('dup registers a close-on-exec copy', () => {
    const [a, b] = n.socketpair();
    const before = n.openCount();
    const c = n.dup(a);
    expect(c).not.toBe(a);
    expect(n.openCount()).toBe(before + 1);
    expect(fdFlags(c) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(n.sendPacket(c, [new Uint8Array([1])], null)).toBe(1);
    for (const fd of [a, b, c]) n.close(fd);
    expect(() => n.dup(a)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fcntl' }));
  });

  it('adopt registers a descriptor opened elsewhere, and close unregisters it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'eic-adopt-'));
    try {
      const file = path.join(dir, 'f');
      writeFileSync(file, 'twelve bytes');
      const fd = openSync(file, 'r');
      const before = n.openCount();
      n.adopt(fd);
      expect(n.openCount()).toBe(before + 1);
      expect(n.fdInfo(fd)).toEqual({ kind: 'file', size: 12, seals: 0, listening: false, connected: false, domain: 'none' });
      n.close(fd);
      expect(n.openCount()).toBe(before); // unregistered at once
      waitForCloses(); // a file on disk may block in close (NFS, FUSE): the closer thread closes it
      expect(isOpen(fd)).toBe(false);
      expect(() => n.adopt(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      const dirFd = openSync(dir, 'r');
      expect(n.fdInfo(dirFd).kind).toBe('dir');
      closeSync(dirFd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fdInfo tells pipes and other objects apart', () => {
    const { readFd, writeFd } = fifo();
    try {
      expect(n.fdInfo(readFd).kind).toBe('pipe');
      const devNull = openSync('/dev/null', 'r');
      expect(n.fdInfo(devNull).kind).toBe('other');
      closeSync(devNull);
    } finally {
      closeQuietly(readFd, writeFd);
    }
    expect(() => n.fdInfo(readFd)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'statx' }));
  });

  it('close never waits: sockets and pipes close at once, a socket holding queued descriptors via the closer', () => {
    const [a, b] = n.socketpair();
    expect(n.pendingCloses()).toBe(0);
    n.close(a); // nothing queued on a: closed on this thread
    expect(isOpen(a)).toBe(false);
    expect(n.peerHungUp(b)).toBe(true);
    n.close(b); // end-of-file, but no descriptor queued (scm_fds 0): closed here too
    expect(isOpen(b)).toBe(false);

    // A queued packet's descriptors are released by the last close of the socket, on the closing
    // thread: a lingering TCP socket among them would block it. Such a socket goes to the closer.
    const [c, d] = n.socketpair();
    const { readFd, writeFd } = fifo();
    n.sendPacket(c, [new Uint8Array(1)], [writeFd]);
    closeQuietly(writeFd);
    n.close(d);
    waitForCloses();
    expect(isOpen(d)).toBe(false);
    const buf = Buffer.alloc(1);
    expect(readSync(readFd, buf)).toBe(0); // the last write end went with d's queue
    closeQuietly(readFd);
    n.close(c);
    expect(n.pendingCloses()).toBe(0);
  });

  it('fdInfo tells connected sockets and their domain', async () => {
    const [a, b] = n.socketpair();
    const dir = mkdtempSync(path.join(tmpdir(), 'eic-fdinfo-'));
    const listener = n.listen(path.join(dir, 's'));
    const tcp = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => tcp.once('listening', resolve));
    const client = net.connect((tcp.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    const { readFd, writeFd } = fifo();
    try {
      const pick = (fd: number) => {
        const i = n.fdInfo(fd);
        return [i.kind, i.listening, i.connected, i.domain];
      };
      expect(pick(a)).toEqual(['seqpacket', false, true, 'unix']);
      n.close(b); // a keeps its (dead) peer: it reads end-of-file
      expect(pick(a)).toEqual(['seqpacket', false, true, 'unix']);
      expect(pick(listener)).toEqual(['seqpacket', true, false, 'unix']);
      const tcpFd = (tcp as unknown as { _handle: { fd: number } })._handle.fd;
      expect(pick(tcpFd)).toEqual(['stream-socket', true, false, 'other']);
      const clientFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
      expect(pick(clientFd)).toEqual(['stream-socket', false, true, 'other']);
      expect(pick(readFd)).toEqual(['pipe', false, false, 'none']);
    } finally {
      closeQuietly(readFd, writeFd);
      n.close(a);
      n.close(listener);
      client.destroy();
      tcp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the allocation-free fdInfo form reports what the object form does, for every kind', () => {
    const { readFd, writeFd } = fifo();
    const [a, b] = n.socketpair();
    const sockDir = mkdtempSync(path.join(tmpdir(), 'eic-fdinfo-'));
    const listener = n.listen(path.join(sockDir, 's'));
    const mem = n.memfdCreate('fdinfo', 100);
    n.addSeals(mem, 2);
    const devNull = openSync('/dev/null', 'r');
    const dirFd = openSync(tmpdir(), 'r');
    try {
      const seen = new Set<string>();
      for (const fd of [readFd, a, listener, mem, devNull, dirFd, 0]) {
        const expected = n.fdInfo(fd);
        seen.add(expected.kind);
        expect(fastFdInfo(fd)).toEqual(expected);
      }
      expect([...seen]).toEqual(expect.arrayContaining(['pipe', 'seqpacket', 'memfd', 'other', 'dir']));
      expect(() => fastFdInfo(-5)).toThrow();
    } finally {
      closeQuietly(readFd, writeFd, devNull, dirFd);
      for (const fd of [a, b, listener, mem]) n.close(fd);
      rmSync(sockDir, { recursive: true, force: true });
    }
  });
});
