/**
 * The message codec: a value <-> one message body (bytes) plus an out-of-band list of handle
 * objects. Plain JSON data takes a JSON fast path; everything else is devalue text. Binary data
 * (typed arrays, `DataView`s, `ArrayBuffer`s) travels as raw sections after the text, never as
 * base64. The layout is specified in docs/wire-format.md, section "Message body".
 *
 * Imports neither Node nor Electron: it runs in main, helpers and the preload bundle. The code
 * lives in ./codec/: format.ts (types, header constants, binary kinds, errors), snapshot.ts (the
 * encoder's single read of a value), encode.ts, scan.ts (the decoder's validation before anything
 * is built), cost.ts (what a value costs to build, hash flooding of Map and Set keys), decode.ts.
 */
export {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  BODY_HEADER_BYTES,
  BODY_VERSION,
} from './codec/format.js';
export type { DecodeHooks, EncodedMessage, EncodeHooks, EncodeOptions } from './codec/format.js';
export { encodeMessage, encodeMessageInto, finishJsonBody, joinParts } from './codec/encode.js';
export { bodyLayout, decodeMessage, peekHandleCount } from './codec/decode.js';
export type { BodyLayout } from './codec/decode.js';
