// A receiver nobody waits on stops keeping its process alive once it is settled idle (see
// ReceiverSockets.demand: checked after the message's continuation ran, settled after the turn's
// microtasks); a receiver that is waited on again, at once or after a pause, keeps it alive. The
// exit side is checked in channel.test.ts ("a receiver that received and is no longer awaited
// lets the process exit"); this is the other side. (A timer-based sweep was tried in its place:
// it cost more instructions per round trip, see docs/performance.md.)
import { describe, expect, it } from 'vitest';
import { IpcOneShotServer } from '../src/main/index.js';
import type { IpcSender } from '../src/main/index.js';
import { spawnFixture } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('settling an idle receiver', () => {
  it('never lets go of a receiver that is waited on, asked again at once or after a pause', async () => {
    const server = new IpcOneShotServer<{ pid: number; sender: IpcSender<number> } | { asking: number } | { got: number[] }>();
    const spawned = spawnFixture('receiver/idle-settle.mjs', { EIPC_SERVER: server.name }, 30_000);
    const [rx, first] = await server.accept({ timeout: 15_000 });
    const tx = (first as { sender: IpcSender<number> }).sender;
    for (let k = 0; k < 4; k++) {
      expect(await rx.recv({ timeout: 10_000 })).toEqual({ asking: k });
      // Well past any settling: the child's pending recv() alone keeps it alive meanwhile.
      await sleep(150);
      tx.send(k);
    }
    expect(await rx.recv({ timeout: 10_000 })).toEqual({ got: [0, 1, 2, 3] });
    const r = await spawned.done;
    expect(r.code).toBe(0);
    tx.close();
    rx.close();
  });
});
