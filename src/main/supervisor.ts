/**
 * Supervision of helper processes: `superviseHelper()` keeps one helper running (restarts it
 * with backoff when it crashes, reports every exit with its cause, gives up after too many
 * restarts), and `helperPool()` keeps N of them and spreads work over them.
 *
 * A restarted helper is a new process with new channels: nothing of the old one carries over.
 * Whatever talked to the dead one sees it die the ordinary way (its `recv()` rejects DISCONNECTED
 * with the exit status; receivers of channels whose senders lived in the helper get DISCONNECTED).
 * Code that wires channels to a helper does it in `onStart`, which runs for every instance
 * before it is handed out.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { IpcError, isIpcError } from '../shared/errors.js';
import { describeError, trace } from './debug.js';
import { checkTimeout } from './handles.js';
import { SPAWN_HELPER_OPTIONS, spawnHelper } from './helper.js';
import { checkOptionNames } from './ipc-server.js';
import type { Helper, HelperExit, SpawnHelperOptions } from './helper.js';

/** When and how often a crashed helper is started again. */
export interface RestartPolicy {
  /** Most restarts within `windowMs` (default 5); one more crash in that span and the supervisor gives up. */
  maxRestarts?: number;
  /** The span `maxRestarts` counts in, in ms (default 60 000). */
  windowMs?: number;
  /**
   * Delay before a restart: `{ initialMs = 100, factor = 2, maxMs = 10 000 }` gives 100, 200,
   * 400 ... ms for the 1st, 2nd, 3rd restart within the window; or a function of the restart's
   * number within the window (1-based) returning ms.
   */
  backoff?: { initialMs?: number; factor?: number; maxMs?: number } | ((attempt: number) => number);
  /**
   * `'failure'` (default): restart after a non-zero exit code, a signal, or a failed start; an
   * exit with code 0 ends the supervision. `'always'`: also after exit code 0.
   */
  on?: 'failure' | 'always';
}

/** Why an instance ended. */
export type HelperExitCause =
  /** The process exited by itself with `code`. */
  | 'exit'
  /** The process was killed by `signal`. */
  | 'signal'
  /** A new instance could not be started: see `error` (could not spawn, exited before connecting, TIMEOUT, onStart threw). */
  | 'start-failed'
  /** It exited because the supervisor (or pool) was closed. */
  | 'closed';

/** One exit of a supervised helper, given to `onExit`. */
export interface HelperExitEvent<Out = unknown, In = unknown> {
  /** The instance that ended; undefined when it never started. */
  helper: Helper<Out, In> | undefined;
  pid: number | undefined;
  cause: HelperExitCause;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** For 'start-failed': why. */
  error?: Error;
  /** Whether another instance will be started. */
  restart: boolean;
  /** Its delay in ms (0 when not restarting). */
  delayMs: number;
  /** Restarts within the policy's window before this one. */
  restarts: number;
}

/** Options of {@link superviseHelper}: those of `spawnHelper` (`signal` closes the supervisor) plus the policy and hooks. */
export interface SuperviseOptions<Out = unknown, In = unknown> extends SpawnHelperOptions<In> {
  restart?: RestartPolicy;
  /**
   * Runs for every instance (the first and each restarted one) before it is handed out by
   * `ready()`/`helper`: wire its channels here. A throw or rejection counts as a failed start.
   */
  onStart?: (helper: Helper<Out, In>, info: { restarts: number }) => void | Promise<void>;
  /** Runs after every exit, with its cause and what happens next. Must not throw (a throw is reported as a warning). */
  onExit?: (event: HelperExitEvent<Out, In>) => void;
}

/** The state of a {@link HelperSupervisor}. */
export type SupervisorState = 'running' | 'restarting' | 'stopped' | 'failed' | 'closed';

const POLICY_KEYS = ['maxRestarts', 'windowMs', 'backoff', 'on'];

function nonNegInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(v)}`);
  return v;
}

interface Policy {
  maxRestarts: number;
  windowMs: number;
  delay: (attempt: number) => number;
  always: boolean;
}

function resolvePolicy(p: RestartPolicy | undefined): Policy {
  if (p !== undefined && (typeof p !== 'object' || p === null)) throw new TypeError('restart must be an object: { maxRestarts, windowMs, backoff, on }');
  for (const k of Object.keys(p ?? {})) if (!POLICY_KEYS.includes(k)) throw new TypeError(`restart: unknown option '${k}'; the options are: ${POLICY_KEYS.join(', ')}`);
  const maxRestarts = nonNegInt(p?.maxRestarts, 'restart.maxRestarts', 5);
  const windowMs = checkTimeout(p?.windowMs, 'restart.windowMs') ?? 60_000;
  const on = p?.on ?? 'failure';
  if (on !== 'failure' && on !== 'always') throw new TypeError(`restart.on must be 'failure' or 'always', got ${String(on)}`);
  const b = p?.backoff;
  let delay: (attempt: number) => number;
  if (typeof b === 'function') {
    delay = (n) => {
      const ms = b(n);
      return typeof ms === 'number' && ms >= 0 && Number.isFinite(ms) ? ms : 0;
    };
  } else {
    if (b !== undefined && (typeof b !== 'object' || b === null)) throw new TypeError('restart.backoff must be { initialMs, factor, maxMs } or a function');
    for (const k of Object.keys(b ?? {})) if (!['initialMs', 'factor', 'maxMs'].includes(k)) throw new TypeError(`restart.backoff: unknown option '${k}'; the options are: initialMs, factor, maxMs`);
    const initial = checkTimeout(b?.initialMs, 'restart.backoff.initialMs') ?? 100;
    const max = checkTimeout(b?.maxMs, 'restart.backoff.maxMs') ?? 10_000;
    const factor = b?.factor ?? 2;
    if (typeof factor !== 'number' || !(factor >= 1) || !Number.isFinite(factor)) throw new RangeError(`restart.backoff.factor must be a finite number >= 1, got ${String(factor)}`);
    delay = (n) => Math.min(max, initial * factor ** (n - 1));
  }
  return { maxRestarts, windowMs, delay, always: on === 'always' };
}

function describe(e: HelperExit): string {
  if (e.signal) return `was killed by ${e.signal}`;
  if (e.code === null) return 'could not be started';
  return `exited with code ${e.code}`;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/**
 * Keeps one helper running: see {@link superviseHelper}. `helper` is the live instance (or
 * undefined while it restarts); `ready()` waits for one.
 */
export class HelperSupervisor<Out = unknown, In = unknown> implements AsyncDisposable {
  /** Path of the helper module. */
  readonly module: string;
  private current: Helper<Out, In> | undefined;
  private stateValue: SupervisorState = 'running';
  private readonly policy: Policy;
  private readonly restartTimes: number[] = [];
  private totalRestarts = 0;
  private readonly waiters: Array<Waiter<Helper<Out, In>>> = [];
  private failure: IpcError | undefined;
  private delayTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeDelay: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private looping: Promise<void> = Promise.resolve();
  private readonly label: string;
  private readonly spawnOptions: SpawnHelperOptions<In>;

  /** @internal Use superviseHelper(). */
  constructor(
    module: string,
    private readonly options: SuperviseOptions<Out, In>,
  ) {
    this.module = module;
    this.label = `helper ${path.basename(module)}`;
    this.policy = resolvePolicy(options.restart);
    const { restart: _r, onStart: _s, onExit: _e, signal: _sig, ...spawnOptions } = options;
    this.spawnOptions = spawnOptions;
  }

  /** The live instance, or undefined while restarting or after the end. */
  get helper(): Helper<Out, In> | undefined {
    return this.current;
  }

  /** Restarts so far (all of them, not only within the window). */
  get restarts(): number {
    return this.totalRestarts;
  }

  /**
   * `running` (an instance is live), `restarting` (waiting out the backoff, or starting),
   * `stopped` (exited with code 0 and `restart.on` is 'failure'), `failed` (gave up after too many
   * restarts), `closed`.
   */
  get state(): SupervisorState {
    return this.stateValue;
  }

  /**
   * The live instance, now or once (re)started. Rejects DISCONNECTED when the supervisor gave
   * up or stopped, CLOSED when it is closed, TIMEOUT, or the signal's reason.
   */
  ready(options: { timeout?: number; signal?: AbortSignal } = {}): Promise<Helper<Out, In>> {
    const timeout = checkTimeout(options.timeout);
    if (this.current) return Promise.resolve(this.current);
    const end = this.endError();
    if (end) return Promise.reject(end);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const w: Waiter<Helper<Out, In>> = {
        resolve: (h) => (done(), resolve(h)),
        reject: (e) => (done(), reject(e)),
      };
      const onAbort = (): void => w.reject(signal!.reason);
      if (timeout !== undefined) timer = setTimeout(() => w.reject(new IpcError('TIMEOUT', `${this.label} was not running again within ${timeout} ms`)), timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  private endError(): IpcError | undefined {
    if (this.stateValue === 'closed') return new IpcError('CLOSED', `the supervisor of ${this.label} is closed`);
    if (this.stateValue === 'failed' || this.stateValue === 'stopped') return this.failure;
    return undefined;
  }

  /** @internal Starts supervising `first` (already started and passed through onStart). */
  begin(first: Helper<Out, In>): void {
    this.publish(first);
    this.looping = this.loop(first).catch((e) => {
      // Not expected (every step handles its errors): end the supervision visibly.
      trace('supervisor', '%s: supervision failed: %s', this.label, describeError(e));
      this.finish('failed', new IpcError('DISCONNECTED', `the supervisor of ${this.label} failed: ${describeError(e)}`, { cause: e }));
    });
  }

  private publish(h: Helper<Out, In>): void {
    this.current = h;
    this.stateValue = 'running';
    for (const w of this.waiters.slice()) w.resolve(h);
  }

  private emit(ev: HelperExitEvent<Out, In>): void {
    trace('supervisor', '%s (pid %s): %s%s', this.label, ev.pid ?? '-', ev.cause === 'start-failed' ? `start failed: ${describeError(ev.error)}` : ev.cause === 'closed' ? 'exited on close' : describe(ev), ev.restart ? `; restart #${this.totalRestarts + 1} in ${ev.delayMs} ms` : '');
    try {
      this.options.onExit?.(ev);
    } catch (e) {
      process.emitWarning(`onExit of the supervisor of ${this.label} threw: ${describeError(e)}`, 'ElectronIpcChannelWarning');
    }
  }

  /** @internal Starts one instance and runs onStart; throws what failed (the instance is closed then). */
  async startOne(): Promise<Helper<Out, In>> {
    const h = await spawnHelper<Out, In>(this.module, this.spawnOptions);
    if (this.options.onStart) {
      try {
        await this.options.onStart(h, { restarts: this.totalRestarts });
      } catch (e) {
        h.kill('SIGKILL');
        await h.close();
        throw e;
      }
    }
    return h;
  }

  private async loop(first: Helper<Out, In>): Promise<void> {
    let h: Helper<Out, In> | undefined = first;
    let last: { exit: HelperExit; error?: Error } | undefined;
    for (;;) {
      let ev: HelperExitEvent<Out, In>;
      if (h) {
        const exit = await h.exited;
        this.current = undefined;
        // The dead instance's descriptors go now (pending receives have had their DISCONNECTED:
        // the sockets ended before the exit was reported); what it sent and nobody read is dropped.
        void h.close();
        last = { exit };
        ev = { helper: h, pid: h.pid, cause: exit.signal ? 'signal' : 'exit', code: exit.code, signal: exit.signal, restart: false, delayMs: 0, restarts: 0 };
      } else {
        ev = { helper: undefined, pid: undefined, cause: 'start-failed', code: null, signal: null, error: last?.error, restart: false, delayMs: 0, restarts: 0 };
      }
      if (this.closing) {
        if (h) this.emit({ ...ev, cause: 'closed' });
        return;
      }
      const now = performance.now();
      while (this.restartTimes.length > 0 && now - this.restartTimes[0]! > this.policy.windowMs) this.restartTimes.shift();
      ev.restarts = this.restartTimes.length;
      const clean = ev.cause === 'exit' && ev.code === 0;
      if (clean && !this.policy.always) {
        this.finish('stopped', new IpcError('DISCONNECTED', `${this.label} (pid ${ev.pid}) exited with code 0; it is not restarted (restart.on is 'failure')`));
        this.emit(ev);
        return;
      }
      if (this.restartTimes.length >= this.policy.maxRestarts) {
        const what = ev.cause === 'start-failed' ? `could not be restarted (${ev.error?.message ?? 'unknown error'})` : describe(ev);
        this.finish('failed', new IpcError('DISCONNECTED', `${this.label} ${what}; it was restarted ${this.restartTimes.length} times within ${this.policy.windowMs} ms (restart.maxRestarts ${this.policy.maxRestarts}), so the supervisor gave up`));
        this.emit(ev);
        return;
      }
      ev.restart = true;
      ev.delayMs = this.policy.delay(this.restartTimes.length + 1);
      this.stateValue = 'restarting';
      this.emit(ev);
      await new Promise<void>((resolve) => {
        this.wakeDelay = resolve;
        this.delayTimer = setTimeout(resolve, ev.delayMs);
      });
      this.delayTimer = undefined;
      this.wakeDelay = undefined;
      if (this.closing) return;
      this.restartTimes.push(performance.now());
      this.totalRestarts++;
      try {
        h = await this.startOne();
      } catch (e) {
        h = undefined;
        last = { exit: { code: null, signal: null }, error: e as Error };
        continue;
      }
      if (this.closing) {
        await h.close();
        this.emit({ helper: h, pid: h.pid, cause: 'closed', code: h.exitStatus?.code ?? null, signal: h.exitStatus?.signal ?? null, restart: false, delayMs: 0, restarts: this.restartTimes.length });
        return;
      }
      trace('supervisor', '%s restarted as pid %d (restart #%d)', this.label, h.pid, this.totalRestarts);
      this.publish(h);
    }
  }

  private finish(state: 'stopped' | 'failed', error: IpcError): void {
    this.stateValue = state;
    this.failure = error;
    for (const w of this.waiters.slice()) w.reject(error);
  }

  /**
   * Stops supervising: closes the live instance (see `Helper.close()`), cancels a pending restart,
   * rejects `ready()` calls with CLOSED; resolves once the instance exited. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const h = this.current;
    const wasLive = this.stateValue === 'running' || this.stateValue === 'restarting';
    this.stateValue = 'closed';
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.wakeDelay?.();
    for (const w of this.waiters.slice()) w.reject(new IpcError('CLOSED', `the supervisor of ${this.label} is closed`));
    this.closing = (async () => {
      if (h && wasLive) await h.close();
      // The loop ends once the instance exited, or a start in progress finished and was closed.
      await this.looping;
      this.current = undefined;
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  [inspect.custom](): string {
    return `HelperSupervisor { module: '${path.basename(this.module)}', state: '${this.stateValue}', pid: ${this.current?.pid ?? 'none'}, restarts: ${this.totalRestarts} }`;
  }
}

function modulePathOf(p: string | URL): string {
  const m = p instanceof URL ? fileURLToPath(p) : p;
  if (typeof m !== 'string' || m.length === 0) throw new TypeError('modulePath must be a path or a file: URL');
  return m;
}

const SUPERVISE_OPTIONS = [...SPAWN_HELPER_OPTIONS, 'restart', 'onStart', 'onExit'];

function checkSuperviseOptions(options: SuperviseOptions<unknown, unknown>, where: string, extra: string[] = []): void {
  checkOptionNames(options, [...SUPERVISE_OPTIONS, ...extra], where);
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  if (options.onStart !== undefined && typeof options.onStart !== 'function') throw new TypeError(`${where}: onStart must be a function`);
  if (options.onExit !== undefined && typeof options.onExit !== 'function') throw new TypeError(`${where}: onExit must be a function`);
}

/**
 * Starts `modulePath` like `spawnHelper` and keeps it running: when the helper exits (crash,
 * signal, non-zero code; with `restart.on: 'always'` also code 0) a new instance is started
 * after the backoff delay, `onStart` runs for it, and `onExit` hears of every exit with its
 * cause. After `restart.maxRestarts` restarts within `restart.windowMs` the next crash ends the
 * supervision (`state` 'failed', `ready()` rejects DISCONNECTED). `options.signal` closes it.
 *
 * Resolves once the first instance has started and passed `onStart`; rejects as `spawnHelper`
 * does (or with what onStart threw) when the first start fails: a helper that cannot start at
 * all is a setup error, not a crash, and is not retried.
 */
