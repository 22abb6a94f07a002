/**
 * Helper processes: `spawnHelper()` in the parent, `connectToParent()` in the helper.
 *
 * In Electron's main process a helper is an Electron utility process (`utilityProcess.fork`);
 * anywhere else (plain Node, a utility process, a test) it is a Node child process. The helper
 * code is the same in both. The parent passes the name of a one-shot server in the helper's
 * environment; the helper connects, creates the channel for the other direction and sends its
 * sender as the first message. The parent accepts only a connection whose SO_PEERCRED pid is the
 * pid it spawned.
 */
import { closeHandles } from './bridge.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import type { ElectronMainModule, UtilityProcessLike as UtilityProcess } from '../shared/electron-types.js';
import { IpcError, isIpcError } from '../shared/errors.js';
import { assertStandardSchema, validate } from '../shared/validate.js';
import type { StandardSchemaV1 } from '../shared/validate.js';
import { channel, IpcReceiver, IpcSender } from './channel.js';
import type { ReceiverOptions, RecvOptions } from './channel.js';
import { IpcOneShotServer } from './server.js';
import { checkTimeout } from './handles.js';
import { describeError, trace } from './debug.js';
import { checkOptionNames } from './ipc-server.js';

/** @internal Option names of spawnHelper (superviseHelper and helperPool add theirs). */
export const SPAWN_HELPER_OPTIONS: readonly string[] = ['args', 'env', 'cwd', 'execArgv', 'timeout', 'schema', 'limits', 'stdio', 'serviceName', 'runner', 'closeGrace', 'signal'];
const CONNECT_TO_PARENT_OPTIONS = ['schema', 'limits', 'name'];

/** Environment variable that carries the one-shot server name to the helper. */
export const HELPER_SERVER_ENV = 'ELECTRON_IPC_CHANNEL_SERVER';

/** Limits of a receiver (everything of `ReceiverOptions` but the schema). */
export type ReceiverLimits = Omit<ReceiverOptions, 'schema'>;

/** How a helper ended. `signal` is null for Electron utility processes (Electron reports a code only). */
export interface HelperExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link spawnHelper}. `In` is what the helper sends to the parent. */
export interface SpawnHelperOptions<In> {
  /** Arguments after the module path. */
  args?: string[];
  /** Environment of the helper. Default `process.env`; the server name is added to it. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Node options for the helper, e.g. `['--enable-source-maps']`. */
  execArgv?: string[];
  /**
   * Milliseconds the helper has to start and connect (default 10 000). Past it, the helper is
   * killed and `spawnHelper` rejects with TIMEOUT.
   */
  timeout?: number;
  /** Checks every message from the helper; a failing one makes that `recv()` reject INVALID. */
  schema?: StandardSchemaV1<unknown, In>;
  /** Limits of the receiver for messages from the helper. */
  limits?: ReceiverLimits;
  /**
   * `'inherit'` (default): the helper writes to this process's stdout/stderr (its stderr is
   * also kept, the last 4 KiB, for error messages). `'pipe'`: read `helper.stdout`/`stderr`.
   * `'ignore'`: discarded.
   */
  stdio?: 'inherit' | 'pipe' | 'ignore';
  /** Process name in Electron's task manager and `app.getAppMetrics()` (utility processes only). */
  serviceName?: string;
  /** `'auto'` (default): a utility process in Electron's main process, else a Node child. */
  runner?: 'auto' | 'utility' | 'node';
  /** Milliseconds `close()` waits for the helper to exit by itself before killing it (default 2000). */
  closeGrace?: number;
  signal?: AbortSignal;
}

/**
 * A running helper and both directions of its channel. `Out` is what the parent sends,
 * `In` what it receives.
 */
