// recvSync(T): the blocking receive, in one process and between processes that both block.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcFileHandle, bytesChannel, channel } from '../src/main/index.js';
import { readFileSync } from 'node:fs';
import { receiverCore } from '../src/main/channel.js';
import { native } from '../src/main/native.js';
import { catchError, fdCount, startPeer, skipOnWin32 } from './helpers.js';

/** Every blocking receive here has a timeout: a lost message fails a test instead of hanging it. */
const T = { timeout: 5000 };

/** Whether O_NONBLOCK is set on the open file behind `fd` (from /proc/self/fdinfo). */
function nonBlocking(fd: number): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
  return (parseInt(flags, 8) & 0o4000) !== 0;
}

/** CPU time of this thread so far, in ms (utime + stime of /proc/thread-self/stat, 100 Hz ticks). */
function threadCpuMs(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // fields 14 and 15 of proc(5)
}

/**
 * CPU time (ms) this thread spends in `f`: only the calling thread, so V8's background threads
 * (GC, compiler) do not count.
 */
function cpuMs<R>(f: () => R): { value: R; ms: number } {
  const before = threadCpuMs();
  const value = f();
  return { value, ms: threadCpuMs() - before };
}

function code(e: unknown): string | undefined {
  return e instanceof IpcError ? e.code : undefined;
}

describe('recvSync()', () => {
  it('returns queued and newly sent messages in order, typed and bytes', () => {
    const [tx, rx] = channel<{ i: number }>();
    for (let i = 0; i < 1000; i++) tx.send({ i });
    for (let i = 0; i < 1000; i++) expect(rx.recvSync(T)).toEqual({ i });
    const [btx, brx] = bytesChannel();
    btx.send(new Uint8Array([1, 2, 3]));
    expect(brx.recvSync(T)).toEqual(new Uint8Array([1, 2, 3]));
    tx.close();
    rx.close();
    btx.close();
    brx.close();
  });

  it('receives a message bigger than one packet (fragments) while it blocks', () => {
    const [tx, rx] = channel<Uint8Array>();
    const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
    tx.send(big); // written in part; the rest waits in the sender's queue, written while recvSync waits
    const got = rx.recvSync({ timeout: 10_000 });
    expect(got.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(got, big)).toBe(0);
    tx.close();
    rx.close();
  });

  it('follows a receiver that was sent with messages already read (switch packet) in order', () => {
    const [tx, rx] = channel<number>();
    const [ptx, prx] = channel<{ rx: typeof rx }>();
    for (let i = 1; i <= 4; i++) tx.send(i); // 1 is written at once, 2..4 batched in one packet
    expect(rx.recvSync(T)).toBe(1);
    expect(rx.recvSync(T)).toBe(2); // reads the batch: 3 and 4 are now queued here
    ptx.send({ rx }); // moves it, queued messages included (they go ahead of a switch packet)
    const moved = prx.recvSync(T).rx;
    tx.send(5);
    const t = { timeout: 5000 }; // a lost message fails the test instead of blocking it
    expect([moved.recvSync(t), moved.recvSync(t), moved.recvSync(t)]).toEqual([3, 4, 5]);
    tx.close();
    expect(code(catchError(() => moved.recvSync(T)))).toBe('DISCONNECTED');
    for (const e of [moved, ptx, prx]) e.close();
  });

  it('throws TIMEOUT after the timeout, and the receiver stays usable', () => {
    const [tx, rx] = channel<number>();
    const t0 = performance.now();
    expect(code(catchError(() => rx.recvSync({ timeout: 60 })))).toBe('TIMEOUT');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect(code(catchError(() => rx.recvSync({ timeout: 0 })))).toBe('TIMEOUT');
    tx.send(7);
    expect(rx.recvSync({ timeout: 0 })).toBe(7);
    tx.close();
    rx.close();
  });

  it('throws DISCONNECTED once every sender is closed and the queue is empty, CLOSED after close()', () => {
    const [tx, rx] = channel<number>();
    tx.send(1);
    tx.close();
    expect(rx.recvSync(T)).toBe(1);
    expect(code(catchError(() => rx.recvSync(T)))).toBe('DISCONNECTED');
    rx.close();
    expect(code(catchError(() => rx.recvSync(T)))).toBe('CLOSED');
  });

  it('refuses to run beside a pending recv(), and bad options', async () => {
    const [tx, rx] = channel<number>();
    const pending = rx.recv();
    expect(catchError(() => rx.recvSync({ timeout: 0 }))).toBeInstanceOf(TypeError);
    tx.send(5);
    expect(await pending).toBe(5);
    expect(catchError(() => rx.recvSync({ timeout: -1 }))).toBeInstanceOf(RangeError);
    tx.close();
    rx.close();
  });

  it('gives one bad message as its error and goes on', () => {
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (v: unknown) => (typeof v === 'number' ? { value: v } : { issues: [{ message: 'not a number' }] }),
      },
    };
    const [tx, rx] = channel<number>({ schema });
    (tx as unknown as { send(v: unknown): void }).send('nope');
    tx.send(2);
    expect(code(catchError(() => rx.recvSync(T)))).toBe('INVALID');
    expect(rx.recvSync(T)).toBe(2);
    tx.close();
    rx.close();
  });

  it('refuses an asynchronous schema with a TypeError, and its pending refusal goes nowhere', async () => {
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async () => ({ issues: [{ message: 'never' }] }),
      },
    };
    const [tx, rx] = channel<number>({ schema });
    tx.send(1);
    tx.send(2);
    expect(catchError(() => rx.recvSync(T))).toBeInstanceOf(TypeError);
    expect(catchError(() => rx.tryRecv())).toBeInstanceOf(TypeError);
    // An unhandled rejection from either would fail this test file.
    await new Promise((r) => setTimeout(r, 20));
    tx.close();
    rx.close();
  });

  it('releases the descriptors of received handles: /proc/self/fd back to its count', () => {
    const before = fdCount();
    const [tx, rx] = channel<{ fh: IpcFileHandle }>();
    const fd = openSync('/dev/null', 'r');
    const fh = IpcFileHandle.from(fd);
    for (let i = 0; i < 500; i++) {
      tx.send({ fh });
      rx.recvSync(T).fh.close();
    }
    fh.close();
    tx.close();
    rx.close();
    closeSync(fd);
    expect(fdCount()).toBe(before);
  });
});

