// Issue 15 §2, fd6: a received record carries its descriptors without a per-record array in the
// common cases (framing/wire.ts RecordFds): none is the shared NO_FDS, exactly one is the
// descriptor itself (a number), two or more an array. These tests pin the form the receive path
// makes, and that every descriptor still has exactly one owner: a record dropped for any reason
// (over a limit, malformed, a bytes channel, a receiver closed with it queued) closes each of its
// descriptors exactly once, whatever form it came in.
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcFileHandle, IpcReceiver, bytesChannel, channel } from '../src/main/index.js';
import { encodeMessage, joinParts } from '../src/shared/codec.js';
import { FRAG_FIRST, FRAG_LAST, NO_FDS, PacketParser, copyParts, RecordBatcher, fdCount as recordFdCount, fdList, fdSlice, fragmentPackets, singleRecordPacket, switchPacket } from '../src/main/framing.js';
import type { ParsedItem, RecordFds, WireRecord } from '../src/main/framing.js';
import { decodeRecord } from '../src/main/endpoint/decode.js';
import { closeFds } from '../src/main/endpoint/thread-state.js';
import { resolveLimits } from '../src/main/endpoint/options.js';
import { transport } from '../src/main/transport/index.js';
import { native } from '../src/main/native.js';
import { registerHandleKind } from '../src/main/handles.js';
import { fdCount, skipOnWin32 } from './helpers.js';

const linuxOnly = skipOnWin32('raw packets through the POSIX transports');
const LIMITS = { maxMessageBytes: 4096, maxHandles: 3 };

const marker = { close() {} };
const marker2 = { close() {} };
const tagF = (v: object): string | undefined => (v === marker || v === marker2 ? 'F' : undefined);

/** A message body carrying `value`, its handles (the markers) tagged as file handles. */
function bodyOf(value: unknown): Uint8Array {
  return joinParts(encodeMessage(value, { handleKind: tagF }));
}

/** The bytes of an out packet, joined. */
function bytesOf(p: { parts: Uint8Array[] }): Uint8Array {
  return copyParts(p.parts, 0, p.parts.reduce((n, x) => n + x.byteLength, 0));
}

/** A RECORDS packet holding one record per body, with `counts[i]` descriptor slots each (numbered from `first`). */
function recordsPacket(bodies: Uint8Array[], counts: number[], first = 100): { bytes: Uint8Array; fds: number[] } {
  const b = new RecordBatcher();
  let next = first;
  for (let i = 0; i < bodies.length; i++) {
    const fds = Array.from({ length: counts[i]! }, () => next++);
    b.add([bodies[i]!], bodies[i]!.byteLength, fds);
  }
  const p = b.take()!;
  return { bytes: bytesOf(p), fds: p.fds };
}

/** A parser whose close() records every descriptor it is handed (each must come once). */
function rig(limits = LIMITS): { parser: PacketParser; closed: number[] } {
  const closed: number[] = [];
  const parser = new PacketParser(limits, (fds) => {
    for (const fd of fdList(fds)) closed.push(fd);
  });
  return { parser, closed };
}

const records = (items: ParsedItem[]): WireRecord[] => items.filter((i): i is WireRecord => !(i instanceof Error));

