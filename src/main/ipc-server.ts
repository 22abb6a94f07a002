/**
 * IpcServer: a named server for any number of clients, each with a channel pair of its own.
 *
 * The name follows the one-shot server's rules (server.ts, "Server directories"): the path of a
 * listening Unix socket in a fresh 0700 directory under the temp dir, removed on close(), at
 * exit, on a terminating signal that ends the process, or swept later once its owner is dead.
 *
 * Handshake (one per connection; the wire carries ordinary channel messages):
 *   client -> server, on the connected socket: { hello: HELLO, version: 1, reply: IpcSender }
 *   server -> client, on `reply`:               { welcome: HELLO, version: 1, id } or
 *                                              { refused: HELLO, reason: string } (then closed)
 * The client sends nothing else before the answer, so the server reads the hello under tight
 * handshake limits and raises them to the application's limits before it welcomes the client.
 *
 * Bounds (what a hostile local process can make the server hold): `maxPending` handshakes in
 * progress, each at most `handshakeTimeout` ms and one small packet with one descriptor; past
 * that a connection is accepted and closed at once. `maxClients` clients (queued for accept() or
 * accepted and not yet ended); past that a client gets a refusal and is closed. Accepting is
 * done at most ACCEPT_BATCH connections per event-loop turn, so a connection flood cannot starve
 * the rest of the process.
 */
import path from 'node:path';
import { inspect } from 'node:util';
import { IpcError, isIpcError } from '../shared/errors.js';
import { closeHandles } from './bridge.js';
import { channel, IpcReceiver, IpcSender, receiverCore } from './channel.js';
import type { ReceiverOptions } from './channel.js';
import { describeError, trace } from './debug.js';
import { checkTimeout, closedError, osError, trackForGc, untrackForGc } from './handles.js';
import type { Disposer } from './handles.js';
import { POLL_READABLE, native } from './native.js';
import type { NativePoller, PeerCredentials } from './native.js';
import { listenPrivate, removeDir, scheduleSweep } from './server.js';
import { AGAIN, transport } from './transport/index.js';

export type { PeerCredentials } from './native.js';

import { HELLO, VERSION, HANDSHAKE_LIMITS, HANG_UP_CHECK_MS, ACCEPT_BATCH, MAX_REASON, SERVER_OPTIONS, CONNECT_OPTIONS, ACCEPT_OPTIONS, checkOptionNames, positiveInt, credentialsMatch, checkPeerOption, fullReceiverOptions } from './ipc-server-options.js';
export { checkOptionNames } from './ipc-server-options.js';
export type { PeerCheck, IpcServerOptions, IpcServerAcceptOptions, IpcServerConnectOptions } from './ipc-server-options.js';
import type { PeerCheck, IpcServerOptions, IpcServerAcceptOptions, IpcServerConnectOptions } from './ipc-server-options.js';

let nextConnectionId = 1;

/**
 * One client of an {@link IpcServer}, on the server's side: `receiver` gets what the client
 * sends, `sender` sends to it. Close it when done with the client (also after the client hung
 * up: the receiver may still hold its last messages).
 */
export class IpcServerConnection<Req = unknown, Res = unknown> implements Disposable {
  /** A number unique in this process, also sent to the client in the welcome. */
  readonly id: number;
  /** The client's credentials as the kernel gave them when it connected. */
  readonly peer: Readonly<PeerCredentials>;
  /** Messages from the client. */
  readonly receiver: IpcReceiver<Req>;
  /** Messages to the client. */
  readonly sender: IpcSender<Res>;
  /** Resolves once the client hung up (closed its sender or exited), or this side closed the connection or its receiver (or sent it away). */
  readonly ended: Promise<void>;
  private endedFlag = false;
  private resolveEnded!: () => void;
  private onEnd: ((c: IpcServerConnection<Req, Res>) => void) | undefined;

  /** @internal Made by IpcServer. */
  constructor(receiver: IpcReceiver<Req>, sender: IpcSender<Res>, peer: PeerCredentials, onEnd: (c: IpcServerConnection<Req, Res>) => void) {
    this.id = nextConnectionId++;
    this.receiver = receiver;
    this.sender = sender;
    this.peer = Object.freeze({ pid: peer.pid, uid: peer.uid, gid: peer.gid });
    this.onEnd = onEnd;
    this.ended = new Promise<void>((r) => (this.resolveEnded = r));
  }

