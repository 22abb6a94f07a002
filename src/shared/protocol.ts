/**
 * Typed protocols: one definition, imported by both sides of an RPC link, from which the client
 * and the server get their types. Plain data and types only; imports neither Node nor Electron.
 *
 * ```ts
 * export const Files = defineProtocol({
 *   methods: {
 *     read: { input: z.object({ path: z.string() }), output: z.instanceof(Uint8Array) },
 *     count: method<{ dir: string }, number>(), // typed, not validated
 *   },
 *   events: { changed: z.object({ path: z.string() }) },
 * });
 * ```
 */
import type { StandardSchemaV1 } from './validate.js';
import { isStandardSchema } from './validate.js';

/** Phantom types of a method declared with {@link method} (never present at run time). */
export interface MethodTypes<In, Out, Progress> {
  input: In;
  output: Out;
  progress: Progress;
}

/**
 * One method of a protocol. Each schema is optional: `input` is checked by the server before the
 * handler runs, `output` and `progress` by the client on what the server sends.
 */
export interface MethodDef {
  readonly input?: StandardSchemaV1;
  readonly output?: StandardSchemaV1;
  readonly progress?: StandardSchemaV1;
  /** Types given with `method<In, Out, Progress>()`; type-level only. */
  readonly '~types'?: MethodTypes<unknown, unknown, unknown>;
}

/** An event of a protocol: a Standard Schema (checked by the client) or `event<T>()` (typed only). */
export type EventDef = StandardSchemaV1 | { readonly '~types'?: { payload: unknown } };

/** What {@link defineProtocol} returns: the definition, checked and frozen. */
export interface Protocol<M extends Record<string, MethodDef> = Record<string, MethodDef>, E extends Record<string, EventDef> = Record<string, EventDef>> {
  readonly methods: Readonly<M>;
  readonly events: Readonly<E>;
}

/**
 * Declares a protocol for `rpcClient()` and `serve()`. Returns the definition frozen, with
 * `events` defaulting to `{}`.
 *
 * Throws `TypeError` when `methods` is missing, a method is not an object, a method has keys other
 * than `input`, `output` and `progress`, a schema or event is not a Standard Schema (or
 * `event()`), or a name is empty, longer than 128 characters or `__proto__`.
 */
export function defineProtocol<const M extends Record<string, MethodDef>, const E extends Record<string, EventDef> = {}>(definition: {
  methods: M;
  events?: E;
}): Protocol<M, E> {
  if (typeof definition !== 'object' || definition === null) throw new TypeError('defineProtocol: expected { methods, events? }');
  for (const key of Object.keys(definition)) {
    if (key !== 'methods' && key !== 'events') throw new TypeError(`defineProtocol: unknown key "${key}"; the known ones are methods, events`);
  }
  const { methods, events = {} as E } = definition;
  if (typeof methods !== 'object' || methods === null) throw new TypeError('defineProtocol: methods must be an object of method definitions');
  if (typeof events !== 'object' || events === null) throw new TypeError('defineProtocol: events must be an object of schemas or event<T>()');
  const outMethods: Record<string, MethodDef> = {};
  for (const [name, def] of Object.entries(methods)) {
    checkName(name, 'method');
    if (typeof def !== 'object' || def === null) throw new TypeError(`defineProtocol: method "${name}" must be an object ({ input?, output?, progress? } or method<In, Out>())`);
    for (const key of Object.keys(def)) {
      if (key !== 'input' && key !== 'output' && key !== 'progress') {
        throw new TypeError(`defineProtocol: method "${name}" has an unknown key "${key}"; the known ones are input, output, progress`);
      }
      if (!isStandardSchema((def as Record<string, unknown>)[key])) {
        throw new TypeError(`defineProtocol: ${name}.${key} must be a Standard Schema (zod 4, valibot, arktype...)`);
      }
    }
    outMethods[name] = Object.freeze({ ...def });
  }
  const outEvents: Record<string, EventDef> = {};
  for (const [name, def] of Object.entries(events)) {
    checkName(name, 'event');
    const plain = typeof def === 'object' && def !== null && Object.keys(def).length === 0;
    if (!plain && !isStandardSchema(def)) throw new TypeError(`defineProtocol: event "${name}" must be a Standard Schema or event<T>()`);
    outEvents[name] = def;
  }
  return Object.freeze({ methods: Object.freeze(outMethods) as M, events: Object.freeze(outEvents) as E });
}

function checkName(name: string, what: string): void {
  if (name === '' || name.length > 128 || name === '__proto__') {
    throw new TypeError(`defineProtocol: ${what} name ${JSON.stringify(name.slice(0, 40))} must be 1 to 128 characters and not __proto__`);
  }
}

/**
 * A method without schemas, typed by its generics: `In` is what `call()` takes and the handler
 * gets, `Out` what the handler returns and `call()` resolves with, `Progress` what the handler
 * reports. Nothing is validated: use schemas for input from a peer you do not trust.
 */
export function method<In = void, Out = void, Progress = never>(): MethodDef & { readonly '~types'?: MethodTypes<NoInfer<In>, NoInfer<Out>, NoInfer<Progress>> } {
  return {};
}

/** An event without a schema, typed by `T` (not validated). */
export function event<T>(): { readonly '~types'?: { payload: NoInfer<T> } } {
  return {};
}

