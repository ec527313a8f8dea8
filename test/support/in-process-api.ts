import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { inject } from 'vitest';
import { createOrdersDb, type OrdersDb } from '../../activities/orders/db';
import { createApp, type AppDeps } from '../../api/app';
import { createPool } from '../../lib/db';
import { createLogger } from '../../lib/logger';
import type { Tracing } from '../../lib/tracing';
import { createTestDatabases } from './databases';
import { startInProcessPools } from './in-process-pools';
import { bundleWorkflows, quietRuntime } from './temporal';

/**
 * The API over real HTTP, backed by the four pools in this process, fresh databases named with
 * `prefix` and its own dev-server namespace: the whole saga, steered through the API.
 */
export async function startInProcessApi(options: {
  prefix: string;
  namespace: string;
  env?: NodeJS.ProcessEnv;
  tracing?: Tracing;
  app?: Pick<AppDeps, 'timings'>;
}) {
  quietRuntime();
  const urls = await createTestDatabases(options.prefix);
  const pools = await startInProcessPools({ urls, namespace: options.namespace, bundle: await bundleWorkflows(), env: options.env, tracing: options.tracing });
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  const client = new Client({ connection, namespace: options.namespace, ...(options.tracing ? { interceptors: options.tracing.clientInterceptors } : {}) });
  const pool = createPool(urls.orders, 3, `${options.prefix}-test`);
  const db: OrdersDb = createOrdersDb(pool);
  const app = createApp({ client, db, log: createLogger(`${options.prefix}-test`, 'silent'), ...options.app });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    client,
    db,
    stop: async () => {
      server.close();
      await pools.stop();
      await db.$disconnect();
      await pool.end();
      await connection.close();
    },
  };
}
