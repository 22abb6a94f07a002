// A hostile peer (test/fixtures/hostile/peer.py, python3, written from the wire-format docs alone)
// sends malformed frames, wrong descriptors and over-limit messages to a real receiver over a real
// socket. The receiver must survive, reject exactly one recv() per bad message, in order, deliver
// the good messages between them intact, and close every descriptor it was sent. The peer speaks
// the transport named by ELECTRON_IPC_CHANNEL_TRANSPORT (test/fixtures/hostile/transport.py):
// packets on seqpacket, frames on stream; the cases whose outcome depends on it say so in peer.py.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcFileHandle, IpcOneShotServer, IpcReceiver, bytesChannel, channel } from '../src/main/index.js';
import { native } from '../src/main/native.js';
import { transport } from '../src/main/transport/index.js';
import { receiverCore } from '../src/main/channel.js';
import type { ReceiverOptions } from '../src/main/index.js';
import { fdCount, root, skipOnWin32 } from './helpers.js';

const PEER = path.join(root, 'test', 'fixtures', 'hostile', 'peer.py');

interface Case {
  name: string;
  code: string | null;
  message: string | null;
  extra: number;
}

function listCases(mode: string): Case[] {
  return JSON.parse(execFileSync('python3', [PEER, 'list', mode], { encoding: 'utf8' })) as Case[];
}

function runPeer(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn('python3', [PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const done = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peer.py ${args.join(' ')} did not finish in time\n${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, stderr }));
    });
  });
  return { child, done };
}

/** The descriptor count once children's pipes and closed sockets have settled. */
async function settledFdCount(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const n = fdCount();
    if (n === last) return n;
    last = n;
  }
  return last;
}

async function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: IpcError }> {
  try {
    return { value: await p };
  } catch (e) {
    if (!(e instanceof IpcError)) throw e;
    return { error: e };
  }
}

/** Connects the peer in `mode`, checks every case in order, and returns the receiver. */
async function playCases(mode: string, options?: ReceiverOptions): Promise<number> {
  const cases = listCases(mode);
  const server = new IpcOneShotServer<unknown>(options);
  const peer = runPeer(['run', mode, server.name]);
  const [rx, first] = await server.accept({ timeout: 10_000 });
  expect(first).toEqual({ hello: mode });
  let errors = 0;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    if (c.code) {
      const got = await outcome(rx.recv({ timeout: 10_000 }));
      expect(got.error?.code, `case ${i} "${c.name}": ${got.error?.message ?? JSON.stringify(got.value)}`).toBe(c.code);
      expect(got.error!.message, `case ${i} "${c.name}"`).toContain(c.message!);
      errors++;
    }
    for (let k = 0; k < c.extra; k++) {
      const got = await outcome(rx.recv({ timeout: 10_000 }));
      expect(got.error, `case ${i} "${c.name}" extra message`).toBeUndefined();
      expect(typeof got.value).toBe('object');
    }
    const good = await outcome(rx.recv({ timeout: 10_000 }));
    expect(good.error?.message, `case ${i} "${c.name}": the good message after it`).toBeUndefined();
    expect(good.value, `case ${i} "${c.name}"`).toEqual({ good: i });
  }
  // Nothing more than expected arrived.
  expect(rx.tryRecv()).toBeUndefined();
  peer.child.stdin!.end();
  const exit = await peer.done;
  expect(exit.stderr).toBe('');
  expect(exit.code).toBe(0);
  await expect(rx.recv({ timeout: 10_000 })).rejects.toMatchObject({ code: 'DISCONNECTED' });
  rx.close();
  server.close();
  return errors;
}