type Phantom<M> = M extends { readonly '~types'?: infer T } ? Exclude<T, undefined> : never;
type In<S> = S extends StandardSchemaV1<infer I, unknown> ? I : unknown;
type Out<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;
type Pick3<M, K extends 'input' | 'output' | 'progress', Side extends 'in' | 'out', Fallback> = M extends { readonly [P in K]: infer S }
  ? Side extends 'in'
    ? In<S>
    : Out<S>
  : [Phantom<M>] extends [never]
    ? Fallback
    : Phantom<M> extends MethodTypes<unknown, unknown, unknown>
      ? Phantom<M>[K]
      : Fallback;

/** What `client.call()` takes for method `M` (the input schema's input type). */
export type CallInput<M> = Pick3<M, 'input', 'in', unknown>;
/** What the handler of `M` receives (the input schema's output type). */
export type HandlerInput<M> = Pick3<M, 'input', 'out', unknown>;
/** What the handler of `M` returns (the output schema's input type). */
export type HandlerOutput<M> = Pick3<M, 'output', 'in', unknown>;
/** What `client.call()` resolves with for `M` (the output schema's output type). */
export type CallOutput<M> = Pick3<M, 'output', 'out', unknown>;
/** What the handler of `M` passes to `progress()`. */
export type HandlerProgress<M> = Pick3<M, 'progress', 'in', unknown>;
/** What `onProgress` receives for `M`. */
export type CallProgress<M> = Pick3<M, 'progress', 'out', unknown>;
/** What the server's `emit()` takes for event `E`. */
export type EmitPayload<E> = E extends StandardSchemaV1 ? In<E> : E extends { readonly '~types'?: { payload: infer T } } ? T : unknown;
/** What a client listener receives for event `E`. */
export type EventPayload<E> = E extends StandardSchemaV1 ? Out<E> : E extends { readonly '~types'?: { payload: infer T } } ? T : unknown;

/** Method names of a protocol. */
export type MethodName<P extends Protocol> = keyof P['methods'] & string;
/** Event names of a protocol. */
export type EventName<P extends Protocol> = keyof P['events'] & string;

/**
 * Codes the RPC layer puts on an {@link RpcError}. A handler may throw its own: any `code`
 * property of 1 to 64 letters, digits, `_`, `-` or `.` crosses the boundary as is.
 * - `INTERNAL`: the handler threw an error without such a code (its message still crosses).
 * - `UNKNOWN_METHOD`: the server's protocol has no method of that name.
 * - `INVALID`: the input failed the server's schema (`issues` lists why).
 * - `BUSY`: the server runs `maxConcurrentCalls` calls already, or (`remote: false`) this client
 *   has `maxPendingCalls` calls waiting.
 * - `CANCELLED`: the reason of a handler's `signal` when the caller cancelled or timed out.
 * - `UNSERIALIZABLE`: the handler's result cannot be sent.
 */
export type RpcErrorCode = 'INTERNAL' | 'UNKNOWN_METHOD' | 'INVALID' | 'BUSY' | 'CANCELLED' | 'UNSERIALIZABLE' | (string & {});

/** One validation issue as it crosses the boundary. */
export interface RpcIssue {
  message: string;
  path?: Array<string | number>;
}

/** Brand shared by every copy of this module (the ESM and CommonJS builds loaded in one process). */
const RPC_ERROR_BRAND = Symbol.for('electron-ipc-channel.RpcError');

/**
 * An error reported by the other side of an RPC link (`remote: true`): a handler threw, or the
 * server refused the call. It carries a code and a message, never the remote stack unless the
 * server opted in with `exposeStack`. The failures of the link itself (TIMEOUT, DISCONNECTED,
 * CLOSED, a reply that fails the client's schema) are `IpcError`s instead.
 */
export class RpcError extends Error {
  /**
   * `instanceof RpcError` holds for an RpcError of either build (ESM or CommonJS) of this
   * package loaded in the same process; subclasses test as usual.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== RpcError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RPC_ERROR_BRAND] === true;
  }

  /** Stable machine-readable code (see {@link RpcErrorCode}). */
  readonly code: RpcErrorCode;
  /** The method called. */
  readonly method: string;
  /** True when the other side reported it, false for a refusal made in this process. */
  readonly remote: boolean;
  /** For code `INVALID`: the issues the server's schema reported. */
  readonly issues?: ReadonlyArray<RpcIssue>;
  /** The handler's stack, only when the server was started with `exposeStack: true`. */
  readonly remoteStack?: string;

  constructor(code: RpcErrorCode, message: string, options: { method?: string; remote?: boolean; issues?: ReadonlyArray<RpcIssue>; remoteStack?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RpcError';
    Object.defineProperty(this, RPC_ERROR_BRAND, { value: true });
    this.code = code;
    this.method = options.method ?? '';
    this.remote = options.remote ?? false;
    if (options.issues !== undefined) this.issues = options.issues;
    if (options.remoteStack !== undefined) this.remoteStack = options.remoteStack;
  }
}

/** True when `e` is an {@link RpcError}, optionally with the given code. */
export function isRpcError(e: unknown, code?: RpcErrorCode): e is RpcError {
  return e instanceof RpcError && (code === undefined || e.code === code);
}
