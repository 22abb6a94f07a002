// The POSIX stream transport's native half (src/native/stream.cc): framing over AF_UNIX
// SOCK_STREAM, partial writes and reads, hostile frames from a raw python peer
// (test/fixtures/stream/peer.py), per-descriptor state, shm_open shared memory.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PACKET_DESYNC, PACKET_TRUNCATED } from '../../src/main/native.js';
import { O_CLOEXEC, O_NONBLOCK, addonPath, fdCount, fdFlags, fifo, closeQuietly, isOpen, n, root, runNodeWithFdLimit, waitForCloses } from './helpers.js';

const s = n.stream;
const { EAGAIN, EPIPE, EMSGSIZE } = s.errno;
const PEER = path.join(root, 'test', 'fixtures', 'stream', 'peer.py');
const MAX = s.maxPayloadBytes;
const TMPFS_MAGIC = 0x01021994;

const opened: number[] = [];
const own = (fd: number) => (opened.push(fd), fd);
function pair(): [number, number] {
  const p = s.socketpair();
  opened.push(...p);
  return p;
}
function closeOwned(): void {
  for (const fd of opened.splice(0)) {
    try {
      n.close(fd);
    } catch {
      // closed by the test
    }
  }
}
const peers: Peer[] = [];
afterEach(async () => {
  closeOwned();
  // A failed test may leave its peer running: end it, so its pipes do not count in the next test.
  for (const peer of peers.splice(0)) {
    peer.child.kill('SIGKILL');
    await peer.done;
  }
});

const dir = mkdtempSync(path.join(tmpdir(), 'eic-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Got {
  bytes: Buffer;
  offset: number;
  fds: number[];
  flags: number;
}
interface RecvResult {
  r: number;
  packets: Got[];
  eof: boolean;
}

// One arena for every read: packets land at 8-aligned offsets from arenaOffset 8.
const arena = new Uint8Array(4 * MAX + 64);

function recv(fd: number, o: { maxPackets?: number; maxBytes?: number; fdSlots?: number; block?: boolean } = {}): RecvResult {
  const maxPackets = o.maxPackets ?? 16;
  const meta = new Int32Array(2 + 4 * maxPackets).fill(-99);
  const fdsOut = new Int32Array(o.fdSlots ?? 1024).fill(-1);
  const r = s.recvPackets(fd, meta, fdsOut, maxPackets, o.maxBytes ?? MAX, arena, 8, o.block);
  const packets: Got[] = [];
  let k = 0;
  for (let i = 0; i < (r > 0 ? meta[0] : 0); i++) {
    const [offset, length, count, flags] = meta.subarray(2 + 4 * i, 6 + 4 * i);
    expect(offset % 8).toBe(0);
    expect(offset).toBeGreaterThanOrEqual(8);
    packets.push({ bytes: Buffer.from(arena.subarray(offset, offset + length)), offset, fds: Array.from(fdsOut.subarray(k, k + count)), flags });
    k += count;
  }
  if (r > 0) expect(meta[0]).toBe(r);
  return { r, packets, eof: meta[1] === 1 };
}

function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 255;
  return b;
}

/** A raw frame header, for writing frames by hand with the seqpacket sendPacket (one sendmsg). */
function header(payloadBytes: number, fdCount: number): Uint8Array {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setUint32(0, payloadBytes, true);
  new DataView(h.buffer).setUint32(4, fdCount, true);
  return h;
}
/** One raw sendmsg on a stream socket (the seqpacket function: no framing). */
function raw(fd: number, bytes: Uint8Array, fds: number[] | null = null): void {
  expect(n.sendPacket(fd, [bytes], fds)).toBe(bytes.length);
}

interface Frame {
  payload: Uint8Array;
  fds: number[];
}

/**
 * Sends `frames` in order from `a` and reads them at `b`, interleaving sends, flushes and reads
 * the way a non-blocking sender and its receiver do. Returns what arrived and how many sends were
 * accepted in part.
 */
