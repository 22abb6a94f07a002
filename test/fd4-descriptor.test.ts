// Issue 15 §2, round 4 (fd4): the one-descriptor fast paths.
// - Sending: the encoder reads a file handle's kind tag without a HandleInfo; SenderCore.write
//   makes the one HandleInfo a send uses after the encode, and hands one descriptor to the addon as
//   a number (Transport.sendOne; sendPacket takes an int). A handle closed between the encode and
//   the write (by a getter the encode reads later) must still give CLOSED, never a stale number.
// - Receiving: a record with one descriptor is revived by one reusable reviver (decode.ts
//   decodeOne): a failure leaves it clean for the next message, and hostile records (counts that
//   disagree, bad or repeated references, wrong kinds) leave no descriptor behind.
import { openSync, closeSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { IpcError, IpcFileHandle, IpcReceiver, channel } from '../src/main/index.js';
import { encodeMessage, joinParts } from '../src/shared/codec.js';
import { singleRecordPacket } from '../src/main/framing.js';
import { transport } from '../src/main/transport/index.js';
import { native } from '../src/main/native.js';
import { fdCount, skipOnWin32 } from './helpers.js';

const linuxOnly = skipOnWin32('raw packets through the POSIX transports');

/** tryRecv() as a result: the message, 'none', or the IpcError code it threw. */
function take<M>(rx: { tryRecv(): { message: M } | undefined }): { message: M } | string {
  try {
    return rx.tryRecv() ?? 'none';
  } catch (e) {
    return e instanceof IpcError ? e.code : `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
}

/** An IpcFileHandle of `path` (from() duplicates; the original is closed here). */
function handleOf(path: string): IpcFileHandle {
  const fd = openSync(path, 'r');
  try {
    return IpcFileHandle.from(fd);
  } finally {
    closeSync(fd);
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof IpcError ? e.code : `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  return 'no error';
}

describe('sending one descriptor', () => {
  it('a handle closed by a getter read after it in the same message is refused with CLOSED, even when its number is reused', () => {
    const [tx, rx] = channel<Record<string, unknown>>();
    const before = fdCount();
    // The original stays open during the send, so that the handle's duplicate is the lowest
    // number the getter's open can get.
    const original = openSync('/dev/null', 'r');
    const fh = IpcFileHandle.from(original);
    const oldFd = fh.fd;
    let reopened = -1;
    // Keys are read in order: `fh` is tagged by the encoder first, then the getter closes it and
    // opens another file, which the kernel gives the lowest free number: the handle's old one.
    const msg = {
      fh,
      get later() {
        fh.close();
        reopened = openSync('/dev/zero', 'r');
        return 1;
      },
    };
    expect(codeOf(() => tx.send(msg))).toBe('CLOSED');
    expect(reopened).toBe(oldFd); // the hazard is real: a stale number would name /dev/zero
    expect(take(rx)).toBe('none'); // nothing was sent
    closeSync(reopened);
    closeSync(original);
    // The sender stays usable, and sends an open handle.
    const fh2 = handleOf('/dev/null');
    tx.send({ fh: fh2 });
    const got = take(rx);
    const h = (got as { message: { fh: IpcFileHandle } }).message.fh;
    expect(h).toBeInstanceOf(IpcFileHandle);
    h.close();
    fh2.close();
    expect(fdCount()).toBe(before);
    tx.close();
    rx.close();
  });

  it('a handle closed before send() is refused with CLOSED and nothing is written', () => {
    const [tx, rx] = channel<{ fh: IpcFileHandle }>();
    const fh = handleOf('/dev/null');
    fh.close();
    expect(codeOf(() => tx.send({ fh }))).toBe('CLOSED');
    expect(take(rx)).toBe('none');
    tx.close();
    rx.close();
  });

  it('one descriptor per message arrives as the file it was, written at once or queued (several sends in one tick)', () => {
    const [tx, rx] = channel<{ fh: IpcFileHandle; i: number }>();
    const before = fdCount();
    const zero = handleOf('/dev/zero');
    // The first send of a tick is written at once (sendOne), the rest are queued (the arrays of
    // one handle are made then, and the queue owns a duplicate).
    for (let i = 0; i < 40; i++) tx.send({ fh: zero, i });
    zero.close();
    return tx.flush().then(() => {
      for (let i = 0; i < 40; i++) {
        const r = take(rx);
        expect(typeof r).toBe('object');
        const { fh, i: j } = (r as { message: { fh: IpcFileHandle; i: number } }).message;
        expect(j).toBe(i);
        const buf = Buffer.alloc(4, 0xff);
        expect(readSync(fh.fd, buf)).toBe(4);
        expect([...buf]).toEqual([0, 0, 0, 0]); // /dev/zero, not a stale or wrong descriptor
        fh.close();
      }
      expect(fdCount()).toBe(before);
      tx.close();
      rx.close();
    });
  });

  it('a receiver moved as the only handle of a message closes the moved descriptor once sent', async () => {
    const [tx, rx] = channel<{ r: IpcReceiver<string> }>();
    const before = fdCount();
    for (let i = 0; i < 20; i++) {
      const [itx, irx] = channel<string>();
      tx.send({ r: irx });
      const got = await rx.recv();
      itx.send(`m${i}`);
      expect(await got.r.recv()).toBe(`m${i}`);
      got.r.close();
      itx.close();
    }
    expect(fdCount()).toBe(before);
    tx.close();
    rx.close();
  });

  it('sendPacket takes one descriptor as a plain number and refuses numbers that are no descriptor', linuxOnly, () => {
    const t = transport();
    const n = native();
    const [a, b] = t.socketpair();
    const devnull = openSync('/dev/null', 'r');
    const before = fdCount();
    const bytes = new Uint8Array([1, 2, 3]);
    const send = n.stream && t.name === 'stream' ? (fds: unknown) => n.stream.sendPacket(a, [bytes], fds as number) : (fds: unknown) => n.sendPacket!(a, [bytes], fds as number);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 31, -0.5]) expect(() => send(bad)).toThrow(TypeError);
    expect(send(devnull)).toBe(3);
    const meta = new Int32Array(2 + 4 * 256);
    const fdsOut = new Int32Array(253);
    const arena = new Uint8Array(1 << 16);
    const got = t.recv(b, meta, fdsOut, 4, 65536, arena, 0);
    expect(got).toBe(1); // one packet: the bad calls wrote nothing
    expect(meta[4]).toBe(1); // with one descriptor
    const fd = fdsOut[0]!;
    expect(fd).not.toBe(devnull);
    expect(n.fdInfo(fd).kind).toBe(n.fdInfo(devnull).kind);
    n.close(fd);
    expect(fdCount()).toBe(before);
    n.close(a);
    n.close(b);
    closeSync(devnull);
  });
});

