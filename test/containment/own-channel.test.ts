// Issue 11, class 15: a receiver sent through its own channel would be lost; send() refuses it
// with a TypeError and nothing is consumed, also for a clone, and for two ends that arrived from
// another process (the kernel is asked whether the sockets are the two ends of one connection).
import { describe, expect, it } from 'vitest';
import { IpcOneShotServer, channel } from '../../src/main/index.js';
import type { IpcReceiver, IpcSender } from '../../src/main/index.js';
import { transport } from '../../src/main/transport/index.js';
import { spawnFixture } from '../helpers.js';

describe('a receiver through its own channel', () => {
  it('is a TypeError, and the receiver stays usable (also through a clone)', async () => {
    const [tx, rx] = channel<unknown>();
    expect(() => tx.send({ rx })).toThrow(/cannot be sent through its own channel/);
    if (transport().name !== 'stream') {
      const c = tx.clone() as IpcSender<unknown>;
      expect(() => c.send([1, rx])).toThrow(TypeError);
      c.close();
    }
    tx.send('still here');
    expect(await rx.recv()).toBe('still here');
    // Another channel's receiver travels as usual.
    const [tx2, rx2] = channel<number>();
    tx.send({ rx2 });
    const got = (await rx.recv()) as { rx2: IpcReceiver<number> };
    tx2.send(7);
    expect(await got.rx2.recv()).toBe(7);
    for (const e of [tx, rx, tx2, got.rx2]) e.close();
  });

  it('is refused for both ends received from another process', async () => {
    const server = new IpcOneShotServer<{ tx: IpcSender<unknown>; rx: IpcReceiver<unknown> }>();
    const child = spawnFixture('containment/both-ends.mjs', {}, 20_000, [server.name]);
    const [boot, { tx, rx }] = await server.accept({ timeout: 10_000 });
    expect(() => tx.send({ rx })).toThrow(/cannot be sent through its own channel/);
    tx.send('ok');
    expect(await rx.recv()).toBe('ok');
    tx.close();
    rx.close();
    boot.close();
    await child.done;
  });
});
