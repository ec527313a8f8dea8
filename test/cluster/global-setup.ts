import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { DATA_DIR } from '../../lib/infra/paths';
import { startEmbeddedPostgres } from '../../lib/infra/postgres';
import { startTemporalCluster } from '../../lib/infra/temporal-cluster';
import { ensureTemporalTools } from '../../lib/infra/tools';
import { freeFixedPort } from '../../lib/net';
import { keyringJson, withNewKey } from '../../lib/temporal/codec';
import { TEST_NAMESPACES } from '../global-setup';
import { serveClusterControl } from './control';

/** The cluster's shape, provided to the tests so their expectations follow it. */
export const CLUSTER_HISTORY_NODES = 2;
export const CLUSTER_SHARDS = 16;
/** The crash test's namespace on the cluster (test/cluster/crash.test.ts): its reconciliation schedule stays out of the others'. */
export const CLUSTER_CRASH_NAMESPACE = 'chaos';

declare module 'vitest' {
  export interface ProvidedContext {
    /** TEMPORAL_ADDRESS and TEMPORAL_TLS_*: what a platform process needs to reach the cluster */
    clusterEnv: Record<string, string>;
    /** where the nodes are killed and started from the tests (test/cluster/control.ts) */
    clusterControlUrl: string;
    clusterHistoryNodes: number;
    clusterShards: number;
  }
}

/**
 * One embedded PostgreSQL and one Temporal cluster on it (frontend, matching, worker and two
 * history nodes as separate processes, mTLS on) for the cluster suite, with the same provided names
 * as the main suite's setup (`temporalAddress`, `pgPort`, `temporalCli`, …), so the e2e and crash
 * suites can run here too; `clusterEnv` carries the TLS settings they need besides.
 */
export default async function setup(project: TestProject) {
  const log = (msg: string) => console.log(`[cluster setup] ${msg}`);
  // As the main suite's setup: a payload keyring for this run, inherited by every test file and platform process.
  process.env.PAYLOAD_KEYRING ??= keyringJson(withNewKey(undefined, 'test-run'));
  const tools = await ensureTemporalTools(log);
  const pgDir = join(DATA_DIR, 'test', `cluster-pg-${process.pid}`);
  const clusterDir = join(DATA_DIR, 'test', `cluster-${process.pid}`);
  const postgres = await startEmbeddedPostgres({ dataDir: pgDir, port: await freeFixedPort(), fresh: true, log });
  let cluster: Awaited<ReturnType<typeof startTemporalCluster>> | undefined;
  try {
    cluster = await startTemporalCluster({
      postgresAdminUrl: postgres.url('postgres'),
      dataDir: clusterDir,
      historyNodes: CLUSTER_HISTORY_NODES,
      shards: CLUSTER_SHARDS,
      namespaces: [...TEST_NAMESPACES, CLUSTER_CRASH_NAMESPACE],
      logLevel: 'warn',
      log,
    });
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  const control = await serveClusterControl(cluster);
  // Inherited too: a platform process a test starts reaches the cluster, with mTLS, as a deployed one would.
  Object.assign(process.env, cluster.env);

  project.provide('clusterEnv', cluster.env);
  project.provide('clusterControlUrl', control.url);
  project.provide('clusterHistoryNodes', CLUSTER_HISTORY_NODES);
  project.provide('clusterShards', CLUSTER_SHARDS);
  project.provide('temporalAddress', cluster.address);
  project.provide('pgPort', postgres.port);
  project.provide('temporalCli', tools.cli);
  project.provide('testServerPath', tools.testServer);

  const running = cluster;
  return async () => {
    await control.close();
    await running.stop();
    await postgres.stop();
    await rm(pgDir, { recursive: true, force: true });
    // The cluster's folder (each node's log) is kept when a test failed: that is where to look.
    const failed = project.vitest.state.getCountOfFailedTests() > 0 || project.vitest.state.getFailedFilepaths().length > 0;
    if (failed) console.log(`[cluster setup] a test failed; the nodes' logs are kept in ${clusterDir}/logs`);
    else await rm(clusterDir, { recursive: true, force: true });
  };
}
