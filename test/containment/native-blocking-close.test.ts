// Issue 11, item 5: descriptors whose close(2) or fstat(2) waits on the peer never block the
// receiving process's event loop: a TCP socket with unsent data and SO_LINGER 3600 s, and a file
// on a FUSE file system whose server never answers FLUSH or GETATTR. Each arrives as an 'F' handle
// the application closes and under wrong kind tags the library refuses (and closes itself).
// The peers speak the transport of ELECTRON_IPC_CHANNEL_TRANSPORT (packets, or stream frames).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers.js';
import { expectContained, runVictim } from './victim.js';

interface CaseResult {
  kind: string;
  received?: string;
  closeMs?: number;
  error?: { code: string; message: string };
  good: unknown;
}
interface Result {
  results: CaseResult[];
  pendingAfterCloses: number;
  pendingAtEnd: number;
}

const stream = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';

/**
 * Wrong kinds the library ACCEPTS on the stream transport (library bugs, reported; the fix is in
 * src/, not here): a TCP socket passes as a sender or receiver (the check compares the socket
 * type, SOCK_STREAM, not the AF_UNIX domain), and a read-only file that is not shared memory (here
 * on FUSE) passes as `M` (only `.bytes` refuses it later, with an OS error). The main tests leave
 * those kinds out on stream; the `fails` tests below check them and start failing once the
 * library is fixed: then delete this table and those tests.
 */
const STREAM_BUGS: Record<string, string[]> = stream ? { linger: ['S', 'R'], fuse: ['M'] } : {};

function check(result: Result, what: string, skipKinds: string[] = []): void {
  const [file, ...wrong] = result.results;
  expect(file).toMatchObject({ kind: 'F', received: '_IpcFileHandle', good: { good: 0 } });
  expect(file!.closeMs).toBeLessThan(200);
  for (const [i, r] of wrong.entries()) {
    expect(r.good).toEqual({ good: i + 1 });
    if (skipKinds.includes(r.kind)) continue;
    expect(r.error?.code, `kind ${r.kind}: ${JSON.stringify(r)}`).toBe('MALFORMED');
    expect(r.error?.message, `kind ${r.kind}`).toContain(`is a ${what}`);
  }
  // All four closes were really waiting (in the closer thread) until the peer went away.
  expect(result.pendingAfterCloses).toBe(4);
  expect(result.pendingAtEnd).toBe(0);
}

// FUSE needs /dev/fuse and the right to mount (root or CAP_SYS_ADMIN): the peer probes it.
const fuseProbe = existsSync('/dev/fuse')
  ? spawnSync('python3', [path.join(root, 'test', 'fixtures', 'containment', 'native-fuse-peer.py'), 'probe'], { timeout: 10_000, encoding: 'utf8' })
  : undefined;
const fuseWorks = fuseProbe?.status === 0;

describe('containment: closing and examining descriptors that block', () => {
  it('a TCP socket lingering for an hour, as a file handle and as wrong kinds', async () => {
    const r = await runVictim<Result>('native-blocking-close', { args: ['linger'] });
    expectContained(r);
    check(r.result, 'stream-socket', STREAM_BUGS.linger);
  }, 40_000);

  it.skipIf(!fuseWorks)('a FUSE file whose server never answers FLUSH nor GETATTR', async () => {
    const r = await runVictim<Result>('native-blocking-close', { args: ['fuse'] });
    expectContained(r);
    check(r.result, 'file', STREAM_BUGS.fuse);
  }, 40_000);

  // Known library bugs on stream (see STREAM_BUGS): these pass while the bug is there.
  it.skipIf(!stream).fails('stream, KNOWN LIBRARY BUG: a TCP socket is refused as a sender (S) and a receiver (R) (today it is accepted)', async () => {
    const r = await runVictim<Result>('native-blocking-close', { args: ['linger'] });
    expectContained(r);
    for (const k of ['S', 'R']) expect(r.result.results.find((x) => x.kind === k)?.error?.code, k).toBe('MALFORMED');
  }, 40_000);

  it.skipIf(!stream || !fuseWorks).fails('stream, KNOWN LIBRARY BUG: a read-only FUSE file is refused as shared memory (M) (today it is accepted)', async () => {
    const r = await runVictim<Result>('native-blocking-close', { args: ['fuse'] });
    expectContained(r);
    expect(r.result.results.find((x) => x.kind === 'M')?.error?.code).toBe('MALFORMED');
  }, 40_000);
});
