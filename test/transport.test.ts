// The contract suite runs on each backend: this file checks that the backend in use is the one
// the project asked for, and that its channels are what it says (so the stream project cannot
// silently test seqpacket).
import { describe, expect, it } from 'vitest';
import { channel } from '../src/main/index.js';
import { receiverCore } from '../src/main/channel.js';
import { fdInfo } from '../src/main/native.js';
import { transport } from '../src/main/transport/index.js';

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
  it('refuses a sender clone on the stream transport (one writer per stream socket), allows it on seqpacket', () => {
    const [tx, rx] = channel();
    if (transport().name === 'stream') expect(() => tx.clone()).toThrow(/not available on the stream transport/);
    else tx.clone().close();
    tx.close();
    rx.close();
  });
});
