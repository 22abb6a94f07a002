// Containment of the mux's own reading of frame bodies (src/main/mux/raw.ts, parseFrame, and
// src/main/endpoint/mux-entry.ts; docs/multiplexing.md "Sixth round"): a hostile peer writes
// raw record bodies (bytes it chose, not what an encoder makes) under the victim's IpcMux.
// Forged and never-announced ids, huge digit runs, non-ASCII, bad UTF-8, truncated texts and
// headers, nesting, unknown kinds and control ops, bad padding: each is one typed IpcError on
// onError (or, where the codec decodes the body, exactly the codec's value delivered), and the
// connection and its channels go on.
import { describe, expect, it } from 'vitest';
import { IpcMux, channel } from '../../src/main/index.js';
import type { IpcError, MuxFrame, MuxReceiver } from '../../src/main/index.js';

/** A format-0 body around the bytes of `text`; `pad` fills the padding (the codec's is zeros). */
function body(text: string | Uint8Array, opts: { pad?: number; length?: number } = {}): Uint8Array {
  const t = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  const size = (16 + t.length + 7) & ~7;
  const b = new Uint8Array(size === 16 + t.length && opts.pad !== undefined ? size + 8 : size);
  b[1] = 1; // BODY_VERSION
  new DataView(b.buffer).setUint32(4, opts.length ?? t.length, true);
  b.set(t, 16);
  if (opts.pad !== undefined) b.fill(opts.pad, 16 + t.length);
  return b;
}

/** A victim mux whose peer writes raw record bodies (and codec frames) on plain channels. */
function rawPeer(): {
  v: IpcMux;
  errors: IpcError[];
  raw(b: Uint8Array): void;
  send(f: unknown[]): void;
  next(): Promise<unknown[]>;
} {
  const [pTx, vRx] = channel<MuxFrame>();
  const [vTx, pRx] = channel<MuxFrame>();
  const errors: IpcError[] = [];
  const v = IpcMux.open(vTx, vRx, { onError: (e) => errors.push(e) });
  return {
    v,
    errors,
    raw: (b) => pTx.core.write([b], b.length, []),
    send: (f) => pTx.send(f),
    next: async () => (await pRx.recv({ timeout: 5000 })) as unknown[],
  };
}

/** A channel the victim made and gave the peer a sender of: the id the peer writes to. */
async function granted(p: ReturnType<typeof rawPeer>): Promise<{ r: MuxReceiver<unknown>; id: number }> {
  const [s, r] = p.v.channel<unknown>();
  p.v.sender.send({ s });
  s.close();
  const f = await p.next();
  expect(f[2]).toBe('s');
  return { r, id: -(f[3] as number) };
}

const tick = (ms = 50): Promise<void> => new Promise((res) => setTimeout(res, ms));