export interface Helper<Out, In> extends AsyncIterable<In>, Disposable, AsyncDisposable {
  /** Path of the helper module, as given. */
  readonly module: string;
  /** The helper's pid (the peer that was checked when it connected). */
  readonly pid: number;
  /** `'utility'` for an Electron utility process, `'node'` for a Node child process. */
  readonly runner: 'utility' | 'node';
  /** Sends to the helper (never blocks; see `IpcSender.send`). */
  send(value: Out): void;
  /**
   * The next message from the helper, checked with `schema`. When the helper has exited, rejects
   * DISCONNECTED with its exit code or signal in the message. Iterating ends on DISCONNECTED,
   * and on CLOSED after `close()`.
   */
  recv(options?: RecvOptions): Promise<In>;
  /** The sender to the helper, e.g. to `clone()` it for another process. */
  readonly sender: IpcSender<Out>;
  /** Resolves when the helper process has exited (never rejects). */
  readonly exited: Promise<HelperExit>;
  /** Exit status once exited, else undefined. */
  readonly exitStatus: HelperExit | undefined;
  /** The helper's output streams with `stdio: 'pipe'`, else null. */
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
  /** Sends a signal (default SIGTERM; utility processes take SIGTERM only). False if already gone. */
  kill(signal?: NodeJS.Signals): boolean;
  /**
   * Closes both directions (the helper sees DISCONNECTED) and kills the helper if it has not
   * exited within `closeGrace` ms. Idempotent; resolves when it exited.
   */
  close(): Promise<HelperExit>;
  /** `await using helper = await spawnHelper(...)`: `close()`, resolving once the helper exited. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link connectToParent}. `In` is what the helper receives. */
export interface ConnectToParentOptions<In> {
  /** Checks every message from the parent (done by the receiver: failing ones reject INVALID). */
  schema?: StandardSchemaV1<unknown, In>;
  limits?: ReceiverLimits;
  /** The server name; default: from the environment (`ELECTRON_IPC_CHANNEL_SERVER`), which is then removed. */
  name?: string;
}

/** The helper's end: `In` is what it receives from the parent, `Out` what it sends. */
export interface ParentEndpoint<In, Out> extends AsyncIterable<In>, Disposable {
  send(value: Out): void;
  recv(options?: RecvOptions): Promise<In>;
  /** The sender to the parent (clone it to let another thread report too). */
  readonly sender: IpcSender<Out>;
  /** The receiver of messages from the parent. */
  readonly receiver: IpcReceiver<In>;
  /** Closes both directions; the parent's receives end with DISCONNECTED. */
  close(): void;
}

type ElectronMain = ElectronMainModule;

let fakeElectron: ElectronMain | undefined;

/** Test seam: pretend to be Electron's main process with this `electron` module (a fake utilityProcess). Not exported from the package. */
export function setElectronForTesting(fake: unknown): void {
  fakeElectron = fake as ElectronMain | undefined;
}

function inElectronMain(): boolean {
  if (fakeElectron) return true;
  return Boolean((process.versions as Record<string, string | undefined>).electron) && (process as { type?: string }).type === 'browser';
}

function loadElectron(): ElectronMain {
  return fakeElectron ?? (createRequire(import.meta.url)('electron') as ElectronMain);
}

const STDERR_TAIL = 4096;

/** The parts of a child process this module uses, for both runners. */
interface Proc {
  pid: number | undefined;
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
  /** Resolves with the pid once the process runs; rejects when it cannot start. */
  started: Promise<number>;
  exited: Promise<HelperExit>;
  kill(signal: NodeJS.Signals): boolean;
}

function startNode(modulePath: string, options: SpawnHelperOptions<unknown>, env: NodeJS.ProcessEnv): Proc {
  const stdio = options.stdio ?? 'inherit';
  // Not fork(): the helper needs no Node IPC channel, only the socket it connects to.
  if ((process.versions as Record<string, string | undefined>).electron) env.ELECTRON_RUN_AS_NODE = '1';
  const child: ChildProcess = spawn(process.execPath, [...(options.execArgv ?? []), modulePath, ...(options.args ?? [])], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', stdio, stdio === 'inherit' ? 'pipe' : stdio],
    windowsHide: true,
  });
  const exited = new Promise<HelperExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (e) => {
      // Spawning failed: no 'exit' will come.
      if (child.pid === undefined) resolve({ code: null, signal: null });
      void e;
    });
  });
  const started = new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid as number));
    child.once('error', (e) => {
      if (child.pid === undefined) reject(e);
    });
  });
  return {
    get pid() {
      return child.pid;
    },
    stdout: stdio === 'pipe' ? child.stdout : null,
    stderr: stdio === 'pipe' || stdio === 'inherit' ? child.stderr : null,
    started,
    exited,
    kill: (signal) => (child.exitCode === null && child.signalCode === null ? child.kill(signal) : false),
  };
}

