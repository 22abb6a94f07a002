/**
 * The reading layer of a receiver's core (see receiver-sockets.ts for the chain): non-blocking
 * batch reads into the shared arena, blocking reads for recvSync(), big messages read in place
 * (scattered into their own buffers), ATTACH packets, and switches to the socket a moved
 * receiver continues on.
 */
import { trace } from '../debug.js';
import { FRAGMENT_HEADER, MAX_RECV_PACKET_BYTES, NO_FDS, PACKET_HEADER, RECORD_HEADER, malformed, pad8 } from '../framing.js';
import type { RecordFds, SwitchItem } from '../framing.js';
import { osError } from '../handles.js';
import { EAGAIN, PACKET_DESYNC, native } from '../native.js';
import { isAttachPacket } from '../writers.js';
import { RECV_FDS, RECV_META, ReceiverSockets } from './receiver-sockets.js';
import type { WriterSource } from './receiver-sockets.js';
import { sameSecret, switchSocketProblem } from './socket-checks.js';
import { closeFds } from './thread-state.js';

/**
 * Received packets land directly in a shared arena (one per thread), in a bump-allocated run of
 * 2 MiB buffers (room for the largest packet, MAX_RECV_PACKET_BYTES, at every read): no
 * allocation per read, no copy out of the addon. A record keeps a view of its arena, which the
 * garbage collector frees once no record of it is left; small blocks keep what dead arenas hold
 * until a major collection small.
 */
const ARENA_BYTES = 2 * 1024 * 1024;
/** Where readDirect receives a fragment's header, and what does not fit the awaited regions. */
const DIRECT_HEADER = new Uint8Array(new ArrayBuffer(FRAGMENT_HEADER));
const DIRECT_OVERFLOW = new Uint8Array(new ArrayBuffer(MAX_RECV_PACKET_BYTES));
/** Where prepareBig peeks at the start of a first fragment's chunk (its body header and table). */
const PEEK_PREFIX = new Uint8Array(new ArrayBuffer(4096));
/** Packets readDirect takes per readiness event before it lets others run. */
const DIRECT_ROUNDS = 64;
/** A packet at least this big suggests a bulk transfer: read ahead. */
const BULK_PACKET_BYTES = 32 * 1024;
/** Whether this thread's arena is bound in the addon (bindRecv): set at the first read through the binding. */
let arenaBound = false;
/**
 * The arena and where its next read goes (element 0 of `off`, an Int32Array on its own buffer:
 * pollers that read before calling back read there too, see ReceiverSockets.readCell).
 */
const arenaState = { buf: new Uint8Array(0), off: new Int32Array(new ArrayBuffer(8)) };
function recvArena(bind: boolean): { buf: Uint8Array; off: Int32Array } {
  if (arenaState.buf.length - arenaState.off[0]! < MAX_RECV_PACKET_BYTES) {
    arenaState.buf = new Uint8Array(Buffer.allocUnsafeSlow(ARENA_BYTES).buffer);
    arenaState.off[0] = 0;
    if (arenaBound) native().bindRecv!(arenaState.buf, arenaState.off, RECV_META, RECV_FDS, MAX_RECV_PACKET_BYTES);
  }
  if (bind && !arenaBound) {
    arenaBound = true;
    native().bindRecv!(arenaState.buf, arenaState.off, RECV_META, RECV_FDS, MAX_RECV_PACKET_BYTES);
  }
  return arenaState;
}

/**
 * Gives the arena back the bytes of a record whose body has just been decoded, when nothing was
 * read after it: the next read then lands where that record's packet did, on lines still in the
 * cache, instead of the arena marching through memory it never touched (a page fault every ~40
 * small messages and every message on cold lines; issue 15 §1). Safe because:
 * - nothing was read after it: its padded end is where the next read goes (`off`), so no record,
 *   fragment or attach packet of any receiver on this thread lies beyond it;
 * - what is given back starts PACKET_HEADER + RECORD_HEADER bytes before its body: its packet's
 *   start when it is the packet's first record, else a place inside the records before it in the
 *   same packet, which were its receiver's, taken before it (a receiver's queue is FIFO) and
 *   decoded or copied out too (a decoded value never aliases the body);
 * - it is called only for a body nothing refers to any more: decoded (typed channels), or copied
 *   out (bytes channels; a body handed out as it is never lies in the arena), and the buffer must
 *   still be this thread's arena.
 * The transports all copy a whole packet into the arena during the read (win32 from its pipe
 * buffer), so nothing is in flight into the arena between reads.
 */
