// The GC safety net registers a descriptor owner late (src/main/handles.ts: 25-50 ms after it was
// made, or at once past 1024 waiting): an owner closed before that is never registered, one
// closed after it is unregistered. Either way, once closed, the safety net must never act for it
// again: its descriptor's number is reused by the next descriptor opened, which a late
// registration (or a stale entry) would close when the closed owner is collected.
import { openSync, closeSync, fstatSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { IpcFileHandle, channel } from '../src/main/index.js';
import { native } from '../src/main/native.js';
import { skipOnWin32 } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collections and turns for ~300 ms: every pending registration pass and cleanup runs. */
async function collectForAWhile(): Promise<void> {
  for (let i = 0; i < 15; i++) {
    gc();
    await sleep(20);
  }
}

describe('GC safety net, registered late', () => {
  it('an owner closed before, during or after its registration never closes the descriptor that reuses its number', skipOnWin32('descriptor numbers'), async () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      // 0 ms: still waiting; 30 ms: one pass saw it (aging); 80 ms: registered.
      for (const delay of [0, 30, 80]) {
        const kept: Array<{ fh: IpcFileHandle; fd: number }> = [];
        const sent: Array<[ReturnType<typeof channel<number>>[0], ReturnType<typeof channel<number>>[1]]> = [];
        (() => {
          // Made, then closed after `delay` below; dropped at once.
          const handles = Array.from({ length: 20 }, () => IpcFileHandle.from(devNull));
          const pairs = Array.from({ length: 10 }, () => channel<number>());
          void sleep(delay).then(() => {
            for (const h of handles) h.close();
            for (const [tx, rx] of pairs) {
              tx.close();
              rx.close();
            }
            // The numbers they had, reused now by descriptors that stay open.
            for (let i = 0; i < 20; i++) {
              const fh = IpcFileHandle.from(devNull);
              kept.push({ fh, fd: fh.fd });
            }
            for (let i = 0; i < 10; i++) sent.push(channel<number>());
          });
        })();
        await sleep(delay + 5);
        await collectForAWhile();
        expect(kept.length).toBe(20);
        for (const { fh, fd } of kept) {
          expect(fh.closed).toBe(false);
          expect(() => fstatSync(fd), `delay ${delay}: fd ${fd} still open`).not.toThrow();
          fh.close();
        }
        for (const [tx, rx] of sent) {
          tx.send(7);
          expect(rx.recvSync({ timeout: 1000 })).toBe(7);
          tx.close();
          rx.close();
        }
      }
    } finally {
      closeSync(devNull);
    }
  });

  it('an owner dropped without close() is still closed by the safety net, whether made alone or in a burst', skipOnWin32('descriptor numbers'), async () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      // The addon's table of the descriptors this thread owns: numbers reused by anyone else
      // in this process do not count.
      const open = () => native().openCount() - base;
      const base = native().openCount();
      for (const count of [1, 3000]) {
        (() => {
          for (let i = 0; i < count; i++) IpcFileHandle.from(devNull);
        })();
        expect(open()).toBe(count);
        for (let i = 0; i < 50 && open() > 0; i++) {
          gc();
          await sleep(20);
        }
        expect(open(), `${count} dropped handles`).toBe(0);
      }
    } finally {
      closeSync(devNull);
    }
  });
});
