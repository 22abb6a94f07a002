import { spawnSync } from 'node:child_process';
import { readSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EAGAIN, EMSGSIZE, EPIPE, PACKET_CTRUNCATED, PACKET_TRUNCATED } from '../../src/main/native.js';
import { O_CLOEXEC, closeQuietly, fdFlags, fifo, isOpen, n, recv, runNodeWithFdLimit } from './helpers.js';

const opened: number[] = [];
function pair(): [number, number] {
  const p = n.socketpair();
  opened.push(...p);
  return p;
}
afterEach(() => {
  for (const fd of opened.splice(0)) {
    try {
      n.close(fd);
    } catch {
      // closed by the test
    }
  }
});

const bytes = (s: string) => new TextEncoder().encode(s);

describe('sendPacket / recvPackets', () => {
  it('sends bytes without descriptors, concatenating the parts', () => {
    const [a, b] = pair();
    expect(n.sendPacket(a, [bytes('hello, '), bytes('world')], null)).toBe(12);
    const r = recv(b);
    expect(r.packets).toHaveLength(1);
    expect(r.packets[0].bytes.toString()).toBe('hello, world');
    expect(r.packets[0].fds).toEqual([]);
    expect(r.packets[0].flags).toBe(0);
    expect(r.eof).toBe(false);
    expect(recv(b).status).toBe(EAGAIN);
  });

  it('passes one descriptor that is close-on-exec and usable', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      const before = n.openCount();
      expect(n.sendPacket(a, [bytes('pipe')], [writeFd])).toBe(4);
      const r = recv(b);
      expect(r.packets).toHaveLength(1);
      const [got] = r.packets[0].fds;
      expect(got).toBeGreaterThanOrEqual(0);
      expect(got).not.toBe(writeFd);
      expect(fdFlags(got) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(n.openCount()).toBe(before + 1);
      expect(n.fdInfo(got).kind).toBe('pipe');
      writeSync(got, 'through the received fd');
      const buf = Buffer.alloc(64);
      const len = readSync(readFd, buf);
      expect(buf.subarray(0, len).toString()).toBe('through the received fd');
      n.close(got);
      expect(isOpen(got)).toBe(false);
      expect(n.openCount()).toBe(before);
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('passes 253 descriptors in one packet, all registered and close-on-exec', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      const before = n.openCount();
      expect(n.sendPacket(a, [bytes('x')], new Array(253).fill(writeFd))).toBe(1);
      const r = recv(b, { fdSlots: 253 });
      expect(r.packets).toHaveLength(1);
      const fds = r.packets[0].fds;
      expect(fds).toHaveLength(253);
      expect(new Set(fds).size).toBe(253);
      expect(r.packets[0].flags).toBe(0);
      expect(n.openCount()).toBe(before + 253);
      for (const fd of fds) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      writeSync(fds[252], 'z');
      const buf = Buffer.alloc(4);
      expect(readSync(readFd, buf)).toBe(1);
      for (const fd of fds) n.close(fd);
      expect(n.openCount()).toBe(before);
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('refuses more than 253 descriptors with a RangeError before sending', () => {
    const [a, b] = pair();
    expect(() => n.sendPacket(a, [bytes('x')], new Array(254).fill(a))).toThrow(RangeError);
    expect(recv(b).status).toBe(EAGAIN);
  });

  it('rejects bad arguments with TypeError', () => {
    const [a] = pair();
    expect(() => n.sendPacket(a, 'nope' as unknown as Uint8Array[], null)).toThrow(TypeError);
    expect(() => n.sendPacket(a, [{} as Uint8Array], null)).toThrow(TypeError);
    expect(() => n.sendPacket(a, [bytes('x')], [-1])).toThrow(TypeError);
    expect(() => n.sendPacket(-1, [bytes('x')], null)).toThrow(TypeError);
    expect(() => n.close(1.5)).toThrow(TypeError);
  });

  it('returns EAGAIN when the socket is full and resumes once drained', () => {
    const [a, b] = pair();
    n.setBufferSizes(a, 4096, 4096);
    const chunk = new Uint8Array(1000);
    let sent = 0;
    let r = 0;
    for (; sent < 100_000; sent++) {
      r = n.sendPacket(a, [chunk], null);
      if (r < 0) break;
      expect(r).toBe(1000);
    }
    expect(r).toBe(EAGAIN);
    expect(sent).toBeGreaterThan(0);
    let received = 0;
    for (;;) {
      const got = recv(b, { maxPackets: 64 });
      if (got.status === EAGAIN) break;
      received += got.packets.length;
    }
    expect(received).toBe(sent);
    expect(n.sendPacket(a, [chunk], null)).toBe(1000);
  });

  it('returns EMSGSIZE for a packet larger than the send buffer allows', () => {
    const [a] = pair();
    n.setBufferSizes(a, 4096, 0);
    expect(n.sendPacket(a, [new Uint8Array(1 << 20)], null)).toBe(EMSGSIZE);
  });

  it('returns EPIPE after the peer closed', () => {
    const [a, b] = pair();
    n.close(b);
    expect(n.sendPacket(a, [bytes('x')], null)).toBe(EPIPE);
  });

  it('reads queued packets, then end-of-file, after the peer closed', () => {
    const [a, b] = pair();
    n.sendPacket(a, [bytes('one')], null);
    n.sendPacket(a, [bytes('two')], null);
    n.close(a);
    expect(n.peerHungUp(b)).toBe(true);
    const r = recv(b, { maxPackets: 1 });
    expect(r.packets.map((p) => p.bytes.toString())).toEqual(['one']);
    expect(r.eof).toBe(false);
    const r2 = recv(b);
    expect(r2.packets.map((p) => p.bytes.toString())).toEqual(['two']);
    expect(r2.eof).toBe(true);
    const r3 = recv(b);
    expect(r3.status).toBe(0);
    expect(r3.eof).toBe(true);
    expect(recv(b).status).toBe(0);
  });

  it('reports end-of-file (0) when the peer closed with nothing queued', () => {
    const [a, b] = pair();
    expect(n.peerHungUp(b)).toBe(false);
    n.close(a);
    expect(recv(b).status).toBe(0);
  });

  it('still delivers queued packets when the peer closed with unread data of its own', () => {
    const [a, b] = pair();
    n.sendPacket(b, [bytes('unread by a')], null);
    n.sendPacket(a, [bytes('for b')], null);
    n.close(a);
    const r = recv(b);
    expect(r.packets.map((p) => p.bytes.toString())).toEqual(['for b']);
    expect(r.eof).toBe(true);
  });

  it('reports an empty packet as a packet of length 0, not end-of-file', () => {
    const [a, b] = pair();
    expect(n.sendPacket(a, [], null)).toBe(0);
    n.sendPacket(a, [bytes('after')], null);
    const r = recv(b);
    expect(r.status).toBeUndefined();
    expect(r.packets.map((p) => p.bytes.length)).toEqual([0, 5]);
    expect(r.eof).toBe(false);
    expect(n.peerHungUp(b)).toBe(false);
  });

  it('flags an oversize packet with PACKET_TRUNCATED and keeps the batch going', () => {
    const [a, b] = pair();
    n.sendPacket(a, [new Uint8Array(100).fill(7)], null);
    n.sendPacket(a, [bytes('small')], null);
    const r = recv(b, { maxBytes: 10 });
    expect(r.packets).toHaveLength(2);
    expect(r.packets[0].flags).toBe(PACKET_TRUNCATED);
    expect(r.packets[0].bytes).toEqual(Buffer.alloc(10, 7));
    expect(r.packets[1].flags).toBe(0);
    expect(r.packets[1].bytes.toString()).toBe('small');
  });

  it('copies a batch back to back at 8-byte-aligned offsets', () => {
    const [a, b] = pair();
    const lengths = [1, 5, 9, 8, 0, 3];
    lengths.forEach((len, i) => n.sendPacket(a, [new Uint8Array(len).fill(i + 1)], null));
    const r = recv(b, { maxPackets: 4 });
    expect(r.packets.map((p) => p.offset)).toEqual([0, 8, 16, 32]);
    r.packets.forEach((p, i) => expect(p.bytes).toEqual(Buffer.alloc(lengths[i], i + 1)));
    const r2 = recv(b, { maxPackets: 4 });
    expect(r2.packets.map((p) => p.bytes.length)).toEqual([0, 3]);
    expect(r2.packets.map((p) => p.offset)).toEqual([0, 0]);
  });

  it('keeps descriptors with their packets in order across a batch', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      n.sendPacket(a, [bytes('p0')], [writeFd, writeFd]);
      n.sendPacket(a, [bytes('p1')], null);
      n.sendPacket(a, [bytes('p2')], [writeFd]);
      const r = recv(b);
      expect(r.packets.map((p) => p.fds.length)).toEqual([2, 0, 1]);
      const all = r.packets.flatMap((p) => p.fds);
      expect(new Set(all).size).toBe(3);
      for (const fd of all) {
        expect(n.fdInfo(fd).kind).toBe('pipe');
        n.close(fd);
      }
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('stops a batch before a packet whose descriptors may not fit in fdsOut', () => {
    const [a, b] = pair();
    n.sendPacket(a, [bytes('no fds')], null);
    n.sendPacket(a, [bytes('one fd')], [a]);
    const r = recv(b, { fdSlots: 1 });
    expect(r.packets.map((p) => p.bytes.toString())).toEqual(['no fds']);
    const r2 = recv(b, { fdSlots: 1 });
    expect(r2.packets.map((p) => p.bytes.toString())).toEqual(['one fd']);
    expect(r2.packets[0].fds).toHaveLength(1);
    n.close(r2.packets[0].fds[0]);
  });

  it('throws RangeError, leaving the packet queued, when the first packet has more descriptors than fdsOut', () => {
    const [a, b] = pair();
    const before = n.openCount();
    n.sendPacket(a, [bytes('three')], [a, a, a]);
    expect(() => recv(b, { fdSlots: 2 })).toThrow(RangeError);
    expect(() => recv(b, { fdSlots: 0 })).toThrow(RangeError);
    expect(n.openCount()).toBe(before);
    const r = recv(b, { fdSlots: 3 });
    expect(r.packets[0].bytes.toString()).toBe('three');
    expect(r.packets[0].fds).toHaveLength(3);
    for (const fd of r.packets[0].fds) n.close(fd);
  });

  it('validates meta and the limits', () => {
    const [, b] = pair();
    const arena = new Uint8Array(128);
    expect(() => n.recvPackets(b, new Int32Array(5), new Int32Array(253), 2, 100, arena, 0)).toThrow(RangeError);
    expect(() => n.recvPackets(b, new Int32Array(10) as unknown as Int32Array, new Uint8Array(4) as unknown as Int32Array, 2, 100, arena, 0)).toThrow(TypeError);
    expect(() => n.recvPackets(b, new Int32Array(10), new Int32Array(253), 0, 100, arena, 0)).toThrow(RangeError);
    // The arena is required (the Buffer-returning mode is gone), 8-aligned, with room for a packet.
    const noArena = n.recvPackets as unknown as (...args: unknown[]) => number;
    expect(() => noArena(b, new Int32Array(10), new Int32Array(253), 2, 100)).toThrow(new TypeError('arena must be a Uint8Array'));
    expect(() => n.recvPackets(b, new Int32Array(10), new Int32Array(253), 2, 100, arena, 4)).toThrow(RangeError);
    expect(() => n.recvPackets(b, new Int32Array(10), new Int32Array(253), 2, 100, new Uint8Array(64), 0)).toThrow(RangeError);
  });

  it('throws an errno error for a descriptor that is not open', () => {
    const [a] = pair();
    n.close(a);
    try {
      recv(a);
      expect.unreachable();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      expect(err.code).toBe('EBADF');
      expect(err.errno).toBe(9);
      expect(err.syscall).toBe('recvmsg');
    }
  });
});

describe('sendPacket errors and neutralizeSocket', () => {
  // SO_PASSRIGHTS 0 on the receiving socket (Linux 6.16+) makes every packet with descriptors
  // fail with EPERM at the sender. Another process sets it here, as a hostile peer would.
  const setPassRights = (fd: number, on: number) =>
    spawnSync('python3', ['-c', `import socket, sys\ns = socket.socket(fileno=3)\ntry:\n  s.setsockopt(socket.SOL_SOCKET, 83, ${on})\nexcept OSError:\n  sys.exit(2)\ns.detach()`], {
      stdio: ['ignore', 'inherit', 'inherit', fd],
      timeout: 10_000,
    }).status;

  it('throws EPERM with the errno name, number and syscall, and neutralizeSocket undoes SO_PASSRIGHTS 0', (ctx) => {
    const [a, b] = pair();
    const status = setPassRights(b, 0);
    if (status === 2) ctx.skip(); // a kernel without SO_PASSRIGHTS
    expect(status).toBe(0);
    const { readFd, writeFd } = fifo();
    try {
      expect(n.sendPacket(a, [bytes('no fds')], null)).toBe(6);
      let err: NodeJS.ErrnoException | undefined;
      try {
        n.sendPacket(a, [bytes('with fds')], [readFd]);
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      expect(err).toMatchObject({ code: 'EPERM', errno: 1, syscall: 'sendmsg' });
      expect(err!.message).toBe('EPERM: operation not permitted, sendmsg');
      n.neutralizeSocket(b);
      expect(n.sendPacket(a, [bytes('with fds')], [readFd])).toBe(8);
      const r = recv(b);
      expect(r.packets.map((p) => p.fds.length)).toEqual([0, 1]);
      for (const p of r.packets) for (const fd of p.fds) n.close(fd);
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('neutralizeSocket accepts any socket and throws for what is not one', () => {
    const [a] = pair();
    n.neutralizeSocket(a);
    const { readFd, writeFd } = fifo();
    try {
      expect(() => n.neutralizeSocket(readFd)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'setsockopt' }));
    } finally {
      closeQuietly(readFd, writeFd);
    }
    expect(() => n.neutralizeSocket(-1)).toThrow(TypeError);
  });
});

describe('setBufferSizes / peerHungUp', () => {
  it('returns the effective sizes', () => {
    const [a] = pair();
    const [snd, rcv] = n.setBufferSizes(a, 8192, 16384);
    expect(snd).toBe(16384); // the kernel doubles the request
    expect(rcv).toBe(32768);
    expect(n.setBufferSizes(a, 0, 0)).toEqual([snd, rcv]);
  });

  it('peerHungUp turns true only once the peer is gone', () => {
    const [a, b] = pair();
    n.sendPacket(a, [bytes('x')], null);
    expect(n.peerHungUp(b)).toBe(false);
    n.close(a);
    expect(n.peerHungUp(b)).toBe(true);
  });
});

describe('truncated descriptors', () => {
  it('returns and registers the descriptors that did arrive when the kernel sets MSG_CTRUNC', () => {
    // Out of descriptor slots (RLIMIT_NOFILE), the kernel installs what it can and sets MSG_CTRUNC.
    const script = `
      const fs = require('fs');
      const n = require(process.env.ADDON);
      const [a, b] = n.socketpair();
      const filler = [];
      for (;;) { try { filler.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
      for (const fd of filler.splice(0, 3)) fs.closeSync(fd);
      const base = n.openCount();
      n.sendPacket(a, [Buffer.from('x')], new Array(10).fill(a));
      const meta = new Int32Array(6), fds = new Int32Array(256).fill(-1), arena = new Uint8Array(64);
      n.recvPackets(b, meta, fds, 1, 64, arena, 0);
      const buf = Buffer.from(arena.subarray(meta[2], meta[2] + meta[3]));
      const got = Array.from(fds.subarray(0, meta[4]));
      for (const fd of filler) fs.closeSync(fd);
      const cloexec = got.every((fd) => /flags:\\s*[0-7]*2[0-7]{6}\\n/.test(fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8')));
      console.log(JSON.stringify({ count: meta[0], fdCount: meta[4], flags: meta[5], body: buf.toString(), registered: n.openCount() - base, cloexec }));
    `;
    const r = runNodeWithFdLimit(script, 64, 10_000);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({ count: 1, fdCount: 3, flags: PACKET_CTRUNCATED, body: 'x', registered: 3, cloexec: true });
  });
});
