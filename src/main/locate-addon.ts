/**
 * Finding the native addon (electron_ipc_channel.node) wherever the package ends up: installed
 * in node_modules, bundled into an app's main process by esbuild/webpack/Vite (then this code no
 * longer sits in the package's dist/main), packaged in an Electron asar archive.
 *
 * Order: the override variable alone when it is set; else, for each package root found (the one
 * this file sits in, then `electron-ipc-channel/package.json` as resolved from this file, the
 * working directory and the main script), its build/Release then build/Debug; then a copy next to
 * this file (next to the bundle, when bundled). A path inside an `.asar` archive is tried in
 * `.asar.unpacked` first (a `.node` file cannot be loaded from inside an archive). The error
 * lists every path tried, why each failed, and what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** File name of the addon. */
export const ADDON_FILE = 'electron_ipc_channel.node';
/** Environment variable naming the addon file to load (an absolute path); nothing else is tried. */
export const ADDON_ENV = 'ELECTRON_IPC_CHANNEL_ADDON';
/** Older name of {@link ADDON_ENV}, still honoured (ADDON_ENV wins when both are set). */
export const ADDON_ENV_LEGACY = 'ELECTRON_IPC_CHANNEL_NATIVE';

const PACKAGE_NAME = 'electron-ipc-channel';

/** This module's file: the package's dist/main/index.cjs, a source file, or an app's bundle. */
function thisFile(): string | undefined {
  if (typeof __filename === 'string') return __filename;
  try {
    return fileURLToPath(import.meta.url);
  } catch {
    return undefined;
  }
}

function isPackageRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

/** Package roots, best first, without duplicates. */
function packageRoots(self: string | undefined): string[] {
  const roots: string[] = [];
  const add = (dir: string | undefined): void => {
    if (dir !== undefined && !roots.includes(dir)) roots.push(dir);
  };
  // Unbundled: dist/main/index.{js,cjs} and src/main/locate-addon.ts both sit two levels down.
  if (self !== undefined) {
    const up = path.resolve(path.dirname(self), '..', '..');
    if (isPackageRoot(up)) add(up);
  }
  // Bundled: the package as installed next to the app (a bundle usually runs from its project).
  const bases = [self, path.join(process.cwd(), 'noop.js'), process.argv[1] ? path.resolve(process.argv[1]) : undefined];
  for (const base of bases) {
    if (base === undefined) continue;
    try {
      add(path.dirname(createRequire(base).resolve(`${PACKAGE_NAME}/package.json`)));
    } catch {
      // not resolvable from there
    }
  }
  return roots;
}

/** `p`, preceded by its `.asar.unpacked` twin when `p` lies inside an asar archive. */
function withUnpacked(p: string): string[] {
  const unpacked = p.replace(/\.asar(?=[\\/])/, '.asar.unpacked');
  return unpacked === p ? [p] : [unpacked, p];
}

/**
 * Where the addon is looked for, in order (see the module comment). `override` names the variable
 * when one is set. `self` stands for this module's file (tests).
 */
export function addonCandidates(
  env: NodeJS.ProcessEnv = process.env,
  self: string | undefined = thisFile(),
): { override?: string; paths: string[] } {
  const override = env[ADDON_ENV] || env[ADDON_ENV_LEGACY];
  if (override) {
    const name = env[ADDON_ENV] ? ADDON_ENV : ADDON_ENV_LEGACY;
    return { override: name, paths: [path.resolve(override)] };
  }
  const paths: string[] = [];
  for (const root of packageRoots(self)) {
    for (const kind of ['Release', 'Debug']) paths.push(...withUnpacked(path.join(root, 'build', kind, ADDON_FILE)));
  }
  if (self !== undefined) paths.push(...withUnpacked(path.join(path.dirname(self), ADDON_FILE)));
  return { paths: [...new Set(paths)] };
}

/**
 * Loads the addon from the first candidate that exists (see {@link addonCandidates}). Node caches
 * it by path, so it is loaded once per process. Throws an Error listing every path tried with the
 * reason, and what to do: bundler, asar, or build.
 */
export function loadAddon<T>(): T {
  const { override, paths } = addonCandidates();
  const failures: string[] = [];
  for (const candidate of paths) {
    if (!existsSync(candidate)) {
      failures.push(`${candidate}: not found`);
      continue;
    }
    try {
      return createRequire(candidate)(candidate) as T;
    } catch (e) {
      failures.push(`${candidate}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const tried = failures.length > 0 ? failures.join('\n  ') : '(no candidate: the package could not be located)';
  const advice = override
    ? `\n${override} is set, so nothing else was tried: point it at an existing ${ADDON_FILE} (an absolute path), or unset it.`
    : '\nWhat to do:\n' +
      `- Main process bundled (esbuild, webpack, Vite, Rollup): mark '${PACKAGE_NAME}' as external and ship it in node_modules, ` +
      `or copy its build/Release/${ADDON_FILE} next to the bundle, or set ${ADDON_ENV}=/absolute/path/to/${ADDON_FILE}.\n` +
      `- Packaged in an asar archive: unpack the addon (electron-builder "asarUnpack": ["**/*.node"]; Electron Forge: auto-unpack-natives).\n` +
      `- Addon not built (npm install --ignore-scripts, or a failed build): run \`npm run build:native\` in the package's directory ` +
      `(node_modules/${PACKAGE_NAME}; needs g++, make and python3).\n` +
      "See electron-ipc-channel's docs/bundling.md.";
  throw new Error(`electron-ipc-channel: could not load the native addon ${ADDON_FILE}. Tried:\n  ${tried}${advice}`);
}
