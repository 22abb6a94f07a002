// The GC safety net of multiplexed endpoints (src/main/mux/endpoints.ts) waits in a GcWaitList
// (src/main/handles.ts, shared with the owners of one descriptor): a closed endpoint must not be
// held by the list while it waits (fresh, or aging after one pass), and one dropped without
// close() must still be released once registered (its peer's recv then sees DISCONNECTED).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { IpcMux, channel } from '../src/main/index.js';
import type { MuxFrame, MuxReceiver, MuxSender } from '../src/main/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

function localPair(): [IpcMux, IpcMux] {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return [IpcMux.open(aTx, aRx), IpcMux.open(bTx, bRx)];
}

/**
 * Eight channels' endpoints, weakly referenced; `close()` closes them (they are held only until
 * then) in an order that moves later ones into the slots of closed ones and closes them there.
 */
function make(mux: IpcMux): { refs: Array<WeakRef<object>>; close(): void } {
  let eps: Array<MuxSender<number> | MuxReceiver<number>> = [];
  for (let i = 0; i < 8; i++) eps.push(...mux.channel<number>());
  return {
    refs: eps.map((e) => new WeakRef(e)),
    close() {
      for (let i = 0; i < eps.length / 2; i++) {
        eps[i]!.close();
        eps[eps.length - 1 - i]!.close();
      }
      eps = [];
    },
  };
}

describe('GC safety net of logical endpoints', () => {
  it('a closed endpoint is not kept alive while it waits for registration (fresh or aging)', async () => {
    const [a, b] = localPair();
    try {
      // 0: closed while fresh (no pass yet); 30 ms: closed after one pass moved it to aging.
      for (const delay of [0, 30]) {
        let made: ReturnType<typeof make> | undefined = make(a);
        const refs = made.refs;
        if (delay) await sleep(delay);
        made.close();
        made = undefined;
        await turn();
        gc();
        await turn();
        gc();
        expect(refs.filter((r) => r.deref() !== undefined).length, `closed after ${delay} ms`).toBe(0);
      }
      expect(a.stats.channels).toBe(1 + 1); // the two root channels
    } finally {
      a.close();
      b.close();
    }
  });

  it('a sender dropped without close() is released after registration, made alone or past the burst limit', async () => {
    const [a, b] = localPair();
    try {
      for (const burst of [1, 9000]) {
        const [s, r] = a.channel<number>();
        a.sender.send({ s });
        s.close();
        // The peer drops its sender (and `burst - 1` others of channels it never uses) unclosed.
        await (async () => {
          const got = (await b.receiver.recv({ timeout: 5000 })) as { s: MuxSender<number> };
          got.s.send(1);
          for (let i = 1; i < burst; i++) b.channel<number>();
        })();
        expect(await r.recv({ timeout: 5000 })).toBe(1);
        const end = r.recv({ timeout: 10_000 }).then(
          () => 'message',
          (e: { code?: string }) => e.code,
        );
        for (let i = 0; i < 20; i++) {
          await sleep(25);
          gc();
        }
        expect(await end, `burst of ${burst}`).toBe('DISCONNECTED');
        r.close();
      }
    } finally {
      a.close();
      b.close();
    }
  });
});
