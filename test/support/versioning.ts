import type { WorkflowBundle } from '@temporalio/worker';
import type { ShippingReconciliationActivities } from '../../activities/shipping/reconciliation';
import { INVENTORY_TASK_QUEUE } from '../../contracts/inventory';
import { NOTIFICATIONS_TASK_QUEUE } from '../../contracts/notifications';
import { ORDERS_TASK_QUEUE } from '../../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../../contracts/shipping';
import { parseEnv } from '../../lib/config';
import { createLogger } from '../../lib/logger';
import { connectWorker } from '../../lib/temporal/connection';
import type { SetCurrentPolicy } from '../../lib/temporal/versioning';
import { initTracing } from '../../lib/tracing';
import { definePool, startPool, workerEnv, type StartedPool } from '../../workers/run';
import { notificationsWorkflowBundle } from './bundles';
import type { FakeServices } from './fake-services';
import { testTemporalSettings } from './temporal';

/** One activity run: which build's workers ran it, for which order. */
export interface ActivityRun {
  build: string;
  activity: string;
  orderId?: string;
}

export interface RunningBuild {
  buildId: string;
  pools: StartedPool[];
  stop: () => Promise<void>;
}

/** Each activity, recording the build that ran it and the order it ran for. */
function recorded(build: string, activities: object, runs: ActivityRun[]): Record<string, (input?: { orderId?: string }) => Promise<unknown>> {
  return Object.fromEntries(
    Object.entries(activities as Record<string, (input?: { orderId?: string }) => Promise<unknown>>).map(([activity, fn]) => [
      activity,
      async (input?: { orderId?: string }) => {
        runs.push({ build, activity, ...(input?.orderId ? { orderId: input.orderId } : {}) });
        return fn(input);
      },
    ]),
  );
}

/** The shipping side of a reconciliation sweep, with nothing to reconcile. */
const quietShippingReconciliation: ShippingReconciliationActivities = {
  findUnreconciledShipments: async () => [],
  reconcileShipments: async () => [],
};

/**
 * One build of the platform: the five pools, started through the pools' own wiring (startPool:
 * the Worker Deployment version, WORKER_SET_CURRENT) with in-memory services, each pool its own
 * worker on its own task queue, as every build runs them. `bundle` is the build's workflow code.
 */
export async function startBuild(options: {
  namespace: string;
  buildId: string;
  bundle: WorkflowBundle;
  fakes: FakeServices;
  runs: ActivityRun[];
  setCurrent: SetCurrentPolicy;
}): Promise<RunningBuild> {
  const { namespace, buildId, bundle, fakes, runs } = options;
  const temporal = testTemporalSettings(namespace);
  const connection = await connectWorker(temporal);
  const env = { ...process.env, WORKER_BUILD_ID: buildId, WORKER_SET_CURRENT: options.setCurrent, METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' };
  const runtime = { connection, temporal, log: createLogger(`build-${buildId}`, 'warn'), tracing: initTracing({ service: 'versioning-test', sampleRatio: 0 }) };
  const pool = (taskQueue: string, activities: object, workflows?: WorkflowBundle) =>
    startPool(
      definePool({
        service: taskQueue,
        taskQueue,
        runsWorkflows: workflows !== undefined,
        env: workerEnv,
        build: async () => ({ activities: recorded(buildId, activities, runs), close: async () => undefined }),
      }),
      parseEnv(workerEnv, env),
      workflows ? { ...runtime, bundle: workflows } : runtime,
    );
  const pools = await Promise.all([
    pool(ORDERS_TASK_QUEUE, fakes.orders, bundle),
    pool(INVENTORY_TASK_QUEUE, fakes.inventory),
    pool(PAYMENTS_TASK_QUEUE, fakes.payments),
    pool(SHIPPING_TASK_QUEUE, { ...fakes.shipping, ...quietShippingReconciliation }),
    // Every service's queue is part of a build: notifications' own workflows, no deliveries here.
    pool(NOTIFICATIONS_TASK_QUEUE, {}, await notificationsWorkflowBundle()),
  ]);
  return {
    buildId,
    pools,
    stop: async () => {
      pools.forEach((p) => p.stop());
      await Promise.all(pools.map((p) => p.finished));
      await connection.close();
    },
  };
}
