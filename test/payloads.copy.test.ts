/**
 * The payload cases again with ELECTRON_IPC_CHANNEL_COPY_SHM=1, here and in every child: the path
 * Electron takes, where `IpcSharedMemory.bytes` copies because V8's memory cage refuses external
 * ArrayBuffers.
 */
import { describe } from 'vitest';
import { definePayloadTests } from './payloads.suite.js';

process.env.ELECTRON_IPC_CHANNEL_COPY_SHM = '1';

describe('payloads (shared memory copied, ELECTRON_IPC_CHANNEL_COPY_SHM=1)', () => {
  definePayloadTests(true);
});
