/**
 * IpcOneShotServer: bootstraps a channel into another process by a name (the path of a
 * listening Unix socket in a fresh private directory) that the other process connects to.
 *
 * Cleanup of the directories (see "Server directories" below): removed when a client is
 * accepted, on close(), by the GC safety net, at 'exit', on a terminating signal that kills the
 * process, and otherwise swept later by another server once their owner is provably dead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { lstat, open, opendir, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isatty } from 'node:tty';
import { isMainThread } from 'node:worker_threads';
import { armDeadline } from '../shared/deadline.js';
import type { Disarm } from '../shared/deadline.js';
import { IpcError } from '../shared/errors.js';
import { IpcReceiver } from './channel.js';
import type { ReceiverOptions } from './channel.js';
import { checkTimeout, closedError, osError, trackForGc, untrackForGc } from './handles.js';
import type { Disposer } from './handles.js';
import { POLL_READABLE, native } from './native.js';
import { AGAIN, transport } from './transport/index.js';
import type { NativePoller } from './native.js';

/** Options of `IpcOneShotServer.accept()`. */
export interface AcceptOptions {
  /** Reject with TIMEOUT when no client connected and sent its first message in time (ms). */
  timeout?: number;
  /**
   * Accept only a client whose SO_PEERCRED credentials match; anyone else is disconnected and
   * the server keeps waiting.
   */
  peer?: { pid?: number; uid?: number };
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------------------------
// Server directories
//
// Name: `eipc-` + 42 hex digits = owner tag (8) + owner pid (8) + owner start time (10, clock
// ticks since boot, field 22 of /proc/<pid>/stat) + random (16). The tag is a hash of the boot id
// and the pid namespace: a pid and start time only mean something to a sweeper that sees the same
// boot and the same pid namespace, so a directory of another tag is never judged. The start time
// defeats pid reuse. When /proc cannot tell us who we are, the name is `eipc-` + 32 random hex
// digits (the format of earlier versions): such a directory is never swept.
//
// Live directories (of this thread) are removed:
// - by their server (accepted, close(), GC safety net);
// - at 'exit' (process.exit(), end of the loop, uncaught exception; in a worker, its own exit);
// - on SIGTERM, SIGINT, SIGHUP when the signal is going to kill the process, i.e. no other code
//   listens to it: the listener removes the directories, removes itself and re-raises the signal,
//   so the process still dies of it (same wait status for the parent). When the app (or another
//   library) listens too, the app decides; the directories stay while the process lives (its
//   servers may still be waiting) and go at 'exit' if it exits.
// The 'exit' and signal listeners exist only while this thread has a live server.
//
// Left behind (SIGKILL, a crash, a terminated worker, a signal while another thread owned the
// server): a later server in any process of the same uid sweeps them (sweepStaleServerDirs).
//
// The name is 10 characters longer than the old format (54 under /tmp), still far below the
// 107 bytes of sun_path for usual temp dirs (a Flatpak TMPDIR of ~45 characters fits).
// ---------------------------------------------------------------------------------------------

/** A server directory with an owner we can judge: see the name layout above. */
const OWNED_DIR = /^eipc-([0-9a-f]{8})([0-9a-f]{8})([0-9a-f]{10})([0-9a-f]{16})$/;

/**
 * Signals whose listener removes the directories before the process dies of them. Not the
 * core-dump signals (SIGQUIT, SIGABRT, ...: they exist to stop a hung process at once, which a JS
 * listener, run only when the event loop turns, would defeat), nor SIGUSR1/SIGPROF (Node and V8
 * use them), nor SIGUSR2/SIGALRM/SIGPIPE and the like (application protocols, not requests to
 * terminate).
 */
const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Marks a signal listener that only cleans up and re-raises the signal when nothing else listens.
 * A global symbol, so that two copies of this library (the ESM and CommonJS builds, two versions)
 * count each other as passive instead of each waiting for the other to end the process.
 */
const kCleanupOnly = Symbol.for('electron-ipc-channel.cleanup-only-signal-listener');

/** Directories of live servers of this thread. */
const liveDirs = new Set<string>();

let hooks: { exit: () => void; signals: Array<[NodeJS.Signals, () => void]> } | undefined;

export function addLiveDir(dir: string): void {
  liveDirs.add(dir);
  if (!hooks) installHooks();
}

export function removeDir(dir: string): void {
  liveDirs.delete(dir);
  try {
    rmSync(dir, { recursive: true, force: true });
  } finally {
    if (liveDirs.size === 0) uninstallHooks();
  }
}

function removeLiveDirs(): void {
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // Nothing useful to do while the process ends; a later sweep may get it.
    }
  }
  liveDirs.clear();
}

