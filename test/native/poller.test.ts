import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { POLL_DISCONNECT, POLL_READABLE, POLL_WRITABLE } from '../../src/main/native.js';
import type { NativePoller } from '../../src/main/native.js';
import { addonPath, fdCount, n, recv, runNode, waitForCloses } from './helpers.js';

const opened: number[] = [];
const pollers: NativePoller[] = [];
function pair(): [number, number] {
  const p = n.socketpair();
  opened.push(...p);
  return p;
}
afterEach(() => {
  for (const p of pollers.splice(0)) p.close();
  for (const fd of opened.splice(0)) {
    try {
      n.close(fd);
    } catch {
      // closed by the test
    }
  }
});

function poller(fd: number, cb: (status: number, events: number) => void): NativePoller {
  const p = new n.Poller(fd, cb);
  pollers.push(p);
  return p;
}

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no callback within ${ms} ms`)), ms))]);
}

describe('Poller', () => {
  it('calls back with POLL_READABLE when a packet arrives', async () => {
    const [a, b] = pair();
    const calls: [number, number][] = [];
    const fired = new Promise<void>((resolve) => {
      const p = poller(b, (status, events) => {
        calls.push([status, events]);
        p.stop();
        resolve();
      });
      p.start(POLL_READABLE);
    });
    setTimeout(() => n.sendPacket(a, [new Uint8Array([1])], null), 5);
    await within(2000, fired);
    expect(calls).toEqual([[0, POLL_READABLE]]);
    expect(recv(b).packets).toHaveLength(1);
  });

  it('does not call back before there is something to read', async () => {
    const [, b] = pair();
    let calls = 0;
    const p = poller(b, () => calls++);
    p.start(POLL_READABLE);
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(0);
  });

  it('reports POLL_WRITABLE and POLL_DISCONNECT', async () => {
    const [a, b] = pair();
    const writable = await within(
      2000,
      new Promise<number>((resolve) => {
        const p = poller(a, (_s, events) => {
          p.stop();
          resolve(events);
        });
        p.start(POLL_WRITABLE);
      }),
    );
    expect(writable & POLL_WRITABLE).toBe(POLL_WRITABLE);
    const disconnect = new Promise<number>((resolve) => {
      const p = poller(b, (_s, events) => {
        p.stop();
        resolve(events);
      });
      p.start(POLL_READABLE | POLL_DISCONNECT);
    });
    n.close(a);
    expect((await within(2000, disconnect)) & POLL_DISCONNECT).toBe(POLL_DISCONNECT);
  });

  it('runs microtasks queued by the callback before the next macrotask', async () => {
    const [a, b] = pair();
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      const p = poller(b, () => {
        p.stop();
        setImmediate(() => {
          order.push('immediate');
          resolve();
        });
        queueMicrotask(() => order.push('microtask'));
        void Promise.resolve().then(() => order.push('promise'));
        order.push('callback');
      });
      p.start(POLL_READABLE);
    });
    n.sendPacket(a, [new Uint8Array([1])], null);
    await within(2000, done);
    expect(order).toEqual(['callback', 'microtask', 'promise', 'immediate']);
  });

  it('close is idempotent, start after close throws, and the descriptor stays open', () => {
    const [a, b] = pair();
    const p = poller(b, () => {});
    p.start(POLL_READABLE);
    p.close();
    p.close();
    p.stop();
    p.ref();
    p.unref();
    expect(() => p.start(POLL_READABLE)).toThrow(/closed/);
    expect(n.sendPacket(a, [new Uint8Array([9])], null)).toBe(1);
    expect(recv(b).packets[0].bytes[0]).toBe(9);
    // The fd can take a new poller once the old one is closed.
    const q = poller(b, () => {});
    q.start(POLL_READABLE);
  });

  it('closing the descriptor through the addon closes its poller', () => {
    const [, b] = pair();
    const p = poller(b, () => {});
    p.start(POLL_READABLE);
    n.close(b);
    expect(() => p.start(POLL_READABLE)).toThrow(/closed/);
    p.close();
  });

  it('start on a descriptor closed behind its back throws EBADF instead of aborting in libuv', () => {
    const [, b] = pair();
    const p = poller(b, () => {});
    closeSync(b);
    expect(() => p.start(POLL_READABLE)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'uv_poll_start' }));
  });

  it('refuses a second poller on the same descriptor, and bad arguments', () => {
    const [, b] = pair();
    poller(b, () => {});
    expect(() => new n.Poller(b, () => {})).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => new n.Poller(b, 'x' as unknown as () => void)).toThrow(TypeError);
    const [c] = pair();
    const p = poller(c, () => {});
    expect(() => p.start(8)).toThrow(RangeError);
  });

  it('throws an errno error for a descriptor that is not open', () => {
    const [a] = pair();
    n.close(a);
    expect(() => new n.Poller(a, () => {})).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'uv_poll_init' }));
  });

  it('an exception thrown by the callback is an uncaught exception', () => {
    const script = `
      const n = require(process.env.ADDON);
      const [a, b] = n.socketpair();
      process.on('uncaughtException', (e) => { console.log('caught ' + e.message); process.exit(0); });
      const p = new n.Poller(b, () => { throw new Error('boom'); });
      p.start(1);
      n.sendPacket(a, [Buffer.from('x')], null);
    `;
    const r = runNode(script, 10_000);
    expect(r.stdout.trim()).toBe('caught boom');
    expect(r.status).toBe(0);
  });
});

describe('Poller and the event loop', () => {
  const script = (unref: boolean) => `
    const n = require(process.env.ADDON);
    const [a, b] = n.socketpair();
    const p = new n.Poller(b, () => {});
    p.start(1);
    ${unref ? 'p.unref();' : ''}
    console.log('started');
  `;

  it('an active poller keeps the process alive', () => {
    const r = runNode(script(false), 1500);
    expect(r.stdout).toBe('started\n');
    expect(r.signal).toBe('SIGKILL'); // killed by the hard timeout
  });

  it('unref() lets the process exit', () => {
    const r = runNode(script(true), 10_000);
    expect(r.stdout).toBe('started\n');
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
  });

  it('ref() after unref() keeps it alive again', () => {
    const r = runNode(script(true) + 'p.ref();', 1500);
    expect(r.signal).toBe('SIGKILL');
  });

  it('collected pollers close their handles without crashing', () => {
    const r = runNode(
      `
      const n = require(process.env.ADDON);
      const fds = [];
      for (let i = 0; i < 200; i++) {
        const [a, b] = n.socketpair();
        fds.push(a, b);
        const p = new n.Poller(b, () => {});
        p.start(1);
        p.unref();
      }
      (async () => {
        for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
        // Collected pollers freed their fds' slots: new pollers on the same fds are accepted.
        for (let i = 1; i < fds.length; i += 2) new n.Poller(fds[i], () => {}).close();
        console.log('ok');
      })();
    `,
      20_000,
      ['--expose-gc'],
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(r.status).toBe(0);
  });
});

describe('environment teardown', () => {
  const workerCode = (how: 'return' | 'exit') => `
    const { parentPort } = require('worker_threads');
    const n = require(${JSON.stringify(addonPath)});
    const fds = [];
    for (let i = 0; i < 20; i++) {
      const [a, b] = n.socketpair();
      fds.push(a, b);
      const p = new n.Poller(b, () => {});
      p.start(1);
      ${how === 'return' ? 'p.unref();' : ''}
      n.sendPacket(a, [Buffer.from('x')], [a, b]);
    }
    const closing = new n.Poller(fds[0], () => {});
    closing.start(1);
    closing.close();
    parentPort.postMessage({ fds, count: n.openCount() });
    ${how === 'exit' ? 'process.exit(0);' : ''}
  `;

  for (const how of ['return', 'exit'] as const) {
    it(`closes a worker's descriptors and pollers when it ${how === 'return' ? 'ends' : 'calls process.exit'}`, async () => {
      const baseline = fdCount();
      const w = new Worker(workerCode(how), { eval: true });
      let msg: { fds: number[]; count: number } | undefined;
      w.on('message', (m) => (msg = m));
      const code = await within(10_000, new Promise<number>((resolve) => w.on('exit', resolve)));
      expect(code).toBe(0);
      expect(msg!.count).toBe(40);
      // Sockets with descriptors queued on them are closed by the closer thread (their queue may
      // hold something whose release blocks), the rest at once.
      waitForCloses();
      expect(fdCount()).toBe(baseline);
    });
  }

  it('closes descriptors of a terminated worker', async () => {
    const baseline = fdCount();
    const w = new Worker(
      `
      const { parentPort } = require('worker_threads');
      const n = require(${JSON.stringify(addonPath)});
      const fds = [];
      for (let i = 0; i < 10; i++) { const [a, b] = n.socketpair(); fds.push(a, b); new n.Poller(b, () => {}).start(1); }
      parentPort.postMessage(fds);
      setInterval(() => {}, 1000);
    `,
      { eval: true },
    );
    const fds = await within(10_000, new Promise<number[]>((resolve) => w.once('message', resolve)));
    for (const fd of fds) expect(n.fdInfo(fd).kind).toBe('seqpacket');
    expect(n.openCount()).toBe(0); // they belong to the worker's table, not this one
    await w.terminate();
    expect(fdCount()).toBe(baseline);
  });
});