export function rewindArena(body: Uint8Array): void {
  const at = body.byteOffset;
  if (body.buffer !== arenaState.buf.buffer || pad8(at + body.byteLength) !== arenaState.off[0]) return;
  arenaState.off[0] = at - RECORD_HEADER - PACKET_HEADER;
}

/** @internal Where this thread's next read lands in its arena (tests: the arena does not march). */
export function arenaOffsetForTests(): number {
  return arenaState.off[0]!;
}

/** @internal For tests that bind an arena of their own through the addon: binds this thread's again. */
export function rebindRecvArena(): void {
  if (typeof native().bindRecv !== 'function') return;
  arenaBound = false;
  recvArena(true);
}

/** A receiver's core up to reading: what its sockets hold becomes items of the queue. */
export abstract class ReceiverReading extends ReceiverSockets {
  /**
   * Secrets of the switch packets this receiver still expects, first expected first: a receiver
   * moved with messages already read continues on a carrier socket whose last packet switches it
   * back to its own socket, and only a switch carrying the secret given with the move is obeyed.
   */
  secrets: string[] = [];
  private readAhead = false;
  /** Set by readBatch when a blocking read returned EAGAIN: the file is not in blocking mode. */
  private wouldBlock = false;
  /** Set when a batch carried an ATTACH packet: read() then reads the same socket once more first. */
  private afterAttach = false;
  private readonly directMeta = new Int32Array(3);
  /** The last packet was big: peek at the next one, which may start another big message. */
  private bigAhead = false;

  /** Reads what an attached writer's socket holds now (see read()). */
  protected readWriter(w: WriterSource): void {
    this.afterAttach = false;
    let zero = this.readBatch(false, false, w);
    while (zero) zero = this.readBatch(true, false, w);
    if (this.afterAttach) {
      this.afterAttach = false;
      zero = this.readBatch(false, false, w);
      while (zero) zero = this.readBatch(true, false, w);
    }
  }

  /**
   * Reads what this receiver's sockets hold now, without waiting (bounded: a few batches), so
   * that ATTACH packets already there are known before it moves.
   */
  absorb(): void {
    if (this.closed || this.eof) return;
    // In bulk (256 packets a batch) until a round brings nothing: what is queued in the kernel is
    // bounded by the sockets' buffers; 64 rounds bound it against writers that never pause.
    for (let round = 0; round < 64; round++) {
      const before = this.items.length + this.writers.length;
      this.readAhead = true;
      this.read();
      if (this.items.length + this.writers.length === before || this.eof) break;
    }
  }

  /**
   * Whether every socket this receiver reads has been hung up by its peer (no wait, nothing
   * delivered): when its own socket is, what it still holds is read first (absorb), since it
   * may announce attached senders that are still connected.
   */
  allHungUp(): boolean {
    if (this.closed || this.eof) return true;
    const n = native();
    if (!n.peerHungUp(this.fd)) return false;
    this.absorb();
    if (this.eof) return true;
    const fds = this.readFds;
    return typeof fds === 'number' ? n.peerHungUp(fds) : fds.every((fd) => n.peerHungUp(fd));
  }

  protected readsPlain(): boolean {
    return !this.eof && !this.readAhead && !this.bigAhead && this.writers.length === 0 && this.parser.idle;
  }

  protected onReadable(status: number, read?: number): void {
    if (read !== undefined) {
      // The poller read already (readCell): what it took is queued whatever happens next.
      if (this.closed) this.dropRead(read);
      else {
        this.read(read);
        this.dispatch();
      }
      return;
    }
    if (this.closed) return;
    if (this.waiting === 0 && this.watchers === 0) {
      // Nobody wants data now: leave it in the kernel (backpressure) and stop watching.
      this.poller?.stop();
      this.polling = false;
      return;
    }
    if (status < 0) {
      this.primaryEnded();
    } else this.read();
    this.dispatch();
  }

