import { describe } from 'vitest';
import { definePoolTests } from './pool.suite.js';

describe('IpcSharedMemoryPool (zero-copy views)', () => {
  definePoolTests(false);
});
