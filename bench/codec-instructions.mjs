// Instructions per operation of the small object's encode on the send path and of its parts,
// counted by valgrind as bench/instructions.mjs counts them (same method: two runs of N1 and N2
// operations, the difference divided by N2 - N1). The parts are what the encoder above its floor
// (JSON.stringify + TextEncoder.encodeInto) is made of, so that a change to the codec can be
// weighed against them (docs/performance.md, "Round 4").
//
// Usage: node bench/codec-instructions.mjs [--lib a/dist/main/index.js,b/dist/main/index.js] [--case a,b] [--n N1,N2]
// Cases:
//   into        encodeMessageInto(small, hooks, scratch): the send path's encode (a handleKind hook
//               asked about every object, as IpcSender's), of the same (old) object every time;
//   into-young  the same of a new object each time (as a message built per send, or echoed);
//   into-echo   the same of the object JSON.parse makes of its text (as an echo sends what it
//               received), the parse included: compare with `parse`, JSON.parse alone;
//   floor       JSON.stringify + encodeInto of the small object (bench/instructions.mjs encode-floor);
//   stringify   JSON.stringify alone;
//   symbols     Object.getOwnPropertySymbols of the object (the walk's check, devalue refuses
//               enumerable symbol keys);
//   copy        the read-once copy alone: { ...small } with Object.keys, Object.values, and a slice
//               of its array;
//   decode      decodeMessage of its body; decode-floor: TextDecoder + JSON.parse of the text
//               through a view of the body, as the receive path holds it.
//   row-encode, row-decode, row-stringify, row-parse: encodeMessage / decodeMessage / JSON.stringify /
//               JSON.parse of the codec row's value (bench/codec.mjs: 10,000 small objects in one
//               array); run with --n 10,40 (each operation is ~10^7 instructions).
// Each lib is counted in turn, case by case, so the figures of one case sit side by side.
import { createRequire } from 'node:module';
import path from 'node:path';
import { args, countInstructions, opt, root } from './valgrind.mjs';

if (args[0] === 'run') await runCase(args[1], Number(args[2]), args[3]);
else main();

function main() {
  const libs = opt('--lib', path.join(root, 'dist', 'main', 'index.js')).split(',').map((l) => path.resolve(l));
  const cases = opt('--case', 'into,into-young,floor,stringify,symbols,copy,decode,decode-floor').split(',');
  const [n1, n2] = opt('--n', '20000,120000').split(',').map(Number);
  console.log(`| case | ${libs.map((l) => path.relative(root, l)).join(' | ')} |`);
  console.log(`|---|${libs.map(() => '---').join('|')}|`);
  for (const c of cases) {
    const cells = libs.map((lib) => {
      const a = countInstructions(import.meta.url, c, n1, lib);
      const b = countInstructions(import.meta.url, c, n2, lib);
      return Math.round((b - a) / (n2 - n1)).toLocaleString('en-US');
    });
    console.log(`| ${c} | ${cells.join(' | ')} |`);
  }
}

async function runCase(c, n, libPath) {
  const require = createRequire(import.meta.url);
  const codec = require(path.join(path.dirname(libPath), '..', 'shared', 'lib', 'codec.cjs'));
  const small = { id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] };
  const kHandle = Symbol('handle');
  const hooks = { handleKind: (v) => (typeof v[kHandle] === 'function' ? 'F' : undefined) };
  const te = new TextEncoder();
  const td = new TextDecoder('utf-8', { fatal: true });
  const scratch = new Uint8Array(4096);
  const body = codec.joinParts(codec.encodeMessage(small));
  const textBytes = body[4] | (body[5] << 8);
  const smallText = JSON.stringify(small);
  const limits = { maxMessageBytes: 1 << 26, maxDepth: 64, maxElements: 1e6, maxHandles: 1024 };
  // The codec row's value (bench/codec.mjs): 10,000 small objects in one array.
  const row = Array.from({ length: 10_000 }, (_, i) => ({ ...small, values: [1.5, 2.5, 3.5], id: i }));
  const rowBody = c.startsWith('row') ? codec.joinParts(codec.encodeMessage(row)) : undefined;
  const rowText = JSON.stringify(row);
  const f = {
    into: () => codec.encodeMessageInto(small, hooks, scratch),
    'into-young': () => codec.encodeMessageInto({ id: 42, name: 'sensor-7', ok: true, values: [1.5, 2.5, 3.5] }, hooks, scratch),
    'into-echo': () => codec.encodeMessageInto(JSON.parse(smallText), hooks, scratch),
    'parse': () => JSON.parse(smallText),
    floor: () => te.encodeInto(JSON.stringify(small), scratch),
    stringify: () => JSON.stringify(small),
    symbols: () => Object.getOwnPropertySymbols(small),
    copy: () => {
      const copy = { ...small };
      const keys = Object.keys(copy);
      const values = Object.values(copy);
      copy.values = Array.prototype.slice.call(values[3]);
      return keys;
    },
    decode: () => codec.decodeMessage(body, 0, undefined, limits),
    'decode-floor': () => JSON.parse(td.decode(body.subarray(16, 16 + textBytes))),
    'row-encode': () => codec.encodeMessage(row),
    'row-decode': () => codec.decodeMessage(rowBody, 0, undefined, limits),
    'row-stringify': () => JSON.stringify(row),
    'row-parse': () => JSON.parse(rowText),
  }[c];
  if (!f) throw new Error(`unknown case ${c}`);
  let sink;
  const warmup = c.startsWith('row') ? 20 : 20000;
  for (let i = 0; i < warmup + n; i++) sink = f();
  if (sink === 'never') console.log(sink);
  process.exit(0);
}
