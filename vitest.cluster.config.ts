import { defineConfig } from 'vitest/config';

/**
 * The suite that runs against a real multi-node Temporal cluster (PostgreSQL, mTLS, frontend,
 * matching, worker and two history nodes as separate processes), started once by its own global
 * setup: `npx vitest run --config vitest.cluster.config.ts`. The first run builds the server (a few
 * minutes, once, into .tools/).
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    globalSetup: ['test/cluster/global-setup.ts'],
    pool: 'forks',
    // The files kill and restart the cluster's nodes: one file at a time, or one would crash another's work.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
