import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
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
