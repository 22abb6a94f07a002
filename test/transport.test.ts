// The contract suite runs on each backend: this file checks that the backend in use is the one
// the project asked for, and that its channels are what it says (so the stream project cannot
// silently test seqpacket).
import { fstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { channel } from '../src/main/index.js';
import type { IpcSender } from '../src/main/index.js';
import { receiverCore } from '../src/main/channel.js';
import { fdInfo } from '../src/main/native.js';
import { transport } from '../src/main/transport/index.js';
import { skipOnWin32 } from './helpers.js';

describe('transport', () => {
  it('is the one ELECTRON_IPC_CHANNEL_TRANSPORT names, and its channels are its sockets', async () => {
    const t = transport();
    expect(t.name).toBe(process.env.ELECTRON_IPC_CHANNEL_TRANSPORT ?? 'seqpacket');
    const [tx, rx] = channel<{ a: number }>();
    expect(fdInfo(receiverCore(rx).fd).kind).toBe(t.socketKind);
    tx.send({ a: 1 });
    expect(await rx.recv()).toEqual({ a: 1 });
    tx.close();
    rx.close();
  });
  it('a clone shares its sender\'s socket; a sender sent in a message gets its own socket where a socket takes one writer (stream)', skipOnWin32('compares sockets by inode with fstat; a win32 pipe end is an id in the addon\'s table, not a C runtime descriptor'), async () => {
    const [tx, rx] = channel<number>();
    const [carrier, carrierRx] = channel<{ s: IpcSender<number> }>();
    const tx2 = tx.clone();
    carrier.send({ s: tx });
    const { s: sent } = await carrierRx.recv({ timeout: 5000 });
    const inode = (s: unknown): number => fstatSync((s as { core: { fd: number } }).core.fd).ino;
    expect(inode(tx2)).toBe(inode(tx));
    expect(inode(sent) === inode(tx)).toBe(!transport().singleWriter);
    tx2.send(2);
    sent.send(3);
    expect((await Promise.all([rx.recv({ timeout: 5000 }), rx.recv({ timeout: 5000 })])).sort()).toEqual([2, 3]);
    for (const e of [tx, tx2, sent, rx, carrier, carrierRx]) e.close();
  });
});
