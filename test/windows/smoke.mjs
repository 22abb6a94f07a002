// Smoke test of the win32 transport's native calls (src/native/win/: ends.cc, io.cc, watch.cc),
// with no typed layer above: run by scripts/test-windows.mjs under Wine's node.exe:
// `node.exe smoke.mjs <addon.node>`, before the contract suite. It keeps the facts the earlier
// IOCP groundwork proved, now on the transport itself: pipe pairs, message boundaries of sizes
// around the 64 KiB read chunk and pipe buffer, readiness by callbacks driving queued sends,
// the end of a closed peer (0, GONE), closing an end whose big write is pending, thousands of
// messages each way at once, and the process exiting by itself once nothing is watched.
// Prints one line per check, then `SUMMARY {json}` as its last line; exits 1 on any failure.
// stdout must be a file, not a Linux pipe (Wine's node.exe fails console.log with EBADF there).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addonPath = process.argv[2];
const started = Date.now();
const checks = [];
let failed = 0;

function check(name, ok, detail = '') {
  checks.push({ name, ok });
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}

function finish(extra = {}) {
  const summary = { passed: checks.length - failed, failed, ms: Date.now() - started, node: process.version, platform: `${process.platform}-${process.arch}`, ...extra };
  console.log(`SUMMARY ${JSON.stringify(summary)}`);
  process.exitCode = failed === 0 && checks.length > 0 ? 0 : 1;
}

/** A message of `size` bytes whose content says which one it is. */
function message(tag, size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (tag * 31 + i) & 0xff;
  return bytes;
}

