// Frames the mux writes as JSON text itself (src/main/mux/writer.ts: jsonOf, jsonBody; docs/
// multiplexing.md "Fifth round"): the body must be byte for byte what the codec writes for the
// same frame, and every value the codec would not send as plain JSON must take the general path
// (and arrive as it was sent, or throw UNSERIALIZABLE as before).
import { describe, expect, it } from 'vitest';
import { IpcError, IpcMux, channel } from '../src/main/index.js';
import type { MuxFrame } from '../src/main/index.js';
import { encodeMessage } from '../src/shared/codec.js';
import { IMMEDIATE_BODY } from '../src/main/framing/send.js';
import { jsonBody, jsonOf, quote, sendFrame, writeControl } from '../src/main/mux/writer.js';
import type { IpcMux as Mux } from '../src/main/mux/mux.js';

const PRIMITIVES: unknown[] = [
  null, true, false, 0, 1, -1, 42, 2 ** 31, 2 ** 53 - 1, -(2 ** 53), 0.1, -2.5e-7, 1e21, 1.7976931348623157e308, 5e-324,
  '', 'a', 'sensor-7', 'quote " and \\ backslash', 'tab\tnewline\n\u0000\u001f', 'é ü 漢字 😀', '\ud800 lone', 'lone \udfff',
  'x'.repeat(200), '€'.repeat(300),
];
const NOT_JSON: unknown[] = [undefined, NaN, Infinity, -Infinity, -0, 10n, Symbol('s'), () => 1];

/** The codec's body for `frame`, joined. */
function codecBody(frame: unknown): Uint8Array {
  const enc = encodeMessage(frame);
  expect(enc.parts.length).toBe(1);
  return enc.parts[0]!.slice();
}

/** The mux's body for JSON text `text`, or undefined when it did not fit. */
function muxBody(text: string): Uint8Array | undefined {
  const size = jsonBody(text);
  return size < 0 ? undefined : IMMEDIATE_BODY.slice(0, size);
}