describe('the record form of descriptors (RecordFds)', () => {
  it('fdCount, fdList and fdSlice read every form; a slice of one is the number, of none NO_FDS', () => {
    expect([recordFdCount(NO_FDS), recordFdCount(7), recordFdCount([7, 8]), recordFdCount([7])]).toEqual([0, 1, 2, 1]);
    expect(fdList(7)).toEqual([7]);
    expect(fdList(NO_FDS)).toBe(NO_FDS);
    expect(fdSlice([5, 6, 7, 8], 2, 1)).toBe(7);
    expect(fdSlice([5, 6, 7, 8], 1, 2)).toEqual([6, 7]);
    expect(fdSlice([5, 6, 7, 8], 3, 0)).toBe(NO_FDS);
    expect(fdSlice(9, 0, 1)).toBe(9);
  });

  it('records of a batched packet take their own descriptors in order: none NO_FDS, one a number, more an array', () => {
    const { parser, closed } = rig();
    const bodies = [bodyOf({ fh: marker }), bodyOf({ n: 1 }), bodyOf({ a: marker, b: marker2 }), bodyOf({ fh: marker, i: 3 })];
    const p = recordsPacket(bodies, [1, 0, 2, 1]);
    const out: ParsedItem[] = [];
    expect(parser.parse(p.bytes, p.fds, 0, out)).toBeUndefined();
    const got = records(out);
    expect(got).toHaveLength(4);
    expect(got.map((r) => r.fds)).toEqual([100, NO_FDS, [101, 102], 103]);
    expect(got[1]!.fds).toBe(NO_FDS);
    expect(typeof got[0]!.fds).toBe('number');
    expect(closed).toEqual([]);
  });

  it('a one-record packet keeps the packet descriptor as the record form it came in (the receive loop hands one as a number)', () => {
    const { parser, closed } = rig();
    const body = bodyOf({ fh: marker });
    const pkt = bytesOf(singleRecordPacket([body], body.byteLength, [0]));
    const buf = new Uint8Array(pkt.byteLength + 16);
    buf.set(pkt, 8);
    const out: ParsedItem[] = [];
    expect(parser.parseSingleRecord(buf, 8, pkt.byteLength, 41, out)).toBe(true);
    expect(records(out).map((r) => r.fds)).toEqual([41]);
    // The count must agree with the header: a number where the header says 2 is not taken here.
    const two = bytesOf(singleRecordPacket([body], body.byteLength, [0, 0]));
    expect(parser.parseSingleRecord(two, 0, two.byteLength, 41, out)).toBe(false);
    // parse() of the same packet: one MALFORMED, the descriptor closed once.
    const out2: ParsedItem[] = [];
    parser.parse(two, 42, 0, out2);
    expect(out2).toHaveLength(1);
    expect((out2[0] as IpcError).code).toBe('MALFORMED');
    expect(closed).toEqual([42]);
  });

  it('records over a limit among good ones close exactly their own descriptors, once each', () => {
    const { parser, closed } = rig({ maxMessageBytes: 200, maxHandles: 1 });
    const big = bodyOf({ fh: marker, pad: 'x'.repeat(300) });
    const bodies = [bodyOf({ fh: marker }), big, bodyOf({ a: marker, b: marker2 }), bodyOf({ n: 2 }), bodyOf({ fh: marker, j: 1 })];
    const p = recordsPacket(bodies, [1, 1, 2, 0, 1]);
    const out: ParsedItem[] = [];
    parser.parse(p.bytes, p.fds, 0, out);
    expect(out.map((i) => (i instanceof IpcError ? i.code : i.fds))).toEqual([100, 'TOO_LARGE', 'TOO_LARGE', NO_FDS, 104]);
    // The big record's one (101) and the two of the record over maxHandles (102, 103), nothing else.
    expect(closed).toEqual([101, 102, 103]);
  });

  it('a packet whose records disagree with its descriptors is one MALFORMED; each descriptor closed once, in any form', () => {
    for (const fds of [55, [55, 56, 57]] as RecordFds[]) {
      const { parser, closed } = rig();
      const p = recordsPacket([bodyOf({ a: marker, b: marker2 })], [2]);
      const out: ParsedItem[] = [];
      parser.parse(p.bytes, fds, 0, out);
      expect(out.map((i) => (i as IpcError).code)).toEqual(['MALFORMED']);
      expect(closed).toEqual(fdList(fds));
    }
  });

  it('a fragmented message yields the record form too: none, one as a number, more as an array', () => {
    const body = new Uint8Array(300_000).fill(1);
    const limits = { maxMessageBytes: 1 << 20, maxHandles: 3 };
    for (const [n, want] of [
      [0, NO_FDS],
      [1, 100],
      [3, [100, 101, 102]],
    ] as Array<[number, RecordFds]>) {
      const { parser, closed } = rig(limits);
      const fds = Array.from({ length: n }, (_, i) => 100 + i);
      const packets = fragmentPackets(77n, 0, [body], body.byteLength, fds);
      expect(packets.length).toBe(3);
      const out: ParsedItem[] = [];
      // Each fragment's descriptors in the form the receive loop hands them (one as a number).
      for (const p of packets) parser.parse(bytesOf(p), p.fds.length === 1 ? p.fds[0]! : p.fds, 0, out);
      expect(out).toHaveLength(1);
      expect((out[0] as WireRecord).fds).toEqual(want);
      if (n === 0) expect((out[0] as WireRecord).fds).toBe(NO_FDS);
      expect(closed).toEqual([]);
    }
  });

  it('descriptors spread over fragments, each one a number, are gathered into the message in order', () => {
    const body = new Uint8Array(300_000).fill(3);
    const { parser, closed } = rig({ maxMessageBytes: 1 << 20, maxHandles: 3 });
    const packets = fragmentPackets(79n, 0, [body], body.byteLength, [0, 0]).map(bytesOf);
    // The sender puts both in the first fragment; a peer may spread them: one in the 2nd, one in the 3rd.
    const at = (i: number, nfds: number): void => new DataView(packets[i]!.buffer, packets[i]!.byteOffset).setUint32(20, nfds, true);
    at(0, 0);
    at(1, 1);
    at(2, 1);
    const out: ParsedItem[] = [];
    parser.parse(packets[0]!, NO_FDS, 0, out);
    parser.parse(packets[1]!, 301, 0, out);
    expect(parser.holding().fds).toBe(1);
    parser.parse(packets[2]!, 302, 0, out);
    expect(records(out).map((r) => r.fds)).toEqual([[301, 302]]);
    expect(closed).toEqual([]);
    // The same message cut short: the one held so far (a number once) is closed once with the rest.
    const again = fragmentPackets(80n, 0, [body], body.byteLength, [0, 0]).map(bytesOf);
    new DataView(again[0]!.buffer, again[0]!.byteOffset).setUint32(20, 1, true);
    new DataView(again[1]!.buffer, again[1]!.byteOffset).setUint32(20, 0, true);
    new DataView(again[2]!.buffer, again[2]!.byteOffset).setUint32(20, 0, true);
    const out2: ParsedItem[] = [];
    parser.parse(again[0]!, 401, 0, out2);
    parser.parse(again[1]!, NO_FDS, 0, out2);
    parser.parse(again[2]!, NO_FDS, 0, out2);
    expect(out2.map((i) => (i as IpcError).code)).toEqual(['MALFORMED']);
    expect(closed).toEqual([401]);
    expect(parser.holding().fds).toBe(0);
  });

  it('a fragment whose descriptor count disagrees closes its number once; the rest of its message is consumed silently', () => {
    const body = new Uint8Array(300_000).fill(2);
    // A message announcing 2 descriptors, both in its first fragment, which carries only one.
    const packets = fragmentPackets(78n, 1, [body], body.byteLength, [200, 201]);
    const first = bytesOf(packets[0]!);
    expect(first[44]! & FRAG_FIRST).toBe(FRAG_FIRST);
    const { parser, closed } = rig({ maxMessageBytes: 1 << 20, maxHandles: 3 });
    const out: ParsedItem[] = [];
    parser.parse(first, 200, 0, out);
    expect(out.map((i) => (i as IpcError).code)).toEqual(['MALFORMED']);
    expect(closed).toEqual([200]);
    // Later fragments of that message (here each with a stray descriptor) are dropped, each closed once.
    const rest = packets.slice(1).map(bytesOf);
    expect(rest.at(-1)![44]! & FRAG_LAST).toBe(FRAG_LAST);
    rest.forEach((p, i) => parser.parse(p, 300 + i, 0, out));
    expect(out).toHaveLength(1);
    expect(closed).toEqual([200, 300, 301]);
  });

  it('a switch packet with its one descriptor as a number is handed back with that descriptor', () => {
    const { parser, closed } = rig();
    const sw = switchPacket(0, 'ab'.repeat(16));
    const out: ParsedItem[] = [];
    const got = parser.parse(bytesOf(sw), 61, 0, out);
    expect(got).toEqual({ switchTo: 61, secret: 'ab'.repeat(16) });
    expect(out).toEqual([]);
    expect(closed).toEqual([]);
  });
});

