import type { RecordOrderEventInput, RecordOrderInput } from '../../contracts/orders';
import type { OrdersDb } from './db';
import { orderValue, ordersCancelled, ordersCompleted, ordersFailed } from '../../lib/metrics';

export interface OrdersDeps {
  db: OrdersDb;
}

/**
 * The orders service's own writes: the order, and its append-only event log. An event and the
 * status it moves the order to commit together; the event's unique key makes a retry a no-op.
 */
export function createOrderActivities({ db }: OrdersDeps) {
  return {
    async recordOrderPlaced({ orderId, customerId, requestHash, items, shippingAddress, idempotencyKey }: RecordOrderInput): Promise<void> {
      await db.$transaction(async (tx) => {
        const created = await tx.order.createMany({
          data: [{ id: orderId, customerId, requestHash, status: 'PENDING', shippingAddress: { ...shippingAddress } }],
          skipDuplicates: true,
        });
        if (created.count === 0) return;
        await tx.orderItem.createMany({ data: items.map(({ sku, quantity }) => ({ orderId, sku, quantity })) });
        await tx.orderEvent.create({
          data: { orderId, type: 'OrderPlaced', idempotencyKey, data: { items: items.map((i) => ({ ...i })) } },
        });
      });
    },

    /** The status of each order, or null for an order this service has never recorded. */
    async getOrderStatuses({ orderIds }: { orderIds: string[] }): Promise<Record<string, string | null>> {
      const uuids = orderIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
      const rows = await db.order.findMany({ where: { id: { in: uuids } }, select: { id: true, status: true } });
      const found = new Map(rows.map((r) => [r.id, r.status]));
      return Object.fromEntries(orderIds.map((id) => [id, found.get(id) ?? null]));
    },

    async recordOrderEvent({ orderId, type, idempotencyKey, status, data, failureReason, pricing }: RecordOrderEventInput): Promise<void> {
      const recorded = await db.$transaction(async (tx) => {
        const inserted = await tx.orderEvent.createMany({
          data: [{ orderId, type, idempotencyKey, data: { ...data } as object }],
          skipDuplicates: true,
        });
        if (inserted.count === 0) return false;
        await tx.order.update({
          where: { id: orderId },
          data: {
            status,
            ...(failureReason ? { failureReason } : {}),
            ...(pricing ? { totalAmount: pricing.total, currency: pricing.currency } : {}),
          },
        });
        for (const line of pricing?.lines ?? []) {
          await tx.orderItem.update({ where: { orderId_sku: { orderId, sku: line.sku } }, data: { unitPrice: line.unitPrice } });
        }
        return true;
      });
      // Counted where the outcome is recorded, once: a retried event inserts nothing and counts nothing.
      if (recorded) countOutcome(type, data, failureReason);
    },
  };
}

function countOutcome(type: RecordOrderEventInput['type'], data: RecordOrderEventInput['data'], reason: string | undefined): void {
  if (type === 'OrderCompleted') {
    ordersCompleted.inc();
    const { total, currency } = (data ?? {}) as { total?: number; currency?: string };
    if (typeof total === 'number') orderValue.observe({ currency: currency ?? '' }, total / 100);
  } else if (type === 'OrderFailed') {
    ordersFailed.inc({ reason: reason ?? 'UNKNOWN' });
  } else if (type === 'OrderCancelled') {
    ordersCancelled.inc();
  }
}

export type OrderActivities = ReturnType<typeof createOrderActivities>;
