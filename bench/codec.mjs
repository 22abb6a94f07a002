// In-process codec cost: encode + decode of one message holding 10,000 small objects.
// node codec.mjs '{"codec":"json|v8|lib","warmup":W,"count":N}'  -> {"ms": median per encode+decode, ...}
// lib uses encodeMessage/decodeMessage from ../dist/shared/index.js; the joining of `parts` into
// one body (which the socket does for free with an iovec) is not timed.
import { existsSync } from 'node:fs';
import v8 from 'node:v8';
import { quantile, report, small } from './harness.mjs';

const p = JSON.parse(process.argv[2]);
const value = Array.from({ length: 10_000 }, (_, i) => ({ ...small(), id: i }));

function join(parts, byteLength) {
  if (parts.length === 1) return parts[0];
  const body = new Uint8Array(byteLength);
  let off = 0;
  for (const part of parts) {
    body.set(part, off);
    off += part.byteLength;
  }
  return body;
}

let encode;
let decode;
if (p.codec === 'json') {
  encode = (v) => JSON.stringify(v);
  decode = (s) => JSON.parse(s);
} else if (p.codec === 'v8') {
  encode = (v) => v8.serialize(v);
  decode = (b) => v8.deserialize(b);
} else {
  const dist = new URL('../dist/shared/index.js', import.meta.url);
  if (!existsSync(dist)) report({ skipped: 'dist/shared/index.js is missing (run `npm run build:ts`)' });
  else {
    const shared = await import(dist.href);
    if (typeof shared.encodeMessage !== 'function' || typeof shared.decodeMessage !== 'function') {
      report({ error: 'dist/shared/index.js does not export encodeMessage/decodeMessage' });
    } else {
      encode = (v) => {
        const m = shared.encodeMessage(v);
        if (m.handles?.length) throw new Error('unexpected handles');
        return m;
      };
      decode = (m) => shared.decodeMessage(join(m.parts, m.byteLength), 0, {}, shared.DEFAULT_LIMITS);
    }
  }
}

if (encode) {
  // Check the round trip once, outside the clock.
  const back = decode(prepare(encode(value)));
  if (!Array.isArray(back) || back.length !== value.length || back[9999].values[2] !== 3.5) {
    report({ error: `${p.codec} round trip did not give the value back` });
  } else {
    const enc = [];
    const dec = [];
    const both = [];
    for (let i = 0; i < p.warmup + p.count; i++) {
      const t0 = performance.now();
      const e = encode(value);
      const t1 = performance.now();
      const body = prepare(e);
      const t2 = performance.now();
      decode(body);
      const t3 = performance.now();
      if (i >= p.warmup) {
        enc.push((t1 - t0) * 1e3);
        dec.push((t3 - t2) * 1e3);
        both.push((t1 - t0 + t3 - t2) * 1e3);
      }
    }
    const med = (a) => quantile([...a].sort((x, y) => x - y), 0.5);
    report({ ms: med(both) / 1e3, us: med(both), encodeUs: med(enc), decodeUs: med(dec), bytes: sizeOfEncoded(encode(value)) });
  }
}

/** The receive side gets one contiguous body: join lib parts here, outside the clock. */
function prepare(e) {
  if (p.codec !== 'lib') return e;
  const body = join(e.parts, e.byteLength);
  return { parts: [body], byteLength: body.byteLength };
}

function sizeOfEncoded(e) {
  if (typeof e === 'string') return Buffer.byteLength(e);
  if (e instanceof Uint8Array) return e.byteLength;
  return e.byteLength;
}
