// A stream socket put out of step by a hostile peer (issue 12): the stream transport cannot find
// the next frame boundary again, so the receiver gets one MALFORMED that says what the peer did
// (a descriptor count that does not match its frame header, a frame header announcing more than
// a receiver reads, descriptors on bytes no header announced) and that the channel is closed,
// then DISCONNECTED, never the peer's later frames, and every descriptor it sent is closed.
// Stream transport only (on seqpacket the kernel keeps packet boundaries: test/hostile.test.ts).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface Outcome {
  value?: unknown;
  code?: string;
  message?: string;
}
interface Result {
  outcomes: Outcome[];
  peerExit: { code: number | null; signal: string | null };
  peerErr: string;
}

const onStream = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';

const cases: Array<[string, string, RegExp]> = [
  ['fdcount-mismatch', 'a frame header announcing 3 descriptors, sent with 1', /a frame header announces 3 descriptor\(s\) but 1 arrived with it \(descriptor count mismatch\)/],
  ['header-invalid', 'a frame header announcing one byte more than a receiver reads', /a frame header announces a payload of 1114113 bytes, larger than the 1114112 bytes a receiver reads \(frame header invalid\)/],
  ['stray-fds', 'descriptors on payload bytes that no frame header announced', /descriptors arrived with bytes that do not begin a frame header/],
];

describe.skipIf(!onStream)('a stream socket out of step (stream transport)', () => {
  for (const [which, what, says] of cases) {
    it(`${what}: one MALFORMED saying so and that the channel is closed, then DISCONNECTED; the later frame never arrives`, async () => {
      const r = await runVictim<Result>('native-stream-desync', { args: [which], timeoutMs: 30_000 });
      expectContained(r);
      const res = r.result;
      expect(res.peerExit, res.peerErr).toEqual({ code: 0, signal: null });
      const [hello, good0, bad, ...rest] = res.outcomes;
      expect(hello).toEqual({ value: { hello: 'desync' } });
      expect(good0).toEqual({ value: { good: 0 } });
      expect(bad?.code, JSON.stringify(res.outcomes)).toBe('MALFORMED');
      expect(bad!.message).toMatch(says);
      expect(bad!.message).toMatch(/the stream socket is out of step: .*a byte stream cannot be resynchronised, so the channel is closed/);
      // Not the seqpacket wording of a kernel-truncated packet or of dropped descriptors.
      expect(bad!.message).not.toMatch(/truncated|MSG_CTRUNC/);
      expect(rest, JSON.stringify(res.outcomes)).toHaveLength(1);
      expect(rest[0]!.code).toBe('DISCONNECTED');
      // The peer is still connected: end of file came from the receiver giving up on the stream.
      expect(rest[0]!.message).toMatch(/stream socket of this .* was abandoned after it went out of step/);
      expect(rest[0]!.message).not.toMatch(/every sender/);
    });
  }
});
