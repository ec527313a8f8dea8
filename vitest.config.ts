import { defineConfig } from 'vitest/config';

/**
 * `npm test` runs the main suite, then the crash test alone (it loads both cores). The suites that
 * build Go tools on their first run have their own commands, which `.ci/run` runs after it:
 * `npm run test:deploy` (the Helm chart, with helm and kubeconform) and `npm run test:cluster`
 * (vitest.cluster.config.ts: a real multi-node Temporal cluster).
 */
const suite = process.env.VITEST_SUITE ?? (process.env.VITEST_CHAOS ? 'chaos' : 'main');
const SUITES: Record<string, { include: string[]; exclude: string[] }> = {
  main: { include: ['test/**/*.test.ts'], exclude: ['test/chaos/**', 'test/deploy/**', 'test/cluster/**', '**/node_modules/**'] },
  chaos: { include: ['test/chaos/**/*.test.ts'], exclude: [] },
  deploy: { include: ['test/deploy/**/*.test.ts'], exclude: [] },
};

export default defineConfig({
  test: {
    ...SUITES[suite],
    // One PostgreSQL and one Temporal dev server for the run; each file makes its own databases. (The chart needs neither.)
    globalSetup: suite === 'deploy' ? [] : ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores: more files at once only makes each slower.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
