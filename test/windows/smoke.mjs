// Smoke test of the Windows pipe groundwork (src/native/win/pipe.cc), run by
// scripts/test-windows.mjs under Wine's node.exe: `node.exe smoke.mjs <addon.node>`.
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
  const summary = {
    passed: checks.length - failed,
    failed,
    ms: Date.now() - started,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    ...extra,
  };
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

async function main() {
  const loaded = require(addonPath);
  const win = loaded.iocp ?? loaded;  // the IOCP groundwork sits under `iocp` next to the win32 transport
  check('addon loads', typeof win.pipePair === 'function', addonPath);

  // Every readiness callback of the IOCP watcher thread lands here (JS thread).
  const wakers = new Map();
  let callbacks = 0;
  const bitsSeen = new Map();
  win.init((id, bits) => {
    callbacks++;
    bitsSeen.set(id, (bitsSeen.get(id) ?? 0) | bits);
    wakers.get(id)?.(bits);
  });

  const [a, b] = win.pipePair();
  const ia = win.info(a);
  const ib = win.info(b);
  check('pipe pair ids', Number.isInteger(a) && Number.isInteger(b) && a !== b, `${a}, ${b}`);
  check('peer process ids are ours', ia.serverPid === process.pid && ia.clientPid === process.pid &&
    ib.serverPid === process.pid && ib.clientPid === process.pid, `pid ${process.pid}`);
  check('server/client roles', ia.server === true && ib.server === false);
  check('a read is in flight on each end', ia.readInFlight && ib.readInFlight);
  check('recv on an empty end is AGAIN', win.recv(a) === win.AGAIN && win.recv(b) === win.AGAIN);

  // Sends queue behind a write in flight (AGAIN) and go on at the writable event.
  function sender(id) {
    const queue = [];
    let again = 0;
    const pump = () => {
      while (queue.length > 0) {
        const r = win.send(id, queue[0]);
        if (r === win.AGAIN) { again++; return; }
        if (r !== queue[0].length) throw new Error(`send(${id}) returned ${r}`);
        queue.shift();
      }
    };
    return { push(m) { queue.push(m); pump(); }, pump, get again() { return again; }, get left() { return queue.length; } };
  }
  // Receives until `count` messages came, draining at each readable event (edge-triggered).
  function receiver(id, count) {
    const got = [];
    return new Promise((resolve, reject) => {
      const drain = () => {
        try {
          for (;;) {
            const m = win.recv(id);
            if (m === win.AGAIN) break;
            if (m === 0) { resolve({ got, eof: true }); return; }
            got.push(m);
            if (got.length === count) { resolve({ got, eof: false }); return; }
          }
        } catch (e) { reject(e); }
      };
      wakers.set(id, (bits) => { if (bits & win.READABLE) drain(); senders.get(id)?.pump(); });
      drain();
    });
  }
  const senders = new Map();

  const sizes = [1, 100, 4096, 65536, 200000, 0, 7];  // 200000 > the 64 KiB first read
  const ab = sizes.map((n, i) => message(i, n));
  const ba = sizes.slice().reverse().map((n, i) => message(100 + i, n));
  const sa = sender(a);
  const sb = sender(b);
  senders.set(a, sa);
  senders.set(b, sb);
  const atB = receiver(b, ab.length);
  const atA = receiver(a, ba.length);
  for (const m of ab) sa.push(m);
  for (const m of ba) sb.push(m);

  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 20 s')), 20000).unref());
  const [rb, ra] = await Promise.race([Promise.all([atB, atA]), timeout]);
  check(`a -> b: ${ab.length} messages, boundaries and order kept`, rb.got.length === ab.length && rb.got.every((m, i) => same(m, ab[i])),
    `sizes ${rb.got.map((m) => m.length).join(',')}`);
  check(`b -> a: ${ba.length} messages, boundaries and order kept`, ra.got.length === ba.length && ra.got.every((m, i) => same(m, ba[i])),
    `sizes ${ra.got.map((m) => m.length).join(',')}`);
  check('readiness callbacks came from the IOCP thread', callbacks > 0 && (bitsSeen.get(a) & win.READABLE) && (bitsSeen.get(b) & win.READABLE),
    `${callbacks} callbacks, ${win.stats().packets} completion packets`);
  check('writable events drove queued sends', sa.left === 0 && sb.left === 0 && (bitsSeen.get(a) & win.WRITABLE) !== 0,
    `AGAIN ${sa.again + sb.again} times`);

  // Closing one end: the other reads the end (0) and its sends say GONE.
  const eof = receiver(b, Infinity);
  win.close(a);
  const rEof = await Promise.race([eof, timeout]);
  check('close: the peer reads the end', rEof.eof === true && rEof.got.length === 0, `endError ${win.info(b).endError || 'none'}`);
  let gone;
  for (let i = 0; i < 50; i++) {
    gone = win.send(b, message(1, 10));
    if (gone === win.GONE) break;
    await new Promise((r) => setTimeout(r, 10));  // a write in flight (AGAIN) finishes first
  }
  check('send to a closed peer is GONE', gone === win.GONE, `last result ${gone}, writeError ${win.info(b).writeError || 'none'}`);
  let threw = false;
  try { win.recv(a); } catch { threw = true; }
  check('a closed id is no longer usable', threw);
  win.close(b);

  // Closing with a read in flight leaves a zombie until the cancelled read's packet comes back.
  const [c, d] = win.pipePair();
  win.close(c);
  win.close(d);
  for (let i = 0; i < 100 && win.stats().zombies > 0; i++) await new Promise((r) => setTimeout(r, 10));
  const st = win.stats();
  check('no open ends and no zombies after close', st.open === 0 && st.zombies === 0, JSON.stringify(st));

  // Many small messages both ways at once, through the same completion port.
  {
    const N = 3000;
    const [p, q] = win.pipePair();
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 3001);
    const pq = Array.from({ length: N }, (_, i) => message(i, rand()));
    const qp = Array.from({ length: N }, (_, i) => message(i + 7, rand()));
    const sp = sender(p);
    const sq = sender(q);
    senders.set(p, sp);
    senders.set(q, sq);
    const atQ = receiver(q, N);
    const atP = receiver(p, N);
    const t = Date.now();
    for (const m of pq) sp.push(m);
    for (const m of qp) sq.push(m);
    const [rq, rp] = await Promise.race([Promise.all([atQ, atP]), timeout]);
    const ok = rq.got.length === N && rp.got.length === N && rq.got.every((m, i) => same(m, pq[i])) && rp.got.every((m, i) => same(m, qp[i]));
    check(`${N} messages of 0-3000 bytes each way, in order`, ok, `${Date.now() - t} ms`);
    win.close(p);
    win.close(q);
  }

  // Closing an end whose write is pending: q's posted read takes the first message and q holds
  // it (nobody calls recv, so no read is posted), so a message bigger than the pipe buffer
  // cannot be taken and its write stays pending. The cancelled write's packet frees the end.
  {
    const [p, q] = win.pipePair();
    const first = win.send(p, message(1, 10));
    for (let i = 0; i < 100 && (win.info(q).readInFlight || win.info(p).writeInFlight); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const r = win.send(p, message(3, 200000));
    await new Promise((r2) => setTimeout(r2, 50));
    const pending = win.info(p).writeInFlight;
    win.close(p);
    const zombiesAfterClose = win.stats().zombies;
    for (let i = 0; i < 100 && win.stats().zombies > 0; i++) await new Promise((r2) => setTimeout(r2, 10));
    check('close with a write pending: a zombie until its packet, then none', first === 10 && r === 200000 && pending &&
      zombiesAfterClose === 1 && win.stats().zombies === 0, `pending ${pending}, zombies ${zombiesAfterClose} -> ${win.stats().zombies}`);
    win.close(q);
  }

  // The receive bound: a message of maxMessage bytes arrives; one byte more (which would fit
  // the read buffer of maxMessage + 1 exactly) and a much bigger one fail the receiving end.
  let rangeError = false;
  try { win.pipePair(0); } catch (e) { rangeError = e instanceof RangeError; }
  check('pipePair(0) is a RangeError', rangeError);
  for (const [size, expectOk] of [[1000, true], [1001, false], [70000, false]]) {
    const [p, q] = win.pipePair(1000);
    const r = win.send(p, message(9, size));
    const got = receiver(q, 1);
    let outcome;
    try {
      const { got: msgs } = await Promise.race([got, timeout]);
      outcome = same(msgs[0], message(9, size)) ? 'message' : 'wrong message';
    } catch (e) {
      outcome = e.code ?? String(e);
    }
    check(`limit 1000, message of ${size}: ${expectOk ? 'received' : 'TOO_LARGE'}`, r === size && outcome === (expectOk ? 'message' : 'TOO_LARGE'), outcome);
    win.close(p);
    win.close(q);
  }

  // A few more pairs, to see ids and handles are not leaked or reused wrongly.
  const many = [];
  for (let i = 0; i < 32; i++) many.push(...win.pipePair());
  for (const id of many) win.close(id);
  check('32 more pairs made and closed', new Set(many).size === 64);

  // Facts for the next steps, recorded, not checked (docs/windows.md).
  const skip = win.probeSkipCompletionOnSuccess();
  console.log(`fact FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on a pipe end: ${JSON.stringify(skip)}`);
  const dupPort = win.probeDuplicateAssociation();
  console.log(`fact duplicate of an end on a port, on a second port: ${JSON.stringify(dupPort)}`);

  const { packets } = win.stats();
  win.shutdown();
  finish({ callbacks, packets, wine: process.env.WINE_VERSION ?? null, skipCompletionOnSuccess: skip, duplicateAssociation: dupPort });
}

main().catch((e) => {
  check('no exception', false, e && e.stack ? e.stack : String(e));
  finish();
  // Open ends keep the loop alive (their thread-safe function is ref'd): leave now. On success
  // the process exits by itself, which shows the function is unref'd once no end is open.
  process.exit(1);
});
