import { z } from 'zod';
import { createOrderActivities } from '../activities/orders';
import { createOrdersDb } from '../activities/orders/db';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';
import { localDatabaseUrl, poolSize } from '../lib/config';
import { createPool } from '../lib/db';
import { definePool, isEntryPoint, runPool, workerEnv } from './run';

// The orders pool runs the order saga itself and the orders service's own activities.
export const ordersPool = definePool({
  service: 'orders',
  taskQueue: ORDERS_TASK_QUEUE,
  runsWorkflows: true,
  env: workerEnv.extend({
    ORDERS_DATABASE_URL: z.string().url().default(localDatabaseUrl('orders')),
    ORDERS_DB_POOL_MAX: poolSize(5),
  }),
  async build(config, log) {
    const pool = createPool(config.ORDERS_DATABASE_URL, config.ORDERS_DB_POOL_MAX, 'orders-worker', log);
    const db = createOrdersDb(pool);
    return {
      activities: createOrderActivities({ db }),
      close: async () => {
        await db.$disconnect();
        await pool.end();
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(ordersPool);
