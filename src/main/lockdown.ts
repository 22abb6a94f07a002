/**
 * `lockdown()`: an OS sandbox for a helper process that has finished starting up.
 *
 * Helpers spawned as Electron utility processes (or plain Node children) run full Node with no OS
 * sandbox. Once a helper has loaded its modules and opened what it needs, it calls `lockdown()`:
 * the process gets `no_new_privs` and a Landlock domain (Linux 5.13+) that denies, from then on,
 * every filesystem access outside the allow-lists, every TCP bind/connect outside the allowed
 * ports (Linux 6.7+), signals to processes outside the sandbox and connections to abstract Unix
 * sockets created outside it (Linux 6.12+).
 *
 * What keeps working: every descriptor that is already open (files, pipes, stdio, inherited fds,
 * channels, shared memory), descriptors received over channels later, connecting to pathname
 * Unix sockets (`IpcSender.connect`; Landlock ABI 7 and older do not check it), UDP, and
 * everything that needs no new path. What stops: opening any path not allowed (including a lazily
 * `import()`ed or `require()`d module, `/etc/resolv.conf` and NSS modules for DNS, timezone data,
 * `/proc`), starting programs, new TCP connections and listeners. Load lazily used modules before
 * calling `lockdown()`, or allow their directories with `allowRead`.
 *
 * The sandbox is irreversible and inherited by child processes. Calling `lockdown()` again
 * stacks another layer: the new allow-lists can only narrow what the earlier layers allowed
 * (Landlock allows at most 16 layers).
 *
 * Windows: a process cannot take on a restricted token, integrity level or AppContainer by itself
 * (a broker sets those at process creation), so files, the network and other processes stay
 * reachable. `lockdown()` applies what it can (src/native/win/lockdown.cc): a job object with
 * no child processes and UI restrictions, and mitigation policies (no legacy extension points,
 * no remote or low-label images); `enforced` is true when the job applies, and `reason` lists
 * what applied, what the system did not confirm, and what stays open. The allow-lists mean
 * nothing there (nothing is restricted by path or port).
 *
 * Other systems (macOS) have no Landlock, and the addon built there has no Landlock half:
 * `lockdown()` then changes nothing and says so (`enforced: false`, `noNewPrivs: false`, and a
 * `reason`), or throws with `required: true`. A macOS app confines its helpers by other means
 * (the App Sandbox of a signed app).
 */
import { IpcError } from '../shared/errors.js';
import { native, type NativeBinding, type NativeLandlockResult, type NativeWindowsLockdownResult } from './native.js';

/** Options of {@link lockdown}. Every allow-list is empty by default: nothing new is reachable. */
export interface LockdownOptions {
  /** Files or directory trees that may be opened for reading (and directories listed). */
  allowRead?: string[];
  /**
   * Files or directory trees that may be written, truncated, and (directories) have entries
   * created, removed, renamed or linked. Reading needs `allowRead` as well.
   */
  allowWrite?: string[];
  /** Files or directory trees whose programs may be executed (implies reading them). */
  allowExec?: string[];
  /** TCP ports that may be bound (0 allows binding an ephemeral port). */
  allowBind?: number[];
  /** TCP ports that may be connected to, on any address. */
  allowConnect?: number[];
  /** Forbid signals to processes outside the sandbox (Landlock ABI 6). Default true. */
  scopeSignals?: boolean;
  /** Forbid connecting to abstract Unix sockets created outside the sandbox (ABI 6). Default true. */
  scopeAbstractSockets?: boolean;
  /**
   * Throw `IpcError` code 'OS' instead of returning `enforced: false` when the kernel has no
   * Landlock. Nothing is changed in the process when it throws. Default false.
   */
  required?: boolean;
}

/** What {@link lockdown} enforced. */
export interface LockdownReport {
  /** True when an OS sandbox was applied (Linux: a Landlock domain; Windows: the job object). */
  enforced: boolean;
  /** Landlock ABI version of the kernel (0: none). */
  abi: number;
  /** Filesystem access is restricted to the allow-lists. */
  filesystem: boolean;
  /** TCP bind/connect are restricted to the allowed ports (ABI 4). */
  network: boolean;
  /** IPC scopes in force (ABI 6): 'abstract-unix-socket', 'signal'. */
  scoped: string[];
  /**
   * `no_new_privs` is set on every thread that could be reached: set-user-ID bits no longer apply.
   * Always true on Linux (even without Landlock); false where the OS has no Landlock (macOS).
   */
  noNewPrivs: boolean;
  /**
   * Threads of the process that could not be restricted because they block every signal (before
   * ABI 8, Landlock applies per thread; Node's inspector signal thread is one, and runs no JS).
   */
  unrestrictedThreads: number;
  /** Why something is missing or partial, for logs. Absent when everything asked for is enforced. */
  reason?: string;
}

/** The argument of the native `landlockRestrict`, see src/main/native.ts. */
export type LandlockRules = Parameters<NonNullable<NativeBinding['landlockRestrict']>>[0];

