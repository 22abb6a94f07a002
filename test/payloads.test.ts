/**
 * Payloads across processes: binaries out of band, large messages, file handles, shared memory
 * viewed without copying, bytes channels and size limits. The same cases run with copied shared
 * memory in payloads.copy.test.ts.
 */
import { describe } from 'vitest';
import { definePayloadTests } from './payloads.suite.js';

describe('payloads (shared memory zero-copy)', () => {
  definePayloadTests(false);
});
