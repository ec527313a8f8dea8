import { log, proxyActivities, setWorkflowOptions } from '@temporalio/workflow';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import type { ShippingReconciliationActivities } from '../activities/shipping/reconciliation';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { ORDERS_TASK_QUEUE, isTerminal, type ReconciliationInput, type ReconciliationReport } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE, type ShipmentReconciliation, type UnreconciledShipment } from '../contracts/shipping';

// A sweep that finds a service down simply fails; the next run of the schedule tries again.
const options = { startToCloseTimeout: '30s', scheduleToCloseTimeout: '2m', retry: { maximumInterval: '10s' } } as const;
const orders = proxyActivities<OrderActivities>({ ...options, taskQueue: ORDERS_TASK_QUEUE });
const inventory = proxyActivities<InventoryActivities>({ ...options, taskQueue: INVENTORY_TASK_QUEUE });
const payments = proxyActivities<PaymentActivities>({ ...options, taskQueue: PAYMENTS_TASK_QUEUE });
const shipping = proxyActivities<ShippingReconciliationActivities>({ ...options, taskQueue: SHIPPING_TASK_QUEUE });

const DEFAULT_OLDER_THAN_MS = 15 * 60_000;
const BATCH = 500;
/**
 * Every shipment is verified once, completed orders' too, so a sweep pages through all that are
 * due rather than one batch (a busy platform ends thousands of orders between two sweeps), up to
 * this many pages; the next sweep carries on from the oldest left.
 */
const SHIPMENT_PAGES = 20;
/** shipments per reconcileShipments call: a carrier lookup each, well inside the activity's timeout */
const SHIPMENT_CHUNK = 50;

/** An order never recorded cannot be waiting for its stock, its money or its parcel. */
const hasEnded = (status: string | null | undefined) => status == null || isTerminal(status);

/**
 * The safety net under the sagas, run by a Temporal Schedule: reservations still held and
 * payments still open (authorised, or with an outcome never heard back) whose order has ended are
 * settled — released, committed or voided — and every shipment of an ended order is compared with
 * the carrier once and brought into agreement with how its order ended, or reported. What it did is
 * its result. Everything it calls is idempotent, so two sweeps at once, or a sweep racing a saga's
 * own undo, change nothing twice; it only looks at items untouched for `olderThanMs`.
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
    shipmentsChecked: 0,
    shipmentsVerified: 0,
    shipmentsCancelled: [],
    shipmentsMarkedPickedUp: [],
    shipmentsMarkedCancelled: [],
    anomalies: [],
  };
  const orderIds = [...new Set([...held, ...open].map((item) => item.orderId))];
  const statuses = orderIds.length > 0 ? await orders.getOrderStatuses({ orderIds }) : {};
  const ended = (orderId: string) => hasEnded(statuses[orderId]);

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
  await reconcileShipments(olderThanMs, report);
  log.info('reconciliation done', { ...report });
  return report;
}
// A sweep lasts minutes and runs every few: it moves to the newest build at its next task rather than
// keep an old build's workers alive. So a change to it must still replay a sweep under way (patched()).
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, reconciliationWorkflow);

/**
 * Shipments not yet verified, page by page: those of ended orders go to the shipping service, which
 * compares each with the carrier and fixes or reports it; those of live orders wait for a later sweep.
 */
async function reconcileShipments(olderThanMs: number, report: ReconciliationReport): Promise<void> {
  let after: Pick<UnreconciledShipment, 'updatedAt' | 'id'> | undefined;
  for (let page = 0; page < SHIPMENT_PAGES; page++) {
    const found = await shipping.findUnreconciledShipments({ olderThanMs, limit: BATCH, ...(after ? { after } : {}) });
    report.shipmentsChecked += found.length;
    if (found.length === 0) return;
    const statuses = await orders.getOrderStatuses({ orderIds: [...new Set(found.map((s) => s.orderId))] });
    const due = found
      .filter((s) => hasEnded(statuses[s.orderId]))
      .map((s) => ({ shipmentId: s.id, orderId: s.orderId, orderStatus: statuses[s.orderId] ?? null }));
    for (let i = 0; i < due.length; i += SHIPMENT_CHUNK) {
      for (const result of await shipping.reconcileShipments({ shipments: due.slice(i, i + SHIPMENT_CHUNK) })) tally(report, result);
    }
    if (found.length < BATCH) return;
    const last = found[found.length - 1]!;
    after = { updatedAt: last.updatedAt, id: last.id };
  }
}

function tally(report: ReconciliationReport, { shipmentId, orderId, action, issue }: ShipmentReconciliation): void {
  if (action === 'VERIFIED') report.shipmentsVerified += 1;
  else if (action === 'CANCELLED_AT_CARRIER') report.shipmentsCancelled.push(shipmentId);
  else if (action === 'MARKED_PICKED_UP') report.shipmentsMarkedPickedUp.push(shipmentId);
  else if (action === 'MARKED_CANCELLED') report.shipmentsMarkedCancelled.push(shipmentId);
  else if (action === 'ANOMALY') report.anomalies.push({ id: shipmentId, orderId, issue: issue ?? 'shipment and carrier disagree' });
}
