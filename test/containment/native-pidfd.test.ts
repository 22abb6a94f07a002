// Issue 11, item 6: a socket handed over with SO_PASSPIDFD (and SO_PASSCRED, SO_PASSSEC) set
// makes every read install a pidfd in the reader; every receive path of the addon closes it (and
// every other control-message descriptor), and the credentials ahead of the descriptors never
// truncate them. neutralizeSocket clears the options. On the stream transport the socket is a
// SOCK_STREAM pair carrying frames, read with the stream transport's recvPackets (see
// test/fixtures/containment/native-pidfd.mjs; it has no peeking or scatter reads to test).
import { describe, expect, it } from 'vitest';
import { expectContained, runVictim } from './victim.js';

interface Phase {
  name: string;
  fdDelta: number;
  calls?: number;
  packets?: [number, number][];
  peeks?: [boolean, number, number, number][];
  packet?: [number, number, number];
}

const stream = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT === 'stream';

describe('containment: SCM_PIDFD and other control messages', () => {
  it('reads a SO_PASSPIDFD socket with every receive path and keeps its descriptor count flat', async () => {
    const r = await runVictim<{ phases: Phase[] }>('native-pidfd');
    expectContained(r);
    const phases = Object.fromEntries(r.result.phases.map((p) => [p.name, p]));
    for (const p of r.result.phases) expect(p.fdDelta, p.name).toBe(0);
    const counts = (name: string) => phases[name]!.packets!.map(([n, flags]) => `${n}/${flags}`);
    expect(counts('recvPackets, no descriptors')).toEqual(Array(40).fill('0/0'));
    expect(counts('recvPackets, 1 descriptor each')).toEqual(Array(30).fill('1/0'));
    expect(counts('recvPackets, 253 descriptors')).toEqual(['253/0']); // no MSG_CTRUNC despite credentials
    if (stream) {
      // Room for 5 descriptors a call: 2 frames of 2 each, the third waits in the addon, whole.
      expect(counts('recvPackets with little room')).toEqual(Array(20).fill('2/0'));
      expect(phases['recvPackets with little room']!.calls).toBeGreaterThanOrEqual(10);
      // No batch stops early on a stream, with or without SO_PASSCRED.
      expect(phases['batch with SO_PASSCRED set']!.calls).toBeLessThanOrEqual(2);
    } else {
      expect(counts('recvPackets with little room (peeks)')).toEqual(Array(20).fill('2/0'));
      expect(phases['peekFd, peeking recvInto, recvInto']!.peeks).toEqual(Array(20).fill([true, 0, 1, 0]));
      expect(phases['recvInto, 253 descriptors']!.packet).toEqual([8, 253, 0]);
      // With SO_PASSCRED set every packet looks as if it carried descriptors to a read without a
      // control buffer, so a batch stops after each; cleared, one batch takes them all.
      expect(phases['batch with SO_PASSCRED set']!.calls).toBe(20);
    }
    expect(counts('batch with SO_PASSCRED set')).toEqual(Array(20).fill('0/0'));
    expect(phases['batch after neutralizeSocket']!.calls).toBeLessThanOrEqual(2);
  }, 40_000);
});