export async function superviseHelper<Out = unknown, In = unknown>(modulePath: string | URL, options: SuperviseOptions<Out, In> = {}): Promise<HelperSupervisor<Out, In>> {
  checkSuperviseOptions(options as SuperviseOptions<unknown, unknown>, 'superviseHelper()');
  const sup = new HelperSupervisor<Out, In>(modulePathOf(modulePath), options);
  options.signal?.throwIfAborted();
  const first = await sup.startOne();
  sup.begin(first);
  if (options.signal) {
    const onAbort = (): void => void sup.close();
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
  }
  trace('supervisor', 'supervising %s (pid %d)', modulePathOf(modulePath), first.pid);
  return sup;
}

/** Options of {@link helperPool}: those of `superviseHelper` for every member, and the size. */
export interface HelperPoolOptions<Out = unknown, In = unknown> extends SuperviseOptions<Out, In> {
  /** How many helpers (at least 1). */
  size: number;
}

/** Options of {@link HelperPool.use}. */
export interface PoolUseOptions {
  /** Rejects TIMEOUT (and aborts the work's signal) after this many ms, waiting for a helper included. */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * N supervised helpers and a way to spread work over them: see {@link helperPool}.
 */
export class HelperPool<Out = unknown, In = unknown> implements AsyncDisposable {
  private readonly busy = new Map<Helper<Out, In>, number>();
  /** Per helper, a signal aborted (with the DISCONNECTED error for its work) once it exited. */
  private readonly deaths = new WeakMap<Helper<Out, In>, AbortSignal>();
  private turn = 0;
  private closed = false;

