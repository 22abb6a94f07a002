/**
 * util.inspect() of the endpoints (Endpoint's [util.inspect.custom]): the state of the socket
 * core (descriptor, transport, closed, queued/waiting or queued writes), never message contents.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bytesChannel, channel } from '../src/main/index.js';
import { receiverCore } from '../src/main/channel.js';
import { transport } from '../src/main/transport/index.js';

const t = transport().name;

describe('util.inspect of endpoints', () => {
  it('shows a receiver\'s descriptor, transport, queued messages and pending receives', async () => {
    const [tx, rx] = channel<string>();
    const fd = receiverCore(rx).fd;
    expect(inspect(rx)).toBe(`IpcReceiver { fd: ${fd}, transport: '${t}', closed: false, queued: 0, waiting: 0 }`);
    const pending = rx.recv();
    expect(inspect(rx)).toBe(`IpcReceiver { fd: ${fd}, transport: '${t}', closed: false, queued: 0, waiting: 1 }`);
    tx.send('first');
    expect(await pending).toBe('first');
    // Sent in one tick: the first is written at once, the other four batched into one packet,
    // which the second tryRecv() reads whole (one taken, three queued).
    for (let i = 0; i < 5; i++) tx.send(`secret-payload-${i}`);
    expect(rx.tryRecv()).toEqual({ message: 'secret-payload-0' });
    expect(rx.tryRecv()).toEqual({ message: 'secret-payload-1' });
    const text = inspect(rx);
    expect(text).toBe(`IpcReceiver { fd: ${fd}, transport: '${t}', closed: false, queued: 3, waiting: 0 }`);
    expect(text).not.toContain('secret');
    rx.close();
    expect(inspect(rx)).toBe(`IpcReceiver { fd: -1, transport: '${t}', closed: true, queued: 0, waiting: 0 }`);
    tx.close();
  });

  it('shows a sender\'s descriptor, transport and the messages not yet written', async () => {
    const [tx, rx] = channel<string>();
    const fd = (tx as unknown as { core: { fd: number } }).core.fd;
    expect(inspect(tx)).toBe(`IpcSender { fd: ${fd}, transport: '${t}', closed: false, queuedWrites: 0 }`);
    tx.send('secret-a');
    tx.send('secret-b');
    tx.send('secret-c');
    const text = inspect(tx);
    expect(text).toBe(`IpcSender { fd: ${fd}, transport: '${t}', closed: false, queuedWrites: 2 }`);
    expect(text).not.toContain('secret');
    await tx.flush();
    expect(inspect(tx)).toBe(`IpcSender { fd: ${fd}, transport: '${t}', closed: false, queuedWrites: 0 }`);
    const clone = tx.clone();
    tx.close();
    expect(inspect(tx)).toBe(`IpcSender { fd: -1, transport: '${t}', closed: true, queuedWrites: 0 }`);
    expect(inspect(clone)).toMatch(/^IpcSender \{ fd: \d+, transport: '\w+', closed: false, queuedWrites: 0 \}$/);
    clone.close();
    rx.close();
  });

  it('names the bytes endpoints, and stays short when nested beyond the depth', () => {
    const [tx, rx] = bytesChannel();
    expect(inspect(tx)).toMatch(/^IpcBytesSender \{ fd: \d+, transport: '\w+', closed: false, queuedWrites: 0 \}$/);
    expect(inspect(rx)).toMatch(/^IpcBytesReceiver \{ fd: \d+, transport: '\w+', closed: false, queued: 0, waiting: 0 \}$/);
    expect(inspect({ a: { b: tx } }, { depth: 1 })).toBe('{ a: { b: [IpcBytesSender] } }');
    tx.close();
    rx.close();
  });
});
