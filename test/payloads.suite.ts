/**
 * Payload tests shared by test/payloads.test.ts (shared memory viewed without copying) and
 * test/payloads.copy.test.ts (ELECTRON_IPC_CHANNEL_COPY_SHM=1: `.bytes` copies, as in Electron).
 * Every case crosses a process boundary: a child (test/fixtures/payloads/peer.mjs, importing
 * dist) describes what it received with sizes and SHA-256 hashes, or sends it back.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  IpcError,
  IpcFileHandle,
  IpcOneShotServer,
  IpcReceiver,
  IpcSender,
  IpcSharedMemory,
  bytesChannel,
  channel,
  setSharedMemoryCopyMode,
  sharedMemoryIsZeroCopy,
} from '../src/main/index.js';
import { DEFAULT_LIMITS } from '../src/shared/limits.js';
import { fdCount, rejectsWith, settledFdCount, spawnFixture, skipOnWin32 } from './helpers.js';
import type { Spawned } from './helpers.js';

const MiB = 1024 * 1024;
type Reply = Record<string, unknown> & { id: number; error?: string };
type Described = { type: string; isBuffer?: boolean; byteLength?: number; byteOffset?: number; bufferByteLength?: number; length?: number; sha: string };

const sha = (u8: Uint8Array): string => createHash('sha256').update(u8).digest('hex');

function ownBytes(v: ArrayBuffer | ArrayBufferView): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** What the child must report for a binary: its kind, only its own bytes, in a buffer of its own. */
function expected(v: ArrayBuffer | ArrayBufferView): Described {
  const type = Buffer.isBuffer(v) ? 'Uint8Array' : v.constructor.name;
  return { type, isBuffer: false, byteLength: v.byteLength, byteOffset: 0, bufferByteLength: v.byteLength, sha: sha(ownBytes(v)) };
}

/** Deterministic, non-repeating-looking bytes. */
function pattern(n: number, seed = 1): Uint8Array {
  const u8 = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  const u32 = new Uint32Array(u8.buffer, 0, n >>> 2);
  for (let i = 0; i < u32.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u32[i] = x >>> 0;
  }
  for (let i = u32.length * 4; i < n; i++) u8[i] = i * 31;
  return u8;
}


interface Peer {
  pid: number;
  zeroCopy: boolean;
  tx: IpcSender<Record<string, unknown>>;
  rx: IpcReceiver<unknown>;
  spawned: Spawned;
}

let nextId = 1;

/**
 * Sends one command to the child with a fresh reply channel and returns the reply channel's
 * receiver (for commands that answer more than once) and the first reply.
 */
async function call(to: IpcSender<Record<string, unknown>>, cmd: Record<string, unknown>): Promise<Reply> {
  const [replyTx, replyRx] = channel<Reply>();
  const id = nextId++;
  to.send({ ...cmd, id, reply: replyTx });
  replyTx.close();
  try {
    const r = await replyRx.recv({ timeout: 60_000 });
    if (r.error) throw new Error(`the child failed: ${r.error}`);
    expect(r.id).toBe(id);
    return r;
  } finally {
    replyRx.close();
  }
}

