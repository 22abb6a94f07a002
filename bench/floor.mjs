// The event-loop floor of this design, shared by bench/cpu-rtt.mjs and bench/instructions.mjs:
// an endpoint over the addon alone (its Poller, a non-blocking recvPackets in the callback, one
// promise per message, JSON.stringify/parse), what any design on this addon pays at least.
/** A minimal endpoint over the addon alone: what any design on this addon pays at least. */
export function floorEndpoint(addon, rfd, wfd) {
  const meta = new Int32Array(2 + 4 * 256);
  const fds = new Int32Array(253);
  const arena = new Uint8Array(1 << 16);
  const out = new Uint8Array(1 << 16);
  const te = new TextEncoder();
  const td = new TextDecoder('utf-8', { fatal: true });
  let waiter = null;
  const poller = new addon.Poller(rfd, () => {
    if (addon.recvPackets(rfd, meta, fds, 1, 65536, arena, 0, false) <= 0) return;
    const v = JSON.parse(td.decode(arena.subarray(meta[2], meta[2] + meta[3])));
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(v);
    }
  });
  poller.start(1);
  return {
    poller,
    send(v) {
      const { written } = te.encodeInto(JSON.stringify(v), out);
      addon.sendPacket(wfd, [out.subarray(0, written)], null);
    },
    recv: () => new Promise((r) => (waiter = r)),
  };
}