function startUtility(modulePath: string, options: SpawnHelperOptions<unknown>, env: NodeJS.ProcessEnv): Proc {
  const { utilityProcess } = loadElectron();
  const stdio = options.stdio ?? 'inherit';
  const child: UtilityProcess = utilityProcess.fork(modulePath, options.args ?? [], {
    env,
    cwd: options.cwd,
    execArgv: options.execArgv,
    stdio: ['ignore', stdio, stdio === 'inherit' ? 'pipe' : stdio],
    serviceName: options.serviceName ?? path.basename(modulePath),
  });
  let done = false;
  const exited = new Promise<HelperExit>((resolve) => {
    child.once('exit', (code) => {
      done = true;
      resolve({ code, signal: null });
    });
  });
  const started = new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid as number));
    void exited.then((e) => reject(new Error(`it exited with code ${e.code} before it started`)));
  });
  return {
    get pid() {
      return child.pid;
    },
    stdout: stdio === 'pipe' ? child.stdout : null,
    stderr: stdio === 'pipe' || stdio === 'inherit' ? child.stderr : null,
    started,
    exited,
    kill: () => (done ? false : child.kill()),
  };
}

function describeExit(e: HelperExit): string {
  if (e.signal) return `was killed by ${e.signal}`;
  if (e.code === null) return 'could not be started';
  return `exited with code ${e.code}`;
}

function positiveMs(v: unknown, name: string, fallback: number): number {
  return checkTimeout(v, name) ?? fallback;
}

/**
 * Starts `modulePath` (an `.mjs`/`.cjs`/`.js` file that calls `connectToParent()`) and resolves
 * when it has connected. `Out` is what the parent sends to the helper, `In` what it receives.
 *
 * Rejects with `IpcError` naming the module when the helper cannot be started, exits before it
 * connects (DISCONNECTED, with its exit code or signal and the end of its stderr) or does not
 * connect within `timeout` (TIMEOUT); the helper is killed in these cases.
 */
