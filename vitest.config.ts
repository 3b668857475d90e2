import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start real servers and child processes; the crash tests are heavy,
    // so files run in parallel but each file's tests in order.
    pool: 'forks',
  },
});
