/**
 * The pool cases again with ELECTRON_IPC_CHANNEL_COPY_SHM=1, here and in every child: the path
 * Electron takes, where segments are written from a staging copy and read into a copy.
 */
import { describe } from 'vitest';
import { definePoolTests } from './pool.suite.js';

process.env.ELECTRON_IPC_CHANNEL_COPY_SHM = '1';

describe('IpcSharedMemoryPool (copied, ELECTRON_IPC_CHANNEL_COPY_SHM=1)', () => {
  definePoolTests(true);
});