/** Electron's own processes (main, renderer, utility) handle termination signals natively. */
function isElectronProcess(): boolean {
  return typeof (process as { type?: unknown }).type === 'string';
}

function installHooks(): void {
  const exit = (): void => removeLiveDirs();
  process.on('exit', exit);
  const signals: Array<[NodeJS.Signals, () => void]> = [];
  // Signals reach the main thread only. In Electron's processes a Node listener would replace
  // Electron's native handler (which quits the app gracefully, and 'exit' then cleans up) with
  // libuv's, and removing it would leave the default action: so none there.
  if (isMainThread && !isElectronProcess()) {
    for (const sig of CLEANUP_SIGNALS) {
      const listener = (): void => onTerminatingSignal(sig, listener);
      (listener as unknown as Record<symbol, boolean>)[kCleanupOnly] = true;
      try {
        // First in line, so that at our turn every listener of this emission is still registered
        // (a `once` listener removes itself when it runs: after us it is still there to count).
        process.prependListener(sig, listener);
        signals.push([sig, listener]);
      } catch {
        // Cannot listen to this signal here: the directories then go at 'exit' or by a sweep.
      }
    }
  }
  hooks = { exit, signals };
}

function uninstallHooks(): void {
  if (!hooks) return;
  const { exit, signals } = hooks;
  hooks = undefined;
  process.removeListener('exit', exit);
  for (const [sig, listener] of signals) process.removeListener(sig, listener);
}

/**
 * How many listeners of each signal belong to signal-exit (v3 and v4), the usual way libraries
 * clean up on signals. Like us, it re-raises the signal only when it is alone; counting it as
 * passive (and it counting us as "the app", then re-raising once we are gone) avoids the case
 * where each waits for the other and the process survives a SIGTERM that would have killed it.
 */
