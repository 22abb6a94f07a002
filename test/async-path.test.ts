// The async receive path's read-first poller (issue 15 §1): a receiver's poller reads the socket in
// the addon before it calls back (src/native/channel.cc, Poller.ReadFirst), into the thread's
// receive arena at its bump offset, so `await recv()` costs no JS-to-native recvPackets call per
// wake-up. Tested here: the addon's contract (reads only when the cell says so, where the offset
// says, with descriptors and end of file as recvPackets reports them, never past the arena), and
// that the library takes its messages that way, keeping order, descriptors, errors and end of file.
// Seqpacket only (the stream transport's pollers do not read first).
import { openSync, closeSync, fstatSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { IpcError, IpcFileHandle, channel } from '../src/main/index.js';
import { EAGAIN, POLL_READABLE, native } from '../src/main/native.js';
import type { NativePoller } from '../src/main/native.js';
import { transport } from '../src/main/transport/index.js';
import { rebindRecvArena } from '../src/main/endpoint/receiver-reading.js';
import { fdCount } from './helpers.js';

const seqpacket = process.platform === 'linux' && transport().name === 'seqpacket';

/** The next callback of `poller`'s readiness events: [status, read]. */
function nextEvent(events: Array<[number, number | undefined]>, waiters: Array<() => void>): Promise<[number, number | undefined]> {
  if (events.length > 0) return Promise.resolve(events.shift()!);
  return new Promise((resolve) => waiters.push(() => resolve(events.shift()!)));
}

function watch(fd: number, cell: Int32Array): { poller: NativePoller; next: () => Promise<[number, number | undefined]> } {
  const events: Array<[number, number | undefined]> = [];
  const waiters: Array<() => void> = [];
  let poller: NativePoller;
  const onPoll = (status: number, _events: number, read?: number): void => {
    events.push([status, read]);
    // Level-triggered: stop until the test asks for the next event.
    poller.stop();
    waiters.shift()?.();
  };
  poller = new (native().Poller)(fd, onPoll, cell);
  return {
    poller,
    next: () => {
      poller.start(POLL_READABLE);
      return nextEvent(events, waiters);
    },
  };
}

describe.skipIf(!seqpacket)('the read-first poller (addon)', () => {
  const n = native();
  // These tests bind arenas of their own: the library's is bound again after them.
  afterAll(() => rebindRecvArena());
  const packet = (bytes: number[]): Uint8Array[] => [Uint8Array.from(bytes)];
  /** Binds a 4 KiB arena (packets up to 1 KiB) and makes a read-first cell that reads one packet. */
  function bind(): { arena: Uint8Array; offset: Int32Array; meta: Int32Array; fdsOut: Int32Array; cell: Int32Array } {
    const arena = new Uint8Array(new ArrayBuffer(4096));
    const offset = new Int32Array(new ArrayBuffer(8));
    const meta = new Int32Array(2 + 4 * 256);
    const fdsOut = new Int32Array(1024);
    n.bindRecv!(arena, offset, meta, fdsOut, 1024);
    const cell = new Int32Array(new ArrayBuffer(8));
    cell[0] = 1;
    return { arena, offset, meta, fdsOut, cell };
  }

  it('reads into the bound arena at its offset when the cell asks, and not when it does not', async () => {
    const [a, b] = n.socketpair!();
    const { arena, offset, meta, fdsOut, cell } = bind();
    offset[0] = 64;
    const w = watch(b, cell);
    try {
      n.sendPacket!(a, packet([1, 2, 3, 4, 5]), null);
      n.sendPacket!(a, packet([9, 8, 7]), null);
      expect(await w.next()).toEqual([0, 1]);
      // One packet (cell[0]), at the offset, described as recvPackets describes it.
      expect(Array.from(meta.subarray(0, 6))).toEqual([1, 0, 64, 5, 0, 0]);
      expect(Array.from(arena.subarray(64, 69))).toEqual([1, 2, 3, 4, 5]);
      // Off: the callback gets no third argument and the packet stays in the kernel.
      cell[0] = 0;
      expect(await w.next()).toEqual([0, undefined]);
      offset[0] = 128;
      expect(n.recvPackets!(b, meta, fdsOut, 1, 1024, arena, 128)).toBe(1);
      expect(Array.from(arena.subarray(128, 131))).toEqual([9, 8, 7]);
      // On again, with nothing queued: no event until a packet comes.
      cell[0] = 1;
      offset[0] = 256;
      n.sendPacket!(a, packet([6]), null);
      expect(await w.next()).toEqual([0, 1]);
      expect(meta[2]).toBe(256);
      expect(arena[256]).toBe(6);
    } finally {
      w.poller.close();
      n.close(a);
      n.close(b);
    }
  });

  it('does not read when the arena has no room for a packet at its offset, or the offset is bad', async () => {
    const [a, b] = n.socketpair!();
    const { meta, fdsOut, offset, cell } = bind();
    const w = watch(b, cell);
    try {
      n.sendPacket!(a, packet([1]), null);
      for (const at of [4096 - 1016, 4096, 8192, 12, -8]) {
        offset[0] = at;
        expect(await w.next()).toEqual([0, undefined]);
      }
      offset[0] = 4096 - 1024; // exactly one packet's room
      expect(await w.next()).toEqual([0, 1]);
      expect(meta[2]).toBe(4096 - 1024);
    } finally {
      w.poller.close();
      n.close(a);
      n.close(b);
    }
  });

  it('takes descriptors as recvPackets does, and reports end of file as 0', async () => {
    const [a, b] = n.socketpair!();
    const { meta, fdsOut, offset, cell } = bind();
    const w = watch(b, cell);
    const devnull = openSync('/dev/null', 'r');
    try {
      n.sendPacket!(a, packet([42]), [devnull]);
      expect(await w.next()).toEqual([0, 1]);
      expect(meta[4]).toBe(1);
      const got = fdsOut[0]!;
      expect(got).not.toBe(devnull);
      expect(fstatSync(got).isCharacterDevice()).toBe(true);
      n.close(got); // registered by the read: the addon's close takes it
      n.close(a);
      expect(await w.next()).toEqual([0, 0]);
      expect(meta[1]).toBe(1);
    } finally {
      closeSync(devnull);
      w.poller.close();
      n.close(b);
    }
  });

  it('recvBound reads with the binding as recvPackets reads with its arguments, and refuses without room', () => {
    const [a, b] = n.socketpair!();
    const { arena, offset, meta } = bind();
    try {
      n.sendPacket!(a, packet([1, 2, 3]), null);
      n.sendPacket!(a, packet([4, 5]), null);
      offset[0] = 64;
      expect(n.recvBound!(b, 2)).toBe(2);
      expect(Array.from(meta.subarray(0, 10))).toEqual([2, 0, 64, 3, 0, 0, 72, 2, 0, 0]);
      expect(Array.from(arena.subarray(64, 67))).toEqual([1, 2, 3]);
      expect(Array.from(arena.subarray(72, 74))).toEqual([4, 5]);
      expect(n.recvBound!(b, 1)).toBe(EAGAIN);
      n.sendPacket!(a, packet([6]), null);
      offset[0] = 4096 - 1016;
      expect(() => n.recvBound!(b, 1)).toThrow(RangeError);
      expect(() => n.recvBound!(b, 257)).toThrow(RangeError);
      offset[0] = 0;
      expect(n.recvBound!(b, 1)).toBe(1);
      expect(arena[0]).toBe(6);
      n.close(a);
      expect(n.recvBound!(b, 1)).toBe(0);
      expect(meta[1]).toBe(1);
    } finally {
      n.close(b);
    }
  });

  it('binds only arrays of the sizes it reads with', () => {
    const arena = new Uint8Array(4096);
    const offset = new Int32Array(1);
    expect(() => n.bindRecv!(arena, offset, new Int32Array(2 + 4 * 255), new Int32Array(253), 1024)).toThrow(RangeError);
    expect(() => n.bindRecv!(arena, offset, new Int32Array(2 + 4 * 256), new Int32Array(252), 1024)).toThrow(RangeError);
    expect(() => n.bindRecv!(arena, new Int32Array(0), new Int32Array(2 + 4 * 256), new Int32Array(253), 1024)).toThrow(RangeError);
    expect(() => n.bindRecv!(arena, offset, new Float64Array(1026) as unknown as Int32Array, new Int32Array(253), 1024)).toThrow(TypeError);
  });
});

describe.skipIf(!seqpacket)('await recv() through the read-first poller', () => {
  /** Counts the library's own reads through JS-to-native calls (recvBound, recvPackets) while `fn` runs. */
  async function countingRecvCalls(fn: () => Promise<void>): Promise<number> {
    const n = native() as unknown as Record<string, (...args: unknown[]) => number>;
    const originals = { recvBound: n.recvBound!, recvPackets: n.recvPackets! };
    let calls = 0;
    for (const [name, f] of Object.entries(originals)) {
      n[name] = (...args: unknown[]) => {
        calls++;
        return f(...args);
      };
    }
    try {
      await fn();
    } finally {
      Object.assign(n, originals);
    }
    return calls;
  }

  it('a request/response loop takes its messages without a call into the addon to read per message', async () => {
    const [atx, arx] = channel<{ i: number; s: string }>();
    const [btx, brx] = channel<{ i: number; s: string }>();
    const echo = (async () => {
      for await (const m of arx) btx.send(m);
    })();
    const calls = await countingRecvCalls(async () => {
      for (let i = 0; i < 200; i++) {
        atx.send({ i, s: `m${i}` });
        expect(await brx.recv()).toEqual({ i, s: `m${i}` });
      }
    });
    // 400 messages received by `await`: the pollers read them (a few plain reads at most, e.g.
    // when a message is already there at recv()).
    expect(calls).toBeLessThan(20);
    atx.close();
    await echo;
    btx.close();
    brx.close();
  });

  it('keeps order, descriptors and big messages through the switch between the poller read and plain reads', async () => {
    const before = fdCount();
    const [tx, rx] = channel<{ i: number; data?: Uint8Array; fh?: IpcFileHandle }>();
    const devnull = openSync('/dev/null', 'r');
    const fh = IpcFileHandle.from(devnull);
    closeSync(devnull);
    const big = 300_000;
    const pending = rx.recv(); // the poller reads the first message
    tx.send({ i: 0 });
    expect(await pending).toEqual({ i: 0 });
    for (let i = 1; i < 40; i++) {
      const p = rx.recv();
      if (i % 5 === 0) tx.send({ i, data: new Uint8Array(big).fill(i) });
      else if (i % 3 === 0) tx.send({ i, fh });
      else tx.send({ i });
      const m = await p;
      expect(m.i).toBe(i);
      if (i % 5 === 0) {
        expect(m.data!.byteLength).toBe(big);
        expect(m.data!.every((x) => x === i)).toBe(true);
      } else if (i % 3 === 0) {
        expect(fstatSync(m.fh!.fd).isCharacterDevice()).toBe(true);
        m.fh!.close();
      }
    }
    fh.close();
    const last = rx.recv();
    tx.close();
    await expect(last).rejects.toMatchObject({ code: 'DISCONNECTED' });
    rx.close();
    expect(fdCount()).toBe(before);
  });

  it('refuses a bad packet read by the poller with one error, and goes on', async () => {
    const [tx, rx] = channel<number>();
    const fd = (tx as unknown as { core: { fd: number } }).core.fd;
    const p1 = rx.recv();
    tx.send(1);
    expect(await p1).toBe(1);
    const p2 = rx.recv();
    expect(native().sendPacket!(fd, [Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9])], null)).toBe(9);
    const err = await p2.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcError);
    expect((err as IpcError).code).toBe('MALFORMED');
    const p3 = rx.recv();
    tx.send(3);
    expect(await p3).toBe(3);
    tx.close();
    rx.close();
  });

  it('delivers every message of a long run across arena renewals, in order and intact', async () => {
    const [atx, arx] = channel<string>();
    const [btx, brx] = channel<string>();
    const echo = (async () => {
      for await (const m of arx) btx.send(m);
    })();
    // 3,000 round trips of ~3 KiB each way: the 2 MiB arena (renewed when less than a maximal
    // packet is left) is renewed several times, each time bound anew for the pollers.
    let wrong = 0;
    const calls = await countingRecvCalls(async () => {
      for (let i = 0; i < 3000; i++) {
        const s = String(i).padStart(6, '0').repeat(500);
        atx.send(s);
        if ((await brx.recv({ timeout: 10_000 })) !== s) wrong++;
      }
    });
    expect(wrong).toBe(0);
    // ...and the pollers read them (with the arena bound anew at each renewal).
    expect(calls).toBeLessThan(300);
    atx.close();
    await echo;
    btx.close();
    brx.close();
  });
});
