/**
 * The renderer's RPC client: the shared client core (src/shared/rpc-client-core.ts) driven over
 * one channel of the preload bridge (`window[name]`, a `RendererChannel`), talking to
 * `serveToWindow()` in main. `rendererRpc()` in src/preload/index.ts is its entry point.
 *
 * Frames arrive through the channel's `onMessage` and are handed to the core one at a time (an
 * asynchronous schema holds the next ones back, so order is kept); the leg's end (`onEnd`) rejects
 * the calls in flight with DISCONNECTED once the frames that came before it are handled; a frame
 * main refused (`onError`, with the frame's `id`) rejects that call at once. Errors that crossed
 * the context bridge keep only their message, which ends with the code: they are turned back into
 * `IpcError`s. Imports neither Node nor Electron.
 */
import { IpcError, isIpcError } from './errors.js';
import type { IpcErrorCode } from './errors.js';
import type { Protocol } from './protocol.js';
import { checkProtocol, clientOptions, createClientCore } from './rpc-client-core.js';
import type { RpcClient, RpcClientOptions } from './rpc-client-core.js';
import { onceReporter } from './rpc-frames.js';

/** The part of the preload's `RendererChannel` (`window[name]`) the renderer's RPC client uses. */
export interface RpcBridgeChannel {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): () => void;
  onError(listener: (rejected: { code: string; message: string; id?: number }) => void): () => void;
  onEnd(listener: (reason: string) => void): () => void;
}

/** Per channel: whether a client uses it now, and the id the next client starts from. */
const channels = new WeakMap<object, { live: boolean; nextId: number }>();

const CODES: readonly IpcErrorCode[] = ['DISCONNECTED', 'TIMEOUT', 'CLOSED', 'MALFORMED', 'TOO_LARGE', 'UNSERIALIZABLE', 'INVALID', 'OS'];

/**
 * An RPC client for `protocol` over a bridge channel. `label` names the channel in messages
 * (`window.files`). One client per channel at a time: `TypeError` while another one is open.
 * The client owns the channel's messages until it is closed; `close()` cancels its calls in main
 * and unsubscribes its events there (the channel itself stays open for a later client).
 */
export function rpcOverBridge<P extends Protocol>(protocol: P, channel: RpcBridgeChannel, options: RpcClientOptions | undefined, label: string): RpcClient<P> {
  checkProtocol('rendererRpc', protocol);
  const ch = channel as Partial<RpcBridgeChannel> | null;
  if (typeof ch !== 'object' || ch === null || typeof ch.send !== 'function' || typeof ch.onMessage !== 'function' || typeof ch.onError !== 'function') {
    throw new TypeError(`rendererRpc: ${label} is not a bridge channel (window[name] as exposeIpcChannels(name) defines it)`);
  }
  if (typeof ch.onEnd !== 'function') {
    throw new TypeError(`rendererRpc: ${label} has no onEnd(): its preload is from an older electron-ipc-channel; rebuild the preload with this version`);
  }
  const { timeout, maxPending, onError } = clientOptions('rendererRpc', options);
  let state = channels.get(channel);
  if (state?.live) throw new TypeError(`rendererRpc: ${label} already has an RPC client; share that one, or close() it first`);
  if (!state) {
    state = { live: false, nextId: 1 };
    channels.set(channel, state);
  }
  const entry = state;
  entry.live = true;
  const report = onceReporter(`RPC client ${label}`, onError, (message) => console.error(message));

  const offs: Array<() => void> = [];
  // Frames wait here only while an asynchronous schema checks an earlier one.
  const queue: unknown[] = [];
  let draining = false;
  let ending: IpcError | undefined;
  const release = (): void => {
    for (const off of offs.splice(0)) {
      try {
        off();
      } catch {
        /* the channel is gone */
      }
    }
    queue.length = 0;
  };
  const core = createClientCore(
    protocol,
    {
      send(frame) {
        try {
          channel.send(frame);
        } catch (e) {
          throw asIpcError(e, label);
        }
      },
      close() {
        entry.live = false;
        entry.nextId = core.nextId;
        release();
      },
    },
    { timeout, maxPending, report, farewell: true, firstId: entry.nextId },
  );

  const drain = async (): Promise<void> => {
    draining = true;
    while (queue.length > 0 && !core.client.closed) {
      const checking = core.receive(queue.shift());
      if (checking) await checking.catch((e: unknown) => report(e instanceof Error ? e : new Error(String(e))));
    }
    draining = false;
    if (ending) core.end(ending);
  };

  offs.push(
    channel.onMessage((frame) => {
      if (core.client.closed) return;
      queue.push(frame);
      if (!draining) void drain();
    }),
    channel.onError((rejected) => {
      const code = String(rejected?.code);
      const message = String(rejected?.message);
      const id = rejected?.id;
      if (typeof id === 'number' && core.refuse(id, code, `main refused this call: ${message}`)) return;
      report(new Error(`${label}: main rejected a message: ${message} (${code})`));
    }),
    channel.onEnd((reason) => {
      ending = new IpcError('DISCONNECTED', `${label}: ${String(reason)}`);
      if (!draining) core.end(ending);
    }),
  );
  // onEnd runs at once on a leg that is already over: the client ended before its listeners were kept.
  if (core.client.closed) release();
  return core.client;
}

/** What `send` threw, as an IpcError: the code from the message's end when it crossed the context bridge. */
function asIpcError(e: unknown, label: string): unknown {
  if (isIpcError(e)) return e;
  const message = String((e as { message?: unknown } | null)?.message ?? e);
  const m = /\(([A-Z_]+)\)$/.exec(message);
  if (m && (CODES as readonly string[]).includes(m[1]!)) return new IpcError(m[1] as IpcErrorCode, message, { cause: e });
  return new IpcError('UNSERIALIZABLE', `${label}: the call cannot be sent to main: ${message}`, { cause: e });
}
