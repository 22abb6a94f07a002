/**
 * How objects that stand for descriptors (senders, receivers, file handles, shared memory) take
 * part in messages, and the bookkeeping every descriptor owner shares.
 */
import { constants as osConstants } from 'node:os';
import { threadId } from 'node:worker_threads';
import { IpcError } from '../shared/errors.js';
import type { Limits } from '../shared/limits.js';
import type { FdInfo } from './native.js';
import { native } from './native.js';

/** Implemented by every object that can travel inside a message as a descriptor. */
export const kHandle = Symbol('electron-ipc-channel.handle');
/** Moves the descriptor out of a handle that is sent by transfer; the object becomes closed. */
export const kDetach = Symbol('electron-ipc-channel.detach');

export interface HandleInfo {
  /** Kind tag written into the message. */
  kind: string;
  /** The descriptor, borrowed: it stays owned by the object. */
  fd: number;
  /** True when sending moves the object (a receiver): the sender takes the descriptor over. */
  move: boolean;
}

/**
 * The kind tag of a handle class whose tag never changes (`F` for every file handle), on its
 * prototype: the encoder reads it instead of making a {@link HandleInfo} (SenderCore.write makes
 * the one a send needs, after the encode, so a handle closed meanwhile is still refused).
 */
export const kKindTag = Symbol('electron-ipc-channel.kindTag');

export interface HandleSource {
  [kHandle](): HandleInfo;
  [kDetach]?(): number;
  readonly [kKindTag]?: string;
}

export function isHandleSource(v: object): v is HandleSource {
  return typeof (v as Partial<HandleSource>)[kHandle] === 'function';
}

/**
 * What a reviver knows about the message its descriptor came with: the receiving endpoint's
 * limits, and running totals that revivers of one message share (shared memory accepted so far).
 */
export interface ReviveContext {
  /** Every limit of the receiver the message arrived on (see `Limits` in src/shared/limits.ts). */
  readonly limits: Readonly<Limits>;
  /** Bytes of shared memory (`M` and `P` handles) already accepted in this message. */
  sharedBytes: number;
  /** Secrets a moved receiver must see in its switch packets (kind tag suffixes), else empty. */
  secrets: readonly string[];
}

/**
 * Builds the object for a received descriptor of one kind; it owns `fd` from then on, also when
 * it throws (then it has closed `fd` and anything else it opened).
 */
export type HandleReviver = (fd: number, info: FdInfo, ctx: ReviveContext) => object;

interface KindEntry {
  revive: HandleReviver;
  /**
   * Checks that the descriptor is of the right kind; returns what is wrong (the message becomes
   * MALFORMED), or undefined. It may also throw an IpcError (e.g. TOO_LARGE); either way the
   * caller still owns and closes the descriptor. Once `revive` is called, it owns it.
   */
  check: (info: FdInfo, ctx: ReviveContext, fd: number) => string | undefined;
  /**
   * Optional, for a kind whose check needs only fdInfo's packed flags and whose reviver does not
   * read the FdInfo (file handles): the check on the packed integer (see
   * NativeBinding.fdInfo), and the reviver without an FdInfo. Used where the addon has the packed
   * form (POSIX); `check` and `revive` elsewhere.
   */
  packed?: { check: (packed: number) => string | undefined; revive: (fd: number) => object };
}

const kinds = new Map<string, KindEntry>();
/** Changes whenever a kind is registered (so that a lookup remembered by a caller is known stale). */
export let handleKindsVersion = 0;

export function registerHandleKind(kind: string, check: KindEntry['check'], revive: HandleReviver, packed?: KindEntry['packed']): void {
  kinds.set(kind, { check, revive, packed });
  handleKindsVersion++;
}

export function handleKind(kind: string): KindEntry | undefined {
  return kinds.get(kind);
}

/** Safety net: descriptors of endpoints that are garbage collected without close(). */
export interface Disposer {
  fd: number;
  release?: () => void;
}
/** What the safety net closes: a Disposer, or a bare descriptor (no object per handle). */
type Held = Disposer | number;
const finalizer = new FinalizationRegistry<Held>((d) => {
  try {
    if (typeof d === 'number') {
      native().close(d);
      return;
    }
    d.release?.();
    if (d.fd >= 0) native().close(d.fd);
  } catch {
    // The environment may be going away; the addon's cleanup hook closes what is left.
  }
});

/*
 * The GC safety net is registered late, for the owners still open after a while (as the
 * multiplexed endpoints do, src/main/mux/endpoints.ts): most descriptor owners live for one
 * message or one turn (a received file handle closed at once, a reply channel), and a
 * FinalizationRegistry cell costs more than the register/unregister calls: V8 allocates it in the
 * old generation, keys it by the owner's identity hash in a number dictionary, and the cell keeps
 * its target alive through every young collection until the next full one (weak references from
 * old space are strong for the scavenger), registered or not. So a new owner waits in `fresh`
 * (held strongly: a dropped one is collected, and its descriptor closed, at most
 * 2 x REGISTER_AFTER_MS later than before) and is registered by the pass after the one that saw
 * it arrive; one closed before leaves the map and is never registered. The pass's timer is
 * unref'd: it never keeps a process alive. Within one synchronous run nothing changes: the
 * registry's cleanup callbacks only run between turns anyway.
 */