  /**
   * One non-blocking batch read into the item queue; `first`: what the poller's own read of the
   * socket returned (see readCell), taken as this batch's first read.
   */
  read(first?: number): void {
    // The addon takes a zero-length read from a peer that has hung up for end-of-file, but an
    // empty packet sent before the hang-up reads the same: when packets follow, it was a packet
    // (one MALFORMED) and reading goes on.
    const from = this.items.length;
    this.afterAttach = false;
    let zero = first === undefined ? this.readBatch(false) : this.takeFirst(first);
    while (zero) zero = this.readBatch(true);
    if (this.afterAttach) {
      this.afterAttach = false;
      zero = this.readBatch(false);
      while (zero) zero = this.readBatch(true);
    }
    if (this.writers.length > 0) for (const w of [...this.writers]) this.readWriter(w);
    this.traceRefused(from);
  }

  /**
   * recvSync()'s wait when nothing else needs watching: one recvmsg that blocks until a packet
   * arrives (one system call where poll + recvmsg take two), then reads like read(). False when
   * this socket cannot be read that way now (the rest of a big message is due, which is read in
   * place, or the file is not in blocking mode): the caller then waits in poll(2).
   */
  readBlocking(): boolean {
    if (this.closed || this.eof || this.bigAhead || this.writers.length > 0 || this.parser.directTarget(0) !== undefined) return false;
    if (this.blockingFd !== this.fd) {
      // Our reads and writes all pass MSG_DONTWAIT, so the mode changes nothing else; libuv sets
      // O_NONBLOCK again when it starts watching the socket (see demand()).
      try {
        native().setBlocking(this.fd, true);
      } catch {
        return false;
      }
      this.blockingFd = this.fd;
    }
    this.wouldBlock = false;
    const from = this.items.length;
    let zero = this.readBatch(false, true);
    // Another holder of this file (a peer that kept a duplicate) may have set O_NONBLOCK.
    if (this.wouldBlock) {
      this.blockingFd = -1;
      return false;
    }
    while (zero) zero = this.readBatch(true);
    this.traceRefused(from);
    return true;
  }

  /** What the poller's read returned (see readCell), taken as readBatch(false) takes its own read. */
  private takeFirst(r: number): boolean {
    if (this.closed || this.eof) {
      this.dropRead(r);
      return false;
    }
    if (r < 0 && r !== EAGAIN) {
      this.items.push(osError(Object.assign(new Error('recvmsg failed'), { errno: -r, syscall: 'recvmsg' }), 'recvmsg'));
      return false;
    }
    return this.takeBatch(r < 0 ? -1 : r, false, false, undefined, 1, arenaState.buf);
  }

  /** Closes the descriptors of packets the poller read for a receiver that can no longer take them. */
  private dropRead(r: number): void {
    if (r <= 0) return;
    let n = 0;
    for (let i = 0; i < this.meta[0]!; i++) n += this.meta[4 + 4 * i]!;
    for (let j = 0; j < n; j++) closeFds(this.fdsOut[j]!);
  }

  /** Reads `fd`, or the attached writer `w`; returns true when it saw what may be end-of-file (see read()). */
  private readBatch(afterZero: boolean, block = false, w?: WriterSource): boolean {
    if (this.closed || this.eof) return false;
    // The state this read leaves may call for another kind of read: the poller's is off until demand() says otherwise.
    if (this.readCell !== undefined) this.readCell[0] = 0;
    const t = this.t;
    if (t.scatterReads && w === undefined) {
      if (!this.parser.idle && this.parser.directTarget(0) !== undefined) return this.readDirect(afterZero);
      if (this.bigAhead && this.parser.idle && this.prepareBig()) return this.readDirect(afterZero);
    }
    // One packet per read unless packets are arriving in bulk: a request/response exchange then
    // costs one recvmsg, not a second one that fails with EAGAIN (level-triggered polling brings
    // us back at once if more is queued).
    const maxPackets = this.readAhead ? Math.min(this.limits.maxQueue, 256) : 1;
    const arena = recvArena(this.readCell !== undefined);
    let r: number;
    try {
      // Bound (seqpacket): the addon has the arena and arrays already (one native call with three numbers).
      r =
        this.readCell !== undefined
          ? native().recvBound!(w === undefined ? this.fd : w.fd, maxPackets, block)
          : t.recv(w === undefined ? this.fd : w.fd, this.meta, this.fdsOut, maxPackets, MAX_RECV_PACKET_BYTES, arena.buf, arena.off[0]!, block);
    } catch (e) {
      this.items.push(osError(e, 'recvmsg'));
      return false;
    }
    return this.takeBatch(r, afterZero, block, w, maxPackets, arena.buf);
  }

