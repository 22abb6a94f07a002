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

/** `what(kind)`: how the refusal of the descriptor under that wrong kind tag names it. */
function check(result: Result, what: (kind: string) => string): void {
  const [file, ...wrong] = result.results;
  // The class's name as the bundle spells it (tsup may prefix an underscore).
  expect(file).toMatchObject({ kind: 'F', received: expect.stringMatching(/^_?IpcFileHandle$/), good: { good: 0 } });
  expect(file!.closeMs).toBeLessThan(200);
  for (const [i, r] of wrong.entries()) {
    expect(r.good).toEqual({ good: i + 1 });
    expect(r.error?.code, `kind ${r.kind}: ${JSON.stringify(r)}`).toBe('MALFORMED');
    expect(r.error?.message, `kind ${r.kind}`).toContain(`is a ${what(r.kind)}`);
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
    // On stream a TCP socket has the right socket type for a sender or receiver, but not AF_UNIX.
    check(r.result, (kind) => (stream && (kind === 'S' || kind === 'R') ? 'network socket' : 'stream-socket'));
  }, 40_000);

  it.skipIf(!fuseWorks)('a FUSE file whose server never answers FLUSH nor GETATTR', async () => {
    const r = await runVictim<Result>('native-blocking-close', { args: ['fuse'] });
    expectContained(r);
    check(r.result, () => 'file');
  }, 40_000);
});
