import { defineSignal } from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { PaymentActivities } from '../activities/payments';
import type { ShippingActivities } from '../activities/shipping';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';

/** The floor's own namespace: its actions are counted apart from the platform's (`default`). */
export const FLOOR_NAMESPACE = 'floor';

/** Where the floor workflow runs, in the floor's namespace. */
export const FLOOR_WORKFLOW_TASK_QUEUE = ORDERS_TASK_QUEUE;

/**
 * The calls a completed order makes to each service, each a no-op activity of the same name on
 * that service's task queue. Typed from the services' activities so a renamed call shows here.
 */
export const FLOOR_CALLS = {
  [INVENTORY_TASK_QUEUE]: ['reserveStock', 'commitStock'],
  [PAYMENTS_TASK_QUEUE]: ['authorisePayment', 'capturePayment'],
  [SHIPPING_TASK_QUEUE]: ['createShipment'],
} as const satisfies {
  [INVENTORY_TASK_QUEUE]: ReadonlyArray<keyof InventoryActivities>;
  [PAYMENTS_TASK_QUEUE]: ReadonlyArray<keyof PaymentActivities>;
  [SHIPPING_TASK_QUEUE]: ReadonlyArray<keyof ShippingActivities>;
};
export type FloorService = keyof typeof FLOOR_CALLS;
export type FloorActivities<S extends FloorService> = Record<(typeof FLOOR_CALLS)[S][number], () => Promise<void>>;

/** The carrier's pickup, as the floor's shipping worker reports it once its no-op shipment is done. */
export const confirmPickupSignal = defineSignal('confirmPickup');