const REGISTER_AFTER_MS = 25;
/**
 * Past this many waiting owners (a long synchronous loop, no timer runs), a pass runs at once:
 * at most 2 x FRESH_MAX dropped owners (and their descriptors) wait for registration.
 */
const FRESH_MAX = 1024;
/** Owners made since the last pass, and those already waiting at it (registered at the next). */
let fresh = new Map<object, Held>();
let aging = new Map<object, Held>();
let passTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Where an object waits in a {@link GcWaitList} (the list sets and reads both fields): the array
 * and the index there, `gcWait` undefined once it left (registered, or closed before).
 */
export interface GcWaiting {
  /** @internal */
  gcWait: WaitArray | undefined;
  /** @internal */
  gcAt: number;
}
/** @internal One generation of a GcWaitList: the objects waiting in it, in no order. */
export interface WaitArray {
  items: GcWaiting[];
}

/**
 * The deferred GC registration of objects that are made in great numbers and mostly closed
 * within a turn or two (see above): descriptor owners of one descriptor (OwnedDescriptor: one per
 * received descriptor) and the multiplexed endpoints (src/main/mux/endpoints.ts). Each waiting
 * object knows its array and index (no Map: an identity hash, an ordered-hash insert and delete
 * per object cost more than the rest of an owner's bookkeeping, and on the multiplexed endpoints
 * a Map measured 4 full collections instead of 1); closing it takes it out (the last one moves
 * into its slot), so that a closed object is not kept alive (and promoted) by the array, and the
 * array stays as long as the objects still open (emptied slots instead made it grow with every
 * object made between two passes: 8-17 % more instructions per logical channel, measured). A pass registers the objects still in the
 * older array, then the newer one becomes the older: an object is registered by the pass after
 * the one that saw it arrive, REGISTER_AFTER_MS to twice that after it was made. Past `maxFresh`
 * waiting objects (a long synchronous loop, no timer runs), a pass runs at once. The timer is
 * unref'd: it never keeps a process alive.
 */
export class GcWaitList<T extends GcWaiting> {
  private fresh: WaitArray = { items: [] };
  private aging: WaitArray = { items: [] };
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly maxFresh: number,
    /** Registers an object still open when its pass comes (it left the list already). */
    private readonly register: (x: T) => void,
  ) {}

  /** Puts a new object on the list. */
  add(x: T): void {
    const w = this.fresh;
    x.gcWait = w;
    x.gcAt = w.items.length;
    w.items.push(x);
    if (w.items.length > this.maxFresh) this.pass();
    else if (this.timer === undefined) this.schedule();
  }

  /** Takes `x` off the list: true if it was waiting, false if it was not (registered: unregister it). */
  remove(x: T): boolean {
    const w = x.gcWait;
    if (w === undefined) return false;
    const last = w.items.pop()!;
    if (last !== x) {
      w.items[x.gcAt] = last;
      last.gcAt = x.gcAt;
    }
    x.gcWait = undefined;
    return true;
  }

  private schedule(): void {
    this.timer = setTimeout(this.pass, REGISTER_AFTER_MS);
    this.timer.unref();
  }

  private readonly pass = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const old = this.aging;
    this.aging = this.fresh;
    this.fresh = old;
    const items = old.items as T[];
    for (let i = 0; i < items.length; i++) {
      const x = items[i]!;
      x.gcWait = undefined;
      this.register(x);
    }
    items.length = 0;
    if (this.aging.items.length > 0) this.schedule();
  };
}

/** Owners of one descriptor waiting for the safety net (see GcWaitList). */
const waitingOwned = new GcWaitList<OwnedDescriptor>(FRESH_MAX, (owner) => registerOwned(owner));
/** Set by OwnedDescriptor's static block: registers an owner that is still open. */
let registerOwned: (owner: OwnedDescriptor) => void;

function registerPass(): void {
  if (passTimer !== undefined) clearTimeout(passTimer);
  passTimer = undefined;
  const old = aging;
  aging = fresh;
  fresh = old;
  for (const [owner, held] of old) finalizer.register(owner, held, owner);
  old.clear();
  if (aging.size > 0) schedulePass();
}

function schedulePass(): void {
  if (passTimer !== undefined) return;
  passTimer = setTimeout(registerPass, REGISTER_AFTER_MS);
  passTimer.unref();
}

/**
 * Puts `owner` under the GC safety net: collected without {@link untrackForGc}, `d` is released
 * (its `release`, then its descriptor closed, or the descriptor `d` closed). `d` must not reach
 * `owner`. Registration is deferred (see above): call {@link untrackForGc} when the owner closes.
 */
