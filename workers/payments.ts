import { z } from 'zod';
import { createPaymentActivities } from '../activities/payments';
import { createPaymentsDb } from '../activities/payments/db';
import { createSimulatedPaymentProvider } from '../activities/payments/simulated-provider';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { localDatabaseUrl, poolSize } from '../lib/config';
import { createPool } from '../lib/db';
import { ensureSandboxSchema, faultEnv, faultsFrom } from '../lib/sandbox';
import { databaseCheck, definePool, isEntryPoint, runPool, workerEnv } from './run';

export const paymentsPool = definePool({
  service: 'payments',
  taskQueue: PAYMENTS_TASK_QUEUE,
  env: workerEnv.extend({
    PAYMENTS_DATABASE_URL: z.string().url().default(localDatabaseUrl('payments')),
    PAYMENTS_DB_POOL_MAX: poolSize(5),
    SANDBOX_DATABASE_URL: z.string().url().default(localDatabaseUrl('sandbox')),
    SANDBOX_DB_POOL_MAX: poolSize(3),
    ...faultEnv,
  }),
  async build(config, log) {
    const pool = createPool(config.PAYMENTS_DATABASE_URL, config.PAYMENTS_DB_POOL_MAX, 'payments-worker', log);
    const sandbox = createPool(config.SANDBOX_DATABASE_URL, config.SANDBOX_DB_POOL_MAX, 'payment-provider-sim', log);
    await ensureSandboxSchema(sandbox);
    const db = createPaymentsDb(pool);
    return {
      activities: createPaymentActivities({ db, provider: createSimulatedPaymentProvider(sandbox, faultsFrom(config)) }),
      health: { database: databaseCheck(pool), sandbox: databaseCheck(sandbox) },
      close: async () => {
        await db.$disconnect();
        await Promise.all([pool.end(), sandbox.end()]);
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(paymentsPool);