function signalExitListeners(): number {
  let n = 0;
  for (const emitter of [(globalThis as Record<symbol, unknown>)[Symbol.for('signal-exit emitter')], (process as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__]) {
    const count = (emitter as { count?: unknown } | undefined)?.count;
    if (typeof count === 'number' && count > 0) n += count;
  }
  return n;
}

function onTerminatingSignal(sig: NodeJS.Signals, self: () => void): void {
  try {
    let others = 0;
    for (const l of process.listeners(sig)) if (!(l as unknown as Record<symbol, unknown>)[kCleanupOnly]) others++;
    // Someone else listens: the signal does not end the process by itself any more, the app
    // decides. Its servers may still be in use, so nothing is removed now ('exit' will).
    if (others - signalExitListeners() > 0) return;
    removeLiveDirs();
    uninstallHooks();
    // Node's default handler of SIGINT/SIGTERM restores the terminal before dying; once a
    // listener was added and removed the kernel default applies instead, so restore raw mode.
    if (isatty(0) && process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
  } catch {
    // Never throw from a signal listener; still let the signal do what it would have done.
    uninstallHooks();
  }
  // Without listeners, Node has closed its signal watcher and the default action is back: this
  // ends the process by `sig`, as if we had never listened. (With signal-exit still listening,
  // it gets the signal again, finds itself alone and does the same.)
  if (!process.listeners(sig).includes(self)) process.kill(process.pid, sig);
}

/** Who this process is, for the directory name: undefined when /proc cannot tell. */
interface Identity {
  tag: string;
  pid: number;
  start: number;
}
let identity: Identity | null | undefined;

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function parseStat(text: string): { state: string; start: number } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  const start = Number(f[19]); // field 22, starttime
  if (!Number.isSafeInteger(start) || start < 0) return undefined;
  return { state: f[0] ?? '', start };
}

/** @internal The owner part of this process's server directory names (exported for tests). */
export function processIdentity(): Identity | undefined {
  if (identity === undefined) {
    identity = null;
    try {
      const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
      const pidns = readlinkSync('/proc/self/ns/pid');
      const st = parseStat(readFileSync('/proc/self/stat', 'latin1'));
      if (boot && pidns && st && st.start <= 0xff_ffff_ffff && process.pid > 1 && process.pid <= 0xffff_ffff) {
        const tag = createHash('sha256').update(`${boot}\n${pidns}`).digest('hex').slice(0, 8);
        identity = { tag, pid: process.pid, start: st.start };
      }
    } catch {
      // No /proc (or not ours): directories get unowned names and are never swept.
    }
  }
  return identity ?? undefined;
}

function newDirName(): string {
  const me = processIdentity();
  if (!me) return `eipc-${randomBytes(16).toString('hex')}`;
  return `eipc-${me.tag}${me.pid.toString(16).padStart(8, '0')}${me.start.toString(16).padStart(10, '0')}${randomBytes(8).toString('hex')}`;
}

/** Creates a fresh 0700 server directory in `base`; IpcError OS when it cannot. */
/**
 * A listening socket named by the server rules: `<fresh 0700 dir under the temp dir>/s`, the
 * directory registered for removal at exit and on signals. The caller owns `fd` and `dir`.
 */
export function listenPrivate(): { dir: string; name: string; fd: number } {
  const dir = makePrivateDir(tmpdir());
  addLiveDir(dir);
  const name = path.join(dir, 's');
  try {
    return { dir, name, fd: transport().listen(name) };
  } catch (e) {
    removeDir(dir);
    throw osError(e, `listening at ${name}`);
  }
}

export function makePrivateDir(base: string): string {
  for (let attempt = 1; ; attempt++) {
    const dir = path.join(base, newDirName());
    try {
      mkdirSync(dir, { mode: 0o700 });
      return dir;
    } catch (e) {
      // A name taken by someone else (random, so only by chance or by a guess): draw again.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 3) continue;
      throw osError(e, `creating the private directory ${dir}`);
    }
  }
}

/** @internal Bounds of one sweep (exported for tests, not by the package). */
export const SWEEP_LIMITS = {
  /** At most one sweep per thread in this span (ms); the first server of a thread sweeps. */
  intervalMs: 60_000,
  /** Directory entries read from the temp dir. */
  maxEntries: 4096,
  /** Directories of our uid, name and tag whose owner is looked at. */
  maxChecks: 256,
  /** Directories removed. */
  maxRemovals: 64,
  /** A directory of this very process younger than this is never swept (it may be mid-creation). */
  graceMs: 10_000,
  /** Largest /proc/net/unix read (bytes). */
  maxUnixTable: 8 << 20,
};

/** @internal What a sweep did (for tests). */
export interface SweepResult {
  scanned: number;
  checked: number;
  removed: string[];
}

let sweeping = false;
let lastSweep = -Infinity;

export function scheduleSweep(base: string): void {
  const now = performance.now();
  if (sweeping || now - lastSweep < SWEEP_LIMITS.intervalMs) return;
  sweeping = true;
  lastSweep = now;
  sweepStaleServerDirs(base)
    .catch(() => undefined)
    .finally(() => {
      sweeping = false;
    });
}

/** True only when the process that made the directory is provably gone. */
async function ownerDead(pid: number, start: number): Promise<boolean> {
  if (pid <= 1) return false; // never kill(0 or -1, ...): those address groups
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists
  }
  let st: ReturnType<typeof parseStat>;
  try {
    st = parseStat(await readFile(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false; // hidden (hidepid) or just gone: judge next time
  }
  // Another process with the same pid (reuse), or the owner is a zombie that will not run again.
  return st !== undefined && (st.start !== start || st.state === 'Z' || st.state === 'X');
}

/** Paths bound by Unix sockets of our network namespace (the tail of each /proc/net/unix line). */
async function boundSocketTable(): Promise<string | undefined> {
  const fh = await open('/proc/net/unix', 'r');
  try {
    const buf = Buffer.alloc(SWEEP_LIMITS.maxUnixTable);
    let len = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len === buf.length) return undefined; // too big to judge
    }
    return buf.toString('latin1', 0, len);
  } finally {
    await fh.close();
  }
}