/** /dev/null opened and registered with the addon, as a received descriptor is (its close() takes it). */
function adopted(): number {
  const fd = openSync('/dev/null', 'r');
  native().adopt(fd);
  return fd;
}

describe('decoding a record in the number form', () => {
  it('revives the one descriptor; a header that disagrees with it closes it once (MALFORMED)', linuxOnly, () => {
    const before = fdCount();
    const good = decodeRecord<{ fh: IpcFileHandle }>({ body: bodyOf({ fh: marker }), fds: adopted() }, resolveLimits(LIMITS));
    expect(good.fh).toBeInstanceOf(IpcFileHandle);
    expect(fdCount()).toBe(before + 1);
    good.fh.close();
    expect(fdCount()).toBe(before);
    for (const value of [{ n: 1 }, { a: marker, b: marker2 }]) {
      const fd = adopted();
      let code = 'no error';
      try {
        decodeRecord({ body: bodyOf(value), fds: fd }, resolveLimits(LIMITS));
      } catch (e) {
        code = (e as IpcError).code;
      }
      expect(code).toBe('MALFORMED');
      expect(fdCount()).toBe(before);
    }
    // The header says 1 (the one-descriptor reviver) but the handle's kind is unknown: closed too.
    const fd = adopted();
    const unknownKind = joinParts(encodeMessage({ fh: marker }, { handleKind: (v) => (v === marker ? 'Q' : undefined) }));
    expect(() => decodeRecord({ body: unknownKind, fds: fd }, resolveLimits(LIMITS))).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(fdCount()).toBe(before);
  });

  it('closeFds takes a number as well as an array', linuxOnly, () => {
    const before = fdCount();
    closeFds(adopted());
    closeFds([adopted(), adopted()]);
    expect(fdCount()).toBe(before);
  });
});