export async function spawnHelper<Out = unknown, In = unknown>(
  modulePath: string | URL,
  options: SpawnHelperOptions<In> = {},
): Promise<Helper<Out, In>> {
  const module = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath;
  if (typeof module !== 'string' || module.length === 0) throw new TypeError('spawnHelper: modulePath must be a path or a file: URL');
  if (typeof options === 'object' && options !== null && 'restart' in options) {
    throw new TypeError('spawnHelper() does not restart helpers: use superviseHelper(modulePath, { restart }) (or helperPool) from electron-ipc-channel');
  }
  checkOptionNames(options, SPAWN_HELPER_OPTIONS, 'spawnHelper()');
  const timeout = positiveMs(options.timeout, 'timeout', 10_000);
  const closeGrace = positiveMs(options.closeGrace, 'closeGrace', 2000);
  if (options.schema !== undefined) assertStandardSchema(options.schema, 'schema');
  const runnerOpt = options.runner ?? 'auto';
  if (runnerOpt !== 'auto' && runnerOpt !== 'utility' && runnerOpt !== 'node') {
    throw new TypeError(`spawnHelper: runner must be 'auto', 'utility' or 'node', got ${String(runnerOpt)}`);
  }
  const runner = runnerOpt === 'auto' ? (inElectronMain() ? 'utility' : 'node') : runnerOpt;
  if (runner === 'utility' && !inElectronMain()) {
    throw new TypeError("spawnHelper: runner 'utility' needs Electron's main process");
  }
  options.signal?.throwIfAborted();
  const label = `helper ${path.basename(module)}`;
  trace('helper', 'spawning %s (%s runner, timeout %d ms)', module, runner, timeout);

  const server = new IpcOneShotServer<unknown>(options.limits);
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), [HELPER_SERVER_ENV]: server.name };

  let proc: Proc;
  try {
    proc = runner === 'utility' ? startUtility(module, options, env) : startNode(module, options, env);
  } catch (e) {
    server.close();
    throw new IpcError('OS', `${label} (${module}) could not be started: ${(e as Error).message}`, { cause: e });
  }

  let stderrTail = '';
  const stderr = proc.stderr;
  const pipeStderr = (options.stdio ?? 'inherit') === 'inherit';
  if (stderr && pipeStderr) {
    stderr.on('data', (chunk: Buffer | string) => {
      process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL);
    });
  }
  const withStderr = (msg: string): string => {
    const tail = stderrTail.trim();
    return tail ? `${msg}; its stderr ended with:\n${tail}` : msg;
  };

  let exitStatus: HelperExit | undefined;
  void proc.exited.then((e) => {
    exitStatus = e;
    trace('helper', '%s (pid %s) %s', label, proc.pid ?? '-', describeExit(e));
  });

  const abort = new AbortController();
  const onAbort = (): void => abort.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let receiver: IpcReceiver<unknown>;
  let first: unknown;
  try {
    const deadline = Date.now() + timeout;
    const pid = await Promise.race([
      proc.started,
      proc.exited.then((e) => Promise.reject(new IpcError('DISCONNECTED', `${label} ${describeExit(e)}`))),
      timeoutAfter(timeout, abort.signal),
    ]);
    [receiver, first] = await Promise.race([
      server.accept({ peer: { pid }, timeout: Math.max(0, deadline - Date.now()), signal: abort.signal }),
      proc.exited.then(async (e) => {
        // Let a connection that raced the exit be accepted first: its first message may be there.
        await new Promise((r) => setTimeout(r, 50));
        throw new IpcError('DISCONNECTED', withStderr(`${label} (${module}, pid ${pid}) ${describeExit(e)} before it connected`));
      }),
    ]);
  } catch (e) {
    trace('helper', '%s (pid %s) failed to start: %s', label, proc.pid ?? '-', describeError(e));
    abort.abort(e);
    server.close();
    proc.kill('SIGKILL');
    options.signal?.removeEventListener('abort', onAbort);
    if (options.signal?.aborted) throw options.signal.reason;
    if (isIpcError(e, 'TIMEOUT')) {
      throw new IpcError('TIMEOUT', withStderr(`${label} (${module}, pid ${proc.pid}) did not connect within ${timeout} ms; it was killed. Does it call connectToParent()?`), { cause: e });
    }
    if (isIpcError(e)) {
      if (e.message.startsWith(label)) throw e;
      throw new IpcError(e.code, withStderr(`${label} (${module}) failed to start: ${e.message}`), { cause: e });
    }
    throw new IpcError('OS', withStderr(`${label} (${module}) could not be started: ${(e as Error).message}`), { cause: e });
  }
  abort.abort();
  options.signal?.removeEventListener('abort', onAbort);
  server.close();

  const pid = proc.pid as number;
  if (!(first instanceof IpcSender)) {
    receiver.close();
    proc.kill('SIGKILL');
    throw new IpcError('MALFORMED', `${label} (${module}, pid ${pid}) connected but its first message is not a sender; use connectToParent() in the helper`);
  }
  const sender = first as IpcSender<Out>;
  const rx = receiver as IpcReceiver<In>;
  const schema = options.schema;
  trace('helper', '%s (pid %d) connected', label, pid);

  /** A DISCONNECTED caused by the helper's death says so. */
  const explain = async (e: unknown): Promise<never> => {
    if (isIpcError(e, 'DISCONNECTED')) {
      const status = exitStatus ?? (await Promise.race([proc.exited, new Promise<undefined>((r) => setTimeout(r, 200))]));
      if (status) {
        throw new IpcError('DISCONNECTED', withStderr(`${label} (pid ${pid}) ${describeExit(status)}`), { cause: e });
      }
    }
    throw e;
  };

  let closing: Promise<HelperExit> | undefined;
  const helper: Helper<Out, In> = {
    module,
    pid,
    runner,
    sender,
    exited: proc.exited,
    get exitStatus() {
      return exitStatus;
    },
    stdout: proc.stdout,
    stderr: pipeStderr ? null : proc.stderr,
    send(value: Out): void {
      try {
        sender.send(value);
      } catch (e) {
        if (isIpcError(e, 'DISCONNECTED') && exitStatus) {
          throw new IpcError('DISCONNECTED', `${label} (pid ${pid}) ${describeExit(exitStatus)}`, { cause: e });
        }
        throw e;
      }
    },
    async recv(recvOptions?: RecvOptions): Promise<In> {
      let value: In;
      try {
        value = await rx.recv(recvOptions);
      } catch (e) {
        return explain(e);
      }
      if (schema === undefined) return value;
      try {
        return await validate(schema, value);
      } catch (e) {
        closeHandles(value); // a refused message gives back the descriptors it carried
        throw e;
      }
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<In, void, undefined> {
      for (;;) {
        try {
          yield await helper.recv();
        } catch (e) {
          if (isIpcError(e, 'DISCONNECTED') || (closing !== undefined && isIpcError(e, 'CLOSED'))) return;
          throw e;
        }
      }
    },
    kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
      return proc.kill(signal);
    },
    close(): Promise<HelperExit> {
      if (closing) return closing;
      sender.close();
      rx.close();
      if (exitStatus) return (closing = Promise.resolve(exitStatus));
      const timer = setTimeout(() => proc.kill('SIGKILL'), closeGrace);
      closing = proc.exited.finally(() => clearTimeout(timer));
      return closing;
    },
    [Symbol.dispose](): void {
      void helper.close();
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await helper.close();
    },
  };
  // console.log(helper) / util.inspect: what it is and whether it still runs, not its closures.
  Object.defineProperty(helper, inspect.custom, {
    enumerable: false,
    value: (): string => {
      const state = exitStatus ? describeExit(exitStatus) : closing ? 'closing' : 'running';
      return `Helper { module: '${path.basename(module)}', pid: ${pid}, runner: '${runner}', state: '${state}' }`;
    },
  });
  return helper;
}

