import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { linuxNative } from '../../src/main/native.js';
import type { NativeLinuxBinding } from '../../src/main/native.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const addonPath = path.join(root, 'build', 'Release', 'electron_ipc_channel.node');
/** The addon, with its Linux half (these tests run on Linux). */
export const n: NativeLinuxBinding = linuxNative('test/native');

export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;

/** Open descriptors of this process (the directory listing's own fd excluded). */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length - 1;
}

/** The open-file flags of `fd` (octal `flags:` line of /proc/self/fdinfo). */
export function fdFlags(fd: number): number {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (!m) throw new Error(`no flags line for fd ${fd}`);
  return parseInt(m[1], 8);
}

export function isOpen(fd: number): boolean {
  try {
    readFileSync(`/proc/self/fdinfo/${fd}`);
    return true;
  } catch {
    return false;
  }
}

export interface Packet {
  bytes: Buffer;
  offset: number;
  fds: number[];
  flags: number;
}

export interface RecvResult {
  /** The numeric return (0 or a negated errno) when no packet came, else undefined. */
  status: number | undefined;
  packets: Packet[];
  eof: boolean;
}

/**
 * recvPackets into a fresh arena: room for `maxPackets` packets of `maxBytes`, at most 1 MiB (or
 * one packet) in all, so a batch stops where the library's own arenas would make it stop.
 */
export function recv(fd: number, opts: { maxPackets?: number; maxBytes?: number; fdSlots?: number } = {}): RecvResult {
  const maxPackets = opts.maxPackets ?? 16;
  const maxBytes = opts.maxBytes ?? 65536;
  const slot = (maxBytes + 7) & ~7;
  const arena = new Uint8Array(Math.max(8, Math.min(slot * maxPackets, Math.max(1 << 20, slot))));
  const meta = new Int32Array(2 + 4 * maxPackets).fill(-99);
  const fdsOut = new Int32Array(opts.fdSlots ?? 512).fill(-1);
  const r = n.recvPackets(fd, meta, fdsOut, maxPackets, maxBytes, arena, 0);
  if (r <= 0) {
    return { status: r, packets: [], eof: meta[1] === 1 };
  }
  const packets: Packet[] = [];
  let k = 0;
  for (let i = 0; i < meta[0]; i++) {
    const [offset, length, count, flags] = meta.subarray(2 + 4 * i, 6 + 4 * i);
    packets.push({ bytes: Buffer.from(arena.subarray(offset, offset + length)), offset, fds: Array.from(fdsOut.subarray(k, k + count)), flags });
    k += count;
  }
  return { status: undefined, packets, eof: meta[1] === 1 };
}

/** A FIFO opened at both ends: a real kernel pipe. */
export function fifo(): { readFd: number; writeFd: number } {
  const dir = mkdtempSync(path.join(tmpdir(), 'eic-fifo-'));
  const p = path.join(dir, 'f');
  execFileSync('mkfifo', [p]);
  const readFd = openSync(p, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const writeFd = openSync(p, fsc.O_WRONLY);
  rmSync(dir, { recursive: true });
  return { readFd, writeFd };
}

export function closeQuietly(...fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/** Runs `node -e script` with a hard timeout. */
export function runNode(script: string, timeoutMs: number, args: string[] = []) {
  return spawnSync(process.execPath, [...args, '-e', script], {
    env: { ...process.env, ADDON: addonPath },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
  });
}

/** Runs `node -e script` under `ulimit -n limit` with a hard timeout. */
export function runNodeWithFdLimit(script: string, limit: number, timeoutMs: number) {
  return spawnSync('sh', ['-c', `ulimit -n ${limit} && exec "$0" -e "$1"`, process.execPath, script], {
    env: { ...process.env, ADDON: addonPath },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
  });
}

/**
 * Waits (blocking this thread, at most `timeoutMs`) until the addon's closer thread has closed
 * every descriptor handed to it; throws when it has not.
 */
export function waitForCloses(timeoutMs = 5000): void {
  const end = Date.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (n.pendingCloses() > 0) {
    if (Date.now() > end) throw new Error(`${n.pendingCloses()} closes still pending after ${timeoutMs} ms`);
    Atomics.wait(cell, 0, 0, 1);
  }
}
