// Issue 15 §2: fdInfo records, for a received descriptor whose close can never wait (a pipe,
// /dev/null, a memfd, a file on a block device), that its close needs no second statx
// (FdOrigin::kCloseCannotWait in the descriptor table). These tests hold the closer thread in a
// close that waits (a TCP socket with unsent data and SO_LINGER, its peer never reading), so that
// where each later close runs is visible: a descriptor closed on this thread is gone at once, one
// handed to the closer stays open behind the blocked one. What must never be marked: a socket
// (what its queue holds changes after fdInfo looked), and a number reused by another descriptor.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fifo, isOpen, n, recv, waitForCloses } from './helpers.js';

// Sends, on the socket it gets as fd 3, the client end of a loopback TCP connection whose send
// buffer is full, whose peer never reads and which lingers 60 s: its last close(2) waits until
// this process exits (the unread end is then reset).
const BLOCKER_PY = `
import os, select, socket, struct, sys
out = socket.socket(fileno=3)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
listener.bind(('127.0.0.1', 0))
listener.listen(1)
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
client.connect(listener.getsockname())
kept, _ = listener.accept()
client.setblocking(False)
try:
    while True:
        client.send(b'x' * 65536)
except BlockingIOError:
    pass
client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 60))
socket.send_fds(out, [b'b'], [client.fileno()])
client.close()
sys.stdout.write('ready\\n')
sys.stdout.flush()
select.select([sys.stdin], [], [], 20)
os._exit(0)
`;

/** A copy of `fd` as a peer would send it: received through a socket pair, origin unknown. */
function received(fd: number): number {
  const [a, b] = n.socketpair();
  expect(n.sendPacket(a, [new Uint8Array([1])], [fd])).toBe(1);
  const r = recv(b);
  n.close(a);
  n.close(b);
  expect(r.packets[0]?.fds.length).toBe(1);
  return r.packets[0]!.fds[0]!;
}

/** Blocks the closer thread until `release()`. */
async function blockCloser(): Promise<{ release: () => Promise<void> }> {
  const [a, b] = n.socketpair();
  const child = spawn('python3', ['-c', BLOCKER_PY], { stdio: ['pipe', 'pipe', 'inherit', b] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`blocker exited early: ${code}`)));
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
  });
  n.close(b);
  const lingering = recv(a).packets[0]!.fds[0]!;
  n.close(a);
  expect(n.fdInfo(lingering).kind).toBe('stream-socket');
  n.close(lingering);
  // The closer thread now waits in close(lingering) (a TCP socket always goes to it); the number
  // itself is released as that close begins, before it waits, so only the count shows it.
  expect(n.pendingCloses()).toBe(1);
  child.removeAllListeners('exit');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async release() {
      child.stdin!.end();
      await exited;
      waitForCloses(10_000); // (its number may be reused at once: not checked)
    },
  };
}

describe('fdInfo and the closer: the close decision taken on receipt', () => {
  it('received descriptors whose close cannot wait close on this thread after fdInfo; sockets and reused numbers still go to the closer', async () => {
    // Everything that spawns a process (fifo() runs mkfifo) comes first: a SIGCHLD delivered to
    // the closer thread would interrupt its lingering close.
    const dir = mkdtempSync(path.join(tmpdir(), 'eic-verdict-'));
    const opened: number[] = [];
    const { readFd, writeFd } = fifo();
    opened.push(readFd, writeFd);
    const blocker = await blockCloser();
    try {
      // Kinds whose close never waits, each received (origin unknown) then examined by fdInfo.
      const devNull = openSync('/dev/null', 'r');
      opened.push(devNull);
      const mem = n.memfdCreate('verdict', 64);
      const sources: Array<[string, number]> = [
        ['pipe', readFd],
        ['other', devNull],
        ['memfd', mem],
      ];
      const file = path.join(dir, 'f');
      writeFileSync(file, 'x');
      // A file on a block device (major != 0); on tmpfs or overlayfs (major 0) it is not tested.
      if (Math.floor(statSync(file).dev / 256) % 4096 !== 0) {
        const fileFd = openSync(file, 'r');
        opened.push(fileFd);
        sources.push(['file', fileFd]);
      }
      for (const [kind, source] of sources) {
        const fd = received(source);
        expect(n.fdInfo(fd).kind).toBe(kind);
        n.close(fd);
        expect(isOpen(fd), `${kind}: closed on this thread`).toBe(false);
      }
      n.close(mem);
      expect(n.pendingCloses()).toBe(1);

      // A received AF_UNIX socket examined by fdInfo while its queue is empty, then sent a
      // descriptor: its close releases that descriptor, which may wait, so it goes to the closer.
      const [s1, s2] = n.socketpair();
      const sock = received(s2);
      n.close(s2);
      expect(n.fdInfo(sock).kind).toBe('seqpacket');
      expect(n.sendPacket(s1, [new Uint8Array([2])], [writeFd])).toBe(1);
      n.close(sock);
      expect(isOpen(sock), 'a socket holding a descriptor waits for the closer').toBe(true);
      expect(n.pendingCloses()).toBe(2);

      // A number fdInfo marked, closed, then reused by a received socket holding a descriptor:
      // the mark went with the first descriptor.
      const pipeCopy = received(readFd);
      expect(n.fdInfo(pipeCopy).kind).toBe('pipe');
      n.close(pipeCopy);
      const [t1, t2] = n.socketpair();
      const reused = received(t2);
      n.close(t2);
      expect(n.sendPacket(t1, [new Uint8Array([3])], [writeFd])).toBe(1);
      n.close(reused);
      expect(isOpen(reused), 'the reused number goes to the closer').toBe(true);
      expect(n.pendingCloses()).toBe(3);
      n.close(s1);
      n.close(t1);
    } finally {
      await blocker.release();
      for (const fd of opened) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(n.pendingCloses()).toBe(0);
  }, 30_000);
});
