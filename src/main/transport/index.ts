/**
 * Picks the transport backend once per thread: `ELECTRON_IPC_CHANNEL_TRANSPORT` (`seqpacket`,
 * `stream`) when set, else the platform's default (Linux: `seqpacket`; macOS: `stream`). Both
 * ends of a channel must use the same transport (processes spawned by this library inherit the
 * variable with the rest of the environment).
 */
import { native } from '../native.js';
import { seqpacketTransport } from './seqpacket.js';
import { streamTransport } from './stream.js';
import type { Transport } from './types.js';

export { AGAIN, GONE, TOO_BIG } from './types.js';
export type { Transport } from './types.js';

const BACKENDS: Record<string, (() => Transport) | undefined> = {
  seqpacket: () => seqpacketTransport(native()),
  stream: () => streamTransport(native()),
};

let chosen: Transport | undefined;

/** The transport of this thread (see the module comment). */
export function transport(): Transport {
  if (chosen) return chosen;
  const asked = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT;
  const name = asked !== undefined && asked !== '' ? asked : process.platform === 'darwin' ? 'stream' : 'seqpacket';
  const make = BACKENDS[name];
  if (!make) {
    throw new Error(`ELECTRON_IPC_CHANNEL_TRANSPORT=${name} is not a transport of this build; use one of: ${Object.keys(BACKENDS).join(', ')}`);
  }
  chosen = make();
  return chosen;
}
