import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One PostgreSQL and one Temporal dev server for the run; each file makes its own databases.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores: more files at once only makes each slower.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
