// Shared by the tests of the GC safety net's waiting list (src/main/handles.ts GcWaitList):
// gc() without the --expose-gc flag on the command line, and the check that closed owners are
// not held by the list while they wait (fresh, or aging after one pass).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'vitest';

setFlagsFromString('--expose-gc');
export const gc = runInNewContext('gc') as () => void;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const turn = () => new Promise((r) => setImmediate(r));

/**
 * Makes a batch of owners with `makeOwners()`, closes them after 0 ms (still fresh) and again
 * after 30 ms (aged by one pass), first and last alternately (the list moves its last item into
 * a closed one's slot), drops them, and expects every one collected before the next pass: only
 * the waiting list could still hold them.
 */
export async function expectClosedOwnersCollected(makeOwners: () => Array<{ close(): void }>): Promise<void> {
  for (const delay of [0, 30]) {
    let owners = makeOwners();
    const refs = owners.map((o) => new WeakRef(o));
    if (delay) await sleep(delay);
    for (let i = 0; i < owners.length / 2; i++) {
      owners[i]!.close();
      owners[owners.length - 1 - i]!.close();
    }
    owners = [];
    await turn();
    gc();
    await turn();
    gc();
    expect(refs.filter((r) => r.deref() !== undefined).length, `closed after ${delay} ms`).toBe(0);
  }
}
