import { NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import { inject } from 'vitest';
import { DATABASES, databaseUrlVar, type DatabaseName } from '../../lib/infra/databases';
import { parseEnv } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { inventoryPool } from '../../workers/inventory';
import { ordersPool } from '../../workers/orders';
import { paymentsPool } from '../../workers/payments';
import { shippingPool } from '../../workers/shipping';
import { startPool } from '../../workers/run';
import { initTracing, type Tracing } from '../../lib/tracing';

/**
 * The four pools with their real activities, databases and simulated provider and carrier,
 * started in this process through the same wiring as the worker mains. For tests that need the
 * whole saga but drive it through an in-process API; the end-to-end test uses real processes.
 */
export async function startInProcessPools(options: {
  urls: Record<DatabaseName, string>;
  namespace: string;
  bundle: WorkflowBundle;
  env?: NodeJS.ProcessEnv;
  /** the tracing wiring; by default a tracer that samples nothing */
  tracing?: Tracing;
}): Promise<{ stop: () => Promise<void> }> {
  const address = inject('temporalAddress');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: options.namespace,
    ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), options.urls[db]])),
    ...options.env,
  };
  const connection = await NativeConnection.connect({ address });
  const log = createLogger('test-pools', 'warn');
  const tracing = options.tracing ?? initTracing({ service: 'test-pools', sampleRatio: 0 });
  const pools = await Promise.all([
    startPool(ordersPool, parseEnv(ordersPool.env, env), connection, log, tracing, options.bundle),
    startPool(inventoryPool, parseEnv(inventoryPool.env, env), connection, log, tracing),
    startPool(paymentsPool, parseEnv(paymentsPool.env, env), connection, log, tracing),
    startPool(shippingPool, parseEnv(shippingPool.env, env), connection, log, tracing),
  ]);
  return {
    stop: async () => {
      pools.forEach((p) => p.stop());
      await Promise.all(pools.map((p) => p.finished));
      await connection.close();
    },
  };
}
