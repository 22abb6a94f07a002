// The addon built on a system without its Linux half (macOS: no seqpacket, memfd or Landlock
// exports), simulated on Linux. lockdown() must not crash: it reports that nothing is enforced at
// the OS level, or throws with `required`, and still refuses bad options (run through
// lockdownWith() with the Landlock half left out; the real addon is never asked to restrict).
// Code only the Linux backend reaches takes the addon through linuxNative(), which names what
// is missing instead of failing later with "is not a function".
import { describe, expect, it } from 'vitest';
import { IpcError } from '../../src/shared/errors.js';
import { lockdownWith } from '../../src/main/lockdown.js';
import { hasLinuxHalf, linuxNative, native } from '../../src/main/native.js';
import type { NativeBinding } from '../../src/main/native.js';
import { seqpacketTransport } from '../../src/main/transport/seqpacket.js';
import { streamTransport } from '../../src/main/transport/stream.js';
import type { LandlockAddon } from '../../src/main/lockdown.js';

const noLandlock: LandlockAddon = {};

describe('lockdown() without Landlock (macOS)', () => {
  it('enforces nothing and says so in the report: enforced false, no_new_privs not set, a reason naming the system', () => {
    const report = lockdownWith(noLandlock, 'darwin', { allowRead: ['/tmp'], allowConnect: [443] });
    expect(report).toEqual({
      enforced: false,
      abi: 0,
      filesystem: false,
      network: false,
      scoped: [],
      noNewPrivs: false,
      unrestrictedThreads: 0,
      reason: expect.stringMatching(/^macOS has no Landlock .*lockdown\(\) enforces nothing at the OS level .*no_new_privs is not set.*App Sandbox/),
    });
  });

  it('throws IpcError OS with required: true, and changes nothing', () => {
    let error: unknown;
    try {
      lockdownWith(noLandlock, 'darwin', { required: true });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IpcError);
    expect(error).toMatchObject({ code: 'OS', message: expect.stringMatching(/^lockdown: macOS has no Landlock .*nothing was changed/) });
  });

  it('still refuses bad options (TypeError/RangeError) before anything else', () => {
    expect(() => lockdownWith(noLandlock, 'darwin', { allowRead: 'x' as never })).toThrow(TypeError);
    expect(() => lockdownWith(noLandlock, 'darwin', { allowBind: [70000] })).toThrow(RangeError);
    expect(() => lockdownWith(noLandlock, 'darwin', { nope: 1 } as never)).toThrow(TypeError);
  });

  it('asks only the Landlock half it is given: an addon with both functions is used, the real one never', () => {
    const calls: string[] = [];
    const fake: LandlockAddon = {
      landlockAbi: () => (calls.push('abi'), 0),
      landlockRestrict: (rules) => (calls.push(`restrict ${rules.readPaths.join(',')}`), { abi: 0, handledAccessFs: 0, handledAccessNet: 0, scoped: 0 }),
    };
    const report = lockdownWith(fake, 'linux', { allowRead: ['/x'] });
    expect(calls).toEqual(['restrict /x']);
    expect(report).toMatchObject({ enforced: false, noNewPrivs: true, reason: expect.stringMatching(/Landlock is not available/) });
  });
});

describe('an addon without its Linux half (macOS)', () => {
  // The real addon minus every Linux-only export, as the macOS build has it.
  const linuxOnly = ['socketpair', 'sendPacket', 'recvPackets', 'recvInto', 'peekFd', 'listen', 'accept', 'connect', 'peerCredentials', 'neutralizeSocket', 'isSocketPeer', 'memfdCreate', 'addSeals', 'landlockAbi', 'landlockRestrict'];
  const real = native();
  const mac = Object.fromEntries(Object.entries(real).filter(([k]) => !linuxOnly.includes(k))) as unknown as NativeBinding;

  it('linuxNative() names what needs the Linux half; hasLinuxHalf() tells the builds apart', () => {
    expect(hasLinuxHalf(real)).toBe(true);
    expect(linuxNative('x', real)).toBe(real);
    expect(hasLinuxHalf(mac)).toBe(false);
    expect(() => linuxNative('the seqpacket transport', mac)).toThrow(/the seqpacket transport needs the Linux half of the native addon .*use the stream transport/);
  });

  it('the seqpacket transport refuses it at once, the stream transport works over it', () => {
    expect(() => seqpacketTransport(mac)).toThrow(/the seqpacket transport needs the Linux half/);
    const t = streamTransport(mac);
    const [a, b] = t.socketpair();
    try {
      expect(t.send(a, [Uint8Array.of(1, 2, 3)], null)).toBe(3);
      const meta = new Int32Array(6);
      const arena = new Uint8Array(64);
      expect(real.waitFds(b, null, 5000)).toBe(1);
      expect(t.recv(b, meta, new Int32Array(253), 1, 64, arena, 0)).toBe(1);
      expect([...arena.subarray(meta[2]!, meta[2]! + meta[3]!)]).toEqual([1, 2, 3]);
    } finally {
      real.close(a);
      real.close(b);
    }
  });
});