/** Removes `dir/s` and `dir`, nothing else: a directory with anything more in it stays. */
async function removeStale(dir: string): Promise<boolean> {
  try {
    await unlink(path.join(dir, 's')); // never follows: a symlink named s is itself removed
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  try {
    await rmdir(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * @internal Removes server directories left in `base` by dead owners: only `eipc-` directories
 * with an owner tag of this boot and pid namespace, owned by our uid, whose owner process is gone
 * (or, for this process, whose socket is no longer bound and which no server of this thread owns
 * and which are older than `graceMs`: workers terminated with a live server). Bounded by
 * SWEEP_LIMITS; never follows symlinks; skips a `base` that other users could rearrange (not
 * sticky yet writable by group or others, or owned by another non-root user). Resolves with what
 * it did; rejects only on an unexpected error (the automatic sweep ignores it).
 */
export async function sweepStaleServerDirs(base: string = tmpdir(), options: { graceMs?: number } = {}): Promise<SweepResult> {
  const result: SweepResult = { scanned: 0, checked: 0, removed: [] };
  const me = processIdentity();
  const uid = process.getuid?.();
  if (!me || uid === undefined) return result;
  const graceMs = options.graceMs ?? SWEEP_LIMITS.graceMs;
  const st = await stat(base);
  if (!st.isDirectory() || (st.uid !== 0 && st.uid !== uid)) return result;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return result;
  let table: Promise<string | undefined> | undefined;
  const handle = await opendir(base, { bufferSize: 64 });
  try {
    for (;;) {
      if (result.scanned >= SWEEP_LIMITS.maxEntries || result.checked >= SWEEP_LIMITS.maxChecks || result.removed.length >= SWEEP_LIMITS.maxRemovals) break;
      const ent = await handle.read();
      if (ent === null) break;
      result.scanned++;
      const m = OWNED_DIR.exec(ent.name);
      // The entry's type comes with the listing (lstat semantics: a symlink is not a directory).
      if (!m || m[1] !== me.tag || !ent.isDirectory()) continue;
      const dir = path.join(base, ent.name);
      if (liveDirs.has(dir)) continue;
      let info;
      try {
        info = await lstat(dir);
      } catch {
        continue;
      }
      // Another user's look-alikes cost one lstat each (bounded by maxEntries), not a check.
      if (!info.isDirectory() || info.uid !== uid) continue;
      result.checked++;
      const pid = parseInt(m[2]!, 16);
      const start = parseInt(m[3]!, 16);
      if (pid === me.pid && start === me.start) {
        // Ours, but not this thread's: another thread's live server has its socket bound.
        if (!(Date.now() - info.mtimeMs >= graceMs)) continue;
        table ??= boundSocketTable().catch(() => undefined);
        const bound = await table;
        if (bound === undefined || bound.includes(`/${ent.name}/s\n`)) continue;
      } else if (!(await ownerDead(pid, start))) {
        continue;
      }
      if (await removeStale(dir)) result.removed.push(dir);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return result;
}

/**
 * A server for exactly one client. Pass `name` to another process (e.g. in its environment);
 * there `IpcSender.connect(name)` returns a sender, whose first message completes `accept()`.
 */
export class IpcOneShotServer<T> implements Disposable {
  /** The name to connect to: on Linux, the path of the listening socket. */
  readonly name: string;
  private readonly dir: string;
  private fd: number;
  private poller: NativePoller | undefined;
  private accepting = false;
  private cancelAccept: ((e: Error) => void) | undefined;
  private readonly disposer: Disposer;

  constructor(private readonly options?: ReceiverOptions<T>) {
    ({ dir: this.dir, name: this.name, fd: this.fd } = listenPrivate());
    const dir = this.dir;
    // The release callback must not reach `this`: the registry would then keep the server alive.
    // (A poller only exists during accept(), and its callback keeps the server reachable.)
    this.disposer = { fd: this.fd, release: () => removeDir(dir) };
    trackForGc(this, this.disposer);
    // Directories left by dead owners (SIGKILL, crashes): bounded, in the background, errors ignored.
    scheduleSweep(path.dirname(this.dir));
  }

  /**
   * Waits for the one client and its first message. Resolves to the receiver of that
   * connection and the first message. Rejects TIMEOUT, CLOSED, or DISCONNECTED when the client
   * hung up before sending anything.
   */
  async accept(options: AcceptOptions = {}): Promise<[IpcReceiver<T>, T]> {
    if (this.fd < 0) throw closedError('IpcOneShotServer');
    if (this.accepting) throw new TypeError('IpcOneShotServer.accept() is already waiting; a one-shot server accepts once');
    const { peer, signal } = options;
    const timeout = checkTimeout(options.timeout);
    this.accepting = true;
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    const conn = await this.acceptConnection(deadline, peer, signal);
    // The name is used up: nobody else can connect from now on.
    this.closeListener();
    const receiver = new IpcReceiver<T>(conn, this.options);
    try {
      const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const first = await receiver.recv({ timeout: left, signal });
      return [receiver, first];
    } catch (e) {
      receiver.close();
      if (e instanceof IpcError && e.code === 'DISCONNECTED') {
        throw new IpcError('DISCONNECTED', 'the client connected but closed before sending its first message', { cause: e });
      }
      throw e;
    }
  }

  private acceptConnection(deadline: number | undefined, peer: AcceptOptions['peer'], signal?: AbortSignal): Promise<number> {
    const n = native();
    const t = transport();
    return new Promise<number>((resolve, reject) => {
      let disarm: Disarm | undefined;
      const finish = (err: unknown, fd?: number): void => {
        disarm?.();
        this.poller?.close();
        this.poller = undefined;
        this.accepting = false;
        this.cancelAccept = undefined;
        if (err) reject(err);
        else resolve(fd!);
      };
      const tryAccept = (): void => {
        if (this.fd < 0) return finish(closedError('IpcOneShotServer'));
        for (;;) {
          let fd: number;
          try {
            fd = t.accept(this.fd);
          } catch (e) {
            return finish(osError(e, 'accept'));
          }
          if (fd === AGAIN) return;
          if (peer) {
            let ok = false;
            try {
              const cred = t.peerCredentials(fd);
              ok = (peer.pid === undefined || cred.pid === peer.pid) && (peer.uid === undefined || cred.uid === peer.uid);
            } catch {
              ok = false;
            }
            if (!ok) {
              n.close(fd); // Not the expected peer: refuse it and keep waiting.
              continue;
            }
          }
          return finish(undefined, fd);
        }
      };
      if (signal?.aborted) return finish(signal.reason);
      disarm = armDeadline(
        { timeout: deadline === undefined ? undefined : Math.max(0, deadline - Date.now()), signal, timeoutMessage: `nobody connected to ${this.name} within the timeout` },
        (reason) => finish(reason),
      );
      this.cancelAccept = (e) => finish(e);
      this.poller = new n.Poller(this.fd, () => tryAccept());
      this.poller.start(POLL_READABLE);
      tryAccept();
    });
  }

  private closeListener(): void {
    if (this.fd < 0) return;
    this.poller?.close();
    this.poller = undefined;
    native().close(this.fd);
    this.fd = -1;
    this.disposer.fd = -1;
    removeDir(this.dir);
  }

  /** Stops listening and removes the name. A pending accept() rejects CLOSED. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    untrackForGc(this);
    this.closeListener();
    this.cancelAccept?.(closedError('IpcOneShotServer'));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