describe('IpcMux reading frame bodies itself, against a hostile peer', () => {
  it('bodies the codec refuses are MALFORMED each, whatever they look like to the mux; the channel goes on', async () => {
    const p = rawPeer();
    const { r, id } = await granted(p);
    const bad: Uint8Array[] = [
      body(`[${id},1]`, { pad: 0x20 }), // padding not zero
      body(`[${id},1]`, { pad: 0x5d }),
      body(`[${id},1]x`), // bytes after the frame
      body(`[${id},1]]`),
      body(`[${id},01]`), // a leading zero
      body(`[${id},-]`),
      body(`[${id},1,]`),
      body(`[${id},nul]`),
      body(`[${id},nulll]`),
      body(`[${id},"abc]`), // a string cut short
      body(`[${id},"ab\u0001"]`), // a control character in a string
      body(new Uint8Array([0x5b, 0x2d, 0x31, 0x2c, 0x22, 0xc3, 0x22, 0x5d])), // a cut UTF-8 sequence (id -1)
      body(new Uint8Array([0x5b, 0x2d, 0x31, 0x2c, 0x22, 0xff, 0x22, 0x5d])),
      body(`[${id},{"__proto__":1}]`),
      body(`[${id},{"a":1,}]`),
      body(`[${id},1]`, { length: 100 }), // a text length past the body
      body(`[${id},1]`, { length: 3 }), // a text length short of the frame
      body(`[${id},1`), // the frame cut short
      body(`[${id},`),
      body('['),
      body(''),
    ];
    const version = body(`[${id},1]`);
    version[1] = 2;
    bad.push(version);
    const longer = new Uint8Array(version.length + 8); // zeros past the padding
    longer.set(body(`[${id},1]`));
    bad.push(longer);
    const handles = body(`[${id},1]`);
    handles[12] = 1; // announces a descriptor that did not come
    bad.push(handles);
    for (const b of bad) p.raw(b);
    p.send([id, 'after']);
    expect(await r.recv({ timeout: 5000 })).toBe('after');
    await tick();
    expect(r.tryRecv()).toBeUndefined();
    expect(p.errors.length).toBe(bad.length);
    for (const e of p.errors) expect(e.code).toBe('MALFORMED');
    expect(p.v.open).toBe(true);
    p.v.close();
  });

  it('bodies the codec decodes arrive as it decodes them: digit runs, floats, escapes, non-ASCII, whitespace, nesting', async () => {
    const p = rawPeer();
    const { r, id } = await granted(p);
    const texts: Array<[string, unknown]> = [
      [`[${id},99999999999999999999]`, 99999999999999999999],
      [`[${id},123456789012345678901]`, 123456789012345678901],
      [`[${id},${'9'.repeat(400)}]`, Infinity],
      [`[${id},-${'9'.repeat(400)}]`, -Infinity],
      [`[${id},9007199254740993]`, 9007199254740992],
      [`[${id},1.5e3]`, 1500],
      [`[${id},-0]`, -0],
      [`[${id},"a\\"b\\\\c\\u0041"]`, 'a"b\\cA'],
      [`[${id},"é漢"]`, 'é漢'],
      [`[${id}, 1 ]`, 1],
      [`[${id},{"a":{"b":[1,2]}}]`, { a: { b: [1, 2] } }],
      [`[${id},${'['.repeat(20)}${']'.repeat(20)}]`, JSON.parse('['.repeat(20) + ']'.repeat(20))],
      [`[${id},"${'x'.repeat(300)}"]`, 'x'.repeat(300)],
      [`[${id},{"op":"x","n":-12,"t":true,"f":false,"z":null}]`, { op: 'x', n: -12, t: true, f: false, z: null }],
    ];
    for (const [t] of texts) p.raw(body(t));
    for (const [t, want] of texts) expect(await r.recv({ timeout: 5000 }), t).toStrictEqual(want);
    expect(p.errors).toEqual([]);
    p.v.close();
  });

  it('forged, never-announced and out-of-range ids, unknown control ops and kinds: MALFORMED each, nothing delivered or made', async () => {
    const p = rawPeer();
    const { r, id } = await granted(p);
    const texts = [
      `[${id - 1},1]`, // the victim's next id (its key 3, written -3 by the peer): never given
      '[-999,1]', // never made
      '[5,1]', // one of the peer's own ids the victim never heard of
      `[281474976710656,1]`, // 2 ** 48: out of range
      `[-281474976710656,1]`,
      `[1.5,1]`,
      `[${'9'.repeat(40)},1]`,
      `["${id}",1]`,
      `[null,1]`,
      `[0,99,${id},0]`, // an unknown control op
      `[0,1,${id},1000]`, // a DROP of more senders than given
      `[0,1,${id},"1"]`,
      `[0,1,${id}]`, // a control frame cut short
      `[0,2,-1,0]`, // RCLOSED of a channel the victim hosts
      `[-1,{"a":null},"x",7,"a"]`, // an unknown kind
      `[-1,{"a":null},"s",7]`, // a reference cut short
      `[-1,{"a":null},"r",-3,"a"]`, // a receiver with one of the victim's ids
      `[-1,{"a":1},"r",9,"a"]`, // a slot not holding null
      `[-1,{"a":null},"r",10,"__proto__"]`,
      `[${id}]`,
      '[]',
      '{}',
      '"frame"',
      '7',
    ];
    const before = p.v.stats.channels;
    for (const t of texts) p.raw(body(t));
    p.raw(body(`[${id},"after"]`));
    expect(await r.recv({ timeout: 5000 })).toBe('after');
    await tick();
    expect(r.tryRecv()).toBeUndefined();
    expect(p.errors.length).toBe(texts.length);
    for (const e of p.errors) expect(e.code).toBe('MALFORMED');
    expect(p.v.stats.channels).toBe(before);
    // The victim's root receiver got nothing either.
    expect(p.v.receiver.tryRecv()).toBeUndefined();
    p.v.close();
  });

  it('a frame over the connection receiver\'s maxElements is TOO_LARGE, also one the mux would read itself', async () => {
    const [pTx, vRx] = channel<MuxFrame>({ maxElements: 6 });
    const [vTx, pRx] = channel<MuxFrame>();
    const errors: IpcError[] = [];
    const v = IpcMux.open(vTx, vRx, { onError: (e) => errors.push(e) });
    const [s, r] = v.channel<unknown>();
    v.sender.send({ s });
    s.close();
    const f = (await pRx.recv({ timeout: 5000 })) as unknown[];
    const id = -(f[3] as number);
    const raw = (t: string): void => {
      const b = body(t);
      pTx.core.write([b], b.length, []);
    };
    raw(`[0,1,${id},1,1,${id}]`); // 7 values
    raw(`[${id},{"a":1,"b":2,"c":3,"d":4}]`); // 7 values
    raw(`[${id},{"a":1,"b":2,"c":3}]`); // 6: taken
    expect(await r.recv({ timeout: 5000 })).toStrictEqual({ a: 1, b: 2, c: 3 });
    expect(errors.map((e) => e.code)).toEqual(['TOO_LARGE', 'TOO_LARGE']);
    v.close();
  });

  it('a connection receiver with a schema sees every frame (the mux does not read around it)', async () => {
    const seen: unknown[] = [];
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (value: unknown) => {
          seen.push(value);
          return { value: value as MuxFrame };
        },
      },
    };
    const [pTx, vRx] = channel<MuxFrame>({ schema });
    const [vTx, pRx] = channel<MuxFrame>();
    const v = IpcMux.open(vTx, vRx);
    const [s, r] = v.channel<unknown>();
    v.sender.send({ s });
    s.close();
    const f = (await pRx.recv({ timeout: 5000 })) as unknown[];
    const id = -(f[3] as number);
    pTx.send([id, 1]);
    pTx.send([id, 'two']);
    expect(await r.recv({ timeout: 5000 })).toBe(1);
    expect(await r.recv({ timeout: 5000 })).toBe('two');
    expect(seen).toStrictEqual([
      [id, 1],
      [id, 'two'],
    ]);
    v.close();
  });
});