describe('the kind tag of the last handle revived is remembered (decode.ts tagEntry)', () => {
  const tagged = (tag: string) => (v: object) => (v === marker ? tag : undefined);
  const body = (tag: string) => joinParts(encodeMessage({ fh: marker }, { handleKind: tagged(tag) }));
  const decodeTag = (tag: string): unknown => decodeRecord<{ fh: unknown }>({ body: body(tag), fds: adopted() }, resolveLimits(LIMITS)).fh;

  it('kinds alternating with the remembered one each get their own reviver; an unknown one after it is MALFORMED', linuxOnly, () => {
    const before = fdCount();
    const made: string[] = [];
    registerHandleKind('fd6A', () => undefined, (fd) => (made.push('A'), { kind: 'A', close: () => native().close(fd) }));
    registerHandleKind('fd6B', () => undefined, (fd) => (made.push('B'), { kind: 'B', close: () => native().close(fd) }));
    const got: unknown[] = [];
    for (const tag of ['F', 'F', 'fd6A', 'fd6A', 'F', 'fd6B', 'fd6A']) got.push(decodeTag(tag));
    expect(got.map((h) => (h instanceof IpcFileHandle ? 'F' : (h as { kind: string }).kind))).toEqual(['F', 'F', 'A', 'A', 'F', 'B', 'A']);
    for (const h of got) (h as { close(): void }).close();
    // An unknown kind right after a remembered one, and a kind that differs from it only in case.
    for (const tag of ['fd6C', 'f', 'fd6a', 'F.x']) {
      (decodeTag('fd6A') as { close(): void }).close();
      expect(() => decodeTag(tag), tag).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    }
    expect(made.filter((k) => k === 'A')).toHaveLength(7);
    expect(fdCount()).toBe(before);
  });

  it('a kind registered again after it was remembered revives with its new entry', linuxOnly, () => {
    registerHandleKind('fd6R', () => undefined, (fd) => ({ v: 1, close: () => native().close(fd) }));
    const one = decodeTag('fd6R') as { v: number; close(): void };
    expect(one.v).toBe(1);
    registerHandleKind('fd6R', () => undefined, (fd) => ({ v: 2, close: () => native().close(fd) }));
    const two = decodeTag('fd6R') as { v: number; close(): void };
    expect(two.v).toBe(2);
    // And a check the new entry adds is applied (refused: the descriptor is closed, MALFORMED).
    const before = fdCount();
    registerHandleKind('fd6R', () => 'is refused by the new entry', (fd) => ({ v: 3, close: () => native().close(fd) }));
    expect(() => decodeTag('fd6R')).toThrow(/refused by the new entry/);
    expect(fdCount()).toBe(before);
    one.close();
    two.close();
  });
});