  /**
   * @internal Whether this connection has ended, checked now (by the server's hang-up timer):
   * the client hung up when the connection socket reports POLLRDHUP (it closed its sender, or
   * exited); a receiver that was closed or sent away ends the connection too. A poll(2) with no
   * wait on the receiver's own descriptor: no second poll handle on it (libuv takes one per
   * descriptor) and no duplicate, which would keep the socket open after the receiver closed.
   * (Not the reply socket: on the stream transport the client's receiver shuts its writer
   * sockets for writing at once, which raises POLLRDHUP there long before the client leaves.)
   */
  checkEnded(): boolean {
    if (this.endedFlag) return true;
    if (this.receiver.closed) {
      this.markEnded('its receiver was closed or sent away');
      return true;
    }
    let hungUp = false;
    try {
      // Every socket of the receiver (on stream, a copy of the client's sender handed on has one).
      hungUp = receiverCore(this.receiver as IpcReceiver<unknown>).allHungUp();
    } catch (e) {
      trace('server', 'connection %d: cannot check for hang-up: %s', this.id, describeError(e));
    }
    if (hungUp) this.markEnded('the client hung up');
    return hungUp;
  }

  /** True once `ended` has resolved (see there). */
  get isEnded(): boolean {
    return this.endedFlag;
  }

  private markEnded(why: string): void {
    if (this.endedFlag) return;
    this.endedFlag = true;
    trace('server', 'connection %d (pid %d) ended: %s', this.id, this.peer.pid, why);
    const cb = this.onEnd;
    this.onEnd = undefined;
    cb?.(this);
    this.resolveEnded();
  }

  /** Closes both directions: the client's receives end with DISCONNECTED. Idempotent. */
  close(): void {
    this.sender.close();
    this.receiver.close();
    this.markEnded('closed by the server');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  [inspect.custom](): string {
    return `IpcServerConnection { id: ${this.id}, pid: ${this.peer.pid}, uid: ${this.peer.uid}, ended: ${this.endedFlag} }`;
  }
}

interface Waiter<Req, Res> {
  resolve(c: IpcServerConnection<Req, Res>): void;
  reject(e: unknown): void;
}

/**
 * A named server for any number of clients. Give `name` to other processes (environment,
 * argument, a message); there `await IpcServer.connect(name)` returns `[sender, receiver]`.
 * Here, `accept()` (or `for await ... of server`) yields one {@link IpcServerConnection} per
 * client. `Req` is what clients send, `Res` what the server sends back.
 */
export class IpcServer<Req = unknown, Res = unknown> implements Disposable, AsyncIterable<IpcServerConnection<Req, Res>> {
  /** The name to connect to: on Linux, the path of the listening socket. */
  readonly name: string;
  /** Most clients at once. */
  readonly maxClients: number;
  /** Most handshakes in progress at once. */
  readonly maxPending: number;
  private readonly handshakeTimeout: number;
  private readonly receiverOptions: ReceiverOptions<Req>;
  private readonly peerCheck: PeerCheck | undefined;
  private readonly dir: string;
  private fd: number;
  private poller: NativePoller | undefined;
  private refed = true;
  private readonly disposer: Disposer;
  /** Handshakes in progress: their receivers, to close on close(). */
  private readonly pending = new Set<IpcReceiver<unknown>>();
  /** Welcomed clients not yet taken by accept(). */
  private readonly ready: Array<IpcServerConnection<Req, Res>> = [];
  private readonly waiters: Array<Waiter<Req, Res>> = [];
  private clients = 0;
  private acceptScheduled = false;
  /** Accepted connections whose end is watched (see IpcServerConnection.checkEnded). */
  private readonly watched = new Set<IpcServerConnection<Req, Res>>();
  private hangUpTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: IpcServerOptions<Req> = {}) {
    checkOptionNames(options, SERVER_OPTIONS, 'new IpcServer()');
    this.maxClients = positiveInt(options.maxClients, 'maxClients', 64);
    this.maxPending = positiveInt(options.maxPending, 'maxPending', 32);
    this.handshakeTimeout = checkTimeout(options.handshakeTimeout, 'handshakeTimeout') ?? 5000;
    checkPeerOption(options.peer, 'IpcServer peer');
    this.peerCheck = options.peer;
    this.receiverOptions = fullReceiverOptions(options.receiver, 'new IpcServer()');

    ({ dir: this.dir, name: this.name, fd: this.fd } = listenPrivate());
    const dir = this.dir;
    this.disposer = { fd: this.fd, release: () => removeDir(dir) };
    trackForGc(this, this.disposer);
    try {
      const n = native();
      this.poller = new n.Poller(this.fd, (status) => {
        if (status < 0) trace('server', '%s: poll error %d', this.name, status);
        this.acceptSome();
      });
      this.poller.start(POLL_READABLE);
    } catch (e) {
      this.close();
      throw osError(e, `watching ${this.name}`);
    }
    trace('server', 'IpcServer listening at %s (maxClients %d, maxPending %d, transport %s)', this.name, this.maxClients, this.maxPending, transport().name);
    scheduleSweep(path.dirname(this.dir));
  }