  /** @internal Use helperPool(). */
  constructor(readonly supervisors: ReadonlyArray<HelperSupervisor<Out, In>>) {}

  /** How many helpers the pool keeps. */
  get size(): number {
    return this.supervisors.length;
  }

  /** The live helpers now (fewer than `size` while some restart). */
  get helpers(): Array<Helper<Out, In>> {
    return this.supervisors.map((s) => s.helper).filter((h): h is Helper<Out, In> => h !== undefined);
  }

  /** Work in flight on `helper` (calls of `use()` that have not settled). */
  inFlight(helper: Helper<Out, In>): number {
    return this.busy.get(helper) ?? 0;
  }

  private pick(): Helper<Out, In> | undefined {
    const n = this.supervisors.length;
    let best: Helper<Out, In> | undefined;
    let bestLoad = Infinity;
    // Least busy; among equals, the next one in turn (round-robin).
    for (let i = 0; i < n; i++) {
      const h = this.supervisors[(this.turn + i) % n]!.helper;
      if (!h || h.exitStatus) continue;
      const load = this.busy.get(h) ?? 0;
      if (load < bestLoad) {
        best = h;
        bestLoad = load;
      }
    }
    if (best) this.turn = (this.supervisors.findIndex((s) => s.helper === best) + 1) % n;
    return best;
  }