function exchange(a: number, b: number, frames: Frame[], recvOpts: Parameters<typeof recv>[1] = {}): { got: Got[]; partialSends: number; eagains: number } {
  const got: Got[] = [];
  let next = 0;
  let partialSends = 0;
  let eagains = 0;
  for (let spins = 0; got.length < frames.length; spins++) {
    if (spins > 200000) throw new Error(`stuck after ${got.length} of ${frames.length} frames`);
    if (next < frames.length) {
      const f = frames[next];
      const r = s.sendPacket(a, [f.payload], f.fds.length > 0 ? f.fds : null);
      if (r >= 0) {
        expect(r).toBe(f.payload.length);
        if (s.hasPending(a)) partialSends++;
        next++;
      } else {
        expect(r).toBe(EAGAIN);
        eagains++;
      }
    } else if (s.hasPending(a)) {
      const r = s.flushPending(a);
      expect([0, EAGAIN]).toContain(r);
    }
    const r = recv(b, recvOpts);
    if (r.r > 0) got.push(...r.packets);
    else expect(r.r).toBe(EAGAIN);
  }
  expect(s.hasPending(a)).toBe(false);
  return { got, partialSends, eagains };
}

function closeAll(fds: number[]): void {
  for (const fd of fds) n.close(fd);
}