export function trackForGc(owner: object, d: Held): void {
  fresh.set(owner, d);
  if (fresh.size > FRESH_MAX) registerPass();
  else schedulePass();
}

/** Takes `owner` out of the GC safety net (it closed, or handed its descriptor over). */
export function untrackForGc(owner: object): void {
  if (!fresh.delete(owner) && !aging.delete(owner)) finalizer.unregister(owner);
}

/**
 * Base of the objects that own exactly one descriptor (file handles, shared memory, pool
 * segments): the object owns it from its constructor on; `close()` is idempotent, releases what
 * the subclass holds besides ({@link OwnedDescriptor.releaseOwned}) and closes the descriptor;
 * an object collected without `close()` has its descriptor closed by the GC safety net. No
 * object is made per handle besides the handle itself when there is no `release`: the safety
 * net then holds the descriptor's number.
 */
export abstract class OwnedDescriptor implements HandleSource, Disposable, GcWaiting {
  #fd: number;
  /** What the GC safety net also releases (see the constructor), or undefined. */
  readonly #release: (() => void) | undefined;
  /** @internal Where this owner waits for the safety net (see GcWaitList), until a pass registers it. */
  gcWait: WaitArray | undefined = undefined;
  /** @internal */
  gcAt = 0;

  static {
    registerOwned = (owner) => {
      const fd = owner.#fd;
      if (fd < 0) return; // closed since (its slot is normally emptied then)
      const release = owner.#release;
      finalizer.register(owner, release === undefined ? fd : { fd, release }, owner);
    };
  }

  /**
   * Takes ownership of `fd`. `release`, if given, also runs from the GC safety net, so it must
   * not reach this object (or the object would never be collected).
   */
  protected constructor(fd: number, release?: () => void) {
    this.#fd = fd;
    this.#release = release;
    waitingOwned.add(this);
  }

  /** True once closed (or sent by transfer). */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The descriptor, or -1 once closed or handed over. */
  protected get ownedFd(): number {
    return this.#fd;
  }

  /** The descriptor; throws `IpcError('CLOSED')` saying "`what` is closed" once closed. */
  protected openFd(what: string): number {
    if (this.#fd < 0) throw closedError(what);
    return this.#fd;
  }

  /** Closes the descriptor (after {@link OwnedDescriptor.releaseOwned}). Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.forget();
    native().close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Hands the descriptor over without closing it (a handle sent by transfer): what else the
   * object holds is released and the object is closed. Returns the descriptor.
   */
  protected detachFd(): number {
    const fd = this.#fd;
    this.forget();
    return fd;
  }

  /** What the subclass holds besides the descriptor, released on close and on transfer. Default: nothing. */
  protected releaseOwned(): void {}

  // Out of the safety net first: a waiting owner leaves its slot (it is never registered); a
  // registered one is unregistered, after which its held value (the descriptor's number, or a
  // Disposer naming it) is never used, so it need not be cleared.
  private forget(): void {
    if (!waitingOwned.remove(this) && this.#fd >= 0) finalizer.unregister(this);
    this.releaseOwned();
    this.#fd = -1;
  }

  /** @internal What the message writer needs to send it. */
  abstract [kHandle](): HandleInfo;
}

/** Throws if the endpoint is used from another thread than the one that created or received it. */
export function assertThread(ownerThread: number, what: string): void {
  if (ownerThread !== threadId) {
    throw new Error(`${what} belongs to thread ${ownerThread} and cannot be used from thread ${threadId}; send it through a channel instead`);
  }
}

export { threadId as currentThreadId };

export function closedError(what: string): IpcError {
  return new IpcError('CLOSED', `${what} is closed`);
}

/** Checks a `timeout` option (see src/shared/deadline.ts, which waits use to arm it). */
export { checkTimeout } from '../shared/deadline.js';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);

/** The name of an errno value (`EPERM` for 1); `E<n>` only for a number this platform does not name. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return errnoNames.get(n) ?? `E${n}`;
}

/** An IpcError of code OS for a negated errno a native call returned. */
export function errnoError(negErrno: number, syscall: string, doing: string): IpcError {
  const errno = Math.abs(negErrno);
  return new IpcError('OS', `${doing}: ${errnoName(errno)}`, { errno, syscall });
}

/** Maps an errno-carrying Error from the addon to an IpcError of code OS. */
export function osError(e: unknown, doing: string): IpcError {
  const err = e as { errno?: number; syscall?: string; code?: string; message?: string };
  if (typeof err?.errno === 'number') {
    const code = err.code && !/^E\d+$/.test(err.code) ? err.code : errnoName(err.errno);
    return new IpcError('OS', `${doing}: ${code} (${err.message ?? ''})`, {
      errno: Math.abs(err.errno),
      syscall: err.syscall,
      cause: e,
    });
  }
  return e instanceof IpcError ? e : new IpcError('OS', `${doing}: ${err?.message ?? String(e)}`, { cause: e });
}
