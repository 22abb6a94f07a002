// IpcSharedMemoryPool / IpcSharedBuffer, run by pool.test.ts (zero-copy) and pool.copy.test.ts
// (ELECTRON_IPC_CHANNEL_COPY_SHM=1, the path Electron takes).
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { IpcError, IpcSharedBuffer, IpcSharedMemory, IpcSharedMemoryPool, channel, setSharedMemoryCopyMode, sharedMemoryIsZeroCopy } from '../src/main/index.js';
import { kHandle } from '../src/main/handles.js';
import { linuxNative } from '../src/main/native.js';
import { catchError, fdCount, rejectsWith, settledFdCount, startPeer } from './helpers.js';

const MIB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the pool has `n` segments available (segments come back asynchronously). */
async function availableBecomes(pool: IpcSharedMemoryPool, n: number): Promise<void> {
  for (let i = 0; i < 250 && pool.available !== n; i++) await tick();
  expect(pool.available).toBe(n);
}

export function definePoolTests(copy: boolean): void {
  const childEnv = { ELECTRON_IPC_CHANNEL_COPY_SHM: copy ? '1' : '0' };
  beforeAll(() => {
    setSharedMemoryCopyMode(copy);
  });

  it(`views ${copy ? 'by copy' : 'without copying'} on both sides`, () => {
    expect(sharedMemoryIsZeroCopy()).toBe(!copy);
  });

  it('carries new contents every time through reused segments, and moves them when sent', async () => {
    const pool = new IpcSharedMemoryPool({ size: MIB, count: 2 });
    const [tx, rx] = channel<{ buf: IpcSharedBuffer; i: number }>();
    for (let i = 0; i < 12; i++) {
      const buf = await pool.acquire({ timeout: 5000 });
      const mine = buf.bytes;
      mine.fill(i);
      mine[1000] = 255 - i;
      tx.send({ buf, i });
      expect(buf.closed).toBe(true);
      expect(mine.byteLength).toBe(0); // the sender's view is detached: no writes after sending
      expect(() => buf.bytes).toThrow(IpcError);
      const m = await rx.recv();
      const got = m.buf.bytes;
      expect(m.buf.length).toBe(MIB);
      expect(got[0]).toBe(i);
      expect(got[1000]).toBe(255 - i);
      expect(got[MIB - 1]).toBe(i);
      m.buf.close();
      expect(got.byteLength).toBe(0); // and so is the receiver's once closed
    }
    await availableBecomes(pool, 2);
    pool.close();
    tx.close();
    rx.close();
  });

  it('lends at most count segments: tryAcquire, acquire waits, TIMEOUT, abort, CLOSED', async () => {
    const pool = new IpcSharedMemoryPool({ size: 4096, count: 2 });
    const a = pool.tryAcquire()!;
    const b = pool.tryAcquire()!;
    expect(a).toBeInstanceOf(IpcSharedBuffer);
    expect(pool.tryAcquire()).toBeUndefined();
    expect(pool.available).toBe(0);
    await rejectsWith(pool.acquire({ timeout: 30 }), 'TIMEOUT');
    const ac = new AbortController();
    const aborted = pool.acquire({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    const waiting = pool.acquire({ timeout: 5000 });
    a.close(); // never sent: back at once, to the waiter
    const c = await waiting;
    expect(c.length).toBe(4096);
    const pending = pool.acquire();
    pool.close();
    await rejectsWith(pending, 'CLOSED');
    expect(code(catchError(() => pool.tryAcquire()))).toBe('CLOSED');
    b.close();
    c.close();
    expect(catchError(() => new IpcSharedMemoryPool({ size: 0 }))).toBeInstanceOf(RangeError);
    expect(catchError(() => new IpcSharedMemoryPool({ size: 10, count: 0 }))).toBeInstanceOf(RangeError);
    await expect(new IpcSharedMemoryPool({ size: 10 }).acquire({ timeout: -1 })).rejects.toThrow(RangeError);
  });

  it('a segment comes back only when its last holder closes it, also after being passed on', async () => {
    const pool = new IpcSharedMemoryPool({ size: 8192, count: 1 });
    const [tx1, rx1] = channel<{ buf: IpcSharedBuffer }>();
    const [tx2, rx2] = channel<{ buf: IpcSharedBuffer }>();
    const buf = pool.tryAcquire()!;
    buf.bytes.fill(42);
    tx1.send({ buf });
    const first = (await rx1.recv()).buf;
    expect(first.bytes[8191]).toBe(42);
    tx2.send({ buf: first }); // passed on: moved again
    expect(first.closed).toBe(true);
    await tick(50);
    expect(pool.available).toBe(0);
    const second = (await rx2.recv()).buf;
    expect(second.bytes[0]).toBe(42);
    second.close();
    await availableBecomes(pool, 1);
    for (const e of [pool, tx1, rx1, tx2, rx2]) e.close();
  });

  it('releases every descriptor: /proc/self/fd back to its count', async () => {
    const before = await settledFdCount();
    const pool = new IpcSharedMemoryPool({ size: 64 * 1024, count: 3 });
    const [tx, rx] = channel<{ buf: IpcSharedBuffer }>();
    for (let i = 0; i < 200; i++) {
      const buf = await pool.acquire({ timeout: 5000 });
      buf.bytes[0] = i & 255;
      tx.send({ buf });
      const m = await rx.recv();
      expect(m.buf.bytes[0]).toBe(i & 255);
      m.buf.close();
    }
    const held = pool.tryAcquire();
    pool.close(); // a held segment is released when it comes back
    held?.close();
    tx.close();
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('refuses a forged segment (no memfd, a memfd that can shrink, a pipe): one MALFORMED each, no descriptor kept', async () => {
    const before = fdCount();
    const n = linuxNative('test/pool.suite');
    const [tx, rx] = channel<{ seg: unknown }>();
    const forge = (prepare: (end: number) => void): void => {
      const [ours, theirs] = n.socketpair();
      prepare(ours);
      const fake = { [kHandle]: () => ({ kind: 'P', fd: theirs, move: false }) };
      tx.send({ seg: fake });
      n.close(ours);
      n.close(theirs);
    };
    forge(() => {}); // nothing queued
    forge((end) => {
      const fd = n.memfdCreate('unsealed', 4096);
      n.sendPacket(end, [new Uint8Array(1)], [fd]);
      n.close(fd);
    });
    forge((end) => {
      const fd = openSync('/dev/null', 'r');
      n.sendPacket(end, [new Uint8Array(1)], [fd]);
      closeSync(fd);
    });
    for (let i = 0; i < 3; i++) await rejectsWith(rx.recv(), 'MALFORMED');
    tx.send({ seg: 'still usable' });
    expect(await rx.recv()).toEqual({ seg: 'still usable' });
    tx.close();
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('a segment over maxSharedMemoryBytes or maxSharedMemoryTotal is TOO_LARGE, nothing kept, and it comes back to the pool', async () => {
    const before = await settledFdCount();
    const pool = new IpcSharedMemoryPool({ size: 64 * 1024, count: 2 });
    const [tx, rx] = channel<Record<string, unknown>>({ maxSharedMemoryBytes: 64 * 1024 - 1 });
    tx.send({ buf: await pool.acquire({ timeout: 5000 }) });
    const err = await rejectsWith(rx.recv(), 'TOO_LARGE');
    expect(err.message).toMatch(/IpcSharedBuffer \(pool segment\) of 65536 bytes exceeds this receiver's maxSharedMemoryBytes \(65535\)/);
    await availableBecomes(pool, 2); // the refused segment's socket was closed: the pool has it back
    // Both kinds count against the total of one message: 64 KiB + 64 KiB + 1 byte.
    const [tx2, rx2] = channel<Record<string, unknown>>({ maxSharedMemoryTotal: 128 * 1024 });
    const shm = IpcSharedMemory.fromByte(7, 1);
    tx2.send({ a: await pool.acquire({ timeout: 5000 }), b: await pool.acquire({ timeout: 5000 }), shm });
    expect((await rejectsWith(rx2.recv(), 'TOO_LARGE')).message).toMatch(/maxSharedMemoryTotal \(131072\)/);
    await availableBecomes(pool, 2);
    tx2.send({ a: await pool.acquire({ timeout: 5000 }), b: await pool.acquire({ timeout: 5000 }) }); // exactly the total
    const ok = (await rx2.recv()) as { a: IpcSharedBuffer; b: IpcSharedBuffer };
    expect(ok.a.bytes.byteLength + ok.b.bytes.byteLength).toBe(128 * 1024);
    ok.a.close();
    ok.b.close();
    await availableBecomes(pool, 2);
    for (const e of [pool, tx, rx, tx2, rx2, shm]) e.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('drops what a holder writes into its end of a segment (descriptors closed) and still takes the segment back', async () => {
    const n = linuxNative('test/pool.suite');
    const before = await settledFdCount();
    const pool = new IpcSharedMemoryPool({ size: 4096, count: 1 });
    const [tx, rx] = channel<{ buf: IpcSharedBuffer }>();
    tx.send({ buf: pool.tryAcquire()! });
    const got = (await rx.recv()).buf;
    const end = (got as unknown as { [kHandle](): { fd: number } })[kHandle]().fd;
    for (let i = 0; i < 100; i++) {
      const junk = n.memfdCreate('junk', 10);
      expect(n.sendPacket(end, [new Uint8Array(64).fill(i)], [junk])).toBe(64);
      n.close(junk);
    }
    await tick(50);
    expect(pool.available).toBe(0); // still out: writing is not giving back
    got.close();
    await availableBecomes(pool, 1);
    pool.close();
    tx.close();
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('across processes: byte-exact, reused, and back in the pool after the child closes each', async () => {
    const { rx, tx, spawned } = await startPeer<{ sha: string; length: number; zeroCopy: boolean }, { buf: IpcSharedBuffer }>('pool-reader', childEnv);
    const pool = new IpcSharedMemoryPool({ size: 4 * MIB + 3, count: 2 });
    for (let i = 0; i < 8; i++) {
      const buf = await pool.acquire({ timeout: 10_000 });
      const v = buf.bytes;
      for (let j = 0; j < v.length; j += 4096) v[j] = (i * 31 + j) & 255;
      v[v.length - 1] = i;
      const want = sha(v);
      tx.send({ buf });
      expect(await rx.recv({ timeout: 10_000 })).toEqual({ sha: want, length: 4 * MIB + 3, zeroCopy: !copy });
    }
    await availableBecomes(pool, 2);
    pool.close();
    tx.close();
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a receiver killed while it holds a segment gives it back', async () => {
    const { rx, tx, spawned } = await startPeer<{ held: number }, { buf: IpcSharedBuffer }>('pool-holder', childEnv);
    const pool = new IpcSharedMemoryPool({ size: 65536, count: 1 });
    tx.send({ buf: pool.tryAcquire()! });
    expect(await rx.recv({ timeout: 10_000 })).toEqual({ held: 65536 });
    expect(pool.available).toBe(0);
    const next = pool.acquire({ timeout: 10_000 });
    spawned.child.kill('SIGKILL');
    const buf = await next;
    expect(buf.length).toBe(65536);
    buf.close();
    pool.close();
    tx.close();
    rx.close();
    await spawned.done;
  });
}

function code(e: unknown): string | undefined {
  return e instanceof IpcError ? e.code : undefined;
}
