/** Multiplexed channels: many logical channels over one connection (docs/multiplexing.md). */
export { IpcMux, MuxSender, MuxReceiver } from './mux.js';
export type { MuxFrame, MuxOptions, MuxChannelOptions, MuxStats } from './mux.js';