describe('a hostile peer over a real socket', () => {
  it('gets exactly one MALFORMED per bad frame, in order, with the good messages intact and no descriptor kept', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), async () => {
    const before = await settledFdCount();
    const errors = await playCases('malformed');
    expect(errors).toBeGreaterThanOrEqual(40);
    expect(await settledFdCount()).toBe(before);
  });

  it('gets exactly one TOO_LARGE per over-limit message (bytes, descriptors, depth, elements, binaries)', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), async () => {
    const before = await settledFdCount();
    const errors = await playCases('limits', { maxMessageBytes: 4096, maxHandles: 4, maxDepth: 16, maxElements: 100, maxBinaries: 2 });
    expect(errors).toBe(listCases('limits').length);
    expect(await settledFdCount()).toBe(before);
  });

  it('the same over-limit messages pass with the default limits (so the limits, not the frames, refused them)', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), async () => {
    const cases = listCases('limits');
    const server = new IpcOneShotServer<unknown>();
    const peer = runPeer(['run', 'limits', server.name]);
    const [rx] = await server.accept({ timeout: 10_000 });
    for (let i = 0; i < cases.length; i++) {
      const v = (await rx.recv({ timeout: 10_000 })) as Record<string, unknown>;
      for (const h of Object.values(v ?? {})) if (h instanceof IpcFileHandle) h.close();
      expect(await rx.recv({ timeout: 10_000 })).toEqual({ good: i });
    }
    peer.child.stdin!.end();
    await peer.done;
    rx.close();
    server.close();
  });

  it('valid frames built in python from the docs decode to the documented values', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), async () => {
    const before = await settledFdCount();
    const server = new IpcOneShotServer<unknown>();
    const peer = runPeer(['run', 'good', server.name]);
    const [rx] = await server.accept({ timeout: 10_000 });
    const json = await rx.recv();
    expect(json).toEqual({ k: [1, 'two', null, true] });
    expect(await rx.recv()).toEqual({ good: 0 });
    const withHandle = (await rx.recv()) as { h0: IpcFileHandle };
    expect(withHandle.h0).toBeInstanceOf(IpcFileHandle);
    withHandle.h0.close();
    expect(await rx.recv()).toEqual({ good: 1 });
    expect(await rx.recv()).toBe('r1');
    expect(await rx.recv()).toBe('r2');
    expect(await rx.recv()).toEqual({ good: 2 });
    const bins = (await rx.recv()) as { u: Uint8Array; f: Float64Array };
    expect(bins.u).toEqual(new Uint8Array([1, 2, 3]));
    expect(bins.f).toEqual(new Float64Array([1.5]));
    expect(await rx.recv()).toEqual({ good: 3 });
    const frag = (await rx.recv()) as Record<string, IpcFileHandle>;
    expect(Object.keys(frag)).toEqual(['h0', 'h1', 'h2']);
    for (const h of Object.values(frag)) h.close();
    expect(await rx.recv()).toEqual({ good: 4 });
    peer.child.stdin!.end();
    expect((await peer.done).code).toBe(0);
    rx.close();
    server.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('an empty packet just before the peer hangs up is one MALFORMED, not end-of-file', skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'), async () => {
    const server = new IpcOneShotServer<unknown>();
    const peer = runPeer(['hangup-after-empty', server.name]);
    const [rx, first] = await server.accept({ timeout: 10_000 });
    expect(first).toEqual({ hello: 'empty' });
    await peer.done; // everything is queued and the peer is gone before the first read
    const bad = await outcome(rx.recv());
    expect(bad.error?.code).toBe('MALFORMED');
    expect(bad.error?.message).toContain('empty packet');
    expect(await rx.recv()).toEqual({ 'after-empty': true });
    await expect(rx.recv()).rejects.toMatchObject({ code: 'DISCONNECTED' });
    rx.close();
  });

  // Frames that break the stream transport's framing (docs/wire-format.md, "Stream transport"):
  // one MALFORMED, then end of file, as nothing after them can be trusted (a frame cut short by
  // end of file is dropped silently). On seqpacket the only such case is the over-long packet,
  // which the kernel truncates: one MALFORMED, and the channel goes on.
  const desyncCases = (): string[] => (transport().name === 'stream' ? ['oversized', 'fdcount-too-high', 'fdcount-zero-with-fds', 'cut-short'] : ['oversized']);
  for (const which of ['oversized', 'fdcount-too-high', 'fdcount-zero-with-fds', 'cut-short']) {
    const onStream = transport().name === 'stream';
    it.skipIf(!desyncCases().includes(which))(
      `${which}: ${
        which === 'cut-short'
          ? 'a frame cut short by end of file is dropped, no error'
          : onStream
            ? 'one MALFORMED then end of file (the stream is out of step)'
            : 'one MALFORMED, the channel goes on'
      }, descriptors closed${desyncCases().includes(which) ? '' : ' (a frame case: stream transport only)'}`,
      skipOnWin32('its peer is a python3 process speaking the Linux wire (Unix sockets, SCM_RIGHTS); there is none under Windows'),
      async () => {
        const before = await settledFdCount();
        const server = new IpcOneShotServer<unknown>();
        const peer = runPeer(['desync', which, server.name]);
        const [rx, first] = await server.accept({ timeout: 10_000 });
        expect(first).toEqual({ hello: 'desync' });
        expect(await rx.recv({ timeout: 10_000 })).toEqual({ good: 0 });
        if (which === 'oversized') {
          // First a packet of exactly the largest size a receiver reads (1 MiB + 64 KiB): it arrives.
          expect(await rx.recv({ timeout: 10_000 })).toBe('x'.repeat(1024 * 1024 + 64 * 1024 - 48 - 16 - 2));
        }
        if (which !== 'cut-short') {
          const bad = await outcome(rx.recv({ timeout: 10_000 }));
          expect(bad.error?.code, bad.error?.message ?? JSON.stringify(bad.value)).toBe('MALFORMED');
          if (which === 'oversized') expect(bad.error!.message).toMatch(/larger than|truncated/);
        }
        if (!onStream) expect(await rx.recv({ timeout: 10_000 })).toEqual({ good: 1 });
        // On stream this comes while the peer is still connected, {"good": 1} queued after the bad frame.
        else await expect(rx.recv({ timeout: 10_000 })).rejects.toMatchObject({ code: 'DISCONNECTED' });
        peer.child.stdin!.end();
        const exit = await peer.done;
        expect(exit.stderr).toBe('');
        expect(exit.code).toBe(0);
        if (!onStream) await expect(rx.recv({ timeout: 10_000 })).rejects.toMatchObject({ code: 'DISCONNECTED' });
        rx.close();
        server.close();
        expect(await settledFdCount()).toBe(before);
      },
    );
  }

  it('a bytes receiver refuses a message carrying descriptors (MALFORMED, descriptors closed) and goes on', async () => {
    const before = await settledFdCount();
    const [tx, rx] = bytesChannel();
    // A records packet with one 8-byte record naming one descriptor, written on the raw socket.
    const packet = new Uint8Array(24);
    const v = new DataView(packet.buffer);
    v.setUint32(0, 0x43504945, true);
    packet[4] = 1;
    packet[5] = 1;
    v.setUint32(8, 8, true);
    v.setUint32(12, 1, true);
    const [a, b] = transport().socketpair();
    expect(transport().send(tx.core.fd, [packet], [a])).toBeGreaterThanOrEqual(24);
    native().close(a);
    native().close(b);
    tx.send(new Uint8Array([9]));
    const bad = await outcome(rx.recv());
    expect(bad.error?.code).toBe('MALFORMED');
    expect(bad.error?.message).toContain('carried descriptors');
    expect([...(await rx.recv())]).toEqual([9]);
    tx.close();
    rx.close();
    expect(await settledFdCount()).toBe(before);
  });

  it('maxQueue bounds how many packets are read ahead of recv()', async () => {
    const [tx, rx] = channel<number>({ maxQueue: 4 });
    // One packet per message: a send in a new tick goes out alone.
    for (let i = 0; i < 40; i++) {
      tx.send(i);
      await new Promise((r) => setImmediate(r));
    }
    expect(rx.tryRecv()).toEqual({ message: 0 });
    expect(receiverCore(rx as IpcReceiver<unknown>).pending).toBeLessThanOrEqual(3);
    for (let i = 1; i < 40; i++) expect(await rx.recv()).toBe(i);
    tx.close();
    rx.close();
  });
});
