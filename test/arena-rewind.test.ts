// The receive arena gives back the bytes of a decoded message (issue 15 §1, arena6): each read
// lands where the last decoded one did instead of marching through memory it never touched (a
// page fault every ~40 small messages, every message on cold lines). What must never happen:
// bytes given back while something still holds them (a queued message of any receiver on the
// thread, a bytes channel's message handed to the application, a decoded binary).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bytesChannel, channel } from '../src/main/index.js';
import { arenaOffsetForTests } from '../src/main/endpoint/receiver-reading.js';

const small = (i: number) => ({ i, name: `sensor-${i}`, ok: i % 2 === 0, values: [i, i + 0.5] });

describe('receive arena rewinding', () => {
  it('a tryRecv() loop reads every message into the same bytes', () => {
    const [tx, rx] = channel<ReturnType<typeof small>>();
    tx.send(small(-1));
    expect(rx.tryRecv()?.message).toEqual(small(-1));
    const start = arenaOffsetForTests();
    for (let i = 0; i < 2000; i++) {
      tx.send(small(i));
      expect(rx.tryRecv()?.message).toEqual(small(i));
    }
    // Without the rewind the arena moves on by a packet (~100 bytes) per message.
    expect(arenaOffsetForTests()).toBe(start);
    tx.close();
    rx.close();
  });

  it('an await recv() ping-pong (the poller reads first) does not march either', async () => {
    const [atx, arx] = channel<ReturnType<typeof small>>();
    const [btx, brx] = channel<ReturnType<typeof small>>();
    const echo = (async () => {
      for await (const m of arx) btx.send(m);
    })();
    atx.send(small(-1));
    expect(await brx.recv()).toEqual(small(-1));
    const start = arenaOffsetForTests();
    for (let i = 0; i < 1000; i++) {
      atx.send(small(i));
      expect(await brx.recv()).toEqual(small(i));
    }
    expect(arenaOffsetForTests() - start).toBeLessThan(1024);
    atx.close();
    await echo;
    btx.close();
    brx.close();
  });

  it('with a schema too', () => {
    const schema = z.object({ i: z.number(), name: z.string(), ok: z.boolean(), values: z.array(z.number()) });
    const [tx, rx] = channel({ schema });
    tx.send(small(-1));
    expect(rx.tryRecv()?.message).toEqual(small(-1));
    const start = arenaOffsetForTests();
    for (let i = 0; i < 200; i++) {
      tx.send(small(i));
      expect(rx.tryRecv()?.message).toEqual(small(i));
    }
    expect(arenaOffsetForTests()).toBe(start);
    tx.close();
    rx.close();
  });

  it("never gives back a queued message's bytes: not the one read with it, not another receiver's", () => {
    const [atx, arx] = channel<{ n: string; s?: string }>();
    const [btx, brx] = channel<{ n: number; s: string }>();
    // a1 is written at once; a2 and a3 wait for the end of the turn and go in one packet,
    // which tryRecv() writes out before it reads.
    const a3 = { n: 'a3', s: 'q'.repeat(300) };
    atx.send({ n: 'a1' });
    atx.send({ n: 'a2' });
    atx.send(a3);
    expect(arx.tryRecv()?.message).toEqual({ n: 'a1' });
    // Reads a2's packet: a3 is queued, its body in the arena right after a2's.
    expect(arx.tryRecv()?.message).toEqual({ n: 'a2' });
    // Other reads on this thread, bigger than a3, decoded and given back each time: they must land after a3.
    for (let i = 0; i < 20; i++) {
      const m = { n: i, s: String.fromCharCode(97 + (i % 26)).repeat(2000) };
      btx.send(m);
      expect(brx.tryRecv()?.message).toEqual(m);
    }
    expect(arx.tryRecv()?.message).toEqual(a3);
    for (const e of [atx, arx, btx, brx]) e.close();
  });

  it("a bytes channel's message is the application's: later reads into the same bytes leave it as it was", () => {
    const [bt, br] = bytesChannel();
    const sent = Uint8Array.from({ length: 256 }, (_, i) => i);
    bt.send(sent);
    const got = br.tryRecv()!.message;
    const start = arenaOffsetForTests();
    for (let i = 0; i < 50; i++) {
      bt.send(new Uint8Array(400).fill(0xee));
      expect(br.tryRecv()?.message.length).toBe(400);
    }
    // Each read landed where the last one did (the arena gave the copied-out bytes back)...
    expect(arenaOffsetForTests()).toBe(start);
    // ...and what the application was handed is its own.
    expect(got).toEqual(sent);
    bt.close();
    br.close();
  });

  it('a decoded binary is its own copy: later reads into the same bytes leave it as it was', () => {
    const [tx, rx] = channel<{ data: Uint8Array }>();
    tx.send({ data: new Uint8Array(100).fill(7) });
    const first = rx.tryRecv()!.message.data;
    for (let i = 0; i < 20; i++) {
      tx.send({ data: new Uint8Array(100).fill(9) });
      expect(rx.tryRecv()!.message.data[0]).toBe(9);
    }
    expect(first.every((b) => b === 7)).toBe(true);
    tx.close();
    rx.close();
  });
});