function timeoutAfter(ms: number, signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const t = setTimeout(() => reject(new IpcError('TIMEOUT', `did not start within ${ms} ms`)), ms);
    signal.addEventListener('abort', () => clearTimeout(t), { once: true });
  });
}

/**
 * In a helper started by {@link spawnHelper}: connects to the parent and returns this side of
 * the channel. `In` is what the helper receives, `Out` what it sends. Synchronous.
 *
 * Throws TypeError when the process was not started by `spawnHelper` (no server name in the
 * environment), and `IpcError` when the parent is gone.
 */
export function connectToParent<In = unknown, Out = unknown>(options: ConnectToParentOptions<In> = {}): ParentEndpoint<In, Out> {
  checkOptionNames(options, CONNECT_TO_PARENT_OPTIONS, 'connectToParent()');
  const name = options.name ?? process.env[HELPER_SERVER_ENV];
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(
      `connectToParent(): ${HELPER_SERVER_ENV} is not set; start this module with spawnHelper() from electron-ipc-channel`,
    );
  }
  if (options.name === undefined) delete process.env[HELPER_SERVER_ENV];
  if (options.schema !== undefined) assertStandardSchema(options.schema, 'schema');
  const toParent = IpcSender.connect<unknown>(name);
  const [tx, rx] = channel<In>({ ...options.limits, schema: options.schema });
  try {
    toParent.send(tx);
  } catch (e) {
    toParent.close();
    tx.close();
    rx.close();
    throw e;
  }
  // The parent holds its own copy now.
  tx.close();
  const sender = toParent as IpcSender<Out>;
  const endpoint: ParentEndpoint<In, Out> = {
    sender,
    receiver: rx,
    send: (value: Out) => sender.send(value),
    recv: (o?: RecvOptions) => rx.recv(o),
    [Symbol.asyncIterator]: () => rx[Symbol.asyncIterator](),
    close(): void {
      sender.close();
      rx.close();
    },
    [Symbol.dispose](): void {
      endpoint.close();
    },
  };
  return endpoint;
}