describe('frames the mux writes as JSON text', () => {
  it('jsonOf gives the JSON text of the primitives the codec sends as plain JSON, and nothing for the others', () => {
    for (const v of PRIMITIVES) expect(jsonOf(v)).toBe(JSON.stringify(v));
    for (const v of NOT_JSON) expect(jsonOf(v)).toBeUndefined();
    expect(jsonOf({})).toBeUndefined();
    expect(jsonOf([])).toBeUndefined();
  });

  it('quote is JSON.stringify for every string (its short printable ASCII case included)', () => {
    const strings = ['', 'op', 'reply', 'a b', '~', ' ', '"', 'a"b', '\\', 'a\\b', '\u001f', '\u007f', 'é', '\ud800', 'x'.repeat(32), 'x'.repeat(33), `${'x'.repeat(31)}"`, `${'x'.repeat(40)}\\`];
    for (let c = 0; c < 0x100; c++) strings.push(String.fromCharCode(c), `k${String.fromCharCode(c)}k`);
    for (const s of strings) expect(quote(s)).toBe(JSON.stringify(s));
  });

  it('a body is byte for byte the codec\'s, for replies, the flat request and control frames', () => {
    // Dirty the scratch first: padding and header bytes must be written, not assumed zero.
    IMMEDIATE_BODY.fill(0xff, 0, 1024);
    for (const v of PRIMITIVES) {
      for (const key of [-1, 2, -(2 ** 40), 2 ** 47]) {
        expect(muxBody(`[${key},${jsonOf(v)!}]`)).toEqual(codecBody([key, v]));
        IMMEDIATE_BODY.fill(0xff, 0, 1024);
      }
      const obj = { op: 'get', '10': 1, 'k"ey': v, 'é': v, reply: null };
      const text = `[-3,{${Object.keys(obj).map((k) => `${JSON.stringify(k)}:${k === 'reply' ? 'null' : jsonOf((obj as Record<string, unknown>)[k])!}`).join(',')}},"s",7,"reply"]`;
      expect(muxBody(text)).toEqual(codecBody([-3, obj, 's', 7, 'reply']));
    }
    expect(muxBody('[0,1,-5,1,2,7,0]')).toEqual(codecBody([0, 1, -5, 1, 2, 7, 0]));
    // Lengths over 255 and 65535 bytes use the header's upper length bytes (or do not fit).
    const long = `[5,${JSON.stringify('y'.repeat(3000))}]`;
    const got = muxBody(long);
    if (got !== undefined) expect(got).toEqual(codecBody([5, 'y'.repeat(3000)]));
    expect(muxBody(`[5,${JSON.stringify('z'.repeat(70000))}]`)).toBeUndefined();
  });

  it('integer replies and control frames, their digits written in place, are the codec\'s bodies', () => {
    let body: Uint8Array | undefined;
    let general: unknown;
    const fake = {
      alive: true,
      writeBody(size: number) {
        body = IMMEDIATE_BODY.slice(0, size);
      },
      write(frame: unknown) {
        general = frame;
      },
    } as unknown as Mux<unknown, unknown>;
    const ints = [0, 1, 9, 10, 99, 100, 101, 12345, 1000000, -1, -10, -99999, 2 ** 31, 2 ** 32 + 5, 10 ** 15, 2 ** 53 - 1, -(2 ** 53 - 1)];
    for (const key of [1, -1, 2, -2, 10, -100, 2 ** 47, -(2 ** 47)]) {
      for (const v of ints) {
        body = undefined;
        IMMEDIATE_BODY.fill(0xff, 0, 256);
        sendFrame(fake, key, v);
        expect(body).toEqual(codecBody([key, v]));
      }
    }
    // -0 and numbers past the safe integers are not written as digits.
    for (const v of [-0, 2 ** 53, 1.5]) {
      body = undefined;
      general = undefined;
      sendFrame(fake, 3, v);
      if (body !== undefined) expect(body).toEqual(codecBody([3, v]));
      else expect(Object.is((general as unknown[])[1], v)).toBe(true);
    }
    body = undefined;
    general = undefined;
    sendFrame(fake, 3, -0);
    expect(body).toBeUndefined();
    expect(Object.is((general as unknown[])[1], -0)).toBe(true);
    const ops = [1, -5, 1, 2, 7, 0, 1, 2 ** 47, 4096, 2, -(2 ** 47), 0];
    body = undefined;
    IMMEDIATE_BODY.fill(0xff, 0, 256);
    writeControl(fake, ops);
    expect(body).toEqual(codecBody([0, ...ops]));
    // A control frame too long for the scratch goes to the codec whole.
    const many = Array.from({ length: 3 * 1000 }, (_, i) => (i % 3 === 1 ? -(i + 2) : 1));
    body = undefined;
    general = undefined;
    writeControl(fake, many);
    expect(body).toBeUndefined();
    expect(general).toEqual([0, ...many]);
  });

  it('values sent on logical channels arrive as sent, whichever path wrote them', async () => {
    const [aTx, bRx] = channel<MuxFrame>();
    const [bTx, aRx] = channel<MuxFrame>();
    const a = IpcMux.open(aTx, aRx);
    const b = IpcMux.open(bTx, bRx);
    const [s2, r2] = a.channel<unknown>();
    a.sender.send({ op: 'hello', reply: s2 } as never);
    const got = (await b.receiver.recv({ timeout: 5000 })) as { op: string; reply: { send(v: unknown): void; close(): void } };
    expect(got.op).toBe('hello');
    expect(got.reply.constructor.name).toBe('MuxSender'); // a logical sender: its frames are the mux's
    const sent: unknown[] = [...PRIMITIVES, 'x'.repeat(5000), ...NOT_JSON.slice(0, 6)];
    for (const v of sent) got.reply.send(v);
    for (const v of sent) {
      const x = await r2.recv({ timeout: 5000 });
      expect(Object.is(x, v)).toBe(true);
    }
    // Flat objects: plain JSON, and with items that are not (undefined, -0, a bigint, a __proto__ key).
    const objs: Array<Record<string, unknown>> = [
      { op: 'a', n: 1, s: 'é' },
      {},
      { op: 'b', u: undefined },
      { op: 'c', z: -0 },
      { op: 'd', big: 2n },
    ];
    for (const o of objs) got.reply.send(o);
    for (const o of objs) {
      const v = (await r2.recv({ timeout: 5000 })) as Record<string, unknown>;
      expect(Object.keys(v)).toEqual(Object.keys(o));
      for (const k of Object.keys(o)) expect(Object.is(v[k], o[k])).toBe(true);
    }
    // A flat request carrying a sender, with an item that is not plain JSON, still carries it.
    const [s3, r3] = a.channel<number>();
    a.sender.send({ op: 'again', reply: s3, n: NaN } as never);
    const req = (await b.receiver.recv({ timeout: 5000 })) as { op: string; n: number; reply: { send(v: number): void; close(): void } };
    expect(req.n).toBeNaN();
    req.reply.send(7);
    expect(await r3.recv({ timeout: 5000 })).toBe(7);
    // What cannot be sent at all still throws UNSERIALIZABLE, nothing written.
    const code = (fn: () => void): string | undefined => {
      try {
        fn();
      } catch (e) {
        return e instanceof IpcError ? e.code : String(e);
      }
      return undefined;
    };
    expect(code(() => got.reply.send(Symbol('no')))).toBe('UNSERIALIZABLE');
    expect(code(() => got.reply.send({ op: 'f', fn: () => 1 }))).toBe('UNSERIALIZABLE');
    expect(code(() => got.reply.send(JSON.parse('{"__proto__": 1, "op": "e"}')))).toBe('UNSERIALIZABLE');
    got.reply.send('last');
    expect(await r2.recv({ timeout: 5000 })).toBe('last');
    for (const x of [s2, s3, req.reply, got.reply]) x.close();
    a.close();
    b.close();
  });
});

