// Unfinished fragmented messages cannot pin the victim's descriptors or memory (issue 11 item 7).
// A hostile python peer leaves 64 fragmented messages unfinished on a receiver (each announcing
// and carrying ~1024 descriptors, or announcing 128 MiB), then a well-behaved helper process
// sends a big fragmented message and a small one on the same receiver. See
// test/fixtures/containment/framing-partials.mjs. On the stream transport a channel has one
// writer, so the hostile peer floods the receiver of its own connection and then sends the
// well-behaved messages itself (on fragment streams of their own, which is all a receiver sees).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

const from = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream' ? 'then from the same stream socket (one writer per channel)' : 'from another sender';

interface Result {
  budget: number;
  maxFdsOver: number;
  maxBytesOver: number;
  samples: number;
  errors: number;
  errorSample: string[];
  got: number;
  small: boolean;
  after: unknown;
  peerExit: { code: number | null; signal: string | null };
  peerErr: string;
}

/** Checks what both modes share: the victim survived, both legit messages and one error per hostile message at most. */
function common(r: Awaited<ReturnType<typeof runVictim<Result>>>): Result {
  expectContained(r);
  const res = r.result;
  expect(res.peerExit, res.peerErr).toEqual({ code: 0, signal: null });
  expect(res.small).toBe(true);
  expect(res.after).toEqual({ after: 1 });
  expect(res.samples).toBeGreaterThan(5);
  // 64 hostile messages: each refused or dropped with one TOO_LARGE, except the few still held.
  expect(res.errors).toBeGreaterThanOrEqual(60);
  expect(res.errors).toBeLessThanOrEqual(64);
  for (const e of res.errorSample) expect(e).toMatch(/^TOO_LARGE: message refused: .*(no room for a fragmented message|was dropped to make room)/);
  return res;
}

describe('unfinished fragmented messages from a hostile peer', () => {
  it(`64 messages carrying ~1024 descriptors each: the victim holds at most its budget (2048) for them, and a 300-descriptor message ${from} still arrives`, async () => {
    const r = await runVictim<Result>('framing-partials', { args: ['fds'], timeoutMs: 60_000 });
    const res = common(r);
    expect(res.got).toBe(300);
    // Budget for unfinished messages + the 300 delivered handles + a little slack (children's pipes).
    expect(res.maxFdsOver, JSON.stringify(res)).toBeLessThanOrEqual(res.budget + 300 + 40);
  }, 70_000);

  it(`64 messages announcing 128 MiB each: the victim keeps at most its byte budget (256 MiB) for them, and a 20 MiB message ${from} still arrives`, async () => {
    const r = await runVictim<Result>('framing-partials', { args: ['bytes'], timeoutMs: 60_000 });
    const res = common(r);
    expect(res.got).toBe(20 * 1024 * 1024);
    // 256 MiB budget + the 20 MiB delivered message + the receive arena and slack.
    expect(res.maxBytesOver, JSON.stringify(res)).toBeLessThan((256 + 20 + 48) * 1024 * 1024);
  }, 70_000);
});
