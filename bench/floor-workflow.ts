import { proxyActivities } from '@temporalio/workflow';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';

/** A no-op activity: the floor measures Temporal and the workers, not our work. */
export interface FloorActivities {
  noop(): Promise<void>;
}

const on = (taskQueue: string) => proxyActivities<FloorActivities>({ taskQueue, startToCloseTimeout: '15s' });
const orders = on(ORDERS_TASK_QUEUE);
const inventory = on(INVENTORY_TASK_QUEUE);
const payments = on(PAYMENTS_TASK_QUEUE);
const shipping = on(SHIPPING_TASK_QUEUE);

/**
 * The orchestration floor: the same twelve activities as a completed order, on the same task
 * queues, in the same order, each doing nothing.
 */
export async function floorWorkflow(): Promise<void> {
  const steps = [orders, inventory, orders, payments, orders, shipping, orders, orders, payments, orders, inventory, orders];
  for (const service of steps) await service.noop();
}