  /**
   * Runs `work` with the least busy live helper (round-robin among equally busy ones), waiting
   * for one when all are restarting. Resolves with what `work` returns. When that helper exits
   * while `work` runs, rejects DISCONNECTED naming the helper and its exit, and aborts the
   * `signal` given to `work` (the pool starts a replacement; call `use()` again to retry).
   * Rejects TIMEOUT after `options.timeout`, CLOSED when the pool is closed, DISCONNECTED when
   * every member gave up.
   */
  async use<R>(work: (helper: Helper<Out, In>, signal: AbortSignal) => R | Promise<R>, options: PoolUseOptions = {}): Promise<Awaited<R>> {
    if (typeof work !== 'function') throw new TypeError('use(work) takes a function (helper, signal) => result');
    const timeout = checkTimeout(options.timeout);
    if (this.closed) throw new IpcError('CLOSED', 'the helper pool is closed');
    const ac = new AbortController();
    const onOuterAbort = (): void => ac.abort(options.signal!.reason);
    if (options.signal?.aborted) throw options.signal.reason;
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const timer = timeout === undefined ? undefined : setTimeout(() => ac.abort(new IpcError('TIMEOUT', `the work did not finish within ${timeout} ms`)), timeout);
    try {
      let h = this.pick();
      if (!h) h = await this.waitForAny(ac.signal);
      this.busy.set(h, (this.busy.get(h) ?? 0) + 1);
      const helper = h;
      const death = this.deathOf(helper);
      const onDeath = (): void => ac.abort(death.reason);
      try {
        if (death.aborted) onDeath();
        else death.addEventListener('abort', onDeath, { once: true });
        const aborted = new Promise<never>((_, reject) => {
          if (ac.signal.aborted) reject(ac.signal.reason);
          ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
        });
        aborted.catch(() => undefined);
        const running = Promise.resolve().then(() => work(helper, ac.signal));
        running.catch(() => undefined); // when the abort wins, a later rejection of the work is not unhandled
        try {
          return await Promise.race([running, aborted]);
        } catch (e) {
          // The work usually sees the helper's sockets end (DISCONNECTED) before the process's exit
          // is reported: wait a little for the exit, to say which helper died and how.
          if (!death.aborted && isIpcError(e, 'DISCONNECTED')) await Promise.race([helper.exited, new Promise((r) => setTimeout(r, 200))]);
          if (death.aborted && e !== death.reason) throw new IpcError('DISCONNECTED', (death.reason as Error).message, { cause: e });
          throw e;
        }
      } finally {
        death.removeEventListener('abort', onDeath);
        const left = (this.busy.get(helper) ?? 1) - 1;
        if (left > 0) this.busy.set(helper, left);
        else this.busy.delete(helper);
      }
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  /** One exit watch per helper (not one per use(): a long-lived helper would collect them). */
  private deathOf(h: Helper<Out, In>): AbortSignal {
    let s = this.deaths.get(h);
    if (!s) {
      const ac = new AbortController();
      void h.exited.then((exit) => ac.abort(new IpcError('DISCONNECTED', `helper ${path.basename(h.module)} (pid ${h.pid}) ${describe(exit)} while this work was in flight; the pool starts a replacement`)));
      s = ac.signal;
      this.deaths.set(h, s);
    }
    return s;
  }

  private async waitForAny(signal: AbortSignal): Promise<Helper<Out, In>> {
    const live = this.supervisors.filter((s) => s.state === 'running' || s.state === 'restarting');
    if (live.length === 0) throw new IpcError('DISCONNECTED', 'every helper of the pool gave up (see onExit for their exits)');
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await Promise.any(live.map((s) => s.ready({ signal: ac.signal })));
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (this.closed) throw new IpcError('CLOSED', 'the helper pool is closed');
      throw new IpcError('DISCONNECTED', 'every helper of the pool gave up (see onExit for their exits)', { cause: e });
    } finally {
      ac.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Closes every member (see `HelperSupervisor.close()`); resolves once all exited. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.supervisors.map((s) => s.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  [inspect.custom](): string {
    const members = this.supervisors.map((s) => `${s.helper?.pid ?? s.state}${s.helper ? `:${this.busy.get(s.helper) ?? 0}` : ''}`);
    return `HelperPool { size: ${this.size}, live: ${this.helpers.length}, members (pid:in-flight): [${members.join(', ')}] }`;
  }
}

/**
 * Starts `size` supervised helpers of `modulePath` (each as {@link superviseHelper}, with the
 * same options; `onStart` and `onExit` run for every member) and resolves once all have
 * started; if one cannot start, the others are closed and it rejects with that error.
 * `pool.use((helper, signal) => ...)` spreads work over them.
 */
export async function helperPool<Out = unknown, In = unknown>(modulePath: string | URL, options: HelperPoolOptions<Out, In>): Promise<HelperPool<Out, In>> {
  if (typeof options !== 'object' || options === null) throw new TypeError('helperPool(modulePath, { size, ... }) needs options with a size');
  checkSuperviseOptions(options as SuperviseOptions<unknown, unknown>, 'helperPool()', ['size']);
  const { size, ...rest } = options;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw new RangeError(`helperPool: size must be a positive integer, got ${String(size)}`);
  resolvePolicy(rest.restart);
  const started = await Promise.allSettled(Array.from({ length: size }, () => superviseHelper<Out, In>(modulePath, rest)));
  const ok = started.filter((r): r is PromiseFulfilledResult<HelperSupervisor<Out, In>> => r.status === 'fulfilled').map((r) => r.value);
  const bad = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) {
    await Promise.all(ok.map((s) => s.close()));
    throw bad.reason;
  }
  return new HelperPool<Out, In>(ok);
}