/** A record carrying `value` (handles tagged by `tagOf`), as the sender frames it, with `nfds` descriptor slots. */
function recordParts(value: unknown, tagOf: (v: object) => string | undefined, nfds: number): Uint8Array[] {
  const body = joinParts(encodeMessage(value, { handleKind: tagOf }));
  return singleRecordPacket([body], body.byteLength, new Array<number>(nfds).fill(0)).parts;
}

describe('receiving one descriptor from a hostile peer', () => {
  const marker = { close() {} };
  const tagF = (v: object) => (v === marker ? 'F' : undefined);

  it('records whose descriptors disagree with their handles leave no descriptor open', linuxOnly, () => {
    const t = transport();
    const [a, b] = t.socketpair();
    const rx = new IpcReceiver<unknown>(b);
    const devnull = openSync('/dev/null', 'r');
    // A listening socket sent as a file handle: refused on fdInfo's packed flags (files.ts).
    const listening = t.listen(`${tmpdir()}/fd4-${process.pid}-${Date.now()}.sock`);
    const before = fdCount();
    const cases: Array<{ what: string; value: unknown; tag?: (v: object) => string | undefined; fds: number[] }> = [
      { what: 'one handle, two descriptors', value: { fh: marker }, fds: [devnull, devnull] },
      { what: 'no handle, one descriptor', value: { fh: 1 }, fds: [devnull] },
      { what: 'a listening socket as a file handle', value: { fh: marker }, fds: [listening] },
      { what: 'an unknown kind', value: { fh: marker }, tag: (v) => (v === marker ? 'Q' : undefined), fds: [devnull] },
      { what: 'a sender kind on a file', value: { fh: marker }, tag: (v) => (v === marker ? 'S' : undefined), fds: [devnull] },
      { what: 'a receiver tag with a bad secret', value: { fh: marker }, tag: (v) => (v === marker ? 'R.zz' : undefined), fds: [devnull] },
      { what: 'two handles, one descriptor', value: { a: marker, b: { close() {} } }, tag: (v) => ('close' in v ? 'F' : undefined), fds: [devnull] },
    ];
    for (const c of cases) {
      // A record whose header counts the handles of `value`, sent with c.fds descriptors.
      const parts = recordParts(c.value, c.tag ?? tagF, c.fds.length);
      expect(t.send(a, parts, c.fds)).toBeGreaterThan(0);
      expect(take(rx), c.what).toBe('MALFORMED');
      expect(fdCount(), c.what).toBe(before);
      // The next good message still decodes (the reviver holds nothing of the failed one).
      expect(t.send(a, recordParts({ fh: marker, n: 1 }, tagF, 1), [devnull])).toBeGreaterThan(0);
      const ok = take(rx);
      const fh = (ok as { message: { fh: IpcFileHandle; n: number } }).message.fh;
      expect(fh, c.what).toBeInstanceOf(IpcFileHandle);
      fh.close();
      expect(fdCount(), c.what).toBe(before);
    }
    rx.close();
    native().close(a);
    native().close(listening);
    closeSync(devnull);
  });

  it('a handle a schema refuses or drops is closed at once', linuxOnly, () => {
    const t = transport();
    const devnull = openSync('/dev/null', 'r');
    for (const mode of ['refuse', 'strip'] as const) {
      const [a, b] = t.socketpair();
      const schema = {
        '~standard': {
          version: 1 as const,
          vendor: 'test',
          validate: (v: unknown) =>
            mode === 'refuse' ? { issues: [{ message: 'no handles here' }] } : { value: { n: (v as { n: number }).n } },
        },
      };
      const rx = new IpcReceiver<{ n: number }>(b, { schema });
      const before = fdCount();
      for (let i = 0; i < 3; i++) {
        expect(t.send(a, recordParts({ fh: marker, n: 7 }, tagF, 1), [devnull])).toBeGreaterThan(0);
        const got = take(rx);
        if (mode === 'refuse') expect(got).toBe('INVALID');
        else expect(got).toEqual({ message: { n: 7 } });
        expect(fdCount(), mode).toBe(before);
      }
      rx.close();
      native().close(a);
    }
    closeSync(devnull);
  });
});
