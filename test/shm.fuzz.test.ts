// Fuzzing the shared-memory path of a receiver (issue 11): messages whose `M` and `P` handles are
// real memfds of random sizes (up to sparse 8 GiB), random seals, or descriptors of the wrong
// kind, against random limits. Every message is delivered whole and within the limits, or is
// exactly one MALFORMED / TOO_LARGE; nothing stays open afterwards. On the stream transport
// (ELECTRON_IPC_CHANNEL_TRANSPORT=stream) there are no seals: memory is a POSIX shared memory
// object sent read-only or writable (an `M` must be read-only), and a `P` socket is a SOCK_STREAM
// socket whose queue holds one 1-byte frame carrying it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../src/shared/index.js';
import { IpcReceiver } from '../src/main/channel.js';
import { singleRecordPacket } from '../src/main/framing.js';
import { IpcError } from '../src/main/index.js';
import { linuxNative } from '../src/main/native.js';
import { transport } from '../src/main/transport/index.js';
import { settledFdCount } from './helpers.js';

const STREAM = transport().name === 'stream';

const SEAL_SHRINK = 2;
const SEAL_GROW = 4;
const SEAL_WRITE = 8;
const GiB = 2 ** 30;

interface Seg {
  kind: 'M' | 'P';
  /**
   * memfd: shared memory of `size` (seqpacket: a memfd with `seals`; stream: a shared memory
   * object sent read-only when `readOnly`); socket: a channel socket in its place; empty-p: a P
   * socket with no packet.
   */
  what: 'memfd' | 'socket' | 'empty-p';
  size: number;
  seals: number;
  readOnly: boolean;
}

const seg: fc.Arbitrary<Seg> = fc.record({
  kind: fc.constantFrom('M' as const, 'P' as const),
  what: fc.constantFrom('memfd' as const, 'memfd' as const, 'memfd' as const, 'socket' as const, 'empty-p' as const),
  size: fc.constantFrom(0, 1, 4096, 65_536, 1 << 20, (1 << 20) + 1, 8 * GiB),
  seals: fc.constantFrom(SEAL_SHRINK | SEAL_GROW | SEAL_WRITE, SEAL_SHRINK | SEAL_GROW, SEAL_WRITE, 0),
  readOnly: fc.boolean(),
});

const limits = fc.record({
  maxSharedMemoryBytes: fc.constantFrom(4096, 1 << 20, 256 * 2 ** 20),
  maxSharedMemoryTotal: fc.constantFrom(8192, 2 << 20, GiB),
});

/** What is wrong with one segment by itself: 'malformed', 'size' (over the per-segment limit), or undefined. */
function problem(s: Seg, maxSeg: number): 'malformed' | 'size' | undefined {
  if (s.what !== 'memfd') return 'malformed';
  if (STREAM) {
    // No seals: an immutable block must travel read-only; a pool segment may be writable.
    if (s.kind === 'M' && !s.readOnly) return 'malformed';
  } else {
    const need = s.kind === 'M' ? SEAL_SHRINK | SEAL_GROW | SEAL_WRITE : SEAL_SHRINK | SEAL_GROW;
    if ((s.seals & need) !== need) return 'malformed';
  }
  // An empty IpcSharedMemory is a valid message; an empty pool segment is not (docs/wire-format.md).
  if (s.kind === 'P' && s.size === 0) return 'malformed';
  return s.size > maxSeg ? 'size' : undefined;
}

/** The descriptor that travels for `s`, and what to close here once it is sent. */
function make(s: Seg): { fd: number; close: number[] } {
  const n = linuxNative('test/shm.fuzz');
  const t = transport();
  if (s.what === 'socket') {
    const [a, b] = t.socketpair();
    return { fd: a, close: [a, b] };
  }
  if (s.kind === 'P' && s.what === 'empty-p') {
    const [a, b] = t.socketpair();
    return { fd: b, close: [a, b] };
  }
  if (s.what === 'empty-p') return make({ ...s, what: 'socket' });
  let mem: number;
  const close: number[] = [];
  if (STREAM) {
    const [rw, ro] = n.stream.shmCreate(s.size);
    mem = s.readOnly ? ro : rw;
    close.push(rw, ro);
  } else {
    mem = n.memfdCreate('fuzz', s.size);
    if (s.seals) n.addSeals(mem, s.seals);
    close.push(mem);
  }
  if (s.kind === 'M') return { fd: mem, close };
  // A pool segment: one end of a socket pair whose queue holds one packet carrying the memory.
  const [a, b] = t.socketpair();
  expect(t.send(a, [new Uint8Array([1])], [mem])).toBeGreaterThanOrEqual(1);
  return { fd: b, close: [...close, a, b] };
}

describe('shared memory handles from a peer, fuzzed', () => {
  it('are delivered within the limits or refused with one MALFORMED/TOO_LARGE, leaving nothing open', async () => {
    const n = linuxNative('test/shm.fuzz');
    const baseline = await settledFdCount();
    const baseOpen = n.openCount();
    await fc.assert(
      fc.asyncProperty(fc.array(seg, { minLength: 1, maxLength: 4 }), limits, async (segs, lim) => {
        const [txFd, rxFd] = transport().socketpair();
        const rx = new IpcReceiver<{ segs: unknown[] }>(rxFd, lim);
        const made = segs.map(make);
        const fakes = segs.map((s) => ({ kind: s.kind }));
        const enc = encodeMessage({ segs: fakes }, { handleKind: (o) => (fakes.includes(o as { kind: 'M' | 'P' }) ? (o as { kind: string }).kind : undefined) });
        const body = enc.parts;
        const fds = made.map((m) => m.fd);
        const p = singleRecordPacket(body, enc.byteLength, fds);
        expect(transport().send(txFd, p.parts, p.fds)).toBeGreaterThan(0);
        for (const m of made) for (const fd of m.close) n.close(fd);
        // The oracle: segments are revived in order; the first bad one decides.
        let expected: 'ok' | 'MALFORMED' | 'TOO_LARGE' = 'ok';
        let total = 0;
        const either = new Set<string>();
        for (const s of segs) {
          const pr = problem(s, lim.maxSharedMemoryBytes);
          if (pr === 'malformed') {
            expected = 'MALFORMED';
            if (s.what === 'memfd' && s.size > lim.maxSharedMemoryBytes) either.add('TOO_LARGE');
            break;
          }
          if (pr === 'size' || total + s.size > lim.maxSharedMemoryTotal) {
            expected = 'TOO_LARGE';
            break;
          }
          total += s.size;
        }
        try {
          const got = await rx.recv({ timeout: 5000 });
          expect(expected).toBe('ok');
          got.segs.forEach((h, i) => {
            expect((h as { length: number }).length).toBe(segs[i]!.size);
            (h as { close(): void }).close();
          });
        } catch (e) {
          expect(e).toBeInstanceOf(IpcError);
          const code = (e as IpcError).code;
          if (!either.has(code)) expect(code, (e as Error).message).toBe(expected);
        } finally {
          rx.close();
          n.close(txFd);
        }
        expect(n.openCount()).toBe(baseOpen);
      }),
      { numRuns: 1000 },
    );
    expect(await settledFdCount()).toBe(baseline);
  });
});
