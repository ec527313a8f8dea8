import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { DATA_DIR } from '../lib/infra/paths';
import { buildNotificationsWorkflowBundle, buildWorkflowBundle } from '../lib/infra/platform';
import { startEmbeddedPostgres } from '../lib/infra/postgres';
import { startTemporalDevServer } from '../lib/infra/temporal';
import { ensureTemporalTools } from '../lib/infra/tools';
import { freeFixedPort } from '../lib/net';
import { keyringJson, withNewKey } from '../lib/temporal/codec';

/** Namespaces of the shared dev server: a file that runs workers gets one to itself, so pools never cross. */
export const TEST_NAMESPACES = [
  'default',
  'api-test',
  'api-conformance',
  'api-auth-matrix',
  'api-hardening',
  'api-fuzz',
  'e2e',
  'reconciliation',
  'tracing',
  'race',
  'data-errors',
  'versioning',
  'webhooks',
  'webhooks-conformance',
  'notifications-e2e',
] as const;

declare module 'vitest' {
  export interface ProvidedContext {
    pgPort: number;
    temporalAddress: string;
    temporalCli: string;
    testServerPath: string;
    /** the workflow bundles, built once (test/support/bundles.ts) */
    workflowBundles?: { orders: string; notifications: string };
  }
}

export default async function setup(project: TestProject) {
  // A payload keyring for this run only, in the environment every test file and platform process inherits.
  process.env.PAYLOAD_KEYRING ??= keyringJson(withNewKey(undefined, 'test-run'));
  const tools = await ensureTemporalTools((msg) => console.log(`[test setup] ${msg}`));
  const dataDir = join(DATA_DIR, 'test', `pg-${process.pid}`);
  const pgPort = await freeFixedPort();
  const postgres = await startEmbeddedPostgres({ dataDir, port: pgPort, fresh: true });
  const temporal = await startTemporalDevServer({ cli: tools.cli, port: await freeFixedPort(), namespaces: [...TEST_NAMESPACES] });

  project.provide('pgPort', pgPort);
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalCli', tools.cli);
  project.provide('testServerPath', tools.testServer);
  project.provide('workflowBundles', { orders: await buildWorkflowBundle(), notifications: await buildNotificationsWorkflowBundle() });

  return async () => {
    await temporal.stop();
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
