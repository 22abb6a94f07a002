// Descriptor owners of one descriptor (OwnedDescriptor: file handles, shared memory, pool segments)
// wait for the GC safety net in arrays (src/main/handles.ts), not in the Map other owners use:
// each knows its slot, closing it empties the slot, a pass registers those still open. What that
// must keep: a closed owner is not held by the waiting arrays (it is collected young, and its
// number reused safely), and an owner with something to release besides its descriptor (a received
// pool segment: its memfd) has both closed by the safety net when dropped.
import { openSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IpcFileHandle, IpcSharedMemoryPool, channel } from '../src/main/index.js';
import type { IpcSharedBuffer } from '../src/main/index.js';
import { native } from '../src/main/native.js';
import { expectClosedOwnersCollected, gc, sleep } from './gc-helpers.js';
import { skipOnWin32 } from './helpers.js';


describe('GC safety net, owners of one descriptor', () => {
  it('a closed owner is not kept alive while it waits for registration (fresh or aging)', skipOnWin32('descriptor numbers'), async () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      await expectClosedOwnersCollected(() => Array.from({ length: 8 }, () => IpcFileHandle.from(devNull)));
    } finally {
      closeSync(devNull);
    }
  });

  it('a received pool segment dropped without close() has its socket and its memfd closed', skipOnWin32('memfd segments'), async () => {
    // One segment: the pool makes it once (its memfd and socket pair stay the pool's), and gets it
    // back each time the receiver's end is closed.
    const pool = new IpcSharedMemoryPool({ size: 4096, count: 1 });
    const [tx, rx] = channel<{ buf: IpcSharedBuffer }>();
    const cycle = async (keep: (buf: IpcSharedBuffer) => Promise<void>) => {
      for (let i = 0; i < 250 && pool.available !== 1; i++) await sleep(20);
      tx.send({ buf: pool.tryAcquire()! });
      await keep((await rx.recv()).buf);
    };
    await cycle(async (buf) => buf.close());
    for (let i = 0; i < 250 && pool.available !== 1; i++) await sleep(20);
    const open = () => native().openCount() - base;
    const base = native().openCount();
    try {
      // Received and dropped at once, and received and dropped after it was registered (80 ms).
      for (const delay of [0, 80]) {
        await cycle(async (buf) => {
          expect(buf.bytes.length).toBe(4096); // maps the received memfd
          if (delay) await sleep(delay);
        });
        expect(open(), 'the received socket end and memfd').toBeGreaterThanOrEqual(2);
        for (let i = 0; i < 50 && open() > 0; i++) {
          gc();
          await sleep(20);
        }
        expect(open(), `dropped after ${delay} ms`).toBe(0);
      }
    } finally {
      tx.close();
      rx.close();
      pool.close();
    }
  });
});