describe('the flat request written byte by byte (writer.ts, flatBody)', () => {
  it('is the codec\'s body, with and without a sender, for every kind of item; other items take the text or the codec', async () => {
    const [aTx, bRx] = channel<MuxFrame>();
    const [bTx, aRx] = channel<MuxFrame>();
    const a = IpcMux.open(aTx, aRx) as unknown as Mux<unknown, unknown> & { sender: { send(v: unknown): void } };
    const b = IpcMux.open(bTx, bRx);
    const bodies: Uint8Array[] = [];
    const real = a.writeBody.bind(a);
    a.writeBody = (size: number): void => {
      bodies.push(IMMEDIATE_BODY.slice(0, size));
      real(size);
    };
    const objs: Array<Record<string, unknown>> = [
      { op: 'get', key: 'k1', n: 3, neg: -12345, big: 2 ** 53 - 1, t: true, f: false, z: null, e: '', '7': 1, '': 'empty' },
      { a: 'x'.repeat(32) },
      { ['k'.repeat(32)]: 0 },
      { op: '~!@#$%^&*()_+{}|:<>?`-=[];\',./ ' },
      {},
    ];
    // Not written byte by byte (a float, a long or escaped or non-ASCII string or key): the
    // text path or the codec, still the codec's body or value.
    const others: Array<Record<string, unknown>> = [{ n: 1.5 }, { s: 'x'.repeat(33) }, { ['k'.repeat(33)]: 1 }, { s: 'a"b' }, { s: 'a\\b' }, { s: 'é' }, { 'k"': 1 }, { n: 2 ** 53 }, { n: -0 }, { u: undefined }];
    let id = 0;
    for (const withSender of [false, true]) {
      for (const o of [...objs, ...others]) {
        IMMEDIATE_BODY.fill(0xff, 0, 1024);
        bodies.length = 0;
        let frame: unknown[];
        if (withSender) {
          const [s, r] = a.channel<unknown>();
          a.sender.send({ ...o, reply: s });
          s.close();
          r.close();
          id = (s as unknown as { chan: { key: number } }).chan.key;
          frame = [-1, { ...o, reply: null }, 's', id, 'reply'];
        } else {
          a.sender.send(o);
          frame = [-1, o];
        }
        const enc = encodeMessage(frame);
        if (objs.includes(o)) {
          expect(bodies.length, JSON.stringify(frame)).toBe(1);
          expect(bodies[0], JSON.stringify(frame)).toEqual(enc.parts[0]!.slice());
        } else if (bodies.length === 1 && enc.parts.length === 1) expect(bodies[0]).toEqual(enc.parts[0]!.slice());
        const got = (await b.receiver.recv({ timeout: 5000 })) as Record<string, unknown>;
        expect(Object.keys(got)).toEqual(Object.keys(frame[1] as object));
        for (const k of Object.keys(o)) expect(Object.is(got[k], o[k]), k).toBe(true);
        if (withSender) (got.reply as { close(): void }).close();
      }
    }
    // A __proto__ key is still refused (UNSERIALIZABLE), nothing written.
    bodies.length = 0;
    expect(() => a.sender.send(JSON.parse('{"__proto__": 1, "op": "e"}'))).toThrow(IpcError);
    expect(bodies.length).toBe(0);
    a.close();
    b.close();
  });
});
