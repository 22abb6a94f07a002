/**
 * The package as a user gets it: `npm pack` of this checkout (dist as built, no scripts run),
 * unpacked into `<tmp>/app/node_modules/electron-ipc-channel` of a fresh project in the system's
 * temp directory (no node_modules above it, so `electron` cannot be found). Its runtime
 * dependencies are linked from this checkout's node_modules (no registry), and the addon this
 * checkout built is copied to its build/Release: what the package's `install` script produces.
 * Call once per test file (in beforeAll) and remove() in afterAll.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This checkout. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/**
 * The directory packed: this checkout, or EIC_PACKAGE_SOURCE (another built copy of the package,
 * e.g. an older commit's, to check that a test fails without its fix).
 */
export const SOURCE = process.env.EIC_PACKAGE_SOURCE || REPO;
/** The addon this checkout built. */
export const REPO_ADDON = path.join(REPO, 'build', 'Release', 'electron_ipc_channel.node');

export interface Installed {
  /** The temporary directory holding everything. */
  root: string;
  /** The user's project: package.json and node_modules/electron-ipc-channel. */
  app: string;
  /** The installed package. */
  pkg: string;
  /** The installed package's addon. */
  addon: string;
  /** Writes `text` to `<app>/<name>` (directories created). Returns the path. */
  write(name: string, text: string): string;
  /** Links `<REPO>/node_modules/<name>` into the app's node_modules (a dev tool the user has). */
  link(name: string): void;
  remove(): void;
}

export function packAndInstall(options: { type?: 'module' | 'commonjs' } = {}): Installed {
  const root = mkdtempSync(path.join(os.tmpdir(), 'eic-package-'));
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], {
    cwd: SOURCE,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tarball = path.join(root, (JSON.parse(out) as Array<{ filename: string }>)[0]!.filename);
  const app = path.join(root, 'app');
  const modules = path.join(app, 'node_modules');
  const pkg = path.join(modules, 'electron-ipc-channel');
  mkdirSync(pkg, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '--strip-components=1', '-C', pkg]);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: options.type ?? 'module' }, null, 2));

  const link = (name: string): void => {
    const target = path.join(modules, name);
    if (existsSync(target)) return;
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(REPO, 'node_modules', name), target, 'dir');
  };
  const manifest = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(manifest.dependencies ?? {})) link(dep);

  const addon = path.join(pkg, 'build', 'Release', 'electron_ipc_channel.node');
  mkdirSync(path.dirname(addon), { recursive: true });
  copyFileSync(REPO_ADDON, addon);

  return {
    root,
    app,
    pkg,
    addon,
    write(name, text) {
      const file = path.join(app, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      return file;
    },
    link,
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The environment for a child process, without any addon override inherited from the test run. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ['ELECTRON_IPC_CHANNEL_ADDON', 'ELECTRON_IPC_CHANNEL_NATIVE']) if (!(name in extra)) delete env[name];
  return env;
}

/** Runs `node <args>` in `cwd` (30 s at most); returns status, stdout and stderr. */
export function runNode(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = cleanEnv(),
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
