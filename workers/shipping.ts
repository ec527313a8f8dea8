import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { createShippingActivities } from '../activities/shipping';
import { createShippingDb } from '../activities/shipping/db';
import { createPickupRelay } from '../activities/shipping/pickups';
import { createShippingReconciliationActivities } from '../activities/shipping/reconciliation';
import { createSimulatedCarrier } from '../activities/shipping/simulated-carrier';
import { confirmPickupSignal, orderWorkflowId } from '../contracts/orders';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';
import { localDatabaseUrl, poolSize } from '../lib/config';
import { createPool } from '../lib/db';
import { ensureSandboxSchema, faultEnv, faultsFrom } from '../lib/sandbox';
import { connectClient } from '../lib/temporal/connection';
import { databaseCheck, definePool, isEntryPoint, runPool, workerEnv } from './run';

export const shippingPool = definePool({
  service: 'shipping',
  taskQueue: SHIPPING_TASK_QUEUE,
  env: workerEnv.extend({
    SHIPPING_DATABASE_URL: z.string().url().default(localDatabaseUrl('shipping')),
    SHIPPING_DB_POOL_MAX: poolSize(5),
    SANDBOX_DATABASE_URL: z.string().url().default(localDatabaseUrl('sandbox')),
    SANDBOX_DB_POOL_MAX: poolSize(3),
    ...faultEnv,
    CARRIER_PICKUP_DELAY_MS: z.coerce.number().int().min(0).default(100),
    PICKUP_POLL_INTERVAL_MS: z.coerce.number().int().min(10).default(100),
  }),
  async build(config, log, temporal) {
    const pool = createPool(config.SHIPPING_DATABASE_URL, config.SHIPPING_DB_POOL_MAX, 'shipping-worker', log);
    const sandbox = createPool(config.SANDBOX_DATABASE_URL, config.SANDBOX_DB_POOL_MAX, 'carrier-sim', log);
    await ensureSandboxSchema(sandbox);
    const db = createShippingDb(pool);
    const carrier = createSimulatedCarrier(sandbox, { pickupDelayMs: config.CARRIER_PICKUP_DELAY_MS, faults: faultsFrom(config) });
    const { client, connection } = await connectClient(temporal);
    const relay = createPickupRelay({
      db,
      carrier,
      log,
      notifyOrder: async (orderId, confirmation) => {
        try {
          await client.workflow.getHandle(orderWorkflowId(orderId)).signal(confirmPickupSignal, confirmation);
        } catch (err) {
          // An order that has already ended has no use for its pickup.
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      },
    });
    return {
      // the saga's activities, and the reconciliation sweep's on the same task queue
      activities: { ...createShippingActivities({ db, carrier }), ...createShippingReconciliationActivities({ db, carrier }) },
      health: { database: databaseCheck(pool), sandbox: databaseCheck(sandbox) },
      background: (signal) => relay.run(signal, config.PICKUP_POLL_INTERVAL_MS),
      close: async () => {
        await connection.close();
        await db.$disconnect();
        await Promise.all([pool.end(), sandbox.end()]);
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(shippingPool);
