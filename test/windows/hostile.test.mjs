// Hostile input: a raw peer in another process writes what the addon never writes. Each bad
// message is one typed IpcError (MALFORMED or TOO_LARGE) at recv; valid messages around them
// still arrive; no crash, no hang, handles back to baseline.
import path from 'node:path';
import { inspect } from 'node:util';
import { addon, assert, equal, handleCount, here, lib, test, spawnNode } from './harness.mjs';

const { IpcOneShotServer, IpcError } = lib;

test('a raw peer writing garbage, short, oversized and forged-handle messages gets typed errors only', async () => {
  const before = await handleCount();
  // The event loop must never stall: a 5 ms heartbeat records the longest gap.
  let last = performance.now();
  let maxGap = 0;
  const beat = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const server = new IpcOneShotServer();
  // A receiver of ours whose handle the peer names in a forged message: taking it (and closing
  // it at its source, as DUPLICATE_CLOSE_SOURCE does) would break this channel.
  const [ownTx, ownRx] = lib.channel();
  const ownHandle = addon.testHandleValue(Number(/fd: (\d+)/.exec(inspect(ownRx))[1]));
  const child = await spawnNode([path.join(here, 'fixtures', 'hostile.mjs'), server.name, String(process.pid), String(ownHandle)], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const [rx, first] = await server.accept({ timeout: 20000 });
  equal(first, 'hi');
  const values = [];
  const errors = [];
  for (;;) {
    try {
      const v = await rx.recv({ timeout: 15000 });
      values.push(v);
      if (v === 'end') break;
    } catch (e) {
      if (e instanceof IpcError && e.code === 'DISCONNECTED') break;
      errors.push(e);
      if (!(e instanceof IpcError) || !['MALFORMED', 'TOO_LARGE'].includes(e.code)) throw e;
    }
  }
  equal(values, ['after garbage', 'after big', 'end'], 'valid messages');
  equal(errors.length, 9, `one error per bad message: ${errors.map((e) => `${e.code}: ${e.message.slice(0, 120)}`).join(' | ')}`);
  console.log(`  errors: ${[...new Set(errors.map((e) => e.code))].join(', ')}; e.g. "${errors[3].message.slice(0, 140)}"`);
  equal(await exited, 0, 'hostile peer exit code');
  ownTx.send('still mine');
  equal(await ownRx.recv({ timeout: 5000 }), 'still mine', 'our own receiver, named by the forged message');
  ownTx.close();
  ownRx.close();
  rx.close();
  clearInterval(beat);
  console.log(`  longest event-loop gap: ${maxGap.toFixed(0)} ms`);
  assert(maxGap < 1000, `event-loop gap ${maxGap.toFixed(0)} ms`);
  const after = await handleCount();
  assert(after <= before + 2, `handles ${before} -> ${after}`);
});
