import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { PaymentActivities } from '../activities/payments';
import type { ShippingActivities } from '../activities/shipping';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import type { ServiceHealth } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';

// One try, a short deadline: a health check reports the state now, it does not wait for recovery.
const probe = (taskQueue: string): ActivityOptions => ({
  taskQueue,
  scheduleToCloseTimeout: '3s',
  retry: { maximumAttempts: 1 },
});
const inventory = proxyActivities<InventoryActivities>(probe(INVENTORY_TASK_QUEUE));
const payments = proxyActivities<PaymentActivities>(probe(PAYMENTS_TASK_QUEUE));
const shipping = proxyActivities<ShippingActivities>(probe(SHIPPING_TASK_QUEUE));

/** Asks each service's pool to reach its own database: answers only if a worker and its database are up. */
export async function platformHealthWorkflow(): Promise<ServiceHealth[]> {
  const checks: Array<[string, () => Promise<void>]> = [
    [INVENTORY_TASK_QUEUE, () => inventory.checkInventoryHealth()],
    [PAYMENTS_TASK_QUEUE, () => payments.checkPaymentsHealth()],
    [SHIPPING_TASK_QUEUE, () => shipping.checkShippingHealth()],
  ];
  return Promise.all(
    checks.map(async ([service, check]) => {
      try {
        await check();
        return { service, ok: true };
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
        return { service, ok: false, error: cause instanceof Error ? cause.message : String(cause) };
      }
    }),
  );
}
