/**
 * The process-neutral part of electron-ipc-channel (`electron-ipc-channel/shared`): errors, the
 * message codec and the receiver limits. Imports neither Node nor Electron.
 */
export { IpcError, isIpcError } from './errors.js';
export type { IpcErrorCode, IpcErrorOptions } from './errors.js';
export {
  BODY_FORMAT_DEVALUE,
  BODY_FORMAT_JSON,
  BODY_FORMAT_JSON_HANDLES,
  BODY_HEADER_BYTES,
  BODY_VERSION,
  bodyLayout,
  decodeMessage,
  encodeMessage,
  joinParts,
  peekHandleCount,
} from './codec.js';
export type { BodyLayout, DecodeHooks, EncodedMessage, EncodeHooks, EncodeOptions } from './codec.js';
export { DEFAULT_LIMITS } from './limits.js';
export type { DecodeLimits, Limits } from './limits.js';
export { validate, isStandardSchema, formatIssues } from './validate.js';
export type { StandardSchemaV1 } from './validate.js';
export { defineProtocol, method, event, RpcError, isRpcError } from './protocol.js';
export type { Protocol, MethodDef, EventDef, MethodTypes, RpcErrorCode, RpcIssue, CallInput, CallOutput, CallProgress, HandlerInput, HandlerOutput, HandlerProgress, EmitPayload, EventPayload, MethodName, EventName } from './protocol.js';
