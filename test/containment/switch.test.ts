// Issue 11, classes 10 and 11: a switch packet moves a receiver only when it carries the secret
// given with the move, and only onto a connected SOCK_SEQPACKET socket; SO_PASSPIDFD/SO_PASSCRED set
// by a peer on such a socket cannot make the victim collect descriptors. The peer speaks the
// transport of ELECTRON_IPC_CHANNEL_TRANSPORT (SOCK_SEQPACKET, or SOCK_STREAM with frames).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

type Outcome = { value?: unknown; code?: string; message?: string };
const stream = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';

describe('switch packets', () => {
  it('a moved receiver follows a switch with its secret onto the peer socket (the documented format works)', async () => {
    const r = await runVictim<{ outcomes: Outcome[] }>('switch', { args: ['good'] });
    expectContained(r);
    expect(r.result.outcomes).toEqual([{ value: { pre: 1 } }, { value: { post: 1 } }, { code: 'DISCONNECTED', message: expect.any(String) }]);
  });
  it('a switch with a wrong secret is refused: MALFORMED, the channel continues on its own socket', async () => {
    const r = await runVictim<{ outcomes: Outcome[] }>('switch', { args: ['forged'] });
    expectContained(r);
    const o = r.result.outcomes;
    expect(o[0]).toEqual({ value: { pre: 1 } });
    expect(o[1]!.code).toBe('MALFORMED');
    expect(o[1]!.message).toMatch(/without the secret/);
    expect(o[2]!.code).toBe('DISCONNECTED'); // not ENOTCONN, not {post: 1}
    expect(o).toHaveLength(3);
  });
  it('a switch onto a never-connected socket is MALFORMED, then DISCONNECTED (not OS ENOTCONN forever)', async () => {
    const r = await runVictim<{ outcomes: Outcome[] }>('switch', { args: ['unconnected'] });
    expectContained(r);
    const o = r.result.outcomes;
    expect(o[0]).toEqual({ value: { pre: 1 } });
    expect(o[1]!.code).toBe('MALFORMED');
    expect(o[1]!.message).toMatch(/not connected/);
    expect(o[2]!.code).toBe('DISCONNECTED');
    expect(o).toHaveLength(3);
  });
  it(`a switch onto a connected socket of the other type (${stream ? 'SOCK_SEQPACKET' : 'SOCK_STREAM'}) is MALFORMED, then DISCONNECTED`, async () => {
    const r = await runVictim<{ outcomes: Outcome[] }>('switch', { args: ['other-type'] });
    expectContained(r);
    const o = r.result.outcomes;
    expect(o[0]).toEqual({ value: { pre: 1 } });
    expect(o[1]!.code).toBe('MALFORMED');
    expect(o[1]!.message).toContain(stream ? 'a seqpacket, not a connected SOCK_STREAM socket' : 'a stream-socket, not a connected SOCK_SEQPACKET socket');
    expect(o[2]!.code).toBe('DISCONNECTED');
    expect(o).toHaveLength(3);
  });
  it('a switch onto a socket with SO_PASSPIDFD/SO_PASSCRED set: every message arrives, no descriptor collected', async () => {
    const r = await runVictim<{ outcomes: Outcome[]; fds: number }>('switch', { args: ['pidfd'] });
    expectContained(r);
    const o = r.result.outcomes;
    expect(o.filter((x) => x.value !== undefined)).toHaveLength(52);
    expect(o.at(-1)!.code).toBe('DISCONNECTED');
    // Read before the receiver closed: 50 pidfds would show here.
    expect(r.result.fds).toBeLessThan(r.fdBefore + 10);
  });
});
