/**
 * Item "the build renames classes" of issue 14, against the packed package (both formats): class
 * names survive bundling (keepNames), so messages that name a class, `findHandle` and the bridge's
 * refusals read as docs/api.md says, not "_IpcSender" or "(S)".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, runNode } from './pack.js';
import type { Installed } from './pack.js';

const PROBE = `
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as esm from 'electron-ipc-channel';
const cjs = createRequire(import.meta.url)('electron-ipc-channel');

function probe(lib) {
  const out = {};
  out.classes = Object.entries(lib)
    .filter(([k, v]) => typeof v === 'function' && /^Ipc[A-Z]/.test(k))
    .map(([k, v]) => [k, v.name]);
  const [closed] = lib.channel();
  closed.close();
  const [tx, rx] = lib.channel();
  try { tx.send({ s: closed }); } catch (e) { out.closedSend = e.message; }
  try { tx.send(rx); } catch (e) { out.ownReceiver = e.message; }
  const [s, r] = lib.channel();
  const [bs, br] = lib.bytesChannel();
  const file = lib.IpcFileHandle.from(openSync(process.argv[1], 'r'));
  const shm = lib.IpcSharedMemory.fromBytes(new Uint8Array(8));
  out.instances = [s, r, bs, br, file, shm].map((o) => o.constructor.name);
  out.findSender = lib.findHandle({ a: [1, s] });
  out.findReceiver = lib.findHandle(new Map([['k', r]]));
  out.findBytes = lib.findHandle([bs]);
  out.findFile = lib.findHandle({ files: [file] });
  out.findShm = lib.findHandle({ shm });
  try { lib.assertNoHandles({ x: s }, 'window.ipc'); } catch (e) { out.bridge = e.constructor.name + ': ' + e.message; }
  for (const o of [tx, rx, s, r, bs, br, file, shm]) o.close();
  return out;
}

console.log(JSON.stringify({ esm: probe(esm), cjs: probe(cjs) }));
`;

let pkg: Installed;
let result: Record<'esm' | 'cjs', Record<string, unknown>>;

beforeAll(() => {
  pkg = packAndInstall();
  pkg.write('probe.mjs', PROBE);
  const r = runNode(['probe.mjs'], pkg.app);
  if (r.status !== 0) throw new Error(`probe failed (${r.status}):\n${r.stderr}`);
  result = JSON.parse(r.stdout.trim().split('\n').pop()!);
}, 60_000);

afterAll(() => pkg?.remove());

describe.each(['esm', 'cjs'] as const)('class names in the built package (%s)', (format) => {
  it('every exported class is named as exported', () => {
    const classes = result[format].classes as Array<[string, string]>;
    expect(classes.length).toBeGreaterThanOrEqual(10);
    for (const [exported, name] of classes) expect(name, exported).toBe(exported);
  });

  it('instances report their class', () => {
    expect(result[format].instances).toEqual(['IpcSender', 'IpcReceiver', 'IpcBytesSender', 'IpcBytesReceiver', 'IpcFileHandle', 'IpcSharedMemory']);
  });

  it('sending a closed sender says "cannot send a closed IpcSender"', () => {
    expect(result[format].closedSend).toBe('cannot send a closed IpcSender');
  });

  it('sending a receiver through its own channel names IpcReceiver', () => {
    expect(result[format].ownReceiver).toMatch(/writes to the IpcReceiver it was asked to send$/);
  });

  it('findHandle names the kind as docs/api.md shows it', () => {
    expect(result[format].findSender).toBe('value.a[1] (IpcSender)');
    expect(result[format].findReceiver).toBe('value.get("k") (IpcReceiver)');
    expect(result[format].findBytes).toBe('value[0] (IpcBytesSender)');
    expect(result[format].findFile).toBe('value.files[0] (IpcFileHandle)');
    expect(result[format].findShm).toBe('value.shm (IpcSharedMemory)');
  });

  it("the bridge's refusal names the handle and its class", () => {
    expect(result[format].bridge).toMatch(/^TypeError: window\.ipc: value\.x \(IpcSender\) cannot be sent to a renderer\./);
  });
});