  /** Clients at the moment: queued for accept() or accepted and not ended. */
  get clientCount(): number {
    return this.clients;
  }

  /** Handshakes in progress. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.fd < 0;
  }

  /** Accepts up to ACCEPT_BATCH connections; the (level-triggered) poller calls again for more. */
  private acceptSome(): void {
    const t = transport();
    for (let i = 0; i < ACCEPT_BATCH; i++) {
      if (this.fd < 0) return;
      let fd: number;
      try {
        fd = t.accept(this.fd);
      } catch (e) {
        // EMFILE/ENFILE and the like: the connection stays in the backlog; try again a little later
        // instead of spinning on a readable listener.
        trace('server', '%s: accept failed: %s', this.name, describeError(e));
        this.backOff();
        return;
      }
      if (fd === AGAIN) return;
      this.admit(fd);
    }
  }

  private backOff(): void {
    if (this.acceptScheduled || !this.poller) return;
    this.acceptScheduled = true;
    this.poller.stop();
    const timer = setTimeout(() => {
      this.acceptScheduled = false;
      if (this.fd >= 0 && this.poller) {
        this.poller.start(POLL_READABLE);
        this.acceptSome();
      }
    }, 100);
    if (!this.refed) timer.unref();
  }

  /** Checks a fresh connection and starts its handshake, or closes it. */
  private admit(fd: number): void {
    const n = native();
    let cred: PeerCredentials;
    try {
      cred = transport().peerCredentials(fd);
    } catch (e) {
      trace('server', 'refused fd %d: no peer credentials (%s)', fd, describeError(e));
      n.close(fd);
      return;
    }
    if (!this.peerAllowed(cred)) {
      trace('server', 'refused pid %d uid %d: the peer check said no', cred.pid, cred.uid);
      n.close(fd);
      return;
    }
    if (this.pending.size >= this.maxPending) {
      trace('server', 'refused pid %d: %d handshakes in progress (maxPending)', cred.pid, this.pending.size);
      n.close(fd);
      return;
    }
    let rx: IpcReceiver<unknown>;
    try {
      rx = new IpcReceiver<unknown>(fd, HANDSHAKE_LIMITS);
    } catch (e) {
      trace('server', 'refused pid %d: %s', cred.pid, describeError(e));
      n.close(fd);
      return;
    }
    trace('server', 'accepted pid %d uid %d on fd %d; waiting for its hello', cred.pid, cred.uid, fd);
    this.pending.add(rx);
    void this.handshake(rx, cred);
  }

  private peerAllowed(cred: PeerCredentials): boolean {
    const check = this.peerCheck;
    if (check === undefined) return true;
    if (typeof check !== 'function') return credentialsMatch(check, cred);
    try {
      return check({ ...cred }) === true;
    } catch (e) {
      trace('server', 'the peer check threw for pid %d: %s', cred.pid, describeError(e));
      return false;
    }
  }

