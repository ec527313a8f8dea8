import { DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { INVENTORY_TASK_QUEUE } from '../../contracts/inventory';
import { ORDERS_TASK_QUEUE } from '../../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../../contracts/shipping';

let runtimeInstalled = false;
/** Worker logs at ERROR only (activity retries log WARN by design): tests print what failed, not every poll. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  runtimeInstalled = true;
}

/** The same bundle the orders workers run, built once for the run (./bundles.ts). */
export { orderWorkflowBundle as bundleWorkflows } from './bundles';

export interface ServiceActivities {
  orders: object;
  inventory: object;
  payments: object;
  shipping: object;
}

/**
 * Runs one worker per task queue, the way the four pools do, until `fn` settles; the orders
 * worker also runs the workflows from the prebuilt bundle.
 */
export async function withPlatformWorkers<T>(
  connection: NativeConnection,
  namespace: string,
  bundle: WorkflowBundle,
  activities: ServiceActivities,
  fn: () => Promise<T>,
  dataConverter?: DataConverter,
): Promise<T> {
  const make = (taskQueue: string, acts: object, runsWorkflows = false) =>
    Worker.create({
      connection,
      namespace,
      taskQueue,
      activities: acts,
      ...(dataConverter ? { dataConverter } : {}),
      ...(runsWorkflows ? { workflowBundle: bundle } : {}),
    });
  const workers = await Promise.all([
    make(ORDERS_TASK_QUEUE, activities.orders, true),
    make(INVENTORY_TASK_QUEUE, activities.inventory),
    make(PAYMENTS_TASK_QUEUE, activities.payments),
    make(SHIPPING_TASK_QUEUE, activities.shipping),
  ]);
  const done = fn();
  const settled = done.then(
    () => undefined,
    () => undefined,
  );
  await Promise.all(workers.map((w) => w.runUntil(settled)));
  return done;
}
