/**
 * Where the addon is looked for (src/main/locate-addon.ts), for the layouts the packed-package
 * tests cannot build: an app packaged in an asar archive, and the override variables.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADDON_FILE, addonCandidates } from '../../src/main/locate-addon.js';
import { REPO } from './pack.js';

describe('addonCandidates', () => {
  it('unbundled: the package this file sits in, build/Release then build/Debug', () => {
    const { override, paths } = addonCandidates({}, path.join(REPO, 'dist', 'main', 'index.cjs'));
    expect(override).toBeUndefined();
    expect(paths[0]).toBe(path.join(REPO, 'build', 'Release', ADDON_FILE));
    expect(paths[1]).toBe(path.join(REPO, 'build', 'Debug', ADDON_FILE));
  });

  it('inside an asar archive: the .asar.unpacked twin first, next to the bundle too', () => {
    const bundle = '/opt/App/resources/app.asar/dist/main.js';
    const { paths } = addonCandidates({}, bundle);
    const unpacked = `/opt/App/resources/app.asar.unpacked/dist/${ADDON_FILE}`;
    const packed = `/opt/App/resources/app.asar/dist/${ADDON_FILE}`;
    expect(paths).toContain(unpacked);
    expect(paths.indexOf(unpacked)).toBe(paths.indexOf(packed) - 1);
  });

  it('ELECTRON_IPC_CHANNEL_ADDON alone when set (relative paths from the working directory); the older name too', () => {
    expect(addonCandidates({ ELECTRON_IPC_CHANNEL_ADDON: '/x/a.node' }, '/y/main.js')).toEqual({ override: 'ELECTRON_IPC_CHANNEL_ADDON', paths: ['/x/a.node'] });
    expect(addonCandidates({ ELECTRON_IPC_CHANNEL_ADDON: 'a.node' }).paths).toEqual([path.resolve('a.node')]);
    expect(addonCandidates({ ELECTRON_IPC_CHANNEL_NATIVE: '/x/b.node' })).toEqual({ override: 'ELECTRON_IPC_CHANNEL_NATIVE', paths: ['/x/b.node'] });
    expect(addonCandidates({ ELECTRON_IPC_CHANNEL_ADDON: '/x/a.node', ELECTRON_IPC_CHANNEL_NATIVE: '/x/b.node' }).paths).toEqual(['/x/a.node']);
  });
});