  private async handshake(rx: IpcReceiver<unknown>, cred: PeerCredentials): Promise<void> {
    let hello: unknown;
    try {
      hello = await rx.recv({ timeout: this.handshakeTimeout });
    } catch (e) {
      this.pending.delete(rx);
      rx.close();
      trace('server', 'pid %d: no valid hello: %s', cred.pid, describeError(e));
      return;
    }
    this.pending.delete(rx);
    const h = hello as { hello?: unknown; version?: unknown; reply?: unknown } | null;
    if (typeof h !== 'object' || h === null || h.hello !== HELLO || !(h.reply instanceof IpcSender)) {
      closeHandles(hello);
      rx.close();
      trace('server', 'pid %d: the first message is not an IpcServer hello; closed', cred.pid);
      return;
    }
    const reply = h.reply as IpcSender<unknown>;
    const refuse = (reason: string): void => {
      trace('server', 'refused pid %d: %s', cred.pid, reason);
      try {
        reply.send({ refused: HELLO, reason });
      } catch {
        // The client is gone already.
      }
      reply.close();
      rx.close();
    };
    if (this.fd < 0) return refuse('the server is closing');
    if (h.version !== VERSION) return refuse(`this server speaks handshake version ${VERSION}, the client ${String(h.version)}; use the same version of electron-ipc-channel on both sides`);
    if (this.clients >= this.maxClients) return refuse(`the server has ${this.clients} clients, its limit (maxClients)`);
    let conn: IpcServerConnection<Req, Res>;
    try {
      rx.configure(this.receiverOptions as ReceiverOptions<unknown>);
      conn = new IpcServerConnection<Req, Res>(rx as IpcReceiver<Req>, reply as IpcSender<Res>, cred, () => this.release());
      reply.send({ welcome: HELLO, version: VERSION, id: conn.id });
    } catch (e) {
      reply.close();
      rx.close();
      trace('server', 'pid %d: could not welcome it: %s', cred.pid, describeError(e));
      return;
    }
    this.clients++;
    trace('server', 'connection %d: pid %d welcomed (%d clients)', conn.id, cred.pid, this.clients);
    const waiter = this.waiters.shift();
    if (waiter) this.handOut(conn, waiter);
    else this.ready.push(conn);
  }

  /** The connection becomes the caller's: from now on a hang-up frees its slot. */
  private handOut(conn: IpcServerConnection<Req, Res>, waiter: Waiter<Req, Res>): void {
    this.watch(conn);
    waiter.resolve(conn);
  }

  /**
   * Checks handed-out connections for their end every HANG_UP_CHECK_MS (an unref'd timer, only
   * while some are watched; it goes on after close(), for their `ended`). Bounded work: at most
   * maxClients poll(2) calls per tick.
   */
  private watch(conn: IpcServerConnection<Req, Res>): void {
    this.watched.add(conn);
    if (this.hangUpTimer) return;
    this.hangUpTimer = setInterval(() => {
      for (const c of this.watched) if (c.checkEnded()) this.watched.delete(c);
      if (this.watched.size === 0) {
        clearInterval(this.hangUpTimer);
        this.hangUpTimer = undefined;
      }
    }, HANG_UP_CHECK_MS);
    this.hangUpTimer.unref();
  }

  private release(): void {
    this.clients--;
  }

