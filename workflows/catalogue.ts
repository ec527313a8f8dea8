import { proxyActivities } from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import { INVENTORY_TASK_QUEUE, type Product } from '../contracts/inventory';

const inventory = proxyActivities<InventoryActivities>({
  taskQueue: INVENTORY_TASK_QUEUE,
  startToCloseTimeout: '5s',
  scheduleToCloseTimeout: '10s', // a storefront waits on this read: answer or fail fast
  retry: { initialInterval: '100ms', maximumAttempts: 3 },
});

/**
 * Reads the catalogue through the inventory service, so the API never opens inventory's database.
 */
export async function listProductsWorkflow(): Promise<Product[]> {
  return inventory.listProducts();
}
