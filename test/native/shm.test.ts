import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { O_CLOEXEC, addonPath, fdFlags, n, recv, runNode } from './helpers.js';

const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;

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

function pattern(len: number): Uint8Array {
  const u = new Uint8Array(len);
  for (let i = 0; i < len; i++) u[i] = (i * 31 + 7) & 0xff;
  return u;
}

describe('memfd', () => {
  it('creates a sized, close-on-exec memfd and fills it', () => {
    const fd = own(n.memfdCreate('eic-test', 10_000));
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(n.fdInfo(fd)).toEqual({ kind: 'memfd', size: 10_000, seals: 0, listening: false, connected: false, domain: 'none' });
    n.pwrite(fd, pattern(10_000), 0);
    n.pwrite(fd, new Uint8Array([1, 2, 3]), 9997);
    const view = new Uint8Array(n.mapFd(fd, 10_000, false, true));
    expect(view.subarray(0, 9997)).toEqual(pattern(10_000).subarray(0, 9997));
    expect([...view.subarray(9997)]).toEqual([1, 2, 3]);
  });

  it('sealed against writes, it refuses fs.writeSync with EPERM', () => {
    const fd = own(n.memfdCreate('eic-sealed', 16));
    writeSync(fd, 'before sealing'); // writable until sealed
    n.addSeals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    expect(n.fdInfo(fd).seals).toBe(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    expect(() => writeSync(fd, 'after')).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => n.pwrite(fd, new Uint8Array([1]), 0)).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'pwrite' }));
    expect(() => n.addSeals(fd, F_SEAL_WRITE)).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'fcntl' }));
    expect(() => n.mapFd(fd, 16, true, false)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => n.mapFd(fd, 16, true, true)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(Buffer.from(n.mapFd(fd, 14, false, false)).toString()).toBe('before sealing');
  });

  it('travels through a socket and maps on the other side', () => {
    const fd = own(n.memfdCreate('eic-travel', 4096));
    n.pwrite(fd, pattern(4096), 0);
    n.addSeals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
    const [a, b] = n.socketpair().map(own);
    n.sendPacket(a, [new Uint8Array([0])], [fd]);
    const got = own(recv(b).packets[0].fds[0]);
    expect(n.fdInfo(got)).toMatchObject({ kind: 'memfd', size: 4096, seals: F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW });
    expect(new Uint8Array(n.mapFd(got, 4096, false, false))).toEqual(pattern(4096));
  });
});

describe('mapFd', () => {
  it('zero-copy and copy return the same bytes', () => {
    const len = 3 * 4096 + 5;
    const fd = own(n.memfdCreate('eic-map', len));
    n.pwrite(fd, pattern(len), 0);
    const zero = new Uint8Array(n.mapFd(fd, len, false, false));
    const copy = new Uint8Array(n.mapFd(fd, len, false, true));
    expect(zero.byteLength).toBe(len);
    expect(zero).toEqual(pattern(len));
    expect(copy).toEqual(zero);
  });

  it('a zero-copy view shares the pages; a copy does not', () => {
    expect(n.externalBuffersAllowed()).toBe(true); // plain Node has no memory cage
    const fd = own(n.memfdCreate('eic-shared', 4096));
    const w = new Uint8Array(n.mapFd(fd, 4096, true, false));
    const r = new Uint8Array(n.mapFd(fd, 4096, false, false));
    const c = new Uint8Array(n.mapFd(fd, 4096, true, true));
    w[100] = 42;
    expect(r[100]).toBe(42);
    expect(c[100]).toBe(0);
    c[200] = 1;
    expect(r[200]).toBe(0);
    expect(new Uint8Array(n.mapFd(fd, 4096, false, true))[100]).toBe(42);
  });

  it('gives an empty ArrayBuffer for length 0 and refuses lengths beyond the file', () => {
    const fd = own(n.memfdCreate('eic-empty', 0));
    expect(n.mapFd(fd, 0, false, false).byteLength).toBe(0);
    expect(n.mapFd(fd, 0, false, true).byteLength).toBe(0);
    const small = own(n.memfdCreate('eic-small', 10));
    expect(() => n.mapFd(small, 4096, false, false)).toThrow(RangeError);
    expect(() => n.mapFd(small, 4096, false, true)).toThrow(RangeError);
    expect(() => n.mapFd(small, -1, false, true)).toThrow(RangeError);
  });

  it('never aborts the process for a length it cannot hold: RangeError (copy) or ENOMEM (mapping)', () => {
    // A sparse memfd of 64 GiB costs nothing until touched. In copy mode (always the case in
    // Electron) V8 used to abort in ArrayBuffer::New; under a 2.5 GB address-space limit a 3 GiB
    // copy cannot be allocated either, and must fail the same way.
    const r = spawnSync(
      'sh',
      [
        '-c',
        `ulimit -v 2500000 && exec "$0" -e "$1"`,
        process.execPath,
        `
        const n = require(process.env.ADDON);
        const out = {};
        const attempt = (name, f) => { try { f(); out[name] = 'ok'; } catch (e) { out[name] = e.name + ' ' + (e.code || '') + ' ' + e.message; } };
        const huge = n.memfdCreate('eic-huge', 2 ** 36);
        attempt('copy64G', () => n.mapFd(huge, 2 ** 36, false, true));
        attempt('copy64Gplus1', () => n.mapFd(huge, 2 ** 36 + 1, false, true));
        attempt('map64G', () => n.mapFd(huge, 2 ** 36, false, false));
        const big = n.memfdCreate('eic-big', 3 * 2 ** 30);
        attempt('copy3G', () => n.mapFd(big, 3 * 2 ** 30, false, true));
        attempt('copy1M', () => n.mapFd(big, 2 ** 20, false, true));
        console.log(JSON.stringify(out));
      `,
      ],
      { env: { ...process.env, ADDON: addonPath }, timeout: 30_000, killSignal: 'SIGKILL', encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect(out.copy64G).toBe('RangeError  shared memory of 68719476736 bytes is larger than this runtime can hold');
    expect(out.copy64Gplus1).toBe('RangeError  length exceeds the size of the file');
    expect(out.map64G).toMatch(/^(ok|Error ENOMEM )/);
    expect(out.copy3G).toBe('RangeError  shared memory of 3221225472 bytes is larger than this runtime can hold');
    expect(out.copy1M).toBe('ok');
  });

  it('unmaps zero-copy views once they are collected', () => {
    const r = runNode(
      `
      const fs = require('fs');
      const n = require(process.env.ADDON);
      const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:eic-gc')).length;
      const fd = n.memfdCreate('eic-gc', 1 << 20);
      let views = [];
      for (let i = 0; i < 50; i++) views.push(n.mapFd(fd, 1 << 20, false, false));
      const mapped = maps();
      views = null;
      (async () => {
        for (let i = 0; i < 10 && maps() > 0; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
        console.log(JSON.stringify({ mapped, after: maps() }));
      })();
    `,
      20_000,
      ['--expose-gc'],
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ mapped: 50, after: 0 });
  });
});
