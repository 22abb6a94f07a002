// The bound send (issue 15 §1, send5): a small packet is built in the thread's scratch
// (copyImmediate) and the seqpacket transport sends it with the addon's sendBound, which takes
// no typed array per call. What it sends must be exactly the packet the general framing builds;
// a binding made since (another copy of the library on this thread) must never send its scratch
// in our place; and the channel's immediate sends must go this way (no sendPacket).
import { openSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { singleRecordPacket } from '../src/main/framing.js';
import { IMMEDIATE_BODY, IMMEDIATE_SCRATCH, copyImmediate, inPlaceParts } from '../src/main/framing/send.js';
import { IpcFileHandle, channel } from '../src/main/index.js';
import { native } from '../src/main/native.js';
import type { NativeBinding } from '../src/main/native.js';

const linux = process.platform === 'linux' && process.env.ELECTRON_IPC_CHANNEL_TRANSPORT !== 'stream';
const ESTALE = 116;
type Linux = NativeBinding & Required<Pick<NativeBinding, 'bindSend' | 'sendBound' | 'recvPackets' | 'socketpair' | 'sendPacket'>>;

/** One packet read from `fd`: its bytes and descriptors. */
function readOne(fd: number): { bytes: Uint8Array; fds: number[] } {
  const meta = new Int32Array(2 + 4 * 256);
  const fdsOut = new Int32Array(253);
  const arena = new Uint8Array(1 << 16);
  const n = native() as Linux;
  const r = n.recvPackets(fd, meta, fdsOut, 1, 4096, arena, 0, false);
  expect(r).toBe(1);
  return { bytes: arena.slice(meta[2]!, meta[2]! + meta[3]!), fds: Array.from(fdsOut.subarray(0, meta[4]!)) };
}

describe.runIf(linux)('sendBound (addon)', () => {
  it('sends the first `length` bytes of the bound scratch, with a descriptor as a number or a list', () => {
    const n = native() as Linux;
    const [a, b] = n.socketpair();
    const scratch = new Uint8Array(new ArrayBuffer(64));
    for (let i = 0; i < 64; i++) scratch[i] = i + 1;
    const id = n.bindSend(scratch);
    expect(id).toBeGreaterThan(0);
    expect(n.sendBound(a, id, 24, null)).toBe(24);
    expect(readOne(b)).toEqual({ bytes: scratch.slice(0, 24), fds: [] });
    const dn = openSync('/dev/null', 'r');
    expect(n.sendBound(a, id, 8, dn)).toBe(8);
    const got = readOne(b);
    expect(got.bytes).toEqual(scratch.slice(0, 8));
    expect(got.fds.length).toBe(1);
    n.close(got.fds[0]!);
    expect(n.sendBound(a, id, 16, [dn, dn])).toBe(16);
    const two = readOne(b);
    expect(two.fds.length).toBe(2);
    for (const fd of two.fds) n.close(fd);
    closeSync(dn);
    // Out of range: thrown, nothing sent.
    expect(() => n.sendBound(a, id, 0, null)).toThrow(RangeError);
    expect(() => n.sendBound(a, id, 65, null)).toThrow(RangeError);
    // A binding made since: ours is stale, nothing is sent from the other scratch.
    const other = new Uint8Array(new ArrayBuffer(64)).fill(0xee);
    const id2 = n.bindSend(other);
    expect(id2).not.toBe(id);
    expect(n.sendBound(a, id, 8, null)).toBe(-ESTALE);
    expect(n.recvPackets(b, new Int32Array(2 + 4 * 256), new Int32Array(253), 1, 4096, new Uint8Array(8192), 0, false)).toBe(-11); // EAGAIN: nothing came
    expect(n.sendBound(a, id2, 8, null)).toBe(8);
    expect(readOne(b).bytes).toEqual(other.slice(0, 8));
    // The peer gone: the errno as sendPacket returns it.
    n.close(b);
    expect(n.sendBound(a, id2, 8, null)).toBeLessThan(0);
    n.close(a);
  });
});

describe('copyImmediate', () => {
  it('builds exactly the packet singleRecordPacket describes, or returns 0 and the caller sends parts', () => {
    const sizes = [4080, 1, 4072, 7, 2000, 9, 0, 4073, 4081, 4000, 3];
    for (const n of sizes) {
      const body = new Uint8Array(n + 16).subarray(8, 8 + n);
      for (let i = 0; i < n; i++) body[i] = (n + i * 7) & 255;
      const total = copyImmediate([body], n, 1);
      const ref = Buffer.concat(singleRecordPacket([body], n, [-1]).parts);
      if (ref.byteLength <= 4096) {
        expect(total).toBe(ref.byteLength);
        expect(IMMEDIATE_SCRATCH.slice(0, total)).toEqual(new Uint8Array(ref));
      } else expect(total).toBe(0);
    }
    // A body encoded in place (inPlaceParts) is taken as it is; any other body of the same
    // length is copied over it, whatever the scratch held.
    for (const n of [8, 64, 4072]) {
      for (let i = 0; i < n; i++) IMMEDIATE_BODY[i] = (i * 5 + n) & 255;
      const inPlace = IMMEDIATE_BODY.slice(0, n);
      const total = copyImmediate(inPlaceParts(n), n, 0);
      expect(IMMEDIATE_SCRATCH.slice(0, total)).toEqual(new Uint8Array(Buffer.concat(singleRecordPacket([inPlace], n, []).parts)));
      const other = new Uint8Array(n).fill(0x3c);
      expect(copyImmediate([other], n, 0)).toBe(total);
      expect(IMMEDIATE_SCRATCH.slice(0, total)).toEqual(new Uint8Array(Buffer.concat(singleRecordPacket([other], n, []).parts)));
    }
    // A byte count that does not match the parts: not built here.
    expect(copyImmediate([new Uint8Array(40)], 24, 0)).toBe(0);
  });
});

describe.runIf(linux)('the channel sends small messages with sendBound', () => {
  it('uses no sendPacket for immediate sends, and stays intact when another binding comes between sends', async () => {
    const n = native() as Linux;
    const [tx, rx] = channel<{ s: string; fh?: IpcFileHandle }>();
    const sendPacket = n.sendPacket;
    let packets = 0;
    n.sendPacket = (...args) => {
      packets++;
      return sendPacket.apply(n, args);
    };
    const other = new Uint8Array(new ArrayBuffer(4096)).fill(0xee);
    try {
      for (let i = 0; i < 50; i++) {
        // Another copy of the library (say the CommonJS build) binding its own scratch.
        if (i % 3 === 1) n.bindSend(other);
        const s = 'x'.repeat(i * 37);
        const p = rx.recv();
        tx.send({ s });
        expect((await p).s).toBe(s);
      }
      const fh = IpcFileHandle.from(openSync('/dev/null', 'r'));
      const p = rx.recv();
      tx.send({ s: 'fd', fh });
      const got = await p;
      expect(got.s).toBe('fd');
      expect(got.fh).toBeInstanceOf(IpcFileHandle);
      got.fh!.close();
      fh.close();
    } finally {
      n.sendPacket = sendPacket;
    }
    expect(packets).toBe(0);
    tx.close();
    rx.close();
  });
});
