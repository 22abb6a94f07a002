/**
 * NODE_DEBUG=electron-ipc-channel (src/main/debug.ts): a process running an IpcServer and a
 * supervised helper writes trace lines for bootstraps, accepts, refusals, spawns, exits and
 * restarts; one using channels, for refused messages, switches, end of file and senders that
 * stop; and none without the variable. Children load the built library (run `npx tsup`).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, skipOnWin32 } from './helpers.js';

const fixture = path.join(root, 'test', 'fixtures', 'services', 'trace.mjs');
const channelFixture = path.join(root, 'test', 'fixtures', 'services', 'trace-channel.mjs');
const T = { timeout: 60_000 };

function runTrace(nodeDebug: string | undefined, file = fixture) {
  const env = { ...process.env };
  delete env.NODE_DEBUG;
  if (nodeDebug !== undefined) env.NODE_DEBUG = nodeDebug;
  const r = spawnSync(process.execPath, [file], { env, encoding: 'utf8', timeout: 30_000 });
  expect(r.stdout).toBe('done\n');
  expect(r.status).toBe(0);
  return r.stderr.split('\n').filter((l) => l.startsWith('ELECTRON-IPC-CHANNEL '));
}

describe('NODE_DEBUG=electron-ipc-channel', () => {
  it('traces server accepts and refusals, helper spawns, exits and restarts', skipOnWin32('expects POSIX server paths and the transport seqpacket or stream in the trace; win32 traces C:\\\\… paths and transport win32', T), () => {
    const lines = runTrace('electron-ipc-channel');
    const text = lines.join('\n');
    const pid = /^ELECTRON-IPC-CHANNEL (\d+): /.exec(lines[0] ?? '')?.[1];
    expect(pid).toBeDefined();
    for (const l of lines) expect(l).toMatch(/^ELECTRON-IPC-CHANNEL \d+: (server|helper|supervisor|channel) /);
    expect(text).toMatch(/server IpcServer listening at \/.*\/s \(maxClients 1, maxPending 32, transport (seqpacket|stream)\)/);
    expect(text).toMatch(/server accepted pid \d+ uid \d+ on fd \d+; waiting for its hello/);
    expect(text).toMatch(/server connection \d+: pid \d+ welcomed \(1 clients\)/);
    expect(text).toMatch(/server refused pid \d+: the server has 1 clients, its limit \(maxClients\)/);
    expect(text).toMatch(/server connection \d+ \(pid \d+\) ended: the client hung up/);
    expect(text).toMatch(/server IpcServer at .* closed/);
    expect(text).toMatch(/helper spawning .*worker\.mjs \(node runner, timeout 10000 ms\)/);
    expect(text).toMatch(/helper helper worker\.mjs \(pid \d+\) connected/);
    expect(text).toMatch(/helper helper worker\.mjs \(pid \d+\) was killed by SIGKILL/);
    expect(text).toMatch(/supervisor helper worker\.mjs \(pid \d+\): was killed by SIGKILL; restart #1 in 10 ms/);
    expect(text).toMatch(/supervisor helper worker\.mjs restarted as pid \d+ \(restart #1\)/);
    expect(text).toMatch(/supervisor helper worker\.mjs \(pid \d+\): exited on close/);
  });

  it('traces refused messages, switches, end of file and senders that stop, without message contents', T, () => {
    const lines = runTrace('electron-ipc-channel', channelFixture);
    const text = lines.join('\n');
    for (const l of lines) expect(l).toMatch(/^ELECTRON-IPC-CHANNEL \d+: channel /);
    expect(text).toMatch(/channel IpcReceiver on fd \d+ refused a message: IpcError\(TOO_LARGE\): .*maxMessageBytes \(64\)/);
    expect(text).toMatch(/channel IpcReceiver switched from its carrier fd \d+ to fd \d+/);
    expect(text).toMatch(/channel IpcReceiver on fd \d+: end of file \(every sender is closed\)/);
    expect(text).toMatch(/channel IpcSender on fd \d+ stopped sending \(DISCONNECTED\): 2 queued message\(s\) dropped/);
    expect(text).not.toContain('xxxx');
    expect(runTrace(undefined, channelFixture)).toEqual([]);
  });

  it('also with a wildcard section, and writes nothing without NODE_DEBUG or for another section', T, () => {
    expect(runTrace('net,electron-*').length).toBeGreaterThan(5);
    expect(runTrace(undefined)).toEqual([]);
    expect(runTrace('http')).toEqual([]);
  });
});