/** The addon's Landlock half: both functions on Linux, neither where the OS has no Landlock. */
export type LandlockAddon = Partial<Pick<NativeBinding, 'landlockAbi' | 'landlockRestrict' | 'windowsLockdown'>>;

const OPTION_KEYS = new Set([
  'allowRead',
  'allowWrite',
  'allowExec',
  'allowBind',
  'allowConnect',
  'scopeSignals',
  'scopeAbstractSockets',
  'required',
]);

/** Landlock ABI of each feature, and the first Linux release that has it. */
const ABI_NETWORK = 4;
const ABI_SCOPE = 6;
const SCOPE_ABSTRACT_UNIX_SOCKET = 1;
const SCOPE_SIGNAL = 2;

function paths(options: LockdownOptions, key: 'allowRead' | 'allowWrite' | 'allowExec'): string[] {
  const value = options[key];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`lockdown: options.${key} must be an array of paths`);
  return value.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.includes('\0')) {
      throw new TypeError(`lockdown: options.${key}[${i}] must be a non-empty path without NUL bytes`);
    }
    return p;
  });
}

function ports(options: LockdownOptions, key: 'allowBind' | 'allowConnect'): number[] {
  const value = options[key];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`lockdown: options.${key} must be an array of TCP ports`);
  return value.map((p, i) => {
    if (typeof p !== 'number') throw new TypeError(`lockdown: options.${key}[${i}] must be a number`);
    if (!Number.isInteger(p) || p < 0 || p > 65535) {
      throw new RangeError(`lockdown: options.${key}[${i}] is ${p}; a TCP port is an integer from 0 to 65535`);
    }
    return p;
  });
}

function flag(options: LockdownOptions, key: 'scopeSignals' | 'scopeAbstractSockets' | 'required', dflt: boolean): boolean {
  const value = options[key];
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw new TypeError(`lockdown: options.${key} must be a boolean`);
  return value;
}

/**
 * Validates `options` and maps them to the rules the native layer applies. Pure: touches neither
 * the filesystem nor the process. Throws TypeError/RangeError on misuse.
 */
export function buildRules(options: LockdownOptions = {}): LandlockRules {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('lockdown: options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new TypeError(`lockdown: unknown option '${key}' (known: ${[...OPTION_KEYS].join(', ')})`);
    }
  }
  flag(options, 'required', false);
  return {
    readPaths: paths(options, 'allowRead'),
    writePaths: paths(options, 'allowWrite'),
    execPaths: paths(options, 'allowExec'),
    bindPorts: ports(options, 'allowBind'),
    connectPorts: ports(options, 'allowConnect'),
    scopeSignals: flag(options, 'scopeSignals', true),
    scopeAbstractSockets: flag(options, 'scopeAbstractSockets', true),
  };
}

/** Native result with the fields landlock.cc adds beyond {@link NativeLandlockResult}. */
type NativeResult = NativeLandlockResult & { unrestrictedThreads?: number; threadError?: string };

/** Builds the report of {@link lockdown} from what the native layer enforced. Pure. */
export function reportFrom(result: NativeResult, rules: LandlockRules): LockdownReport {
  const scoped: string[] = [];
  if (result.scoped & SCOPE_ABSTRACT_UNIX_SOCKET) scoped.push('abstract-unix-socket');
  if (result.scoped & SCOPE_SIGNAL) scoped.push('signal');
  const unrestrictedThreads = result.unrestrictedThreads ?? 0;
  const report: LockdownReport = {
    enforced: result.abi >= 1 && result.handledAccessFs !== 0,
    abi: result.abi,
    filesystem: result.handledAccessFs !== 0,
    network: result.handledAccessNet !== 0,
    scoped,
    noNewPrivs: true,
    unrestrictedThreads,
  };
  const reasons: string[] = [];
  if (result.abi < 1) {
    reasons.push(
      'Landlock is not available: it needs Linux 5.13+ built with CONFIG_SECURITY_LANDLOCK and ' +
        "'landlock' in the active LSM list (lsm= boot parameter); only no_new_privs was set",
    );
  } else {
    if (!report.network) reasons.push(`TCP is not restricted: needs Landlock ABI ${ABI_NETWORK} (Linux 6.7), kernel has ${result.abi}`);
    const wanted = (rules.scopeSignals ? 1 : 0) + (rules.scopeAbstractSockets ? 1 : 0);
    if (scoped.length < wanted) {
      reasons.push(
        result.abi < ABI_SCOPE
          ? `signals and abstract Unix sockets are not scoped: needs Landlock ABI ${ABI_SCOPE} (Linux 6.12), kernel has ${result.abi}`
          : 'signals are not scoped: the kernel lacks Landlock erratum 2 (signals between threads in different domains)',
      );
    }
  }
  if (unrestrictedThreads > 0) {
    reasons.push(
      `${unrestrictedThreads} thread(s) block every signal and could not be restricted` +
        (result.threadError ? ` (${result.threadError})` : '') +
        '; Landlock ABI 8 (LANDLOCK_RESTRICT_SELF_TSYNC) restricts all threads at once',
    );
  }
  if (reasons.length > 0) report.reason = reasons.join('; ');
  return report;
}

