import { log, proxyActivities } from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { ORDERS_TASK_QUEUE, isTerminal, type ReconciliationInput, type ReconciliationReport } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';

// A sweep that finds a service down simply fails; the next run of the schedule tries again.
const options = { startToCloseTimeout: '30s', scheduleToCloseTimeout: '2m', retry: { maximumInterval: '10s' } } as const;
const orders = proxyActivities<OrderActivities>({ ...options, taskQueue: ORDERS_TASK_QUEUE });
const inventory = proxyActivities<InventoryActivities>({ ...options, taskQueue: INVENTORY_TASK_QUEUE });
const payments = proxyActivities<PaymentActivities>({ ...options, taskQueue: PAYMENTS_TASK_QUEUE });

const DEFAULT_OLDER_THAN_MS = 15 * 60_000;
const BATCH = 500;

/**
 * The safety net under the sagas, run by a Temporal Schedule: reservations still held and
 * payments still open (authorised, or with an outcome never heard back) whose order has ended are
 * settled — released, committed or voided — and what it did is its result. Everything it calls is
 * idempotent, so two sweeps at once, or a sweep racing a saga's own undo, change nothing twice.
 */
export async function reconciliationWorkflow(input: ReconciliationInput = {}): Promise<ReconciliationReport> {
  const olderThanMs = input.olderThanMs ?? DEFAULT_OLDER_THAN_MS;
  const [held, open] = await Promise.all([
    inventory.findHeldReservations({ olderThanMs, limit: BATCH }),
    payments.findOpenPayments({ olderThanMs, limit: BATCH }),
  ]);
  const report: ReconciliationReport = {
    reservationsChecked: held.length,
    paymentsChecked: open.length,
    reservationsReleased: [],
    reservationsCommitted: [],
    paymentsVoided: [],
    anomalies: [],
  };
  const orderIds = [...new Set([...held, ...open].map((item) => item.orderId))];
  if (orderIds.length === 0) return report;
  const statuses = await orders.getOrderStatuses({ orderIds });
  // An order never recorded cannot be waiting for its stock or its money.
  const ended = (orderId: string) => statuses[orderId] == null || isTerminal(statuses[orderId]);

  for (const r of held.filter((r) => ended(r.orderId))) {
    if (statuses[r.orderId] === 'COMPLETED') {
      // The goods left with a completed order: the hold becomes final, it is not put back.
      if ((await inventory.commitStock({ reservationId: r.id, orderId: r.orderId })).committed) report.reservationsCommitted.push(r.id);
    } else if ((await inventory.releaseStock({ reservationId: r.id, orderId: r.orderId })).released) {
      report.reservationsReleased.push(r.id);
    }
  }
  for (const p of open.filter((p) => ended(p.orderId))) {
    if (statuses[p.orderId] === 'COMPLETED') {
      report.anomalies.push({ id: p.id, orderId: p.orderId, issue: `completed order with a ${p.status} payment` });
      continue;
    }
    const reversal = await payments.voidPayment({ paymentId: p.id, orderId: p.orderId });
    if (reversal.action !== 'NONE') report.paymentsVoided.push(p.id);
  }
  log.info('reconciliation done', { ...report });
  return report;
}