describe('recvSync() across processes', () => {
  it('serves round trips in a child that blocks in recvSync()', async () => {
    const { rx, tx, spawned } = await startPeer<{ i: number }, { i: number }>('echo-sync');
    for (let i = 0; i < 2000; i++) {
      tx.send({ i });
      expect(rx.recvSync({ timeout: 10_000 })).toEqual({ i });
    }
    tx.close();
    expect(code(catchError(() => rx.recvSync({ timeout: 10_000 })))).toBe('DISCONNECTED');
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('waits in a blocking read without spinning; recv() afterwards never blocks the event loop', skipOnWin32('reads O_NONBLOCK from /proc/self/fdinfo and thread CPU time from /proc/thread-self/stat (Linux)'), async () => {
    const { rx, tx, spawned } = await startPeer<{ i: number; after: number }, { i: number; after: number }>('echo-after');
    const fd = receiverCore(rx as never).fd;
    tx.send({ i: 1, after: 300 });
    // No timeout and nothing queued: recvSync() waits in one recvmsg on the socket put in
    // blocking mode. Waiting must cost (almost) no CPU.
    const first = cpuMs(() => rx.recvSync());
    expect(first.value).toEqual({ i: 1, after: 300 });
    expect(first.ms).toBeLessThan(150);
    expect(nonBlocking(fd)).toBe(false);
    // recv() watches the socket with libuv; its reads must not block although the file is in
    // blocking mode: a timer fires while it waits.
    tx.send({ i: 2, after: 300 });
    let ticked = false;
    setTimeout(() => (ticked = true), 20);
    expect(await rx.recv({ timeout: 10_000 })).toEqual({ i: 2, after: 300 });
    expect(ticked).toBe(true);
    tx.send({ i: 3, after: 300 });
    const third = cpuMs(() => rx.recvSync());
    expect(third.value).toEqual({ i: 3, after: 300 });
    expect(third.ms).toBeLessThan(150);
    expect(nonBlocking(fd)).toBe(false);
    tx.close();
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('falls back to poll(2), without spinning, when another holder of the socket sets O_NONBLOCK', async () => {
    const { rx, tx, spawned } = await startPeer<{ i: number; after: number }, { i: number; after: number }>('echo-after');
    const fd = receiverCore(rx as never).fd;
    tx.send({ i: 0, after: 0 });
    expect(rx.recvSync()).toEqual({ i: 0, after: 0 }); // the file is in blocking mode now
    for (let i = 1; i <= 3; i++) {
      // A peer that kept a duplicate of this socket can change the mode at any time.
      native().setBlocking(fd, false);
      tx.send({ i, after: 200 });
      const got = cpuMs(() => rx.recvSync());
      expect(got.value).toEqual({ i, after: 200 });
      expect(got.ms).toBeLessThan(120);
    }
    tx.close();
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('two processes blocked in recvSync() with megabytes queued both ways do not deadlock', async () => {
    const count = 2000; // 2000 x 4 KiB: far more than a socket buffer, so both sides queue
    const { rx, tx, spawned } = await startPeer<{ i?: number; data?: Uint8Array; bytes?: number; ack?: string }, { i?: number; data?: Uint8Array; ack?: string }>(
      'bulk-sync',
      { EIPC_COUNT: String(count) },
    );
    const data = new Uint8Array(4096).fill(9);
    for (let i = 0; i < count; i++) tx.send({ i, data });
    // The child answers only after it has everything: this recvSync must keep writing our queue.
    for (let i = 0; i < count; i++) {
      const m = rx.recvSync({ timeout: 20_000 });
      expect(m.i).toBe(i);
      expect(m.data?.byteLength).toBe(4096);
    }
    expect(rx.recvSync({ timeout: 20_000 })).toEqual({ bytes: count * 4096 });
    tx.send({ ack: 'done' });
    expect(rx.recvSync({ timeout: 20_000 })).toEqual({ ack: { ack: 'done' } });
    tx.close();
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
