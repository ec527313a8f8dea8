import type { WorkflowBundle } from '@temporalio/worker';
import { inject } from 'vitest';
import type { WorkerUrls } from '../../api/health';
import { DATABASES, databaseUrlVar, type DatabaseName } from '../../lib/infra/databases';
import { parseEnv } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { inventoryPool } from '../../workers/inventory';
import { ordersPool } from '../../workers/orders';
import { paymentsPool } from '../../workers/payments';
import { shippingPool } from '../../workers/shipping';
import { notificationsPool } from '../../workers/notifications';
import type { Logger } from '../../lib/logger';
import { startPool, type StartedPool } from '../../workers/run';
import { initTracing, type Tracing } from '../../lib/tracing';
import { connectWorker, temporalSettings } from '../../lib/temporal/connection';
import { notificationsWorkflowBundle } from './bundles';

export interface InProcessPools {
  /** each pool, to stop one on its own (its HTTP server closes with it) */
  pools: Record<keyof WorkerUrls, StartedPool>;
  /** where each pool's HTTP server (/healthz, /livez, /metrics, inventory's /products) listens */
  workers: WorkerUrls;
  stop: () => Promise<void>;
}

/**
 * The four pools with their real activities, databases and simulated provider and carrier,
 * started in this process through the same wiring as the worker mains, HTTP servers included.
 * For tests that need the whole saga but drive it through an in-process API; the end-to-end
 * test uses real processes.
 */
export async function startInProcessPools(options: {
  urls: Record<DatabaseName, string>;
  namespace: string;
  bundle: WorkflowBundle;
  /** the notifications pool's own bundle; built here when not given */
  notificationsBundle?: WorkflowBundle;
  env?: NodeJS.ProcessEnv;
  /** where the pools log (warnings and up by default) */
  log?: Logger;
  /** the tracing wiring; by default a tracer that samples nothing */
  tracing?: Tracing;
}): Promise<InProcessPools> {
  const address = inject('temporalAddress');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: options.namespace,
    // each pool's HTTP server on a free loopback port
    METRICS_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    // webhook receivers in tests listen on this machine
    WEBHOOKS_ALLOW_LOOPBACK_HTTP: 'true',
    ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), options.urls[db]])),
    ...options.env,
  };
  const temporal = temporalSettings(env);
  const connection = await connectWorker(temporal);
  const runtime = {
    connection,
    temporal,
    log: options.log ?? createLogger('test-pools', 'warn'),
    tracing: options.tracing ?? initTracing({ service: 'test-pools', sampleRatio: 0 }),
  };
  const [orders, inventory, payments, shipping, notificationsBundle] = await Promise.all([
    startPool(ordersPool, parseEnv(ordersPool.env, env), { ...runtime, bundle: options.bundle }),
    startPool(inventoryPool, parseEnv(inventoryPool.env, env), runtime),
    startPool(paymentsPool, parseEnv(paymentsPool.env, env), runtime),
    startPool(shippingPool, parseEnv(shippingPool.env, env), runtime),
    options.notificationsBundle ?? notificationsWorkflowBundle(),
  ]);
  // The notifications pool reads the orders pool's event log (GET /events) from its URL.
  const notifications = await startPool(notificationsPool, parseEnv(notificationsPool.env, { ORDERS_WORKER_URLS: orders.url, ...env }), {
    ...runtime,
    bundle: notificationsBundle,
  });
  const pools = { orders, inventory, payments, shipping, notifications };
  const all = Object.values(pools);
  return {
    pools,
    workers: { orders: [orders.url], inventory: [inventory.url], payments: [payments.url], shipping: [shipping.url], notifications: [notifications.url] },
    stop: async () => {
      all.forEach((p) => p.stop());
      await Promise.all(all.map((p) => p.finished));
      await connection.close();
    },
  };
}
