/**
 * Item "after bundling the main process the addon is not found" of issue 14: examples/esbuild
 * bundles a small main script with esbuild against the packed package, and the bundle runs from
 * elsewhere: with ELECTRON_IPC_CHANNEL_ADDON, in place (the package found through node_modules),
 * with the addon copied next to it, and with the package marked external. Without any of these
 * the error lists where it looked and what to do.
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, cleanEnv, packAndInstall, runNode } from './pack.js';
import type { Installed } from './pack.js';

const EXAMPLE = path.join(REPO, 'examples', 'esbuild');
const ANSWER = 'ping -> pong';

let pkg: Installed;

beforeAll(() => {
  pkg = packAndInstall();
  pkg.link('esbuild');
  copyFileSync(path.join(EXAMPLE, 'build.mjs'), path.join(pkg.app, 'build.mjs'));
  cpSync(path.join(EXAMPLE, 'src'), path.join(pkg.app, 'src'), { recursive: true });
}, 60_000);

afterAll(() => pkg?.remove());

/** Runs build.mjs with `flags`; returns the bundle's text. */
function build(...flags: string[]): string {
  const r = runNode(['build.mjs', ...flags], pkg.app);
  if (r.status !== 0) throw new Error(`build failed:\n${r.stderr}`);
  return readFileSync(path.join(pkg.app, 'out', flags.includes('--esm') ? 'main.mjs' : 'main.cjs'), 'utf8');
}

/** A directory outside the project (no node_modules above it), with the given files of out/ copied in. */
function elsewhere(name: string, files: string[] = ['main.cjs']): string {
  const dir = path.join(pkg.root, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) copyFileSync(path.join(pkg.app, 'out', f), path.join(dir, f));
  return dir;
}

describe('a main process bundled with esbuild (examples/esbuild, packed package)', () => {
  it('library bundled in, bundle moved out of the project: ELECTRON_IPC_CHANNEL_ADDON finds the addon', () => {
    const bundle = build();
    expect(bundle).not.toMatch(/require\("electron-ipc-channel"\)/);
    const dir = elsewhere('moved');
    const r = runNode(['main.cjs'], dir, cleanEnv({ ELECTRON_IPC_CHANNEL_ADDON: pkg.addon }));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(ANSWER);
  });

  it('library bundled in, bundle moved, nothing set: the error lists where it looked and what to do', () => {
    build();
    const dir = elsewhere('lost');
    const r = runNode(['main.cjs'], dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('could not load the native addon electron_ipc_channel.node');
    expect(r.stderr).toContain(`${path.join(dir, 'electron_ipc_channel.node')}: not found`);
    expect(r.stderr).toContain("mark 'electron-ipc-channel' as external");
    expect(r.stderr).toContain('copy its build/Release/electron_ipc_channel.node next to the bundle');
    expect(r.stderr).toContain('ELECTRON_IPC_CHANNEL_ADDON=');
    expect(r.stderr).toContain('asarUnpack');
    expect(r.stderr).toContain('docs/bundling.md');
  });

  it('an override that points nowhere is an error naming the variable (nothing else is tried)', () => {
    build();
    const r = runNode([path.join(pkg.app, 'out', 'main.cjs')], pkg.root, cleanEnv({ ELECTRON_IPC_CHANNEL_ADDON: '/nonexistent/x.node' }));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('/nonexistent/x.node: not found');
    expect(r.stderr).toContain('ELECTRON_IPC_CHANNEL_ADDON is set, so nothing else was tried');
  });

  it('library bundled in, bundle run in place from another directory: found through node_modules', () => {
    build();
    const r = runNode([path.join(pkg.app, 'out', 'main.cjs')], elsewhere('cwd-only', []));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(ANSWER);
  });

  it('library bundled in, addon copied next to the bundle (--copy-addon), both moved: found', () => {
    build('--copy-addon');
    const dir = elsewhere('with-addon', ['main.cjs', 'electron_ipc_channel.node']);
    const r = runNode(['main.cjs'], dir);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(ANSWER);
  });

  it('library marked external (--external), run from another directory: loaded from node_modules', () => {
    const bundle = build('--external');
    expect(bundle).toMatch(/require\("electron-ipc-channel"\)/);
    expect(bundle).not.toContain('class IpcSender');
    const r = runNode([path.join(pkg.app, 'out', 'main.cjs')], elsewhere('external', []));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(ANSWER);
  });

  it('ESM output with the library external (--external --esm): loaded from node_modules', () => {
    const bundle = build('--external', '--esm');
    expect(bundle).toMatch(/from "electron-ipc-channel"/);
    const r = runNode([path.join(pkg.app, 'out', 'main.mjs')], elsewhere('external-esm', []));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(ANSWER);
  });
});
