// The GC safety net of multiplexed endpoints (src/main/mux/endpoints.ts) waits in a GcWaitList
// (src/main/handles.ts, shared with the owners of one descriptor): a closed endpoint must not be
// held by the list while it waits (fresh, or aging after one pass), and one dropped without
// close() must still be released once registered (its peer's recv then sees DISCONNECTED).
import { describe, expect, it } from 'vitest';
import { IpcMux, channel } from '../src/main/index.js';
import type { MuxFrame, MuxReceiver, MuxSender } from '../src/main/index.js';
import { expectClosedOwnersCollected, gc, sleep } from './gc-helpers.js';


function localPair(): [IpcMux, IpcMux] {
  const [aTx, bRx] = channel<MuxFrame>();
  const [bTx, aRx] = channel<MuxFrame>();
  return [IpcMux.open(aTx, aRx), IpcMux.open(bTx, bRx)];
}

describe('GC safety net of logical endpoints', () => {
  it('a closed endpoint is not kept alive while it waits for registration (fresh or aging)', async () => {
    const [a, b] = localPair();
    try {
      // Eight channels' endpoints.
      await expectClosedOwnersCollected(() => {
        const eps: Array<MuxSender<number> | MuxReceiver<number>> = [];
        for (let i = 0; i < 8; i++) eps.push(...a.channel<number>());
        return eps;
      });
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
