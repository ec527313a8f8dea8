import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';
import { confirmPickupSignal, type FloorActivities, type FloorService } from './floor-contract';

const on = <S extends FloorService>(taskQueue: S) => proxyActivities<FloorActivities<S>>({ taskQueue, startToCloseTimeout: '15s' });
const inventory = on(INVENTORY_TASK_QUEUE);
const payments = on(PAYMENTS_TASK_QUEUE);
const shipping = on(SHIPPING_TASK_QUEUE);

/**
 * The floor: the least Temporal work that reaches a completed order's outcome. One workflow, one
 * no-op regular activity per call a completed order makes to inventory, payments and shipping,
 * on their task queues, and the carrier's pickup signal between shipping and capture (sent by the
 * floor's shipping worker once the shipment's completion is recorded: bench/floor-worker.ts).
 * Nothing of the platform's own bookkeeping (its order records, events, status upserts, the
 * pickup's timeout): 7 actions per workflow.
 */
export async function floorWorkflow(): Promise<void> {
  let pickedUp = false;
  setHandler(confirmPickupSignal, () => {
    pickedUp = true;
  });
  await inventory.reserveStock();
  await payments.authorisePayment();
  await shipping.createShipment();
  await condition(() => pickedUp);
  await payments.capturePayment();
  await inventory.commitStock();
}
