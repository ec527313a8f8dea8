import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The crash test runs on its own after the rest (npm test runs both): it loads both cores.
    include: process.env.VITEST_CHAOS ? ['test/chaos/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: process.env.VITEST_CHAOS ? [] : ['test/chaos/**', '**/node_modules/**'],
    // One PostgreSQL and one Temporal dev server for the run; each file makes its own databases.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores: more files at once only makes each slower.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