/**
 * Sandboxes the calling process for the rest of its life (Linux): sets `no_new_privs` and applies
 * a Landlock domain to every thread, denying all filesystem access but the allow-lists, all TCP
 * bind/connect but the allowed ports, and (by default) signals and abstract Unix socket
 * connections to anything outside the sandbox. Restrictions the kernel does not know are skipped
 * and reported. See the module comment for what keeps working.
 *
 * @throws TypeError/RangeError on bad options; `IpcError` code 'OS' when a path cannot be opened
 *   (nothing is applied then), when the kernel refuses, or when `required` is set and the
 *   kernel has no Landlock.
 */
export function lockdown(options: LockdownOptions = {}): LockdownReport {
  return lockdownWith(native(), process.platform, options);
}

/** How a report names the system (`process.platform` values). */
function systemName(platform: NodeJS.Platform): string {
  return platform === 'darwin' ? 'macOS' : platform === 'win32' ? 'Windows' : platform;
}

/**
 * {@link lockdown} over a given addon and platform: the addon's Landlock half decides (absent on
 * systems without Landlock); `platform` only names the system in the report. Internal (the
 * package exports {@link lockdown}); tests run the non-Linux path through it on Linux.
 */
export function lockdownWith(addon: LandlockAddon, platform: NodeJS.Platform, options: LockdownOptions = {}): LockdownReport {
  const rules = buildRules(options);
  const required = flag(options, 'required', false);
  const { landlockAbi, landlockRestrict, windowsLockdown } = addon;
  if (typeof windowsLockdown === 'function') return windowsReport(windowsLockdown.call(addon), required);
  if (typeof landlockAbi !== 'function' || typeof landlockRestrict !== 'function') {
    const nothing =
      `${systemName(platform)} has no Landlock and this package has no other OS sandbox there: lockdown() enforces ` +
      'nothing at the OS level (files, network, signals and other processes stay reachable; no_new_privs is not set)';
    if (required) {
      throw new IpcError('OS', `lockdown: ${nothing}; nothing was changed. Pass required: false to run unsandboxed.`);
    }
    return {
      enforced: false,
      abi: 0,
      filesystem: false,
      network: false,
      scoped: [],
      noNewPrivs: false,
      unrestrictedThreads: 0,
      reason: nothing + (platform === 'darwin' ? '. On macOS, confine the helper with the App Sandbox of a signed app.' : '.'),
    };
  }
  if (required && landlockAbi.call(addon) < 1) {
    throw new IpcError(
      'OS',
      'lockdown: Landlock is not available in this kernel (needs Linux 5.13+ built with CONFIG_SECURITY_LANDLOCK ' +
        "and 'landlock' in the lsm= boot list); nothing was changed. Pass required: false to run unsandboxed.",
    );
  }
  let result: NativeResult;
  try {
    result = landlockRestrict.call(addon, rules) as NativeResult;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err?.errno !== 'number') throw e;
    throw new IpcError('OS', `lockdown: ${err.message}`, { errno: err.errno, syscall: err.syscall, cause: e });
  }
  return reportFrom(result, rules);
}

/**
 * The report of {@link lockdown} on Windows, from what the addon applied and read back: nothing
 * is claimed that the system did not confirm. With `required`, a job that did not apply throws
 * (the mitigation policies may have applied by then: they cannot be undone).
 */
export function windowsReport(r: NativeWindowsLockdownResult, required: boolean): LockdownReport {
  const applied: string[] = [];
  const missing: string[] = [];
  if (r.job && r.jobLimits) {
    applied.push(`a job object allowing no child processes${r.jobUi ? " and no UI access (other processes' windows, desktops, clipboard, global atoms, system parameters)" : ''}`);
  } else {
    const why = r.jobError
      ? ` (${r.jobError})`
      : r.job && r.jobLimitsSet
        ? ': this process is in the job and its limits were accepted, but they do not read back (QueryInformationJobObject), so they are not counted'
        : r.job
          ? ': its limits were refused'
          : '';
    missing.push(`the job object (no child processes) is not confirmed${why}`);
  }
  const policy = (ok: boolean, set: boolean, what: string): void => {
    if (ok) applied.push(what);
    else missing.push(set ? `${what}: accepted, but the system does not confirm it (GetProcessMitigationPolicy)` : `${what}: refused by the system`);
  };
  policy(r.extensionPoints, r.extensionPointsSet, 'legacy extension points disabled');
  policy(r.imageLoad, r.imageLoadSet, 'remote and low-label images refused');
  const enforced = r.job && r.jobLimits;
  const open =
    'not restricted on Windows: files, the network, other processes (a restricted token, integrity level or AppContainer ' +
    'can only be set by a broker when the process is created); the allow-lists are not used';
  const reason = [applied.length > 0 ? `applied: ${applied.join('; ')}` : 'nothing applied', ...missing, open].join('; ');
  if (required && !enforced) {
    throw new IpcError('OS', `lockdown: ${reason}. Pass required: false to run without it.`);
  }
  return { enforced, abi: 0, filesystem: false, network: false, scoped: [], noNewPrivs: false, unrestrictedThreads: 0, reason };
}