  /** The packets a read of `fd` (or `w`) reported in meta: `r` as the transport's recv returns it. */
  private takeBatch(r: number, afterZero: boolean, block: boolean, w: WriterSource | undefined, maxPackets: number, buf: Uint8Array): boolean {
    if (r <= 0) {
      if (r === 0) {
        if (!afterZero) return true;
        if (w === undefined) this.primaryEnded();
        else this.dropWriter(w);
      } else {
        if (afterZero) this.items.push(malformed('an empty packet'));
        if (block) this.wouldBlock = true;
      }
      return false;
    }
    const lastAt = 2 + 4 * (this.meta[0]! - 1);
    arenaState.off[0] = pad8(this.meta[lastAt]! + this.meta[lastAt + 1]!);
    // Full batches of big packets (fragments, bursts of batched records) mean more is coming.
    this.readAhead = r === maxPackets && this.meta[lastAt + 1]! >= BULK_PACKET_BYTES;
    this.bigAhead = this.meta[lastAt + 1]! >= BULK_PACKET_BYTES;
    if (afterZero) this.items.push(malformed('an empty packet'));
    const count = this.meta[0]!;
    let fdAt = 0;
    for (let i = 0; i < count; i++) {
      const off = this.meta[2 + 4 * i]!;
      const len = this.meta[3 + 4 * i]!;
      const nfds = this.meta[4 + 4 * i]!;
      const flags = this.meta[5 + 4 * i]!;
      // A stream out of step is given up (end of file follows); the receiver with it, when it reads no other socket.
      if (flags & PACKET_DESYNC && w === undefined && this.writers.length === 0) this.abandoned = true;
      const fds = fdsOf(this.fdsOut, fdAt, nfds);
      fdAt += nfds;
      // Most packets hold one record: taken where it landed, without a view of the packet.
      if (flags === 0 && this.parser.parseSingleRecord(buf, off, len, fds, this.items)) continue;
      const packet = buf.subarray(off, off + len);
      if (flags === 0 && isAttachPacket(packet)) {
        this.attachWriter(packet, fds);
        this.afterAttach = true;
        continue;
      }
      const sw = this.parser.parse(packet, fds, flags, this.items);
      if (sw && w !== undefined) {
        // Only the receiver's own socket (a carrier) may switch it; a writer's switch is refused.
        closeFds([sw.switchTo]);
        this.items.push(malformed('a switch packet on the socket of an attached sender (a sender may be trying to redirect the receiver): refused, the channel continues'));
        continue;
      }
      // A refused switch is one bad message; the rest of the batch is still this socket's.
      if (sw && this.switchTo(sw)) {
        // The rest of the channel comes on another socket; this one is done.
        const rest = this.remainingFds(i + 1, count);
        for (let j = 0; j < rest; j++) closeFds(this.fdsOut[fdAt + j]!);
        return false;
      }
    }
    // What the socket that announced a writer still holds was mostly sent before that writer's
    // first message: read it in bulk before the new socket is read (see read()).
    if (this.afterAttach) this.readAhead = true;
    return this.meta[1] === 1;
  }

