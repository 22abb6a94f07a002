/**
 * The calling side of an RPC link in Node: `rpcClient(protocol, sender, receiver)`.
 *
 * The client itself is src/shared/rpc-client-core.ts (shared with the renderer's `rendererRpc`);
 * this module connects it to a sender and a receiver: one receive loop reads every frame the
 * server sends and hands it to the core, waiting while an asynchronous schema checks it (so a
 * server that floods the client waits in the kernel). Handles in dropped frames are closed.
 */
import { IpcError, isIpcError } from '../../shared/errors.js';
import type { Protocol } from '../../shared/protocol.js';
import { checkProtocol, clientOptions, createClientCore } from '../../shared/rpc-client-core.js';
import type { ClientCore, RpcClient, RpcClientOptions } from '../../shared/rpc-client-core.js';
import { closeHandles } from '../bridge-handles.js';
import { closeDropped, linkArgs, reporter } from './link.js';
import type { Link, RpcEndpointLike, RpcPairLike, RpcReceiverLike, RpcSenderLike } from './link.js';

export { checkProtocol } from '../../shared/rpc-client-core.js';
export type { CallOptions, EventsOptions, RpcClient, RpcClientOptions } from '../../shared/rpc-client-core.js';

/**
 * Creates the calling side of an RPC link over a sender (requests) and a receiver (replies), or
 * over an endpoint with both (`spawnHelper`'s `Helper`, `connectToParent`'s `ParentEndpoint`, an
 * `IpcServerConnection`).
 * The client owns the link from then on: `close()` closes it.
 *
 * ```ts
 * const files = rpcClient(Files, await spawnHelper('./files-helper.mjs'));
 * const bytes = await files.call('read', { path: 'a.txt' }, { timeout: 5000 });
 * ```
 */
export function rpcClient<P extends Protocol>(protocol: P, endpoint: RpcEndpointLike | RpcPairLike, options?: RpcClientOptions): RpcClient<P>;
export function rpcClient<P extends Protocol>(protocol: P, sender: RpcSenderLike, receiver: RpcReceiverLike, options?: RpcClientOptions): RpcClient<P>;
export function rpcClient<P extends Protocol>(protocol: P, ...args: unknown[]): RpcClient<P> {
  checkProtocol('rpcClient', protocol);
  const [link, rest] = linkArgs('rpcClient', args);
  const { timeout, maxPending, onError } = clientOptions('rpcClient', rest[0]);
  const report = reporter('RPC client', onError);
  const core = createClientCore(protocol, link, { timeout, maxPending, report, closeHandles, closeDropped });
  link.ref(false);
  void receiveLoop(core, link, report);
  return core.client;
}

/** Reads the server's frames until the link ends, one at a time. */
async function receiveLoop<P extends Protocol>(core: ClientCore<P>, link: Link, report: (e: Error) => void): Promise<void> {
  for (;;) {
    let frame: unknown;
    try {
      frame = await link.recv();
    } catch (e) {
      if (core.client.closed) return;
      if (isIpcError(e, 'MALFORMED') || isIpcError(e, 'TOO_LARGE') || isIpcError(e, 'INVALID')) {
        // One message refused by the receiver: its call cannot be known; it ends by its timeout or signal.
        report(new IpcError(e.code, `a message from the RPC server was refused, so the call it answered waits for its timeout or signal: ${e.message}`, { cause: e }));
        continue;
      }
      core.end(isIpcError(e) ? e : new IpcError('OS', `the RPC client's receiver failed: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      return;
    }
    if (core.client.closed) {
      closeHandles(frame);
      return;
    }
    const checking = core.receive(frame);
    if (checking) await checking.catch((e: unknown) => report(e instanceof Error ? e : new Error(String(e))));
  }
}
