/**
 * IpcOneShotServer: bootstraps a channel into another process by a name (the path of a
 * listening Unix socket in a fresh private directory) that the other process connects to.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IpcError } from '../shared/errors.js';
import { IpcReceiver } from './channel.js';
import type { ReceiverOptions } from './channel.js';
import { checkTimeout, closedError, osError, trackForGc, untrackForGc } from './handles.js';
import type { Disposer } from './handles.js';
import { EAGAIN, POLL_READABLE, native } from './native.js';
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

/** Directories of live servers, removed at process exit. */
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function removeAtExit(dir: string): void {
  liveDirs.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    });
  }
}

function removeDir(dir: string): void {
  liveDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
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
    this.dir = path.join(tmpdir(), `eipc-${randomBytes(16).toString('hex')}`);
    try {
      mkdirSync(this.dir, { mode: 0o700 });
    } catch (e) {
      throw osError(e, `creating the private directory ${this.dir}`);
    }
    removeAtExit(this.dir);
    this.name = path.join(this.dir, 's');
    try {
      this.fd = native().listen(this.name);
    } catch (e) {
      removeDir(this.dir);
      throw osError(e, `listening at ${this.name}`);
    }
    const dir = this.dir;
    // The release callback must not reach `this`: the registry would then keep the server alive.
    // (A poller only exists during accept(), and its callback keeps the server reachable.)
    this.disposer = { fd: this.fd, release: () => removeDir(dir) };
    trackForGc(this, this.disposer);
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
    return new Promise<number>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (err: Error | undefined, fd?: number): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.poller?.close();
        this.poller = undefined;
        this.accepting = false;
        this.cancelAccept = undefined;
        if (err) reject(err);
        else resolve(fd!);
      };
      const onAbort = (): void => finish(signal!.reason);
      const tryAccept = (): void => {
        if (this.fd < 0) return finish(closedError('IpcOneShotServer'));
        for (;;) {
          let fd: number;
          try {
            fd = n.accept(this.fd);
          } catch (e) {
            return finish(osError(e, 'accept'));
          }
          if (fd === EAGAIN) return;
          if (fd < 0) return finish(osError({ errno: -fd, syscall: 'accept', code: 'E' + -fd }, 'accept'));
          if (peer) {
            let ok = false;
            try {
              const cred = n.peerCredentials(fd);
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
      if (deadline !== undefined) {
        timer = setTimeout(() => finish(new IpcError('TIMEOUT', `nobody connected to ${this.name} within the timeout`)), Math.max(0, deadline - Date.now()));
      }
      if (signal) {
        if (signal.aborted) return finish(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      }
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