  /**
   * Reads the rest of a big message in place: each packet is scattered straight into the
   * message's own buffers (the next fragment's header into DIRECT_HEADER, its bytes where they
   * belong), so a fragment costs the kernel's copy and nothing more. A packet that turns out to
   * be something else is rebuilt from where it landed and parsed as usual.
   */
  private readDirect(afterZero: boolean): boolean {
    const t = this.t;
    for (let round = 0; round < DIRECT_ROUNDS; round++) {
      if (this.closed || this.eof) return false;
      const target = this.parser.directTarget(MAX_RECV_PACKET_BYTES - FRAGMENT_HEADER);
      if (!target) return false;
      const iovs = [DIRECT_HEADER, ...target.regions, DIRECT_OVERFLOW];
      let r: number;
      try {
        r = t.recvInto(this.fd, iovs, this.fdsOut, this.directMeta);
      } catch (e) {
        this.items.push(osError(e, 'recvmsg'));
        return false;
      }
      if (r < 0) {
        if (afterZero) this.items.push(malformed('an empty packet'));
        return false;
      }
      const nfds = this.directMeta[0]!;
      const flags = this.directMeta[1]!;
      if (r === 0 && this.directMeta[2] === 1) {
        if (!afterZero) return true;
        this.setEof();
        return false;
      }
      if (afterZero) {
        this.items.push(malformed('an empty packet'));
        afterZero = false;
      }
      const fds = fdsOf(this.fdsOut, 0, nfds);
      const regionBytes = target.regions.reduce((sum, v) => sum + v.byteLength, 0);
      if (r >= FRAGMENT_HEADER && this.parser.parseDirect(target.stream, DIRECT_HEADER, r - FRAGMENT_HEADER, regionBytes, fds, flags, this.items)) {
        this.bigAhead = true;
        continue;
      }
      // Not the awaited fragment: rebuild the packet from where its bytes landed.
      this.parser.unprepare(target.stream);
      const packet = new Uint8Array(r);
      let at = 0;
      for (const v of iovs) {
        if (at >= r) break;
        const take = Math.min(v.byteLength, r - at);
        packet.set(v.subarray(0, take), at);
        at += take;
      }
      const sw = this.parser.parse(packet, fds, flags, this.items);
      if (sw && this.switchTo(sw)) return false;
    }
    return false;
  }

  /**
   * Peeks at the next packet (no descriptors, nothing consumed): when it starts a big message,
   * the parser sets that message up so that its first fragment too is received in place.
   */
  private prepareBig(): boolean {
    let r: number;
    try {
      r = this.t.recvInto(this.fd, [DIRECT_HEADER, PEEK_PREFIX], this.fdsOut, this.directMeta, true);
    } catch {
      return false;
    }
    if (r < 0) return false; // nothing there yet: peek again next time
    const ok = r >= FRAGMENT_HEADER && this.parser.prepareFirst(DIRECT_HEADER, PEEK_PREFIX.subarray(0, r - FRAGMENT_HEADER));
    this.bigAhead = ok;
    return ok;
  }

  private remainingFds(from: number, count: number): number {
    let n = 0;
    for (let i = from; i < count; i++) n += this.meta[4 + 4 * i]!;
    return n;
  }

  /** Continues on `fd`; false (and one MALFORMED item) when it is not a connected SOCK_SEQPACKET socket. */
  private switchTo(sw: SwitchItem): boolean {
    const fd = sw.switchTo;
    const expected = this.secrets[0];
    if (expected === undefined || !sameSecret(sw.secret, expected)) {
      closeFds([fd]);
      this.items.push(
        malformed(
          expected === undefined
            ? 'a switch packet on a receiver that expects none (only a moved receiver gets one; a sender may be trying to redirect it): refused, the channel continues'
            : 'a switch packet without the secret this receiver expects (a sender may be trying to redirect it): refused, the channel continues',
        ),
      );
      return false;
    }
    const problem = switchSocketProblem(fd);
    if (problem) {
      closeFds([fd]);
      this.items.push(malformed(`a switch packet carried ${problem}`));
      return false;
    }
    this.secrets.shift();
    trace('channel', '%s switched from its carrier fd %d to fd %d (its own socket, after what was read ahead before it moved)', this.what, this.fd, fd);
    const wasWatching = this.poller !== undefined;
    this.dropPoller();
    closeFds([this.fd]);
    this.fd = fd;
    this.disposer.fd = fd;
    if (wasWatching) this.demand();
    return true;
  }
}

/**
 * The `nfds` descriptors of a packet from `fdsOut` at `at`, in the record's form (RecordFds): none
 * the shared NO_FDS, one (the common case) the descriptor itself, no array; more a packed array.
 */
function fdsOf(fdsOut: Int32Array, at: number, nfds: number): RecordFds {
  if (nfds === 0) return NO_FDS;
  if (nfds === 1) return fdsOut[at]!;
  const fds = new Array<number>(nfds);
  for (let j = 0; j < nfds; j++) fds[j] = fdsOut[at + j]!;
  return fds;
}
