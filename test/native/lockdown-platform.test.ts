// lockdown() where the OS has no Landlock (macOS: the addon built there has no landlockAbi or
// landlockRestrict). It must not crash: it reports that nothing is enforced at the OS level, or
// throws with `required`, and still refuses bad options. Run on Linux through lockdownWith(),
// with the addon's Landlock half left out; the real addon must never be asked to restrict.
import { describe, expect, it } from 'vitest';
import { IpcError } from '../../src/shared/errors.js';
import { lockdownWith } from '../../src/main/lockdown.js';
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
