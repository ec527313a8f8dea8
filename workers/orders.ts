import { z } from 'zod';
import { createOrderActivities, createOrderEventsRead } from '../activities/orders';
import { createOrdersDb } from '../activities/orders/db';
import { ORDERS_TASK_QUEUE, ORDER_SEARCH_ATTRIBUTES } from '../contracts/orders';
import { keyringFromEnv } from '../lib/temporal/codec';
import { connectClient } from '../lib/temporal/connection';
import { ensureSearchAttributes } from '../lib/temporal/search-attributes';
import { duration, localDatabaseUrl, poolSize } from '../lib/config';
import { createPool } from '../lib/db';
import { databaseCheck, definePool, isEntryPoint, runPool, workerEnv } from './run';
import { ensureReconciliationSchedule } from './schedules';

// The orders pool runs the order saga itself and the orders service's own activities.
export const ordersPool = definePool({
  service: 'orders',
  taskQueue: ORDERS_TASK_QUEUE,
  runsWorkflows: true,
  env: workerEnv.extend({
    ORDERS_DATABASE_URL: z.string().url().default(localDatabaseUrl('orders')),
    ORDERS_DB_POOL_MAX: poolSize(5),
    RECONCILIATION_EVERY: duration.default('5m'),
    RECONCILIATION_OLDER_THAN: duration.default('15m'),
  }),
  async build(config, log, temporal) {
    const { client, connection } = await connectClient(temporal);
    try {
      await ensureSearchAttributes(connection, temporal.namespace, ORDER_SEARCH_ATTRIBUTES);
      await ensureReconciliationSchedule(client, config.RECONCILIATION_EVERY, config.RECONCILIATION_OLDER_THAN, log);
    } finally {
      await connection.close();
    }
    const pool = createPool(config.ORDERS_DATABASE_URL, config.ORDERS_DB_POOL_MAX, 'orders-worker', log);
    const db = createOrdersDb(pool);
    return {
      activities: createOrderActivities({ db }),
      health: { database: databaseCheck(pool) },
      // the order event log, for the notifications relay (customers' addresses sealed with the payload keyring)
      reads: { '/events': createOrderEventsRead({ db, keyring: keyringFromEnv() }) },
      close: async () => {
        await db.$disconnect();
        await pool.end();
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(ordersPool);
