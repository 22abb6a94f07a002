/**
 * Limits a receiver applies to what a peer sends. Every limit exists so that a hostile or buggy
 * peer cannot make the receiver use unbounded memory, stack or time; a message over a limit is
 * rejected with `IpcError('TOO_LARGE')` and nothing of it is delivered.
 */

/** The limits {@link decodeMessage} checks while turning a body into a value. */
export interface DecodeLimits {
  /**
   * Deepest nesting of objects accepted. A value's depth is 0 for a primitive and
   * 1 + the depth of its deepest child for an object (so `[]`, a `Date` or a `Uint8Array` is 1,
   * `[[1]]` is 2). `encodeMessage` refuses values deeper than its own `maxDepth` the same way.
   */
  maxDepth: number;
  /**
   * Most values accepted in one message: the root plus every array item, object property,
   * `Map` key and value and `Set` member (each slot counts, also when it repeats a reference).
   * Holes count, a sparse array counts its length, and values that cost more to build count more
   * (URLSearchParams pairs, long BigInts, RegExps, URLs): see docs/wire-format.md, "What
   * maxElements counts". Every value is counted before it is built.
   */
  maxElements: number;
  /** Most out-of-band binary sections (typed arrays, `DataView`s, `ArrayBuffer`s); unlimited when absent. */
  maxBinaries?: number;
}

/** Every limit of a receiver, with the defaults in {@link DEFAULT_LIMITS}. */
export interface Limits extends DecodeLimits {
  /** Largest message body, in bytes, including its binary sections. */
  maxMessageBytes: number;
  /** Most descriptors (senders, receivers, files, shared memory) in one message. */
  maxHandles: number;
  /** Most out-of-band binary sections in one message. */
  maxBinaries: number;
  /** Most messages a receiver holds read from its socket but not yet taken by `recv`. */
  maxQueue: number;
  /**
   * Largest single shared memory segment accepted, in bytes: an `IpcSharedMemory` (`M` handle)
   * or an `IpcSharedBuffer` pool segment (`P` handle). Checked on the memfd's size (`fstat`)
   * before anything is mapped or copied.
   */
  maxSharedMemoryBytes: number;
  /** Most bytes of shared memory (every `M` and `P` segment together) in one message. */
  maxSharedMemoryTotal: number;
}

/**
 * Defaults for every receiver. A receiver that expects bigger messages raises them in its options.
 *
 * - `maxMessageBytes` 128 MiB: room for a 64 MiB typed array or a 10 MB string with headroom,
 *   small enough that one message cannot exhaust memory; bulk data belongs in `IpcSharedMemory`.
 * - `maxHandles` 1024: more than `SCM_MAX_FD` (253 per `sendmsg`; larger sets are spread over
 *   fragments), and no more than a process's usual soft descriptor limit.
 * - `maxDepth` 256: deeper than any sane data structure; decoding recurses this deep at most.
 * - `maxElements` 1,000,000: about what 64 MiB of small values holds; large numeric data should
 *   travel as a typed array, which counts as one element.
 * - `maxBinaries` 65,536.
 * - `maxQueue` 64 packets: how many packets a receiver reads from its socket ahead of `recv()`;
 *   the rest wait in the kernel, which makes a fast sender queue on its side (backpressure).
 * - `maxSharedMemoryBytes` 256 MiB per segment: four times the 64 MiB segments the benchmark
 *   sends, room for an 8K RGBA frame (133 MB), twice `maxMessageBytes`. What a segment costs is
 *   its size, once `.bytes` is read: in Electron (and copy mode) `.bytes` copies the whole
 *   segment into one `ArrayBuffer`, and in Node reading the mapping faults in (and charges to
 *   this process) every page, also of a sparse memfd. So a peer that may send a sealed, sparse
 *   memfd of many GiB in a 64-byte message is refused on its size, before anything is mapped.
 * - `maxSharedMemoryTotal` 1 GiB per message: four segments of the largest size, or sixteen
 *   64 MiB ones; what one message can make this process hold when all its shared memory is read
 *   (on top of its body, at most `maxMessageBytes`). Sizes are stored and compared as JS numbers
 *   (exact to 2^53), so nothing wraps on any platform.
 */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxMessageBytes: 128 * 1024 * 1024,
  maxHandles: 1024,
  maxDepth: 256,
  maxElements: 1_000_000,
  maxBinaries: 65_536,
  maxQueue: 64,
  maxSharedMemoryBytes: 256 * 1024 * 1024,
  maxSharedMemoryTotal: 1024 * 1024 * 1024,
});

/** Limits of one multiplexed connection (`IpcMux`, docs/multiplexing.md), each side its own. */
export interface MuxLimits {
  /**
   * Most logical channels one side tracks at once (receivers it hosts and senders to the peer's
   * receivers): what a peer can make this side allocate by handing it endpoints.
   */
  maxChannels: number;
  /**
   * Most messages one logical receiver holds not yet received. A logical channel cannot push
   * back on its sender (the connection must keep reading for the other channels), so a channel
   * over this limit fails: its receiver reports TOO_LARGE once, its senders see DISCONNECTED.
   */
  maxQueue: number;
  /** Most messages every logical receiver of the connection together holds (the connection's budget). */
  maxQueuedTotal: number;
  /**
   * Most bytes (message bodies and binary sections as they arrived) of the peer's messages that
   * every logical receiver of the connection together holds: over it, the channel receiving the
   * peer's next message fails with TOO_LARGE, like an overflow of maxQueue. Keep it at least the
   * connection receiver's `maxMessageBytes`, or a message that large can never wait in a queue.
   */
  maxQueuedBytes: number;
  /**
   * Most descriptors (file handles, shared memory, plain endpoints) carried by the peer's
   * messages that every logical receiver of the connection together holds, the same way. Default:
   * 4,096, but at most a quarter of this process's RLIMIT_NOFILE (read when the connection opens).
   */
  maxQueuedHandles: number;
  /**
   * Most bytes this side lets pile up unsent on a connection (or a moved receiver's plain
   * channel) before it stops writing there on the peer's behalf: a relayed frame then fails its
   * channel with TOO_LARGE, more than maxUnsentBytes / 16 control answers written while the connection has not drained end it with TOO_LARGE, and the pump of
   * an upgraded MuxSender waits for the connection to drain. A peer that never reads cannot make
   * this side hold more.
   */
  maxUnsentBytes: number;
}

/**
 * Defaults of {@link MuxLimits}: 262,144 channels (above the 100,000 live channels of the
 * issue-15 target; about 60 MB of bookkeeping at most), 4,096 messages per channel, 65,536 per
 * connection, 256 MiB and 4,096 descriptors (at most a quarter of RLIMIT_NOFILE) of the peer's
 * messages queued per connection.
 */
export const MUX_LIMITS: Readonly<MuxLimits> = Object.freeze({
  maxChannels: 262_144,
  maxQueue: 4096,
  maxQueuedTotal: 65_536,
  maxQueuedBytes: 256 * 1024 * 1024,
  maxQueuedHandles: 4096,
  maxUnsentBytes: 16 * 1024 * 1024,
});
