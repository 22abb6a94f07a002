/**
 * Packet framing: how message bodies (and their descriptors) are cut into SOCK_SEQPACKET packets
 * and put together again. The layout is written down in docs/wire-format.md. The code lives in
 * ./framing/: wire.ts (constants, shared types, errors), send.ts (records, batches, fragments),
 * partial.ts (budgets and buffers of unfinished messages), parser.ts (packets -> records).
 */
export {
  FRAGMENT_HEADER,
  FRAG_FIRST,
  FRAG_LAST,
  MAGIC,
  MAX_FDS_PER_PACKET,
  MAX_FRAGMENT_BYTES,
  MAX_PACKET_BYTES,
  MAX_PARTIAL_STREAMS,
  MAX_RECV_PACKET_BYTES,
  NO_FDS,
  PACKET_HEADER,
  PARTIAL_BYTES_BUDGET,
  PARTIAL_FDS_BUDGET,
  RECORD_HEADER,
  STALE_MS,
  STALE_PACKETS,
  SWITCH_SECRET_BYTES,
  TYPE_FRAGMENT,
  TYPE_RECORDS,
  TYPE_SWITCH,
  VERSION,
  fdCount,
  fdList,
  fdSlice,
  malformed,
  pad8,
  switchPacket,
} from './framing/wire.js';
export type { OutPacket, ParsedItem, RecordFds, SwitchItem, WireRecord } from './framing/wire.js';
export {
  RecordBatcher,
  copyParts,
  fitsOnePacket,
  fragmentPackets,
  immediateRecordParts,
  planFragments,
  releasePacketBuffer,
  singleRecordPacket,
  sliceParts,
} from './framing/send.js';
export type { Fragment } from './framing/send.js';
export { openFileLimit, partialBudgets } from './framing/partial.js';
export type { FramingLimits, LayoutOf, PartialBudgets } from './framing/partial.js';
export { PacketParser } from './framing/parser.js';
