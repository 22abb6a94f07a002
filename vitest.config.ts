import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: tests count /proc/self/fd and spawn children.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Two cores: run two files at a time at most, so timing-sensitive peers are not starved.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