describe('stream: socketpair and round trips', () => {
  it('makes a close-on-exec, non-blocking stream pair in the table', () => {
    const before = n.openCount();
    const [a, b] = pair();
    expect(n.openCount()).toBe(before + 2);
    for (const fd of [a, b]) {
      expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
      expect(n.fdInfo(fd)).toMatchObject({ kind: 'stream-socket', domain: 'unix', connected: true });
    }
    expect(recv(b).r).toBe(EAGAIN);
    expect(s.hasPending(a)).toBe(false);
    expect(s.hasPartial(b)).toBe(false);
  });

  it('writes the documented frame: u32 LE length, u32 LE descriptor count, payload', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      expect(s.sendPacket(a, [Uint8Array.of(1, 2), new Uint16Array([0x0403])], [writeFd])).toBe(4);
      const bytes = new Uint8Array(64);
      const fdsOut = new Int32Array(253);
      const meta = new Int32Array(3);
      // Read raw (recvInto is one recvmsg), descriptors with the first byte.
      expect(n.recvInto(b, [bytes], fdsOut, meta)).toBe(12);
      expect([...bytes.subarray(0, 12)]).toEqual([4, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 4]);
      expect(meta[0]).toBe(1);
      n.close(fdsOut[0]);
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('round-trips frames of 0, 1, 8, 64 KiB and the largest size with 0, 1 and 253 descriptors', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      const before = n.openCount();
      const frames: Frame[] = [];
      for (const size of [0, 1, 8, 65536, MAX]) {
        for (const count of [0, 1, 253]) frames.push({ payload: pattern(size, frames.length), fds: new Array(count).fill(writeFd) });
      }
      const { got } = exchange(a, b, frames);
      expect(got).toHaveLength(frames.length);
      got.forEach((p, i) => {
        expect(p.flags).toBe(0);
        expect(p.bytes.length).toBe(frames[i].payload.length);
        expect(p.bytes.equals(Buffer.from(frames[i].payload))).toBe(true);
        expect(p.fds).toHaveLength(frames[i].fds.length);
        for (const fd of p.fds) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      });
      const received = got.flatMap((p) => p.fds);
      expect(new Set(received).size).toBe(received.length);
      expect(n.openCount()).toBe(before + received.length);
      // The last descriptor of the last frame is the FIFO's write end.
      writeSync(received[received.length - 1], 'z');
      closeAll(received);
      expect(n.openCount()).toBe(before);
      expect(s.stats()).toEqual({ states: 0, bytes: 0, fds: 0 });
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('refuses a payload over maxPayloadBytes with EMSGSIZE and writes nothing', () => {
    const [a, b] = pair();
    expect(s.sendPacket(a, [new Uint8Array(MAX + 1)], null)).toBe(EMSGSIZE);
    expect(s.sendPacket(a, [new Uint8Array(MAX), Uint8Array.of(1)], null)).toBe(EMSGSIZE);
    expect(s.hasPending(a)).toBe(false);
    expect(recv(b).r).toBe(EAGAIN);
    expect(() => s.sendPacket(a, [], new Array(254).fill(a))).toThrow(RangeError);
    expect(() => s.sendPacket(a, [], [-1])).toThrow(TypeError);
    expect(() => s.sendPacket(a, 'x' as never, null)).toThrow(TypeError);
  });

  it('frames at most what a receiver reads (1 MiB + 64 KiB, the fragment header included), so no frame it accepts puts the peer out of step', () => {
    // MAX_FRAGMENT_BYTES = MAX_RECV_PACKET_BYTES in src/main/framing.ts; docs/wire-format.md.
    const MAX_RECV_PACKET_BYTES = 1024 * 1024 + 64 * 1024;
    expect(MAX).toBe(MAX_RECV_PACKET_BYTES);
    const [a, b] = pair();
    n.setBufferSizes(a, 4 << 20, 4 << 20);
    for (const extra of [1, 48]) expect(s.sendPacket(a, [new Uint8Array(MAX_RECV_PACKET_BYTES + extra)], null)).toBe(EMSGSIZE);
    // The largest frame it takes is one a receiver of the typed layer's size reads whole.
    expect(s.sendPacket(a, [pattern(MAX_RECV_PACKET_BYTES, 3)], null)).toBe(MAX_RECV_PACKET_BYTES);
    while (s.hasPending(a)) expect(s.flushPending(a)).toBe(0);
    const got = recvNext(b, { maxBytes: MAX_RECV_PACKET_BYTES });
    expect(got.packets[0]!.flags).toBe(0);
    expect(got.packets[0]!.bytes.equals(Buffer.from(pattern(MAX_RECV_PACKET_BYTES, 3)))).toBe(true);
  });

  it('returns EPIPE when the peer is gone, for sends and for a pending rest', () => {
    const [a, b] = pair();
    n.setBufferSizes(a, 4096, 0);
    expect(s.sendPacket(a, [new Uint8Array(MAX)], null)).toBe(MAX);
    expect(s.hasPending(a)).toBe(true);
    n.close(b);
    expect(s.flushPending(a)).toBe(EPIPE);
    expect(s.hasPending(a)).toBe(false);
    expect(s.sendPacket(a, [Uint8Array.of(1)], null)).toBe(EPIPE);
    expect(s.stats().states).toBe(0);
  });
});

describe('stream: partial writes and reads', () => {
  it('keeps the rest of a frame the socket took in part, and finishes it before the next one', () => {
    const [a, b] = pair();
    n.setBufferSizes(a, 4096, 4096);
    const { readFd, writeFd } = fifo();
    try {
      expect(s.sendPacket(a, [pattern(MAX, 1)], [writeFd, writeFd])).toBe(MAX);
      expect(s.hasPending(a)).toBe(true);
      expect(s.stats().bytes).toBeGreaterThan(MAX - 65536);
      // Nothing new is accepted while the rest cannot be written.
      expect(s.sendPacket(a, [Uint8Array.of(9)], null)).toBe(EAGAIN);
      expect(s.flushPending(a)).toBe(EAGAIN);
      // The reader gets the descriptors at once, the frame when it is whole.
      expect(recv(b).r).toBe(EAGAIN);
      expect(s.hasPartial(b)).toBe(true);
      expect(s.stats().fds).toBe(2);
      let flushes = 0;
      let got: RecvResult = recv(b);
      while (got.r === EAGAIN) {
        const f = s.flushPending(a);
        expect([0, EAGAIN]).toContain(f);
        flushes++;
        got = recv(b);
      }
      expect(flushes).toBeGreaterThan(10);
      expect(got.packets).toHaveLength(1);
      expect(got.packets[0].bytes.equals(Buffer.from(pattern(MAX, 1)))).toBe(true);
      expect(got.packets[0].fds).toHaveLength(2);
      closeAll(got.packets[0].fds);
      expect(s.hasPending(a)).toBe(false);
      expect(s.hasPartial(b)).toBe(false);
      expect(s.sendPacket(a, [Uint8Array.of(9)], null)).toBe(1);
      expect([...recv(b).packets[0].bytes]).toEqual([9]);
      expect(s.stats()).toEqual({ states: 0, bytes: 0, fds: 0 });
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('delivers many big frames whole and in order through a small send buffer', () => {
    const [a, b] = pair();
    n.setBufferSizes(a, 4096, 4096);
    const frames: Frame[] = [];
    for (let i = 0; i < 24; i++) frames.push({ payload: pattern([MAX, 300000, 7, 0, 65536, 123457][i % 6], i), fds: i % 5 === 0 ? [a] : [] });
    const { got, partialSends, eagains } = exchange(a, b, frames, { maxPackets: 4 });
    expect(partialSends).toBeGreaterThan(5);
    expect(eagains).toBeGreaterThan(5);
    got.forEach((p, i) => {
      expect(p.bytes.equals(Buffer.from(frames[i].payload))).toBe(true);
      expect(p.fds).toHaveLength(frames[i].fds.length);
    });
    closeAll(got.flatMap((p) => p.fds));
  });

  it('reads a frame written a byte, then a few bytes at a time, across many calls', () => {
    const [a, b] = pair();
    const { readFd, writeFd } = fifo();
    try {
      const payload = pattern(1000, 3);
      const frame = new Uint8Array([...header(1000, 3), ...payload]);
      const cuts = [0, 1, 3, 8, 9, 100, 512, 999, 1007, 1008];
      let eagains = 0;
      for (let i = 0; i + 1 < cuts.length; i++) {
        raw(a, frame.subarray(cuts[i], cuts[i + 1]), i === 0 ? [writeFd, writeFd, writeFd] : null);
        const r = recv(b);
        if (i + 2 < cuts.length) {
          expect(r.r).toBe(EAGAIN);
          expect(s.hasPartial(b)).toBe(true);
          eagains++;
        } else {
          expect(r.r).toBe(1);
          expect(r.packets[0].bytes.equals(Buffer.from(payload))).toBe(true);
          expect(r.packets[0].fds).toHaveLength(3);
          closeAll(r.packets[0].fds);
        }
      }
      expect(eagains).toBe(8);
      expect(s.hasPartial(b)).toBe(false);
      expect(s.stats().states).toBe(0);
    } finally {
      closeQuietly(readFd, writeFd);
    }
  });

  it('reads batches, stops a batch before descriptors that do not fit, and throws only for the first', () => {
    const [a, b] = pair();
    for (let i = 0; i < 10; i++) expect(s.sendPacket(a, [pattern(100 + i, i)], null)).toBe(100 + i);
    const r = recv(b, { maxPackets: 16 });
    expect(r.r).toBe(10);
    r.packets.forEach((p, i) => expect(p.bytes.equals(Buffer.from(pattern(100 + i, i)))).toBe(true));
    // maxPackets bounds the batch.
    for (let i = 0; i < 5; i++) s.sendPacket(a, [Uint8Array.of(i)], null);
    expect(recv(b, { maxPackets: 3 }).r).toBe(3);
    expect(recv(b, { maxPackets: 3 }).r).toBe(2);
    // 3 frames of 100 descriptors, fdsOut of 250: two, then one.
    for (let i = 0; i < 3; i++) s.sendPacket(a, [Uint8Array.of(i)], new Array(100).fill(a));
    const first = recv(b, { fdSlots: 250 });
    expect(first.r).toBe(2);
    closeAll(first.packets.flatMap((p) => p.fds));
    expect(() => recv(b, { fdSlots: 50 })).toThrow(RangeError);
    // The frame waits, its descriptors held by the addon, until fdsOut is large enough.
    expect(s.hasPartial(b)).toBe(true);
    expect(s.stats().fds).toBe(100);
    const last = recv(b, { fdSlots: 100 });
    expect(last.r).toBe(1);
    expect([...last.packets[0].bytes]).toEqual([2]);
    closeAll(last.packets[0].fds);
    // The arena bounds a batch: room for one more maxPacketBytes slot, or the batch stops.
    for (let i = 0; i < 8; i++) s.sendPacket(a, [new Uint8Array(1000)], null);
    const meta = new Int32Array(2 + 4 * 16);
    const small = new Uint8Array(8 + 3 * 1024);
    expect(s.recvPackets(b, meta, new Int32Array(253), 16, 1024, small, 8)).toBe(3);
    expect(Array.from(meta.subarray(2, 14))).toEqual([8, 1000, 0, 0, 1008, 1000, 0, 0, 2008, 1000, 0, 0]);
  });

  it('drops a frame cut short by end of file and closes its descriptors', async () => {
    const [a, b] = pair();
    waitForCloses();
    const baseline = fdCount();
    const { readFd, writeFd } = fifo();
    raw(a, new Uint8Array([...header(5000, 4), ...pattern(2000, 1)]), [writeFd, writeFd, writeFd, writeFd]);
    closeQuietly(readFd, writeFd);
    expect(recv(b).r).toBe(EAGAIN);
    expect(s.stats()).toEqual({ states: 1, bytes: 5000, fds: 4 });
    expect(fdCount()).toBe(baseline + 4);
    n.close(a);
    const r = recv(b);
    expect(r.r).toBe(0);
    expect(r.eof).toBe(true);
    expect(s.stats().states).toBe(0);
    waitForCloses();
    expect(fdCount()).toBe(baseline - 1);
    expect(recv(b).r).toBe(0);
  });

  it('frees a descriptor state (bytes and descriptors) when the descriptor is closed', () => {
    const [a, b] = pair();
    n.setBufferSizes(a, 4096, 4096);
    waitForCloses();
    const baseline = fdCount();
    const tableBaseline = n.openCount();
    // A big partial read on b, a pending rest on a.
    expect(s.sendPacket(a, [pattern(MAX, 5)], new Array(20).fill(a))).toBe(MAX);
    expect(recv(b).r).toBe(EAGAIN);
    for (let i = 0; i < 5; i++) s.flushPending(a);
    expect(recv(b).r).toBe(EAGAIN);
    const st = s.stats();
    expect(st.states).toBe(2);
    expect(st.fds).toBe(20);
    expect(st.bytes).toBeGreaterThan(MAX);
    expect(fdCount()).toBe(baseline + 20);
    n.close(b);
    expect(s.stats().states).toBe(1);
    expect(s.stats().fds).toBe(0);
    n.close(a);
    expect(s.stats()).toEqual({ states: 0, bytes: 0, fds: 0 });
    waitForCloses();
    expect(fdCount()).toBe(baseline - 2);
    expect(n.openCount()).toBe(tableBaseline - 2);
  });

  it('frees the framing state of a worker at its teardown', async () => {
    waitForCloses();
    const baseline = fdCount();
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const n = require(${JSON.stringify(addonPath)}); const s = n.stream;
       const [a, b] = s.socketpair();
       n.setBufferSizes(a, 4096, 4096);
       s.sendPacket(a, [new Uint8Array(${MAX})], new Array(30).fill(a));
       const r = s.recvPackets(b, new Int32Array(6), new Int32Array(253), 1, ${MAX}, new Uint8Array(${MAX + 8}), 0);
       parentPort.postMessage({ r, stats: s.stats() });`,
      { eval: true },
    );
    const msg = await new Promise<{ r: number; stats: { states: number; fds: number } }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(msg.r).toBe(s.errno.EAGAIN);
    expect(msg.stats).toMatchObject({ states: 2, fds: 30 });
    await new Promise((resolve) => worker.once('exit', resolve));
    waitForCloses();
    expect(fdCount()).toBe(baseline);
  });
});

// ---- a raw python peer

interface Peer {
  child: ChildProcess;
  fd: number;
  /** Resolves when the peer has sent everything its scenario sends. */
  sent: Promise<void>;
  done: Promise<{ code: number | null; stderr: string }>;
}

function startPeer(scenario: string): Peer {
  const [ours, theirs] = s.socketpair();
  own(ours);
  const child = spawn('python3', [PEER, scenario], { stdio: ['ignore', 'pipe', 'pipe', theirs] });
  n.close(theirs);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let stdout = '';
  const sent = new Promise<void>((resolve) =>
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('sent')) resolve();
    }),
  );
  // 'close': the child has exited and its stderr pipe is closed.
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  const peer = { child, fd: ours, sent, done };
  peers.push(peer);
  return peer;
}

/** Waits (blocking, at most 5 s) until `fd` is readable. */
function waitReadable(fd: number): void {
  expect(n.waitFds(fd, null, 5000)).toBe(1);
}

/** Reads until a packet or end of file; EAGAIN means wait and read again. */
function recvNext(fd: number, opts: Parameters<typeof recv>[1] = {}): RecvResult {
  for (let i = 0; i < 1000; i++) {
    const r = recv(fd, opts);
    if (r.r !== EAGAIN) return r;
    waitReadable(fd);
  }
  throw new Error('no packet');
}

/** Lets the peer go on past its next go(): one byte the other way. */
function go(fd: number): void {
  raw(fd, Uint8Array.of(1));
}

async function finish(peer: Peer): Promise<void> {
  n.close(peer.fd);
  opened.splice(opened.indexOf(peer.fd), 1);
  const { code, stderr } = await peer.done;
  expect(stderr).toBe('');
  expect(code).toBe(0);
}

describe('stream: hostile frames from a raw peer', () => {
  // [what, peer scenario, sent in two steps, what the desync packet's text says]
  const hostile: Array<[string, string, boolean, RegExp]> = [
    ['descriptors with a read that does not begin the header', 'fds-after-first-byte', true, /descriptors arrived with bytes that do not begin a frame header/],
    ['descriptors with payload bytes', 'fds-in-payload', true, /descriptors arrived with bytes that do not begin a frame header/],
    ['a header announcing more descriptors than came', 'fdcount-too-high', false, /a frame header announces \d+ descriptor\(s\) but \d+ arrived with it \(descriptor count mismatch\)/],
    ['descriptors with a header announcing none', 'fdcount-zero-with-fds', false, /announces 0 descriptor\(s\) but [1-9]\d* arrived with it \(descriptor count mismatch\)/],
    ['a header announcing descriptors that never came', 'fdcount-without-fds', false, /announces [1-9]\d* descriptor\(s\) but 0 arrived with it \(descriptor count mismatch\)/],
    ['a payload longer than maxPacketBytes', 'oversized', false, /announces a payload of \d+ bytes, larger than the 65536 bytes a receiver reads \(frame header invalid\)/],
  ];
  for (const [what, scenario, stepped, says] of hostile) {
    it(`${what}: one PACKET_DESYNC packet saying so, then end of file, every descriptor closed`, async () => {
      waitForCloses();
      const before = fdCount();
      const peer = startPeer(scenario);
      const baseline = fdCount(); // our socket and the child's stdout and stderr pipes
      const table = n.openCount();
      const opts = { maxBytes: 65536 };
      if (stepped) {
        waitReadable(peer.fd);
        // The first part is read and kept; then the peer sends the rest.
        expect(recv(peer.fd, opts).r).toBe(EAGAIN);
        expect(s.hasPartial(peer.fd)).toBe(true);
        go(peer.fd);
      }
      const r = recvNext(peer.fd, opts);
      expect(r.r).toBe(1);
      expect(r.packets[0]).toMatchObject({ flags: PACKET_DESYNC | PACKET_TRUNCATED, fds: [] });
      // Its bytes are the addon's account of what happened, not the peer's.
      const text = r.packets[0].bytes.toString();
      expect(text).toMatch(says);
      expect(text).toMatch(/^the stream socket is out of step: .*; a byte stream cannot be resynchronised, so the channel is closed/);
      expect(r.eof).toBe(true);
      // The peer's valid frame after it is never delivered: end of file from now on.
      await peer.sent;
      waitReadable(peer.fd);
      for (let i = 0; i < 3; i++) expect(recv(peer.fd, opts).r).toBe(0);
      expect(s.hasPartial(peer.fd)).toBe(false);
      expect(s.stats()).toMatchObject({ states: 1, bytes: 0, fds: 0 });
      waitForCloses();
      expect(fdCount()).toBe(baseline);
      expect(n.openCount()).toBe(table);
      await finish(peer);
      expect(s.stats().states).toBe(0);
      waitForCloses();
      expect(fdCount()).toBe(before);
    });
  }

  it('truncated control data (MSG_CTRUNC, the receiver out of descriptors): one PACKET_DESYNC packet, nothing kept', () => {
    const script = `
      const fs = require('node:fs');
      const n = require(process.env.ADDON); const s = n.stream;
      const count = () => fs.readdirSync('/proc/self/fd').length - 1;
      const [a, b] = s.socketpair();
      s.sendPacket(a, [Uint8Array.of(7)], new Array(20).fill(a));
      s.sendPacket(a, [Uint8Array.of(8)], null);
      const baseline = count();
      const fillers = [];
      try { for (;;) fillers.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
      for (const fd of fillers.splice(0, 5)) fs.closeSync(fd);
      const meta = new Int32Array(2 + 4 * 4), fdsOut = new Int32Array(253), arena = new Uint8Array(1024);
      const r = s.recvPackets(b, meta, fdsOut, 4, 1024, arena, 0);
      const first = Array.from(meta.subarray(0, 6));
      const text = Buffer.from(arena.subarray(meta[2], meta[2] + meta[3])).toString();
      const again = s.recvPackets(b, meta, fdsOut, 4, 1024, arena, 0);
      for (const fd of fillers) fs.closeSync(fd);
      console.log(JSON.stringify({ r, first, text, again, stats: s.stats(), leaked: count() - baseline, table: n.openCount() }));`;
    const out = runNodeWithFdLimit(script, 64, 10000);
    expect(out.stderr).toBe('');
    const res = JSON.parse(out.stdout);
    expect(res.r).toBe(1);
    expect(res.first).toEqual([1, 1, 0, res.text.length, 0, PACKET_DESYNC | PACKET_TRUNCATED]);
    expect(res.text).toMatch(/^the stream socket is out of step: the kernel dropped descriptors of a frame \(MSG_CTRUNC/);
    expect(res.again).toBe(0);
    expect(res.stats).toEqual({ states: 1, bytes: 0, fds: 0 });
    expect(res.leaked).toBe(0);
    expect(res.table).toBe(2);
  });

  it('end of file in the middle of a header: end of file, nothing delivered', async () => {
    const peer = startPeer('eof-mid-header');
    await peer.done;
    const r = recvNext(peer.fd);
    expect(r.r).toBe(0);
    expect(s.stats().states).toBe(0);
    await finish(peer);
  });

  it('end of file in the middle of a payload: the frame and its descriptors are dropped', async () => {
    waitForCloses();
    const before = fdCount();
    const peer = startPeer('eof-mid-payload');
    await peer.done;
    const baseline = fdCount(); // our socket
    expect(recv(peer.fd, { maxBytes: 65536 }).r).toBe(0);
    expect(s.stats().states).toBe(0);
    waitForCloses();
    expect(fdCount()).toBe(baseline);
    await finish(peer);
    expect(fdCount()).toBe(before);
  });

  it('a valid frame written in pieces by another process arrives whole, then the next one', async () => {
    const peer = startPeer('valid-in-pieces');
    const got: Got[] = [];
    let partial = 0;
    while (got.length < 2) {
      waitReadable(peer.fd);
      const r = recv(peer.fd);
      if (r.r > 0) got.push(...r.packets);
      else if (s.hasPartial(peer.fd)) partial++;
    }
    expect(partial).toBeGreaterThan(0);
    expect(got.map((p) => p.bytes.toString())).toEqual(['pieces', 'second']);
    expect(got.map((p) => p.fds.length)).toEqual([2, 1]);
    for (const fd of got[0].fds) expect(n.fdInfo(fd).kind).toBe('other');
    closeAll(got.flatMap((p) => p.fds));
    await finish(peer);
  });

  it('a blocking read waits through a partial frame until it is whole', async () => {
    const peer = startPeer('slow-frame');
    n.setBlocking(peer.fd, true);
    const started = performance.now();
    const r = recv(peer.fd, { block: true });
    expect(r.r).toBe(1);
    expect(performance.now() - started).toBeGreaterThan(100);
    expect(r.packets[0].bytes.toString()).toBe('slow!');
    closeAll(r.packets[0].fds);
    n.setBlocking(peer.fd, false);
    // Without block, a non-blocking file answers at once.
    expect(recv(peer.fd, { block: true }).r).toBe(EAGAIN);
    await finish(peer);
  });
});

describe('stream: one-shot server calls', () => {
  it('listens, connects, accepts, and carries frames both ways with credentials', () => {
    const p = path.join(dir, 'server');
    const server = own(s.listen(p));
    expect(n.fdInfo(server)).toMatchObject({ kind: 'stream-socket', listening: true });
    expect(s.accept(server)).toBe(EAGAIN);
    const client = own(s.connect(p));
    const conn = own(s.accept(server));
    for (const fd of [server, client, conn]) expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    expect(s.sendPacket(client, [Uint8Array.of(1, 2, 3)], [client])).toBe(3);
    const got = recv(conn).packets[0];
    expect([...got.bytes]).toEqual([1, 2, 3]);
    own(got.fds[0]);
    expect(s.sendPacket(conn, [Uint8Array.of(4)], null)).toBe(1);
    expect([...recv(client).packets[0].bytes]).toEqual([4]);
    expect(s.peerCredentials(conn)).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    expect(s.peerCredentials(client)).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    expect(() => s.connect(path.join(dir, 'nobody'))).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'connect' }));
    expect(() => s.listen(p)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind' }));
  });
});

describe('stream: shared memory without seals', () => {
  const shmNames = () => readdirSync('/dev/shm').filter((f) => f.startsWith('eic-'));

  it('creates an unlinked object with a read-write and a read-only descriptor', () => {
    const names = shmNames();
    const table = n.openCount();
    const [rw, ro] = s.shmCreate(4096);
    own(rw);
    own(ro);
    expect(shmNames()).toEqual(names);
    expect(n.openCount()).toBe(table + 2);
    expect(s.accessMode(rw)).toBe('rw');
    expect(s.accessMode(ro)).toBe('r');
    for (const fd of [rw, ro]) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(n.fdInfo(ro)).toMatchObject({ kind: 'file', size: 4096 });
    const data = pattern(4096, 9);
    n.pwrite(rw, data, 0);
    expect(Buffer.from(s.readAll(ro, 4096)).equals(Buffer.from(data))).toBe(true);
    expect(Buffer.from(s.readAll(ro, 10)).equals(Buffer.from(data.subarray(0, 10)))).toBe(true);
    expect(s.readAll(ro, 0).byteLength).toBe(0);
    // The read-only descriptor cannot write.
    expect(() => n.pwrite(ro, Uint8Array.of(1), 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    const [empty, emptyRo] = s.shmCreate(0);
    own(empty);
    own(emptyRo);
    expect(n.fdInfo(empty).size).toBe(0);
  });

  it('readAll throws ETRUNCATED when the other holder truncated the object', () => {
    const [rw, ro] = s.shmCreate(65536);
    own(rw);
    own(ro);
    n.pwrite(rw, pattern(65536, 2), 0);
    ftruncateSync(rw, 1000);
    expect(() => s.readAll(ro, 65536)).toThrow(
      expect.objectContaining({ code: 'ETRUNCATED', syscall: 'pread', message: expect.stringContaining('shared memory shorter than announced') }),
    );
    expect(s.readAll(ro, 1000).byteLength).toBe(1000);
  });

  it('readAll refuses what is not shared memory, and sizes it cannot hold', () => {
    const file = path.join(dir, 'plain');
    const fd = openSync(file, 'w+');
    try {
      writeSync(fd, 'not shared memory');
      // (A temporary directory on tmpfs holds shared memory.)
      if (statfsSync(dir).type !== TMPFS_MAGIC) expect(() => s.readAll(fd, 4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(s.accessMode(fd)).toBe('rw');
    } finally {
      closeSync(fd);
    }
    const w = openSync(file, 'w');
    try {
      expect(s.accessMode(w)).toBe('w');
    } finally {
      closeSync(w);
    }
    const { readFd, writeFd } = fifo();
    try {
      expect(() => s.readAll(readFd, 4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      closeQuietly(readFd, writeFd);
    }
    // A memfd is shared memory too.
    const m = own(n.memfdCreate('m', 16));
    n.pwrite(m, Uint8Array.of(5, 6), 0);
    expect([...new Uint8Array(s.readAll(m, 2))]).toEqual([5, 6]);
    expect(() => s.readAll(m, 2 ** 33)).toThrow(RangeError);
    expect(() => s.readAll(m, -1)).toThrow(RangeError);
    expect(() => s.accessMode(123456)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(isOpen(m)).toBe(true);
  });
});