describe('records with descriptors through a real receiver', () => {
  /** Sends an out packet's bytes with `fds` on the raw socket `a`. */
  function sendRaw(a: number, p: { bytes: Uint8Array; fds: number[] }): void {
    expect(transport().send(a, [p.bytes], p.fds)).toBeGreaterThan(0);
  }

  it('a batched packet of 1, 0, 2 and 1 descriptors: each record gets its own files, in order; lastHandles counts each', linuxOnly, () => {
    const t = transport();
    const [a, b] = t.socketpair();
    const rx = new IpcReceiver<Record<string, unknown>>(b);
    const before = fdCount();
    const paths = ['/dev/null', '/dev/zero', '/dev/full', '/dev/urandom'];
    const sent = paths.map((p) => openSync(p, 'r'));
    const rdev = paths.map((p) => statSync(p).rdev);
    const bodies = [bodyOf({ fh: marker, i: 0 }), bodyOf({ i: 1 }), bodyOf({ a: marker, b: marker2, i: 2 }), bodyOf({ fh: marker, i: 3 })];
    const p = recordsPacket(bodies, [1, 0, 2, 1]);
    sendRaw(a, { bytes: p.bytes, fds: sent });
    for (const fd of sent) closeSync(fd);
    const counts: number[] = [];
    const files: string[][] = [];
    const handles: IpcFileHandle[] = [];
    for (let i = 0; i < 4; i++) {
      const m = rx.tryRecv()!.message;
      expect(m.i).toBe(i);
      counts.push(rx.lastHandles);
      const hs = Object.values(m).filter((v): v is IpcFileHandle => v instanceof IpcFileHandle);
      files.push(hs.map((h) => paths[rdev.indexOf(fstatSync(h.fd).rdev)]!));
      handles.push(...hs);
    }
    expect(counts).toEqual([1, 0, 2, 1]);
    expect(files).toEqual([['/dev/null'], [], ['/dev/zero', '/dev/full'], ['/dev/urandom']]);
    expect(fdCount()).toBe(before + 4);
    for (const h of handles) h.close();
    expect(fdCount()).toBe(before);
    rx.close();
    native().close(a);
  });

  it('the receive loop hands the parser a packet of one descriptor as the descriptor itself, of none NO_FDS', linuxOnly, () => {
    const [tx, rx] = channel<{ fh?: IpcFileHandle; g?: IpcFileHandle; n: number }>();
    const parser = (rx as unknown as { core: { parser: PacketParser } }).core.parser;
    const seen: RecordFds[] = [];
    const own = parser.parseSingleRecord.bind(parser);
    parser.parseSingleRecord = (buf, off, len, fds, out) => {
      seen.push(fds);
      return own(buf, off, len, fds, out);
    };
    const fh = IpcFileHandle.from(0);
    const g = IpcFileHandle.from(0);
    tx.send({ fh, n: 1 });
    expect(rx.tryRecv()!.message.fh).toBeInstanceOf(IpcFileHandle);
    tx.send({ n: 2 });
    expect(rx.tryRecv()!.message.n).toBe(2);
    tx.send({ fh, g, n: 3 });
    const three = rx.tryRecv()!.message;
    expect(seen).toHaveLength(3);
    expect(typeof seen[0]).toBe('number');
    expect(seen[1]).toBe(NO_FDS);
    expect(Array.isArray(seen[2]) && (seen[2] as number[]).length).toBe(2);
    three.fh!.close();
    three.g!.close();
    fh.close();
    g.close();
    tx.close();
    rx.close();
  });

  it('hostile batched packets (over limits, counts that disagree) leave no descriptor open', linuxOnly, () => {
    const t = transport();
    const [a, b] = t.socketpair();
    const rx = new IpcReceiver<Record<string, unknown>>(b, { maxMessageBytes: 200, maxHandles: 1 });
    const dn = openSync('/dev/null', 'r');
    const before = fdCount();
    const big = bodyOf({ fh: marker, pad: 'x'.repeat(300) });
    // Over maxMessageBytes, over maxHandles, a good one, a header of 1 handle sent with none... and one of none sent with one.
    const bodies = [big, bodyOf({ a: marker, b: marker2 }), bodyOf({ fh: marker, ok: 1 }), bodyOf({ n: 4 })];
    const p = recordsPacket(bodies, [1, 2, 1, 1]);
    sendRaw(a, { bytes: p.bytes, fds: [dn, dn, dn, dn, dn] });
    const got: string[] = [];
    for (;;) {
      try {
        const r = rx.tryRecv();
        if (!r) break;
        got.push('ok');
        (r.message.fh as IpcFileHandle).close();
      } catch (e) {
        got.push((e as IpcError).code);
      }
    }
    expect(got).toEqual(['TOO_LARGE', 'TOO_LARGE', 'ok', 'MALFORMED']);
    expect(fdCount()).toBe(before);
    // A packet whose records name fewer descriptors than it carries: one MALFORMED, all closed.
    sendRaw(a, { bytes: recordsPacket([bodyOf({ fh: marker })], [1]).bytes, fds: [dn, dn, dn] });
    expect(() => rx.tryRecv()).toThrow(IpcError);
    expect(fdCount()).toBe(before);
    rx.close();
    native().close(a);
    closeSync(dn);
  });

  it('a bytes channel refuses a record with one descriptor and closes it', linuxOnly, () => {
    const start = fdCount();
    const [tx, rx] = bytesChannel();
    const before = fdCount();
    const dn = openSync('/dev/null', 'r');
    const body = new Uint8Array([1, 2, 3, 4]);
    // The sender's own socket, written raw: one record, one descriptor.
    const fd = (tx as unknown as { core: { fd: number } }).core.fd;
    sendRaw(fd, { bytes: bytesOf(singleRecordPacket([body], 4, [0])), fds: [dn] });
    closeSync(dn);
    expect(() => rx.tryRecv()).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(fdCount()).toBe(before);
    tx.send(body);
    expect(rx.tryRecv()!.message).toEqual(body);
    tx.close();
    rx.close();
    expect(fdCount()).toBe(start);
  });

  it('a receiver closed with one-descriptor records still queued closes each descriptor', linuxOnly, async () => {
    const before = fdCount();
    const [tx, rx] = channel<{ fh: IpcFileHandle; i: number }>();
    for (let i = 0; i < 5; i++) {
      const fh = IpcFileHandle.from(0);
      tx.send({ fh, i });
      fh.close();
    }
    // Read into the queue, take one, leave four queued.
    const first = rx.tryRecv()!.message;
    expect(first.i).toBe(0);
    first.fh.close();
    rx.close();
    tx.close();
    expect(fdCount()).toBe(before);
  });

  it('a receiver moved with one-descriptor records pending delivers them at its new place', linuxOnly, async () => {
    const before = fdCount();
    const [tx, rx] = channel<{ fh: IpcFileHandle; i: number }>();
    const [ctx, crx] = channel<{ rx: IpcReceiver<{ fh: IpcFileHandle; i: number }> }>();
    for (let i = 0; i < 3; i++) {
      const fh = IpcFileHandle.from(0);
      tx.send({ fh, i });
      fh.close();
    }
    // One taken, so the others are read ahead into the queue and must travel with the receiver.
    const m0 = rx.tryRecv()!.message;
    m0.fh.close();
    ctx.send({ rx });
    const moved = (await crx.recv()).rx;
    const got: number[] = [];
    for (let i = 1; i < 3; i++) {
      const m = await moved.recv();
      expect(m.fh).toBeInstanceOf(IpcFileHandle);
      got.push(m.i);
      m.fh.close();
    }
    expect(got).toEqual([1, 2]);
    moved.close();
    tx.close();
    ctx.close();
    crx.close();
    expect(fdCount()).toBe(before);
  });
});
