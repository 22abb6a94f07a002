/**
 * Item "ESM and CommonJS builds loaded in one process" of issue 14, against the packed package:
 * one process imports the ESM entries and requires the CommonJS ones (main and shared); they are
 * one implementation, so handles made by one work in the other, errors of one pass the other's
 * `isIpcError`/`instanceof`, and the addon is loaded once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, runNode } from './pack.js';
import type { Installed } from './pack.js';

const PROBE = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as esm from 'electron-ipc-channel';
import * as sharedEsm from 'electron-ipc-channel/shared';
const require = createRequire(import.meta.url);
const cjs = require('electron-ipc-channel');
const sharedCjs = require('electron-ipc-channel/shared');
const out = {};

// The same objects behind every entry and format.
out.differentExports = Object.keys(cjs).filter((k) => esm[k] !== cjs[k]);
out.sharedDifferent = Object.keys(sharedCjs).filter((k) => sharedEsm[k] !== sharedCjs[k] || (k in cjs && cjs[k] !== sharedCjs[k]));

// A sender made by the CommonJS build travels through a channel of the ESM build, and back.
const [inner, innerRx] = cjs.channel();
const [tx, rx] = esm.channel();
const [etx, erx] = esm.channel();
const [ctx, crx] = cjs.channel();
const later = [tx, rx, inner, innerRx, etx, erx, ctx, crx];
try {
  tx.send({ reply: inner, note: 'hello' });
  const got = await rx.recv();
  later.push(got.reply);
  out.instanceofCjs = got.reply instanceof cjs.IpcSender;
  out.instanceofEsm = got.reply instanceof esm.IpcSender;
  got.reply.send(got.note + ' back');
  out.roundTrip = await innerRx.recv();
} catch (e) {
  out.roundTrip = 'failed: ' + e.message;
}
// And an ESM-made receiver through a CommonJS channel.
try {
  ctx.send(erx);
  const movedRx = await crx.recv();
  later.push(movedRx);
  etx.send(42);
  out.movedReceiver = (await movedRx.recv()) === 42 && movedRx instanceof cjs.IpcReceiver;
} catch (e) {
  out.movedReceiver = 'failed: ' + e.message;
}

// Errors of one format are errors of the other (and of the shared entry).
const [closed] = cjs.channel();
closed.close();
try {
  tx.send(closed);
} catch (e) {
  out.error = {
    message: e.message,
    esmIsIpcError: esm.isIpcError(e, 'CLOSED'),
    sharedEsmIsIpcError: sharedEsm.isIpcError(e),
    sharedCjsIsIpcError: sharedCjs.isIpcError(e),
    instanceofEsm: e instanceof esm.IpcError,
    instanceofShared: e instanceof sharedEsm.IpcError,
  };
}
const made = new sharedEsm.IpcError('TIMEOUT', 'x');
out.sharedErrorInMain = cjs.isIpcError(made, 'TIMEOUT') && esm.isIpcError(made);
// The addon is loaded once: one module for it, one mapping of its file.
out.addonModules = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
out.addonMappings = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .filter((l) => l.includes('electron_ipc_channel.node')).map((l) => l.split(/\\s+/).pop()))];
for (const o of later) o.close();
console.log(JSON.stringify(out));
`;

let pkg: Installed;
let out: Record<string, unknown>;

beforeAll(() => {
  pkg = packAndInstall();
  pkg.write('probe.mjs', PROBE);
  const r = runNode(['probe.mjs'], pkg.app);
  if (r.status !== 0) throw new Error(`probe failed (${r.status}):\n${r.stderr}`);
  out = JSON.parse(r.stdout.trim().split('\n').pop()!);
}, 60_000);

afterAll(() => pkg?.remove());

describe('ESM and CommonJS builds in one process (packed package)', () => {
  it('every export is the same object in both formats, and in the shared entry', () => {
    expect(out.differentExports).toEqual([]);
    expect(out.sharedDifferent).toEqual([]);
  });

  it('a sender from the CommonJS build travels through an ESM channel and works', () => {
    expect(out.instanceofCjs).toBe(true);
    expect(out.instanceofEsm).toBe(true);
    expect(out.roundTrip).toBe('hello back');
    expect(out.movedReceiver).toBe(true);
  });

  it('isIpcError and instanceof hold across formats and entries', () => {
    expect(out.error).toEqual({
      message: 'cannot send a closed IpcSender',
      esmIsIpcError: true,
      sharedEsmIsIpcError: true,
      sharedCjsIsIpcError: true,
      instanceofEsm: true,
      instanceofShared: true,
    });
    expect(out.sharedErrorInMain).toBe(true);
  });

  it('the addon is loaded once', () => {
    expect(out.addonModules).toHaveLength(1);
    expect(out.addonMappings).toHaveLength(1);
  });
});