  /**
   * The next client, once it has connected and been welcomed. Rejects TIMEOUT, CLOSED (the
   * server is or gets closed), or the signal's reason. Several calls may wait at once; each gets
   * its own client, in order.
   */
  accept(options: IpcServerAcceptOptions = {}): Promise<IpcServerConnection<Req, Res>> {
    checkOptionNames(options, ACCEPT_OPTIONS, 'IpcServer.accept()');
    const timeout = checkTimeout(options.timeout);
    const { signal } = options;
    if (this.fd < 0) return Promise.reject(closedError('IpcServer'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const queued = this.ready.shift();
    if (queued) {
      this.watch(queued);
      return Promise.resolve(queued);
    }
    return new Promise<IpcServerConnection<Req, Res>>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const waiter: Waiter<Req, Res> = {
        resolve: (c) => {
          done();
          resolve(c);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const onAbort = (): void => waiter.reject(signal!.reason);
      if (timeout !== undefined) {
        timer = setTimeout(() => waiter.reject(new IpcError('TIMEOUT', `no client connected to ${this.name} within ${timeout} ms`)), timeout);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Yields every client as it is welcomed; ends when the server is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<IpcServerConnection<Req, Res>, void, undefined> {
    for (;;) {
      let conn: IpcServerConnection<Req, Res>;
      try {
        conn = await this.accept();
      } catch (e) {
        if (isIpcError(e, 'CLOSED')) return;
        throw e;
      }
      yield conn;
    }
  }

  /** Lets the process exit while the server listens (like `net.Server.unref()`). */
  unref(): this {
    this.refed = false;
    this.poller?.unref();
    return this;
  }

  /** Keeps the process alive while the server listens (the default). */
  ref(): this {
    this.refed = true;
    this.poller?.ref();
    return this;
  }

  /**
   * Stops listening and removes the name; closes handshakes in progress and clients not yet
   * accepted; pending `accept()` calls reject CLOSED. Accepted connections stay open: they are the
   * caller's to close. Idempotent.
   */
  close(): void {
    if (this.fd < 0) return;
    untrackForGc(this);
    this.poller?.close();
    this.poller = undefined;
    native().close(this.fd);
    this.fd = -1;
    this.disposer.fd = -1;
    removeDir(this.dir);
    for (const rx of this.pending) rx.close();
    this.pending.clear();
    for (const c of this.ready.splice(0)) c.close();
    for (const w of this.waiters.splice(0)) w.reject(closedError('IpcServer'));
    trace('server', 'IpcServer at %s closed (%d clients still open)', this.name, this.clients);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  [inspect.custom](): string {
    return `IpcServer { name: '${this.name}', clients: ${this.clients}, pending: ${this.pending.size}, maxClients: ${this.maxClients}, closed: ${this.fd < 0} }`;
  }

  /**
   * Connects to the IpcServer named `name` (run in the process that was given the name) and
   * resolves, once the server welcomed this client, to `[sender, receiver]`: the sender's
   * messages arrive at the server's `connection.receiver`, and what the server sends on
   * `connection.sender` arrives at the receiver.
   *
   * Rejects `OS` when nothing listens at `name`, `DISCONNECTED` when the server refused this
   * client (full, closing, peer check) or closed the connection, `TIMEOUT`, `MALFORMED` when the
   * other side does not speak this handshake. Misuse is a TypeError/RangeError.
   */
  static async connect<Req = unknown, Res = unknown>(name: string, options: IpcServerConnectOptions<Res> = {}): Promise<[IpcSender<Req>, IpcReceiver<Res>]> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('IpcServer.connect(name) needs the server name, a non-empty string');
    checkOptionNames(options, CONNECT_OPTIONS, 'IpcServer.connect()');
    const timeout = checkTimeout(options.timeout) ?? 10_000;
    checkPeerOption(options.server, 'IpcServer.connect() server');
    const receiverOptions = fullReceiverOptions(options.receiver, 'IpcServer.connect()');
    options.signal?.throwIfAborted();
    const t = transport();
    let fd: number;
    try {
      fd = t.connect(name);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') throw osError(e, `no IpcServer is listening at ${name}: it was closed, or never existed`);
      throw osError(e, `connecting to ${name}`);
    }
    if (options.server) {
      let cred: PeerCredentials | undefined;
      try {
        cred = t.peerCredentials(fd);
      } catch {
        cred = undefined;
      }
      if (!cred || !credentialsMatch(options.server, cred)) {
        native().close(fd);
        throw new IpcError('DISCONNECTED', `the process listening at ${name} (pid ${cred?.pid ?? '?'}, uid ${cred?.uid ?? '?'}) is not the expected server`);
      }
    }
    const toServer = new IpcSender<Req>(fd);
    const [tx, rx] = channel<unknown>(HANDSHAKE_LIMITS);
    const notWelcomed = (e: unknown): IpcError =>
      new IpcError('DISCONNECTED', `the IpcServer at ${name} closed the connection before welcoming this client: it is closing, busy with too many handshakes (maxPending), or its peer check refused this process`, { cause: e });
    try {
      (toServer as IpcSender<unknown>).send({ hello: HELLO, version: VERSION, reply: tx });
    } catch (e) {
      toServer.close();
      tx.close();
      rx.close();
      throw isIpcError(e, 'DISCONNECTED') ? notWelcomed(e) : e;
    }
    tx.close(); // the server has its own copy now
    let answer: unknown;
    try {
      answer = await rx.recv({ timeout, signal: options.signal });
    } catch (e) {
      toServer.close();
      rx.close();
      if (isIpcError(e, 'DISCONNECTED')) throw notWelcomed(e);
      if (isIpcError(e, 'TIMEOUT')) throw new IpcError('TIMEOUT', `the IpcServer at ${name} did not answer within ${timeout} ms`, { cause: e });
      throw e;
    }
    const a = answer as { welcome?: unknown; refused?: unknown; reason?: unknown; version?: unknown } | null;
    if (typeof a === 'object' && a !== null && a.welcome === HELLO && a.version === VERSION) {
      rx.configure(receiverOptions as ReceiverOptions<unknown>);
      trace('server', 'connected to the IpcServer at %s', name);
      return [toServer, rx as unknown as IpcReceiver<Res>];
    }
    toServer.close();
    rx.close();
    closeHandles(answer);
    if (typeof a === 'object' && a !== null && a.refused === HELLO) {
      const reason = typeof a.reason === 'string' ? a.reason.slice(0, MAX_REASON) : 'no reason given';
      throw new IpcError('DISCONNECTED', `the IpcServer at ${name} refused this client: ${reason}`);
    }
    throw new IpcError('MALFORMED', `the process listening at ${name} did not answer with an IpcServer welcome; is it an IpcServer of this library's version?`);
  }
}
