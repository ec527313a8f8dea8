import { z } from 'zod';
import { createInventoryActivities } from '../activities/inventory';
import { createInventoryDb } from '../activities/inventory/db';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { localDatabaseUrl, poolSize } from '../lib/config';
import { createPool } from '../lib/db';
import { databaseCheck, definePool, isEntryPoint, runPool, workerEnv } from './run';

export const inventoryPool = definePool({
  service: 'inventory',
  taskQueue: INVENTORY_TASK_QUEUE,
  env: workerEnv.extend({
    INVENTORY_DATABASE_URL: z.string().url().default(localDatabaseUrl('inventory')),
    INVENTORY_DB_POOL_MAX: poolSize(5),
  }),
  async build(config, log) {
    const pool = createPool(config.INVENTORY_DATABASE_URL, config.INVENTORY_DB_POOL_MAX, 'inventory-worker', log);
    const db = createInventoryDb(pool);
    const activities = createInventoryActivities({ db });
    return {
      activities,
      health: { database: databaseCheck(pool) },
      // The catalogue, for the API: a read over HTTP, never a workflow, never inventory's database from outside.
      reads: { '/products': () => activities.listProducts() },
      close: async () => {
        await db.$disconnect();
        await pool.end();
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(inventoryPool);
