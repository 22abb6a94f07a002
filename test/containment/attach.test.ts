// ATTACH packets from a hostile peer (docs/wire-format.md, "Attach packet"; src/main/writers.ts).
// On the stream transport a receiver reads the sockets its senders announce; a peer can announce
// its own, which must give it nothing: the victim still reaches end of file, reads a bounded
// number of them, and refuses switches and malformed announcements. On seqpacket every attach
// packet is refused (its senders share one socket).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

const stream = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';

interface Result {
  values: Array<Record<string, number>>;
  malformed: number;
  malformedSample: string[];
  last: { code?: string; message?: string };
  peerExit: { code: number | null; signal: string | null };
}

describe('attach packets from a hostile peer', () => {
  it('an attach of the peer end of the receiver\'s own socket cannot keep it from end of file', async () => {
    const r = await runVictim<Result>('attach', { args: ['self'] });
    expectContained(r);
    if (stream) {
      // The attach is taken and S shut for writing (socket-checks.ts shutdownProblem): the peer's
      // "after", written on S, arrives when it was written before the shutdown, else the peer's
      // write fails with EPIPE (attach-peer.py); the scheduler decides which.
      expect([[{ first: 1 }], [{ first: 1 }, { after: 1 }]]).toContainEqual(r.result.values);
    } else {
      expect(r.result.values).toEqual([{ first: 1 }, { after: 1 }]);
    }
    expect(r.result.last.code).toBe('DISCONNECTED');
    expect(r.result.malformed).toBe(stream ? 0 : 1);
  });

  it(`a flood of attached sockets stops at the receiver's bound (RLIMIT_NOFILE 4096: 1024), the rest MALFORMED, descriptors back to baseline`, async () => {
    const count = 1100;
    const r = await runVictim<Result>('attach', { args: ['flood', String(count)], maxOpenFiles: 4096, timeoutMs: 60_000 });
    expectContained(r);
    expect(r.result.peerExit, r.stderr).toEqual({ code: 0, signal: null });
    expect(r.result.last.code).toBe('DISCONNECTED');
    if (stream) {
      expect(r.result.malformed).toBe(count - 1024);
      expect(r.result.malformedSample.join('\n')).toMatch(/beyond the 1024 sender sockets/);
      expect(r.result.values).toEqual(expect.arrayContaining([{ first: 1 }, { after: 1 }, { via: 1 }]));
    } else {
      expect(r.result.malformed).toBe(count);
      expect(r.result.malformedSample.join('\n')).toMatch(/never sends/);
    }
  }, 90_000);

  it('a switch packet on an attached socket is refused; the channel goes on', async () => {
    const r = await runVictim<Result>('attach', { args: ['switch'] });
    expectContained(r);
    expect(r.result.last.code).toBe('DISCONNECTED');
    expect(r.result.values).not.toContainEqual({ redirected: 1 });
    expect(r.result.values).toEqual(expect.arrayContaining([{ first: 1 }, { after: 1 }]));
    if (stream) {
      expect(r.result.values).toContainEqual({ via: 1 });
      expect(r.result.malformedSample.join('\n')).toMatch(/switch packet on the socket of an attached sender/);
    }
    expect(r.result.malformed).toBe(1);
  });

  it('malformed attach packets (a pipe, two descriptors, a body) are one MALFORMED each, descriptors closed', async () => {
    const r = await runVictim<Result>('attach', { args: ['bad'] });
    expectContained(r);
    expect(r.result.values).toEqual([{ first: 1 }, { after: 1 }]);
    expect(r.result.malformed).toBe(3);
    if (stream) expect(r.result.malformedSample.join('\n')).toMatch(/not a connected|exactly one descriptor/);
    expect(r.result.last.code).toBe('DISCONNECTED');
  });
});
