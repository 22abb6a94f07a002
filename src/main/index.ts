/**
 * electron-ipc-channel, the Node side (Electron main, utility processes, plain Node).
 */
export { IpcError, isIpcError } from '../shared/errors.js';
export type { IpcErrorCode, IpcErrorOptions } from '../shared/errors.js';
export { channel, bytesChannel, IpcSender, IpcReceiver, IpcBytesSender, IpcBytesReceiver } from './channel.js';
export type { ReceiverOptions, RecvOptions } from './channel.js';
export { IpcOneShotServer } from './server.js';
export type { AcceptOptions } from './server.js';
export { IpcServer, IpcServerConnection } from './ipc-server.js';
export type { IpcServerOptions, IpcServerAcceptOptions, IpcServerConnectOptions, PeerCheck, PeerCredentials } from './ipc-server.js';
export { IpcFileHandle } from './files.js';
export { IpcSharedMemory, setSharedMemoryCopyMode, sharedMemoryIsZeroCopy } from './shm.js';
export { IpcSharedMemoryPool, IpcSharedBuffer } from './pool.js';
export type { SharedMemoryPoolOptions, AcquireOptions } from './pool.js';
export { spawnHelper, connectToParent, HELPER_SERVER_ENV } from './helper.js';
export type { Helper, HelperExit, SpawnHelperOptions, ConnectToParentOptions, ParentEndpoint, ReceiverLimits } from './helper.js';
export { superviseHelper, helperPool, HelperSupervisor, HelperPool } from './supervisor.js';
export type { SuperviseOptions, RestartPolicy, HelperExitEvent, HelperExitCause, SupervisorState, HelperPoolOptions, PoolUseOptions } from './supervisor.js';
export { exposeToWindow, preloadWebPreferences, attachPort, pumpToPort, findHandle, assertNoHandles, closeHandles } from './bridge.js';
export type { ExposeOptions, WindowBridge, MainPortLike, PortLink, AttachPortOptions, PumpOptions, BridgeEnvelope, SenderLike, ReceiverLike } from './bridge.js';
export { validate, isStandardSchema, formatIssues } from '../shared/validate.js';
export type { StandardSchemaV1 } from '../shared/validate.js';
export { lockdown } from './lockdown.js';
export type { LockdownOptions, LockdownReport } from './lockdown.js';
export { IpcReceiverSet } from './select.js';
export type { SelectResult, SelectOptions } from './select.js';
export { defineProtocol, method, event, RpcError, isRpcError } from '../shared/protocol.js';
export type { Protocol, MethodDef, EventDef, MethodTypes, RpcErrorCode, RpcIssue, CallInput, CallOutput, CallProgress, HandlerInput, HandlerOutput, HandlerProgress, EmitPayload, EventPayload, MethodName, EventName } from '../shared/protocol.js';
export { rpcClient } from './rpc/client.js';
export type { RpcClient, RpcClientOptions, CallOptions, EventsOptions } from './rpc/client.js';
export { serve } from './rpc/server.js';
export type { RpcServer, RpcHandlers, RpcContext, ServeOptions } from './rpc/server.js';
export type { RpcSenderLike, RpcReceiverLike, RpcEndpointLike, RpcPairLike } from './rpc/link.js';
export { serveToWindow } from './rpc/window.js';
export type { ServeToWindowOptions, WindowRpcServer } from './rpc/window.js';
export { IpcMux, MuxSender, MuxReceiver } from './mux/index.js';
export type { MuxFrame, MuxOptions, MuxChannelOptions, MuxStats } from './mux/index.js';
export type { MuxLimits } from '../shared/limits.js';
