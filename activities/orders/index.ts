import { isEmailed, topicOf, type OrderEventRecord, type OrderEventsPage } from '../../contracts/notifications';
import type { RecordOrderEventInput, RecordOrderInput } from '../../contracts/orders';
import type { Keyring } from '../../lib/temporal/codec';
import { seal } from '../../lib/temporal/sealed';
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
  async function recordOrderEvent({ orderId, type, idempotencyKey, status, data, failureReason, pricing, at }: RecordOrderEventInput): Promise<void> {
    // One statement per event: the event (at the time the saga says it happened), the status it
    // moves the order to and, for StockReserved, the prices commit together. When the event's
    // key is already there (a retry) nothing at all is written, so a stale retry can never move
    // the status back. An event for an unknown order fails on the foreign key.
    const [{ recorded }] = await db.$queryRaw<[{ recorded: number }]>`
        WITH event AS (
          INSERT INTO order_events (order_id, type, idempotency_key, data, created_at)
          VALUES (${orderId}::uuid, ${type}, ${idempotencyKey}, ${JSON.stringify(data ?? {})}::jsonb, coalesce(${at ?? null}::timestamptz, now()))
          ON CONFLICT (idempotency_key) DO NOTHING
          RETURNING order_id
        ), moved AS (
          UPDATE orders SET
            status = ${status},
            failure_reason = coalesce(${failureReason ?? null}::text, failure_reason),
            total_amount = coalesce(${pricing?.total ?? null}::int, total_amount),
            currency = coalesce(${pricing?.currency ?? null}::text, currency),
            updated_at = now()
          WHERE id = (SELECT order_id FROM event)
          RETURNING id
        ), priced AS (
          UPDATE order_items SET unit_price = line.unit_price
          FROM moved, jsonb_to_recordset(${JSON.stringify((pricing?.lines ?? []).map((l) => ({ sku: l.sku, unit_price: l.unitPrice })))}::jsonb)
            AS line(sku text, unit_price int)
          WHERE order_items.order_id = moved.id AND order_items.sku = line.sku
        )
        SELECT count(*)::int AS recorded FROM event`;
    // Counted where the outcome is recorded, once: a retried event inserts nothing and counts nothing.
    if (recorded > 0) countOutcome(type, data, failureReason);
  }

  return {
    async recordOrderPlaced({ orderId, placedBy, customerId, requestHash, items, shippingAddress, email, idempotencyKey }: RecordOrderInput): Promise<void> {
      // One statement: the order, its lines and its first event are written together or not at
      // all, and a retry (the order's ID already there) writes nothing.
      await db.$executeRaw`
        WITH placed AS (
          INSERT INTO orders (id, placed_by, customer_id, request_hash, status, shipping_address, email, updated_at)
          VALUES (${orderId}::uuid, ${placedBy}, ${customerId}, ${requestHash}, 'PENDING', ${JSON.stringify(shippingAddress)}::jsonb, ${email ?? null}, now())
          ON CONFLICT (id) DO NOTHING
          RETURNING id
        ), lines AS (
          INSERT INTO order_items (order_id, sku, quantity)
          SELECT placed.id, line.sku, line.quantity
          FROM placed, jsonb_to_recordset(${JSON.stringify(items)}::jsonb) AS line(sku text, quantity int)
        )
        INSERT INTO order_events (order_id, type, idempotency_key, data)
        SELECT id, 'OrderPlaced', ${idempotencyKey}, ${JSON.stringify({ items })}::jsonb FROM placed`;
    },

    /** The status of each order, or null for an order this service has never recorded. */
    async getOrderStatuses({ orderIds }: { orderIds: string[] }): Promise<Record<string, string | null>> {
      const uuids = orderIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
      const rows = await db.order.findMany({ where: { id: { in: uuids } }, select: { id: true, status: true } });
      const found = new Map(rows.map((r) => [r.id, r.status]));
      return Object.fromEntries(orderIds.map((id) => [id, found.get(id) ?? null]));
    },

    recordOrderEvent,

    /**
     * Entries of the order's log in the order they happened, each as `recordOrderEvent` writes it:
     * the saga sends what the database does not have yet in one call when the order ends or parks.
     * A retry after a partial write finds the entries already there and skips them.
     */
    async recordOrderEvents({ events }: { events: RecordOrderEventInput[] }): Promise<void> {
      for (const event of events) await recordOrderEvent(event);
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

/** Most entries one read returns: a page of the log is one indexed range scan. */
const EVENTS_PAGE_MAX = 1000;

/**
 * The order event log as the notifications service reads it (the orders pool's `GET /events?after=&limit=`):
 * every entry after a position, in order, so a reader can tell a position not yet committed from one
 * that will never be. The data goes only with the events subscribers hear, and the customer's address,
 * sealed with the payload keyring, only with the events a customer is emailed about.
 */
export function createOrderEventsRead({ db, keyring }: { db: OrdersDb; keyring: Keyring }) {
  return async function readOrderEvents(query: URLSearchParams): Promise<OrderEventsPage> {
    const afterText = query.get('after') ?? '0';
    const after = /^[0-9]{1,19}$/.test(afterText) ? BigInt(afterText) : 0n;
    const limit = Math.min(EVENTS_PAGE_MAX, Math.max(1, Number.parseInt(query.get('limit') ?? '', 10) || 100));
    const [rows, [head]] = await Promise.all([
      db.$queryRaw<Array<{ id: bigint; order_id: string; type: string; data: unknown; created_at: Date; placed_by: string; email: string | null }>>`
        SELECT e.id, e.order_id::text, e.type, e.data, e.created_at, o.placed_by, o.email
        FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.id > ${after}
        ORDER BY e.id
        LIMIT ${limit}`,
      db.$queryRaw<[{ head: bigint | null }]>`SELECT max(id) AS head FROM order_events`,
    ]);
    const events = rows.map((row): OrderEventRecord => {
      const topic = topicOf(row.type);
      return {
        id: String(row.id),
        orderId: row.order_id,
        type: row.type,
        placedBy: row.placed_by,
        at: row.created_at.toISOString(),
        ...(topic ? { data: (row.data ?? {}) as Record<string, unknown> } : {}),
        ...(row.email && isEmailed(topic) ? { email: seal(keyring, row.email, 'customer-email') } : {}),
      };
    });
    return { events, head: String(head?.head ?? 0n) };
  };
}
