/**
 * Tracing for `NODE_DEBUG=electron-ipc-channel` (Node's `util.debuglog`: also matches
 * `NODE_DEBUG=electron-*` and lists like `NODE_DEBUG=net,electron-ipc-channel`). Lines go to
 * stderr as `ELECTRON-IPC-CHANNEL <pid>: <area> <text>`.
 *
 * Any module of src/main may call {@link trace}; it costs one boolean test when tracing is off.
 * Build costly arguments only under `if (traceEnabled())`. Never pass message contents: the
 * trace may end up in logs, so say what happened (sizes, counts, pids, descriptor numbers).
 *
 * Node reads `NODE_DEBUG` once, at start-up: setting it in `process.env` later has no effect.
 */
import { debuglog, format, inspect } from 'node:util';

/** The `NODE_DEBUG` section name. */
export const DEBUG_SECTION = 'electron-ipc-channel';

let log: ReturnType<typeof debuglog> | undefined;

function logger(): ReturnType<typeof debuglog> {
  // debuglog() checks NODE_DEBUG (as read at start-up) on first use.
  log ??= debuglog(DEBUG_SECTION);
  return log;
}

/** Whether tracing is on in this process. */
export function traceEnabled(): boolean {
  return logger().enabled;
}

/**
 * Writes one trace line when tracing is on: `area` names the part of the library (`server`,
 * `helper`, `supervisor`, `channel`...), `text` is a `util.format` string with `args`.
 * Never throws (a trace must not change what the traced code does).
 */
export function trace(area: string, text: string, ...args: unknown[]): void {
  const l = logger();
  if (!l.enabled) return;
  try {
    l('%s %s', area, format(text, ...args));
  } catch {
    // stderr closed or a throwing inspect: tracing is best effort.
  }
}

/** A short description of an error for a trace line: `IpcError(CODE): message` or `Name: message`. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.name}${typeof code === 'string' ? `(${code})` : ''}: ${e.message}`;
  }
  return inspect(e, { depth: 1, breakLength: Infinity });
}