function same(a, b) {
  if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const READABLE = 1;
const WRITABLE = 2;

async function main() {
  const w = require(addonPath);
  check('addon loads', w.platform === 'win32' && typeof w.socketpair === 'function' && typeof w.recvPackets === 'function', addonPath);
  const MAX = w.MAX_PAYLOAD;
  const arena = new Uint8Array(MAX);
  const meta = new Int32Array(6);
  const fds = new Int32Array(253);

  // Every readiness callback lands here (JS thread), from the thread pool's waits.
  const wakers = new Map();
  let callbacks = 0;
  const bitsSeen = new Map();
  w.init((id, bits) => {
    callbacks++;
    bitsSeen.set(id, (bitsSeen.get(id) ?? 0) | bits);
    wakers.get(id)?.(bits);
  });

  /** One packet, or AGAIN, or 0 at the end. */
  function recv(id) {
    const r = w.recvPackets(id, meta, fds, 1, MAX, arena, 0);
    return r === 1 ? { bytes: arena.slice(meta[2], meta[2] + meta[3]), flags: meta[5] } : r;
  }

  /**
   * Sends `out` on `id` and receives until `count` messages (or the end) came, both driven by
   * readiness callbacks: a send that finds a write in flight (AGAIN) goes on at the writable
   * event, reads drain at each readable one. Keeps the loop alive (ref) while it runs.
   */
  function pump(id, out, count) {
    const got = [];
    let again = 0;
    let eof = false;
    w.ref(1);
    return new Promise((resolve, reject) => {
      const step = () => {
        try {
          while (out.length > 0) {
            const r = w.sendPacket(id, [out[0]], null);
            if (r === w.AGAIN) {
              again++;
              break;
            }
            if (r !== out[0].length) throw new Error(`sendPacket(${id}) returned ${r}`);
            out.shift();
          }
          while (got.length < count) {
            const m = recv(id);
            if (m === w.AGAIN) break;
            if (m === 0) {
              eof = true;
              break;
            }
            got.push(m.bytes);
          }
          if ((got.length >= count || eof) && out.length === 0) {
            wakers.delete(id);
            w.watch(id, 0);
            w.ref(-1);
            resolve({ got, eof, again });
            return;
          }
          w.watch(id, READABLE | (out.length > 0 ? WRITABLE : 0));
        } catch (e) {
          w.ref(-1);
          reject(e);
        }
      };
      wakers.set(id, step);
      step();
    });
  }
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 30 s')), 30000).unref());

  const [a, b] = w.socketpair();
  const ia = w.fdInfo(a);
  check('a pair: two ids above ID_BASE, message-mode pipe ends, local only', a >= w.ID_BASE && b >= w.ID_BASE && a !== b &&
    ia.kind === 'message-pipe' && ia.domain === 'unix' && ia.connected, `${a}, ${b}, ${JSON.stringify(ia)}`);
  check('recv on an empty end is AGAIN', recv(a) === w.AGAIN && recv(b) === w.AGAIN);

  const sizes = [1, 100, 4096, 65536, 200000, 0, 7]; // 200000 > the 64 KiB read chunk and pipe buffer
  const ab = sizes.map((n, i) => message(i, n));
  const ba = sizes.slice().reverse().map((n, i) => message(100 + i, n));
  const [ra, rb] = await Promise.race([Promise.all([pump(a, [...ab], ba.length), pump(b, [...ba], ab.length)]), timeout]);
  check(`a -> b: ${ab.length} messages, boundaries and order kept`, rb.got.length === ab.length && rb.got.every((m, i) => same(m, ab[i])), `sizes ${rb.got.map((m) => m.length).join(',')}`);
  check(`b -> a: ${ba.length} messages, boundaries and order kept`, ra.got.length === ba.length && ra.got.every((m, i) => same(m, ba[i])), `sizes ${ra.got.map((m) => m.length).join(',')}`);
  check('readiness callbacks came from the thread pool (readable and writable)', callbacks > 0 && (bitsSeen.get(b) & READABLE) !== 0 && ((bitsSeen.get(a) | bitsSeen.get(b)) & WRITABLE) !== 0, `${callbacks} callbacks`);

  // Closing one end: the other reads the end (0) and its sends say GONE; the id is gone.
  w.close(a);
  const rEof = await Promise.race([pump(b, [], Infinity), timeout]);
  check('close: the peer reads the end', rEof.eof && rEof.got.length === 0 && w.peerHungUp(b));
  let gone;
  for (let i = 0; i < 50; i++) {
    gone = w.sendPacket(b, [message(1, 10)], null);
    if (gone === w.GONE) break;
    await sleep(10); // a write in flight (AGAIN) finishes first
  }
  check('send to a closed peer is GONE', gone === w.GONE, `last result ${gone}`);
  let code;
  try {
    recv(a);
  } catch (e) {
    code = e.code;
  }
  check('a closed id is no longer usable (EBADF)', code === 'EBADF', code);
  w.close(b);
  await sleep(50);
  const handlesBefore = w.handleCount(); // the thread pool's threads and waits exist by now

  // Many small messages both ways at once.
  {
    const N = 3000;
    const [p, q] = w.socketpair();
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 3001);
    const pq = Array.from({ length: N }, (_, i) => message(i, rand()));
    const qp = Array.from({ length: N }, (_, i) => message(i + 7, rand()));
    const t = Date.now();
    const [rq, rp] = await Promise.race([Promise.all([pump(q, [...qp], N), pump(p, [...pq], N)]), timeout]);
    const ok = rq.got.length === N && rp.got.length === N && rq.got.every((m, i) => same(m, pq[i])) && rp.got.every((m, i) => same(m, qp[i]));
    check(`${N} messages of 0-3000 bytes each way at once, in order`, ok, `${Date.now() - t} ms, AGAIN ${rq.again + rp.again} times`);
    w.close(p);
    w.close(q);
  }

  // Closing an end whose write is pending: q takes the first message and holds it (nobody
  // calls recv, so no read is posted), so a message bigger than the pipe buffer cannot be taken
  // and its write stays pending. close() cancels it and waits for it (CloseEnd), without a hang;
  // q then reads the first message and the end, not a torn second one.
  {
    const [p, q] = w.socketpair();
    w.watch(q, READABLE); // posts q's read
    const first = w.sendPacket(p, [message(1, 10)], null);
    await sleep(50);
    const second = w.sendPacket(p, [message(3, 200000)], null);
    await sleep(50);
    const t = Date.now();
    w.close(p);
    const closeMs = Date.now() - t;
    w.watch(q, 0);
    const rest = await Promise.race([pump(q, [], Infinity), timeout]);
    const lens = rest.got.map((m) => m.length);
    check('close with a write pending: cancelled at once, the peer reads what was whole, then the end', first === 10 && second === 200000 &&
      closeMs < 1000 && rest.eof && lens[0] === 10 && lens.every((n) => n === 10 || n === 200000), `close ${closeMs} ms, then ${lens.join(',')}`);
    w.close(q);
  }

  // Many pairs made and closed: ids never reused, nothing left open, handles back to baseline.
  const many = [];
  for (let i = 0; i < 32; i++) many.push(...w.socketpair());
  for (const id of many) w.close(id);
  await sleep(50);
  const handlesAfter = w.handleCount();
  check('32 more pairs made and closed: no open ends, handles back to baseline', new Set(many).size === 64 && w.openCount() === 0 &&
    handlesAfter <= handlesBefore + 2, `open ${w.openCount()}, handles ${handlesBefore} -> ${handlesAfter}`);
  finish({ callbacks, wine: process.env.WINE_VERSION ?? null });
  // Nothing is watched or ref'd now: the process exits by itself (a hang is the script's timeout).
}

main().catch((e) => {
  check('no exception', false, e && e.stack ? e.stack : String(e));
  finish();
  process.exit(1);
});
