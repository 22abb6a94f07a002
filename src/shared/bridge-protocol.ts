/**
 * The renderer bridge's protocol, in one place for both of its sides: the Electron IPC channel
 * names, the command-line switch, the exposed-name rule, and what travels on the MessagePort.
 * src/main/bridge.ts (main) and src/preload/index.ts (the renderer) both import it.
 *
 * Imports neither Node nor Electron: it is bundled into the preload.
 */

/** ipcRenderer → ipcMain channel on which a preload asks for the port of one exposed name. */
export const BRIDGE_OPEN_CHANNEL = 'electron-ipc-channel:open';

/** webContents → ipcRenderer channel that carries the port for `name`. */
export function bridgePortChannel(name: string): string {
  return `electron-ipc-channel:port:${name}`;
}

/**
 * Command-line switch (set through `webPreferences.additionalArguments`) that makes the bundled
 * preload, loaded directly, expose the listed names by itself: apps that need nothing else in
 * their preload use `preloadWebPreferences()` from the main entry and need no bundler.
 */
export const EXPOSE_SWITCH = '--electron-ipc-channel-expose=';

/** The argument {@link EXPOSE_SWITCH} takes for `names` (default `ipc`). */
export function exposeArgument(names: readonly string[]): string {
  return `${EXPOSE_SWITCH}${(names.length ? names : ['ipc']).join(',')}`;
}

/** Names given with {@link EXPOSE_SWITCH} on a renderer's command line. */
export function namesFromArgv(argv: readonly string[]): string[] {
  const arg = argv.find((a) => a.startsWith(EXPOSE_SWITCH));
  if (arg === undefined) return [];
  return arg
    .slice(EXPOSE_SWITCH.length)
    .split(',')
    .filter((n) => n !== '');
}

const NAME_RE = /^[A-Za-z_$][\w$]*$/;

/** True when `name` can be exposed: a JavaScript identifier, since it becomes `window[name]`. */
export function isBridgeName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

/**
 * What main posts on the port. Messages from the renderer are posted bare (the value itself).
 * - `message`: one value for the renderer.
 * - `rejected`: main dropped a message the renderer sent (schema, or nothing accepts messages);
 *   `id` is that message's own `id` property when it had one (a safe integer >= 0).
 * - `eof`: nothing more will come to the renderer (its receives fail with DISCONNECTED once the
 *   queue is drained); the renderer may still send.
 * - `end`: main closed this leg; the renderer's receives and sends fail with DISCONNECTED.
 */
export type BridgeEnvelope<T = unknown> =
  | { kind: 'message'; value: T }
  | { kind: 'rejected'; code: string; message: string; id?: number }
  | { kind: 'eof'; reason: string }
  | { kind: 'end'; reason: string };

/** A message main dropped: it failed main's schema, or main accepts nothing on this channel. */
export interface RejectedMessage {
  code: string;
  message: string;
  /** The refused message's own `id` property, when it had one (a safe integer >= 0). */
  id?: number;
}

/** Every field name of any {@link BridgeEnvelope}. */
type EnvelopeKey = BridgeEnvelope extends infer E ? (E extends unknown ? keyof E : never) : never;

/** A posted envelope as read before anything of it is trusted: every field unknown, maybe absent. */
export type UncheckedEnvelope = { [K in EnvelopeKey]?: unknown };
