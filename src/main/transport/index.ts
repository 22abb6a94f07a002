/**
 * Picks the transport backend once per thread: `ELECTRON_IPC_CHANNEL_TRANSPORT` (`seqpacket`,
 * `stream`, `win32`) when set, else the platform's default (Linux: `seqpacket`; macOS: `stream`;
 * Windows: `win32`). Both
 * ends of a channel must use the same transport (processes spawned by this library inherit the
 * variable with the rest of the environment).
 */
import { native } from '../native.js';
import { seqpacketTransport } from './seqpacket.js';
import { streamTransport } from './stream.js';
import { isWin32Addon, win32Transport } from './win32.js';
import { loadAddon } from '../locate-addon.js';
import type { Transport } from './types.js';

export { AGAIN, GONE, TOO_BIG } from './types.js';
export type { Transport } from './types.js';

const BACKENDS: Record<string, (() => Transport) | undefined> = {
  seqpacket: () => seqpacketTransport(native()),
  stream: () => streamTransport(native()),
  win32: () => {
    native(); // loads the addon once (and starts its readiness callback)
    const addon = loadAddon<unknown>();
    if (!isWin32Addon(addon)) throw new Error('the win32 transport needs the Windows build of the addon (src/native/win/)');
    return win32Transport(addon);
  },
};

let chosen: Transport | undefined;

/** The transport of this thread (see the module comment). */
export function transport(): Transport {
  if (chosen) return chosen;
  const asked = process.env.ELECTRON_IPC_CHANNEL_TRANSPORT;
  const name = asked !== undefined && asked !== '' ? asked : process.platform === 'darwin' ? 'stream' : process.platform === 'win32' ? 'win32' : 'seqpacket';
  const make = BACKENDS[name];
  if (!make) {
    throw new Error(`ELECTRON_IPC_CHANNEL_TRANSPORT=${name} is not a transport of this build; use one of: ${Object.keys(BACKENDS).join(', ')}`);
  }
  chosen = make();
  return chosen;
}
