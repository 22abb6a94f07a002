import { describe, expect, it } from 'vitest';
import { IpcError, IpcOneShotServer, IpcReceiver, IpcSender, channel, bytesChannel } from '../src/main/index.js';
import { fdCount, rejectsWith, settledFdCount, spawnFixture, startPeer, skipOnWin32 } from './helpers.js';


function throwsWith(f: () => unknown, code: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(IpcError);
    expect((e as IpcError).code).toBe(code);
    return;
  }
  throw new Error(`expected a throw with ${code}`);
}

describe('channel in one process (through the kernel)', () => {
  it('round-trips every devalue type exactly', async () => {
    const [tx, rx] = channel<unknown>();
    const shared = { s: 1 };
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [1, , 3];
    const value = {
      u: undefined,
      nan: NaN,
      negZero: -0,
      inf: -Infinity,
      big: 12345678901234567890n,
      date: new Date(1700000000000),
      re: /a+b/gi,
      map: new Map<unknown, unknown>([[1, 'one'], [{ k: 1 }, [2]]]),
      set: new Set([1, 'two', 3n]),
      sparse,
      repeated: [shared, shared],
      cyclic,
      str: 'héllo \u{1F600}',
    };
    tx.send(value);
    const got = (await rx.recv()) as typeof value;
    expect(got.u).toBeUndefined();
    expect('u' in got).toBe(true);
    expect(Number.isNaN(got.nan)).toBe(true);
    expect(Object.is(got.negZero, -0)).toBe(true);
    expect(got.inf).toBe(-Infinity);
    expect(got.big).toBe(12345678901234567890n);
    expect(got.date).toBeInstanceOf(Date);
    expect(got.date.getTime()).toBe(1700000000000);
    expect(got.re).toBeInstanceOf(RegExp);
    expect(got.re.source).toBe('a+b');
    expect(got.re.flags).toBe('gi');
    expect(got.map).toBeInstanceOf(Map);
    expect([...got.map.keys()][1]).toEqual({ k: 1 });
    expect(got.set).toEqual(new Set([1, 'two', 3n]));
    expect(got.sparse.length).toBe(3);
    expect(1 in got.sparse).toBe(false);
    expect(got.repeated[0]).toBe(got.repeated[1]);
    expect(got.cyclic.self).toBe(got.cyclic);
    expect(got.str).toBe(value.str);
    tx.close();
    rx.close();
  });

  it('keeps FIFO order for 10,000 messages', async () => {
    const [tx, rx] = channel<{ i: number }>();
    for (let i = 0; i < 10_000; i++) tx.send({ i });
    for (let i = 0; i < 10_000; i++) expect((await rx.recv()).i).toBe(i);
    tx.close();
    await rejectsWith(rx.recv(), 'DISCONNECTED');
    rx.close();
  });

  it('tryRecv returns undefined when empty, the message when there, and throws DISCONNECTED at the end', async () => {
    const [tx, rx] = channel<number>();
    expect(rx.tryRecv()).toBeUndefined();
    tx.send(7);
    await tx.flush();
    expect(rx.tryRecv()).toEqual({ message: 7 });
    tx.close();
    throwsWith(() => rx.tryRecv(), 'DISCONNECTED');
    rx.close();
  });

  it('recv({ timeout }) rejects TIMEOUT and the receiver stays usable', async () => {
    const [tx, rx] = channel<string>();
    await rejectsWith(rx.recv({ timeout: 20 }), 'TIMEOUT');
    tx.send('after');
    expect(await rx.recv({ timeout: 1000 })).toBe('after');
    tx.close();
    rx.close();
  });

  it('async iteration ends when every sender is closed', async () => {
    const [tx, rx] = channel<number>();
    const tx2 = tx.clone();
    tx.send(1);
    tx2.send(2);
    tx.close();
    setTimeout(() => {
      tx2.send(3);
      tx2.close();
    }, 10);
    const got: number[] = [];
    for await (const m of rx) got.push(m);
    expect(got).toEqual([1, 2, 3]);
    rx.close();
  });

  it('send throws UNSERIALIZABLE and sends nothing; DISCONNECTED after the receiver closes; CLOSED after close', async () => {
    const [tx, rx] = channel<unknown>();
    throwsWith(() => tx.send({ f: () => 1 }), 'UNSERIALIZABLE');
    throwsWith(() => tx.send({ s: Symbol('x') }), 'UNSERIALIZABLE');
    class Custom {
      x = 1;
    }
    throwsWith(() => tx.send(new Custom()), 'UNSERIALIZABLE');
    tx.send('ok');
    expect(await rx.recv()).toBe('ok');
    expect(rx.tryRecv()).toBeUndefined();
    rx.close();
    throwsWith(() => tx.send('lost'), 'DISCONNECTED');
    tx.close();
    throwsWith(() => tx.send('x'), 'CLOSED');
    await rejectsWith(rx.recv(), 'CLOSED');
    throwsWith(() => rx.tryRecv(), 'CLOSED');
  });

  it('close() while a recv is pending rejects it with CLOSED', async () => {
    const [tx, rx] = channel<number>();
    const p = rx.recv();
    rx.close();
    await rejectsWith(p, 'CLOSED');
    tx.close();
  });

  it('Symbol.dispose closes both ends', async () => {
    let rxOut: IpcReceiver<number>;
    {
      using pair = disposablePair();
      rxOut = pair.rx;
    }
    expect(rxOut.closed).toBe(true);
  });

  it('nested channels travel inside messages: a sent receiver moves, a sent sender stays usable', async () => {
    const [tx, rx] = channel<{ inner: { r: IpcReceiver<string>; list: [IpcSender<string>]; map: Map<string, IpcSender<string>> } }>();
    const [itx, irx] = channel<string>();
    tx.send({ inner: { r: irx, list: [itx], map: new Map([['s', itx]]) } });
    expect(irx.closed).toBe(true);
    await rejectsWith(irx.recv(), 'CLOSED');
    const got = await rx.recv();
    expect(got.inner.list[0]).toBe(got.inner.map.get('s'));
    itx.send('from the original sender');
    got.inner.list[0].send('from the received sender');
    expect(await got.inner.r.recv()).toBe('from the original sender');
    expect(await got.inner.r.recv()).toBe('from the received sender');
    itx.close();
    got.inner.list[0].close();
    await rejectsWith(got.inner.r.recv(), 'DISCONNECTED');
    got.inner.r.close();
    tx.close();
    rx.close();
  });

  it('a receiver sent with messages already read keeps them (no descriptor left)', async () => {
    const before = await settledFdCount();
    const [tx, rx] = channel<{ r: IpcReceiver<number> }>();
    const [itx, irx] = channel<number>();
    for (let i = 0; i < 100; i++) itx.send(i);
    await itx.flush();
    expect(await irx.recv()).toBe(0); // reads a batch from the socket into memory
    tx.send({ r: irx });
    const { r } = await rx.recv();
    itx.close();
    const rest: number[] = [];
    for await (const m of r) rest.push(m);
    expect(rest).toEqual(Array.from({ length: 99 }, (_, i) => i + 1));
    r.close();
    tx.close();
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('a receiver sent within this process with messages already read that carry senders keeps them (no descriptor left)', async () => {
    // On win32 the carrier's handles go by token here (its reader is in this process): a
    // carrier written for another process (parked handles) would be refused here (MALFORMED).
    const before = await settledFdCount();
    const [tx, rx] = channel<{ r: IpcReceiver<{ i: number; s: IpcSender<number> }> }>();
    const [itx, irx] = channel<{ i: number; s: IpcSender<number> }>();
    const [ctx, crx] = channel<number>();
    for (let i = 0; i < 5; i++) itx.send({ i, s: ctx });
    await itx.flush();
    const first = await irx.recv(); // reads ahead of what it returns
    first.s.close();
    tx.send({ r: irx });
    const { r } = await rx.recv();
    for (let i = 1; i < 5; i++) {
      const m = await r.recv({ timeout: 5000 });
      expect(m.i).toBe(i);
      m.s.send(i);
      m.s.close();
    }
    for (let i = 1; i < 5; i++) expect(await crx.recv({ timeout: 5000 })).toBe(i);
    itx.close();
    await rejectsWith(r.recv({ timeout: 5000 }), 'DISCONNECTED');
    for (const e of [r, ctx, crx, tx, rx]) e.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('bytes channel carries raw bytes of any size', async () => {
    const [tx, rx] = bytesChannel();
    tx.send(new Uint8Array([1, 2, 3]));
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7);
    tx.send(big);
    tx.send(new Uint8Array(0));
    expect([...(await rx.recv())]).toEqual([1, 2, 3]);
    expect(Buffer.compare(await rx.recv(), big)).toBe(0);
    expect((await rx.recv()).byteLength).toBe(0);
    tx.close();
    rx.close();
  });

  it('queuedBytes counts what the kernel has not taken yet, and is 0 again once the receiver read it', async () => {
    const [tx, rx] = channel<Uint8Array>();
    expect(tx.queuedBytes).toBe(0);
    const chunk = new Uint8Array(256 * 1024).fill(1);
    // Nobody reads: the socket fills, then the rest waits in the sender.
    for (let i = 0; i < 64; i++) tx.send(chunk);
    const queued = tx.queuedBytes;
    expect(queued).toBeGreaterThan(4 * 1024 * 1024);
    expect(queued).toBeLessThanOrEqual(64 * (chunk.byteLength + 4096));
    const clone = tx.clone();
    expect(clone.queuedBytes).toBe(queued);
    clone.close(); // dropped, the GC safety net would close it at some later test's expense
    const flushed = tx.flush();
    for (let i = 0; i < 64; i++) expect((await rx.recv()).byteLength).toBe(chunk.byteLength);
    await flushed;
    expect(tx.queuedBytes).toBe(0);
    tx.close();
    rx.close();
  });

  it('returns to the descriptor baseline after 1,000 channels are created, sent and closed', async () => {
    const [carrier, carrierRx] = channel<{ s: IpcSender<number>; r: IpcReceiver<number> }>();
    const before = fdCount();
    for (let i = 0; i < 1000; i++) {
      const [s, r] = channel<number>();
      carrier.send({ s, r });
      s.close();
      const got = await carrierRx.recv();
      got.s.send(i);
      expect(await got.r.recv()).toBe(i);
      got.s.close();
      got.r.close();
    }
    // Exact on Linux. Under Wine the count measured before the loop can include one handle an
    // earlier test left to be released, which goes during the loop (6 after 7): fewer is no leak.
    if (process.platform === 'win32') expect(fdCount()).toBeLessThanOrEqual(before);
    else expect(fdCount()).toBe(before);
    carrier.close();
    carrierRx.close();
  });
});

function disposablePair(): { tx: IpcSender<number>; rx: IpcReceiver<number>; [Symbol.dispose](): void } {
  const [tx, rx] = channel<number>();
  return {
    tx,
    rx,
    [Symbol.dispose]() {
      tx[Symbol.dispose]();
      rx[Symbol.dispose]();
    },
  };
}

describe('across processes', () => {
  it('bootstraps by a one-shot server name and echoes', async () => {
    const { rx, tx, spawned, server } = await startPeer<unknown, unknown>('echo');
    const { existsSync } = await import('node:fs');
    expect(existsSync(server.name)).toBe(false); // the name is removed after accept
    const msgs = [1, 'two', { three: [3n] }, new Map([[4, new Set([4])]])];
    for (const m of msgs) tx.send(m);
    for (const m of msgs) expect(await rx.recv()).toEqual(m);
    tx.close();
    await rejectsWith(rx.recv(), 'DISCONNECTED');
    rx.close();
    const r = await spawned.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a flooding sender loses and reorders nothing, and its queue keeps it alive until written', async () => {
    const count = 50_000;
    const { rx, tx, spawned } = await startPeer<{ i: number; pad: string }, never>('flood', { EIPC_COUNT: String(count) });
    tx.close();
    // A slow receiver: pause now and then so the child's socket fills and it must queue.
    for (let i = 0; i < count; i++) {
      const m = await rx.recv({ timeout: 20_000 });
      expect(m.i).toBe(i);
      if (i % 10_000 === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await rejectsWith(rx.recv({ timeout: 20_000 }), 'DISCONNECTED');
    rx.close();
    expect((await spawned.done).code).toBe(0);
  });

  it('hands a channel across three processes: B writes straight to C', async () => {
    const b = await startPeer<{ done: boolean }, { sender: IpcSender<unknown>; count: number }>('relay-writer');
    const c = await startPeer<{ got: Array<{ from: number; i: number }> }, { receiver: IpcReceiver<unknown> }>('relay-reader');
    const [s, r] = channel<unknown>();
    c.tx.send({ receiver: r });
    b.tx.send({ sender: s, count: 500 });
    s.close(); // A keeps nothing of the channel: B and C talk without it
    expect(await b.rx.recv({ timeout: 20_000 })).toEqual({ done: true });
    const { got } = await c.rx.recv({ timeout: 20_000 });
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => ({ from: b.spawned.child.pid, i })));
    for (const p of [b, c]) {
      p.tx.close();
      p.rx.close();
      expect((await p.spawned.done).code).toBe(0);
    }
  });

  it('a peer SIGKILLed mid-stream leaves every complete message and then DISCONNECTED', async () => {
    const { rx, tx, spawned } = await startPeer<{ i: number; big?: Uint8Array }, never>('stream-until-killed');
    tx.close();
    let next = 0;
    let killed = false;
    for (;;) {
      let m: { i: number; big?: Uint8Array };
      try {
        m = await rx.recv({ timeout: 20_000 });
      } catch (e) {
        expect((e as IpcError).code).toBe('DISCONNECTED');
        break;
      }
      expect(m.i).toBe(next);
      if (m.i % 7 === 3) {
        expect(m.big!.byteLength).toBe(300 * 1024);
        expect(m.big!.every((x) => x === (m.i & 255))).toBe(true);
      }
      next++;
      if (next === 2000 && !killed) {
        killed = true;
        spawned.child.kill('SIGKILL');
      }
    }
    expect(killed).toBe(true);
    expect(next).toBeGreaterThanOrEqual(2000);
    rx.close();
    expect((await spawned.done).signal).toBe('SIGKILL');
  });

  it('an unref()ed pending recv lets the process exit', async () => {
    const { rx, tx, spawned } = await startPeer<{ ready: boolean }, never>('pending-recv-unref');
    expect(await rx.recv()).toEqual({ ready: true });
    const r = await spawned.done; // must exit by itself although tx (its channel) is still open here
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    tx.close();
    rx.close();
  });

  it('a receiver that received and is no longer awaited lets the process exit', async () => {
    const { rx, tx, spawned } = await startPeer<{ done: boolean }, string>('receive-then-idle');
    for (const m of ['a', 'b', 'c', 'd', 'last']) tx.send(m);
    expect(await rx.recv()).toEqual({ done: true });
    const r = await spawned.done; // must exit by itself although tx (its channel) is still open here
    expect(r.code).toBe(0);
    expect(r.signal).toBe(null);
    tx.close();
    rx.close();
  });

  it('a second connect to a used name fails clearly, and accept times out when nobody connects', async () => {
    const server = new IpcOneShotServer<number>();
    const name = server.name;
    const p = server.accept({ timeout: 5000 });
    const s = IpcSender.connect<number>(name);
    s.send(1);
    const [r, first] = await p;
    expect(first).toBe(1);
    expect(() => IpcSender.connect(name)).toThrow(/no one-shot server is listening/);
    s.close();
    r.close();
    const lonely = new IpcOneShotServer<number>();
    await rejectsWith(lonely.accept({ timeout: 50 }), 'TIMEOUT');
    lonely.close();
    const closing = new IpcOneShotServer<number>();
    const pending = closing.accept();
    closing.close();
    await rejectsWith(pending, 'CLOSED');
  });
});

describe('big messages from several senders at once', () => {
  it('arrive whole when their fragments interleave with each other and with small messages', async () => {
    const [tx, rx] = channel<{ from: number; i: number; data?: Uint8Array }>();
    const senders = [tx, tx.clone(), tx.clone()];
    const size = 3 * 1024 * 1024 + 5;
    const per = 6;
    // Each sender queues its messages at once, so their fragments are written in turns as the
    // socket drains: fragments of different messages interleave on the wire.
    senders.forEach((s, from) => {
      for (let i = 0; i < per; i++) {
        s.send(from === 2 ? { from, i } : { from, i, data: new Uint8Array(size).fill(from * 16 + i) });
      }
    });
    const next = [0, 0, 0];
    for (let k = 0; k < per * senders.length; k++) {
      const m = await rx.recv({ timeout: 20_000 });
      expect(m.i).toBe(next[m.from]);
      next[m.from]!++;
      if (m.from !== 2) {
        expect(m.data!.byteLength).toBe(size);
        expect(m.data!.every((b) => b === m.from * 16 + m.i)).toBe(true);
      }
    }
    for (const s of senders) s.close();
    await rejectsWith(rx.recv(), 'DISCONNECTED');
    rx.close();
  });
});

describe('moving a receiver in the middle of a big message', () => {
  it('hands over the part already read, and the message arrives whole on the other side', async () => {
    const [tx, rx] = channel<{ data: Uint8Array; tag: string }>();
    const [carrier, carrierRx] = channel<{ r: IpcReceiver<{ data: Uint8Array; tag: string }> }>();
    const size = 24 * 1024 * 1024 + 3;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4093) data[i] = (i / 4093) & 255;
    tx.send({ data, tag: 'big' }); // what the socket does not take at once waits in tx's queue
    // Each tryRecv() reads what is there: the first fragment, then more of them in place (a
    // partial message of a few MiB out of 24).
    for (let i = 0; i < 3; i++) expect(rx.tryRecv()).toBeUndefined();
    carrier.send({ r: rx });
    expect(rx.closed).toBe(true);
    const { r } = await carrierRx.recv();
    tx.send({ data: new Uint8Array([1, 2, 3]), tag: 'after' });
    const got = await r.recv({ timeout: 20_000 });
    expect(got.tag).toBe('big');
    expect(got.data.byteLength).toBe(size);
    expect(Buffer.compare(got.data, data)).toBe(0);
    expect(await r.recv({ timeout: 20_000 })).toEqual({ data: new Uint8Array([1, 2, 3]), tag: 'after' });
    tx.close();
    await rejectsWith(r.recv(), 'DISCONNECTED');
    r.close();
    carrier.close();
    carrierRx.close();
  });
});

describe('a stream of big messages', () => {
  it('carrying descriptors and mixed with small ones, arrives whole and in order', async () => {
    const { IpcFileHandle } = await import('../src/main/index.js');
    const { openSync, closeSync, fstatSync } = await import('node:fs');
    const before = fdCount();
    const [tx, rx] = channel<{ i: number; data?: Uint8Array; fh?: InstanceType<typeof IpcFileHandle> }>();
    const devnull = openSync('/dev/null', 'r');
    const fh = IpcFileHandle.from(devnull);
    closeSync(devnull);
    const sizes = [200_000, 1024 * 1024, 3 * 1024 * 1024 + 1, 70_000];
    for (let i = 0; i < 20; i++) {
      if (i % 3 === 2) tx.send({ i });
      else tx.send({ i, data: new Uint8Array(sizes[i % sizes.length]!).fill(i), fh });
    }
    // (No flush() here: in one process nobody reads while it waits, so it would never resolve.)
    for (let i = 0; i < 20; i++) {
      const m = await rx.recv({ timeout: 20_000 });
      expect(m.i).toBe(i);
      if (i % 3 === 2) continue;
      expect(m.data!.byteLength).toBe(sizes[i % sizes.length]);
      expect(m.data!.every((b) => b === i)).toBe(true);
      expect(fstatSync(m.fh!.fd).isCharacterDevice()).toBe(true);
      m.fh!.close();
    }
    fh.close();
    tx.close();
    rx.close();
    expect(fdCount()).toBe(before);
  });
});

describe('receiving big messages in place, against a misbehaving peer', skipOnWin32('writes raw packets back to back with nobody reading, which needs a kernel socket buffer (8 MiB SO_SNDBUF); a win32 pipe end has one write in flight (AGAIN)'), () => {
  // Raw packets written into a channel's socket, as a hostile or buggy peer could (through the
  // transport: one packet per sendmsg on seqpacket, one frame on stream).
  async function rawPeer() {
    const { native } = await import('../src/main/native.js');
    const { transport } = await import('../src/main/transport/index.js');
    const { planFragments, FRAGMENT_HEADER } = await import('../src/main/framing.js');
    const { encodeMessage } = await import('../src/shared/codec.js');
    const [tx, rx] = channel<{ tag: string; data: Uint8Array }>();
    const fd = (tx as unknown as { core: { fd: number } }).core.fd;
    native().setBufferSizes(fd, 8 * 1024 * 1024, 0);
    /** The fragments of one message (header + chunk, each one packet) of a given stream. */
    const fragments = (stream: bigint, seq: number, tag: string, size: number): Uint8Array[] => {
      const enc = encodeMessage({ tag, data: new Uint8Array(size).fill(tag.charCodeAt(0)) });
      const body = new Uint8Array(enc.byteLength);
      let at = 0;
      for (const p of enc.parts) {
        body.set(p, at);
        at += p.byteLength;
      }
      return planFragments(stream, seq, body.byteLength, 0, 256 * 1024).map((f) => {
        const pkt = new Uint8Array(FRAGMENT_HEADER + f.bytes);
        pkt.set(f.header, 0);
        pkt.set(body.subarray(f.offset, f.offset + f.bytes), FRAGMENT_HEADER);
        return pkt;
      });
    };
    const write = (pkt: Uint8Array): void => {
      expect(transport().send(fd, [pkt], null)).toBe(pkt.byteLength);
    };
    return { tx, rx, fragments, write };
  }

  it('a fragment out of order in the middle of a message received in place is one MALFORMED', async () => {
    const { tx, rx, fragments, write } = await rawPeer();
    const before = fdCount();
    for (const p of fragments(1n, 0, 'a', 1_000_000)) write(p); // makes the receiver expect big ones
    const b = fragments(1n, 1, 'b', 1_500_000);
    write(b[0]!);
    write(b[2]!); // skips b[1]
    for (const p of fragments(1n, 2, 'c', 700_000)) write(p);
    const a = await rx.recv();
    expect(a.tag).toBe('a');
    expect(a.data.every((x) => x === 97)).toBe(true);
    await rejectsWith(rx.recv(), 'MALFORMED');
    const c = await rx.recv();
    expect(c.tag).toBe('c');
    expect(c.data.byteLength).toBe(700_000);
    expect(c.data.every((x) => x === 99)).toBe(true);
    tx.close();
    await rejectsWith(rx.recv(), 'DISCONNECTED');
    rx.close();
    expect(fdCount()).toBe(before - 2); // tx and rx, opened before `before`
  });

  it('two senders interleaving their big messages both arrive whole', async () => {
    const { tx, rx, fragments, write } = await rawPeer();
    for (const p of fragments(7n, 0, 'w', 600_000)) write(p); // warm-up: big packets seen
    const x = fragments(1n, 0, 'x', 1_200_000);
    const y = fragments(2n, 0, 'y', 900_000);
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if (x[i]) write(x[i]!);
      if (y[i]) write(y[i]!);
    }
    const got = [await rx.recv(), await rx.recv(), await rx.recv()];
    expect(got.map((m) => m.tag).sort()).toEqual(['w', 'x', 'y']);
    for (const m of got) expect(m.data.every((v) => v === m.tag.charCodeAt(0))).toBe(true);
    tx.close();
    rx.close();
  });
});