/** Defines every payload case; `copy` says whether shared memory must be copied in this run. */
export function definePayloadTests(copy: boolean): void {
  const childEnv = { ELECTRON_IPC_CHANNEL_COPY_SHM: copy ? '1' : '0' };
  let peer: Peer;
  let tmp: string;

  beforeAll(async () => {
    setSharedMemoryCopyMode(copy);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eipc-payloads-'));
    const server = new IpcOneShotServer<{ pid: number; sender: IpcSender<Record<string, unknown>>; zeroCopy: boolean }>();
    const spawned = spawnFixture('payloads/peer.mjs', { EIPC_SERVER: server.name, EIPC_ROLE: '', ...childEnv }, 300_000);
    const [rx, first] = await server.accept({ timeout: 15_000 });
    expect(first.pid).toBe(spawned.child.pid);
    peer = { pid: first.pid, zeroCopy: first.zeroCopy, tx: first.sender, rx: rx as IpcReceiver<unknown>, spawned };
  });

  afterAll(async () => {
    peer.tx.close();
    peer.rx.close();
    const r = await peer.spawned.done;
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  describe('binaries travel out of band, byte-exact, as their own kind', () => {
    it('a 1 MiB Uint8Array goes to another process and back', async () => {
      const u8 = pattern(MiB, 7);
      const r = await call(peer.tx, { op: 'echo', value: u8 });
      expect(r.described).toEqual(expected(u8));
      const back = r.value as Uint8Array;
      expect(back).toBeInstanceOf(Uint8Array);
      expect(Buffer.compare(back, u8)).toBe(0);
    });

    it('a 64 MiB Uint8Array goes to another process and back', async () => {
      const u8 = pattern(64 * MiB, 64);
      const r = await call(peer.tx, { op: 'echo', value: u8 });
      expect(r.described).toEqual(expected(u8));
      const back = r.value as Uint8Array;
      expect(back.byteLength).toBe(64 * MiB);
      expect(sha(back)).toBe(sha(u8));
    });

    it('every typed array kind, DataView, ArrayBuffer and Buffer arrive as the same kind (a Buffer as Uint8Array)', async () => {
      const base = pattern(4096, 3).buffer as ArrayBuffer;
      const value = {
        f64: new Float64Array([Math.PI, -0, NaN, Infinity, -1e308, 5e-324]),
        ab: base.slice(0, 1000),
        emptyAb: new ArrayBuffer(0),
        buf: Buffer.from('a Node Buffer, from the pool'),
        dv: new DataView(base, 8, 100),
        bi64: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n]),
        bu64: new BigUint64Array([2n ** 64n - 1n, 1n]),
        i8: new Int8Array([-128, 127, 0]),
        u8c: new Uint8ClampedArray([0, 255, 128]),
        i16: new Int16Array([-32768, 32767]),
        u16: new Uint16Array([65535, 1]),
        i32: new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
        u32: new Uint32Array([2 ** 32 - 1]),
        f32: new Float32Array([1.5, -0.25]),
        emptyU8: new Uint8Array(0),
      };
      const r = await call(peer.tx, { op: 'echo', value });
      const described = r.described as Record<string, Described>;
      for (const [k, v] of Object.entries(value)) expect(described[k], k).toEqual(expected(v));
      const back = r.value as typeof value;
      for (const [k, v] of Object.entries(value)) {
        const got = (back as Record<string, ArrayBuffer | ArrayBufferView>)[k]!;
        expect(got.constructor.name, k).toBe(Buffer.isBuffer(v) ? 'Uint8Array' : v.constructor.name);
        expect(Buffer.compare(ownBytes(got), ownBytes(v)), k).toBe(0);
      }
      expect(Buffer.isBuffer(back.buf)).toBe(false);
      expect(Object.is(back.f64[1], -0)).toBe(true);
      expect(Number.isNaN(back.f64[2])).toBe(true);
      expect(back.bi64[0]).toBe(-(2n ** 63n));
    });

    it('a view of part of a big buffer sends only its own bytes', async () => {
      // The child's receiver refuses anything over 4 KiB: had the whole 32 MiB buffer gone, the
      // message would be TOO_LARGE.
      const big = pattern(32 * MiB, 32);
      const { sender } = (await call(peer.tx, { op: 'open', options: { maxMessageBytes: 4096 } })) as unknown as { sender: IpcSender<Record<string, unknown>> };
      try {
        const value = {
          sub: big.subarray(MiB + 3, MiB + 3 + 16),
          f64: new Float64Array(big.buffer, 8 * MiB, 4),
          dv: new DataView(big.buffer, 16 * MiB + 1, 7),
        };
        const r = await call(sender, { op: 'describe', value });
        const described = r.described as Record<string, Described>;
        expect(described.sub).toEqual(expected(value.sub));
        expect(described.sub!.byteLength).toBe(16);
        expect(described.sub!.bufferByteLength).toBe(16);
        expect(described.f64).toEqual(expected(value.f64));
        expect(described.dv).toEqual(expected(value.dv));
        // The same receiver refuses the whole buffer.
        const [replyTx, replyRx] = channel<Reply>();
        sender.send({ op: 'describe', value: big, reply: replyTx, id: 0 });
        replyTx.close();
        const r2 = await call(sender, { op: 'describe', value: 'still usable' });
        expect(r2.described).toEqual({ type: 'string', length: 12, sha: sha(Buffer.from('still usable')) });
        expect((await call(sender, { op: 'refused' })).refused).toEqual(['TOO_LARGE']);
        // The reply sender inside the refused message was closed by the child.
        await rejectsWith(replyRx.recv({ timeout: 20_000 }), 'DISCONNECTED');
        replyRx.close();
      } finally {
        sender.close();
      }
    });

    it('a message of 2,000 small binaries (more parts than one sendmsg takes) arrives', async () => {
      const value = Array.from({ length: 2000 }, (_, i) => new Uint8Array([i & 255, i >> 8]));
      const r = await call(peer.tx, { op: 'echo', value });
      const back = r.value as Uint8Array[];
      expect(back.length).toBe(2000);
      for (let i = 0; i < 2000; i++) expect([...back[i]!]).toEqual([i & 255, i >> 8]);
    });

    it('a 10 MB string arrives intact', async () => {
      const unit = 'plain ascii, é, €, 😀; ';
      const s = unit.repeat(Math.ceil(10_000_000 / unit.length)).slice(0, 10_000_000);
      const r = await call(peer.tx, { op: 'echo', value: s });
      expect(r.described).toEqual({ type: 'string', length: s.length, sha: sha(Buffer.from(s, 'utf8')) });
      expect(r.value === s).toBe(true);
    });
  });

  describe('file handles', () => {
    it('a file is read in another process while the sender keeps its own descriptors', skipOnWin32('checks FD_CLOEXEC on the received descriptor (POSIX); Windows C runtime descriptors have no close-on-exec flag'), async () => {
      const file = path.join(tmp, 'read-me.txt');
      fs.writeFileSync(file, 'contents of the file');
      const before = fdCount();
      const fd = fs.openSync(file, 'r');
      const fh = await fs.promises.open(file, 'r');
      const fromFd = IpcFileHandle.from(fd);
      const fromFileHandle = IpcFileHandle.from(fh);
      expect(fromFd.fd).not.toBe(fd);
      expect(fromFileHandle.fd).not.toBe(fh.fd);
      for (const h of [fromFd, fromFileHandle]) {
        const r = await call(peer.tx, { op: 'read-file', file: h, length: 100 });
        expect(r).toMatchObject({ text: 'contents of the file', cloexec: true });
      }
      // Sending kept every descriptor here usable.
      const buf = Buffer.alloc(8);
      expect(fs.readSync(fd, buf, 0, 8, 0)).toBe(8);
      expect(buf.toString()).toBe('contents');
      expect((await fh.read(buf, 0, 2, 9)).bytesRead).toBe(2);
      expect(fs.readSync(fromFd.fd, buf, 0, 8, 12)).toBe(8);
      expect(buf.toString()).toBe('the file');
      expect(fs.readSync(fromFileHandle.fd, buf, 0, 8, 0)).toBe(8);
      // close() is idempotent, Symbol.dispose closes, and .fd of a closed handle throws CLOSED.
      fromFd.close();
      fromFd.close();
      fromFileHandle[Symbol.dispose]();
      expect(fromFileHandle.closed).toBe(true);
      expect(() => fromFd.fd).toThrow(IpcError);
      expect(() => peer.tx.send({ op: 'read-file', file: fromFd, length: 1 })).toThrow(/closed/);
      fs.closeSync(fd);
      await fh.close();
      expect(fdCount()).toBe(before);
    });

    it('the write end of a pipe is passed to a child, which writes into it', skipOnWin32('makes a FIFO with mkfifo (POSIX)'), async () => {
      const fifo = path.join(tmp, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const writeEnd = fs.openSync(fifo, fs.constants.O_WRONLY);
      fs.unlinkSync(fifo);
      const h = IpcFileHandle.from(writeEnd);
      fs.closeSync(writeEnd); // the handle owns its own duplicate
      const r = await call(peer.tx, { op: 'write-pipe', file: h, text: `written by the child` });
      expect(r.kind).toBe('fifo');
      const buf = Buffer.alloc(100);
      const n = fs.readSync(readEnd, buf, 0, 100, null);
      expect(buf.subarray(0, n).toString()).toBe('written by the child');
      // The child closed its descriptor; once this one is closed no writer is left: end of file.
      h.close();
      expect(fs.readSync(readEnd, buf, 0, 100, null)).toBe(0);
      fs.closeSync(readEnd);
    });

    it.runIf(process.platform === 'win32')('a connected socket has no descriptor on Windows: IpcFileHandle.from refuses it with a RangeError saying what to do', async () => {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      const conn = await accepted;
      const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
      expect(fd).toBe(-1);
      expect(() => IpcFileHandle.from(fd)).toThrow(/on Windows, Node gives sockets and pipes no descriptor/);
      client.destroy();
      conn.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it('a connected socket is passed to a child, which writes into it', skipOnWin32('Node on Windows gives a socket no descriptor (`_handle.fd` is -1; the test above checks the refusal) and a path is no Unix socket there (listen EACCES)'), async () => {
      const sockPath = path.join(tmp, 'sock');
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(sockPath, resolve));
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const client = net.connect(sockPath);
      const conn = await accepted;
      const received = new Promise<string>((resolve) => client.once('data', (d) => resolve(d.toString())));
      const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
      const h = IpcFileHandle.from(fd);
      const r = await call(peer.tx, { op: 'write-pipe', file: h, text: 'through a socket' });
      expect(r.kind).toBe('socket');
      expect(await received).toBe('through a socket');
      h.close();
      client.destroy();
      conn.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    it('1,000 handles in one message all arrive, in order, usable and close-on-exec', skipOnWin32('counts close-on-exec (FD_CLOEXEC) flags in the child (POSIX)'), async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'many-'));
      const before = fdCount();
      const files: IpcFileHandle[] = [];
      for (let i = 0; i < 1000; i++) {
        const p = path.join(dir, String(i));
        fs.writeFileSync(p, `file #${i}`);
        const fd = fs.openSync(p, 'r');
        files.push(IpcFileHandle.from(fd));
        fs.closeSync(fd);
      }
      const r = await call(peer.tx, { op: 'many-files', files });
      expect(r.count).toBe(1000);
      expect(r.bad).toEqual([]);
      expect(r.cloexec).toBe(1000);
      expect((r.during as number) - (r.after as number)).toBe(1000);
      for (const f of files) f.close();
      expect(fdCount()).toBe(before);
    });
  });

  describe(`shared memory (${copy ? 'copied' : 'zero-copy'} views)`, () => {
    it(`sharedMemoryIsZeroCopy() is ${!copy} here and in the child`, skipOnWin32('win32 maps no received memory: an IpcSharedMemory received there is a copy (docs/windows.md)'), () => {
      expect(sharedMemoryIsZeroCopy()).toBe(!copy);
      expect(peer.zeroCopy).toBe(!copy);
    });

    // The receiver's descriptor refuses writes, shrinking and growing: a memfd sealed against them
    // (seqpacket: EPERM), or a read-only descriptor of unsealed shared memory (stream: writes
    // EBADF, ftruncate EINVAL).
    const STREAM = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';
    const refused = STREAM ? { write: ['EBADF'], truncate: ['EINVAL'], grow: ['EINVAL'] } : { write: ['EPERM'], truncate: ['EPERM'], grow: ['EPERM'] };

    it(`64 MiB arrive intact; the received ${STREAM ? 'block is read-only' : 'memfd is sealed'} against write, shrink and grow`, skipOnWin32('checks memfd seals (F_ADD_SEALS) of the received block (Linux); win32 sections are checked by test/windows/platform.test.mjs'), async () => {
      const content = pattern(64 * MiB, 99);
      const shm = IpcSharedMemory.fromBytes(content);
      expect(shm.length).toBe(64 * MiB);
      const r = await call(peer.tx, { op: 'shm', shm });
      expect(r).toMatchObject({
        length: 64 * MiB,
        sha: sha(content),
        zeroCopy: !copy,
        isInstance: true,
        memfds: 1,
        ...refused,
        cloexec: [true],
        memfdsAfterClose: 0,
      });
      expect(sha(shm.bytes)).toBe(sha(content));
      shm.close();
      expect(shm.closed).toBe(true);
      expect(() => shm.bytes).toThrow(IpcError);
    });

    it('writes into .bytes stay in the writing process', async () => {
      const shm = IpcSharedMemory.fromByte(0x5a, 8 * MiB);
      const original = sha(new Uint8Array(8 * MiB).fill(0x5a));
      // The child scribbles over its view: its own view changes, the block does not.
      const r1 = await call(peer.tx, { op: 'shm', shm, scribble: true });
      expect(r1.sha).toBe(original);
      expect(r1.afterScribble).not.toBe(original);
      expect(sha(shm.bytes)).toBe(original);
      // This process scribbles over its view: the child still sees the original.
      shm.bytes.fill(1, 0, 4096);
      expect(shm.bytes[0]).toBe(1); // the same array on every access
      const r2 = await call(peer.tx, { op: 'shm', shm });
      expect(r2.sha).toBe(original);
      // And so does a fresh view here, through a descriptor received from a channel.
      const [tx, rx] = channel<IpcSharedMemory>();
      tx.send(shm);
      const again = await rx.recv();
      expect(sha(again.bytes)).toBe(original);
      again.close();
      tx.close();
      rx.close();
      shm.close();
    });

    it('an empty block and a block from fromByte() arrive with their length and contents', skipOnWin32('expects writes to a received block to fail (EPERM, a sealed memfd mapped read-only); on win32 received bytes are a copy'), async () => {
      const empty = IpcSharedMemory.fromBytes(new Uint8Array(0));
      const r1 = await call(peer.tx, { op: 'shm', shm: empty });
      expect(r1).toMatchObject({ length: 0, sha: sha(new Uint8Array(0)) });
      const filled = IpcSharedMemory.fromByte(0xff, 3 * MiB + 5);
      const r2 = await call(peer.tx, { op: 'shm', shm: filled });
      expect(r2).toMatchObject({ length: 3 * MiB + 5, sha: sha(new Uint8Array(3 * MiB + 5).fill(0xff)), write: refused.write });
      empty.close();
      filled.close();
    });
  });

  describe('bytes channel', () => {
    it('both ends travel inside messages and carry bytes of any size', async () => {
      const [toChild, childIn] = bytesChannel();
      const [childOut, fromChild] = bytesChannel();
      const [replyTx, replyRx] = channel<Reply>();
      peer.tx.send({ op: 'bytes-echo', id: 0, receiver: childIn, sender: childOut, reply: replyTx });
      replyTx.close();
      expect(childIn.closed).toBe(true); // a sent receiver moves
      expect(childOut.closed).toBe(false); // a sent sender stays usable here
      childOut.close(); // leave the child's the only sender, so that its close ends the stream
      expect(await replyRx.recv({ timeout: 20_000 })).toMatchObject({ started: true });
      const chunks = [new Uint8Array([1, 2, 3]), pattern(MiB, 5), pattern(3 * MiB + 1, 6), new Uint8Array(0), Buffer.from('last')];
      for (const c of chunks) toChild.send(c);
      for (const c of chunks) {
        const got = await fromChild.recv({ timeout: 20_000 });
        expect(got).toBeInstanceOf(Uint8Array);
        expect(got.byteLength).toBe(c.byteLength);
        expect(Buffer.compare(got, c)).toBe(0);
      }
      toChild.close();
      await rejectsWith(fromChild.recv({ timeout: 20_000 }), 'DISCONNECTED');
      expect(await replyRx.recv({ timeout: 20_000 })).toMatchObject({ echoed: chunks.length });
      fromChild.close();
      replyRx.close();
    });

    it('a bytes channel refuses an over-limit message with TOO_LARGE and stays usable', async () => {
      const [tx, rx] = bytesChannel({ maxMessageBytes: 1000 });
      tx.send(new Uint8Array(1001));
      tx.send(new Uint8Array(200 * 1024));
      tx.send(new Uint8Array(1000).fill(9));
      await rejectsWith(rx.recv(), 'TOO_LARGE');
      await rejectsWith(rx.recv(), 'TOO_LARGE');
      expect((await rx.recv()).every((b) => b === 9)).toBe(true);
      tx.close();
      rx.close();
    });
  });

  describe('limits', () => {
    it('over-limit messages are TOO_LARGE, release every descriptor they carried, and the receiver goes on', async () => {
      const server = new IpcOneShotServer<{ pid: number; sender: IpcSender<string> }>({ maxMessageBytes: 64 * 1024, maxHandles: 10 });
      const spawned = spawnFixture('payloads/peer.mjs', { EIPC_SERVER: server.name, EIPC_ROLE: 'over-limit', ...childEnv }, 60_000);
      const [rx, first] = await server.accept({ timeout: 15_000 });
      expect(first.pid).toBe(spawned.child.pid);
      const before = fdCount();
      first.sender.send('go');
      const errors: IpcError[] = [];
      for (let i = 0; i < 3; i++) errors.push(await rejectsWith(rx.recv({ timeout: 20_000 }), 'TOO_LARGE'));
      expect(errors[0]!.message).toMatch(/maxMessageBytes/);
      expect(errors[1]!.message).toMatch(/maxMessageBytes/);
      expect(errors[2]!.message).toMatch(/maxHandles/);
      const fits = (await rx.recv({ timeout: 20_000 })) as unknown as { kind: string; file: IpcFileHandle };
      expect(fits.kind).toBe('fits');
      expect(fs.fstatSync(fits.file.fd).isCharacterDevice()).toBe(true);
      expect(fdCount()).toBe(before + 1);
      fits.file.close();
      expect(fdCount()).toBe(before);
      await rejectsWith(rx.recv({ timeout: 20_000 }), 'DISCONNECTED');
      rx.close();
      first.sender.close();
      const done = await spawned.done;
      expect(done.stderr).toBe('');
      expect(done.code).toBe(0);
    });

    it('a message the schema refuses (INVALID) releases the handles it carried', skipOnWin32('compares inodes with fstat (st_ino is 0 for Windows handles)'), async () => {
      const schema = z.object({ n: z.number(), file: z.any() });
      const [tx, rx] = channel<{ n: number; file: IpcFileHandle }>({ schema });
      const file = IpcFileHandle.from(0);
      const before = fdCount();
      tx.send({ n: 'not a number', file } as unknown as { n: number; file: IpcFileHandle });
      await rejectsWith(rx.recv(), 'INVALID');
      expect(fdCount()).toBe(before);
      tx.send({ n: 1, file });
      const ok = await rx.recv();
      expect(fs.fstatSync(ok.file.fd).ino).toBe(fs.fstatSync(0).ino);
      ok.file.close();
      expect(fdCount()).toBe(before);
      file.close();
      tx.close();
      rx.close();
    });

    it('bad receiver options throw before any descriptor is created', () => {
      const before = fdCount();
      expect(() => bytesChannel({ maxMessageBytes: -1 })).toThrow(RangeError);
      expect(() => channel({ maxHandles: 0 })).toThrow(RangeError);
      expect(fdCount()).toBe(before);
    });

    it('shared memory over maxSharedMemoryBytes or maxSharedMemoryTotal is TOO_LARGE before it is mapped; every handle of the message is closed', async () => {
      expect(DEFAULT_LIMITS.maxSharedMemoryBytes).toBe(256 * MiB);
      expect(DEFAULT_LIMITS.maxSharedMemoryTotal).toBe(1024 * MiB);
      const [tx, rx] = channel<Record<string, unknown>>({ maxSharedMemoryBytes: 64 * 1024, maxSharedMemoryTotal: 100 * 1024 });
      const small = IpcSharedMemory.fromByte(1, 60 * 1024);
      const big = IpcSharedMemory.fromByte(2, 64 * 1024 + 1);
      const again = IpcSharedMemory.fromByte(3, 60 * 1024);
      const file = IpcFileHandle.from(0);
      const before = await settledFdCount();
      // Revived in order: `small` and `file` are already objects when `big` is refused.
      tx.send({ small, file, big });
      tx.send({ small, file, again }); // 120 KiB in all
      tx.send({ small, file });
      const perSegment = await rejectsWith(rx.recv(), 'TOO_LARGE');
      expect(perSegment.message).toMatch(/IpcSharedMemory of 65537 bytes exceeds this receiver's maxSharedMemoryBytes \(65536\)/);
      expect(perSegment.message).toMatch(/raises the maxSharedMemoryBytes option/);
      const total = await rejectsWith(rx.recv(), 'TOO_LARGE');
      expect(total.message).toMatch(/maxSharedMemoryTotal \(102400\)/);
      const ok = (await rx.recv()) as { small: IpcSharedMemory; file: IpcFileHandle };
      expect(ok.small.length).toBe(60 * 1024);
      expect(ok.small.bytes[60 * 1024 - 1]).toBe(1);
      ok.small.close();
      ok.file.close();
      expect(await settledFdCount()).toBe(before); // nothing of the two refused messages is kept
      for (const e of [tx, rx, small, big, again, file]) e.close();
      expect(() => channel({ maxSharedMemoryBytes: 0 })).toThrow(RangeError);
      expect(() => channel({ maxSharedMemoryTotal: 1.5 })).toThrow(RangeError);
    });

    it('a single-packet message over a small maxMessageBytes, in one process, closes its descriptors', async () => {
      const [tx, rx] = channel<unknown>({ maxMessageBytes: 1024 });
      const shm = IpcSharedMemory.fromByte(3, 100);
      const file = IpcFileHandle.from(0);
      const before = fdCount();
      tx.send({ pad: new Uint8Array(2000), shm, file });
      tx.send({ pad: new Uint8Array(300 * 1024), shm });
      tx.send({ ok: true, shm });
      await rejectsWith(rx.recv(), 'TOO_LARGE');
      await rejectsWith(rx.recv(), 'TOO_LARGE');
      const ok = (await rx.recv()) as { ok: boolean; shm: IpcSharedMemory };
      expect(ok.ok).toBe(true);
      expect(ok.shm.bytes[99]).toBe(3);
      ok.shm.close();
      expect(fdCount()).toBe(before);
      tx.close();
      rx.close();
      shm.close();
      file.close();
    });
  });
}
