import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrderActivities, type OrderActivities } from '../../activities/orders';
import { createOrdersDb, type OrdersDb } from '../../activities/orders/db';
import { orderWorkflowId, stepKey, type RecordOrderEventInput, type RecordOrderInput } from '../../contracts/orders';
import { createPool, type Pool } from '../../lib/db';
import { createTestDatabases } from '../support/databases';
import { runActivity } from './helpers';

let pool: Pool;
let db: OrdersDb;
let acts: OrderActivities;

beforeAll(async () => {
  const urls = await createTestDatabases('act_orders');
  pool = createPool(urls.orders, 3, 'test');
  db = createOrdersDb(pool);
  acts = createOrderActivities({ db });
});

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
});

const shippingAddress = { name: 'Ada Lovelace', line1: 'Hauptstrasse 1', city: 'Berlin', postalCode: '10115', country: 'DE' };

const newOrder = (): RecordOrderInput => {
  const orderId = randomUUID();
  return {
    orderId,
    placedBy: 'https://auth.test#storefront-1',
    customerId: `cust-${randomUUID()}`,
    requestHash: 'a'.repeat(64),
    items: [
      { sku: 'MUG-LOGO', quantity: 2 },
      { sku: 'SOCKS-3PK', quantity: 1 },
    ],
    shippingAddress,
    idempotencyKey: stepKey(orderWorkflowId(orderId), 'OrderPlaced'),
  };
};

const event = (orderId: string, step: string, fields: Omit<RecordOrderEventInput, 'orderId' | 'idempotencyKey'>): RecordOrderEventInput => ({
  orderId,
  idempotencyKey: stepKey(orderWorkflowId(orderId), step),
  ...fields,
});

async function orderRows(orderId: string) {
  const { rows } = await pool.query<{
    customer_id: string;
    request_hash: string;
    status: string;
    currency: string | null;
    total_amount: number | null;
    failure_reason: string | null;
    shipping_address: unknown;
  }>(
    `SELECT customer_id, request_hash, status, currency, total_amount, failure_reason, shipping_address
       FROM orders WHERE id = $1`,
    [orderId],
  );
  return rows;
}

async function itemRows(orderId: string) {
  const { rows } = await pool.query<{ sku: string; quantity: number; unit_price: number | null }>(
    'SELECT sku, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY sku',
    [orderId],
  );
  return rows;
}

async function eventRows(orderId: string) {
  const { rows } = await pool.query<{ type: string; idempotency_key: string; data: unknown }>(
    'SELECT type, idempotency_key, data FROM order_events WHERE order_id = $1 ORDER BY id',
    [orderId],
  );
  return rows;
}

describe('order activities against PostgreSQL', () => {
  it('recordOrderPlaced called twice records one order and one OrderPlaced event', async () => {
    const input = newOrder();

    await runActivity(acts.recordOrderPlaced, input);
    await runActivity(acts.recordOrderPlaced, input, 2);

    expect(await orderRows(input.orderId)).toEqual([
      {
        customer_id: input.customerId,
        request_hash: input.requestHash,
        status: 'PENDING',
        currency: null,
        total_amount: null,
        failure_reason: null,
        shipping_address: shippingAddress,
      },
    ]);
    expect(await itemRows(input.orderId)).toEqual([
      { sku: 'MUG-LOGO', quantity: 2, unit_price: null },
      { sku: 'SOCKS-3PK', quantity: 1, unit_price: null },
    ]);
    expect(await eventRows(input.orderId)).toEqual([{ type: 'OrderPlaced', idempotency_key: input.idempotencyKey, data: { items: input.items } }]);
  });

  it('two concurrent recordOrderPlaced attempts record one order', async () => {
    const input = newOrder();

    await Promise.all([runActivity(acts.recordOrderPlaced, input), runActivity(acts.recordOrderPlaced, input, 2)]);

    expect(await orderRows(input.orderId)).toHaveLength(1);
    expect(await itemRows(input.orderId)).toHaveLength(2);
    expect((await eventRows(input.orderId)).map((e) => e.type)).toEqual(['OrderPlaced']);
  });

  it('recordOrderEvent called twice with the same key records one event and moves the status once', async () => {
    const order = newOrder();
    await runActivity(acts.recordOrderPlaced, order);
    const reserved = event(order.orderId, 'StockReserved', { type: 'StockReserved', status: 'AUTHORISING_PAYMENT' });
    const compensating = event(order.orderId, 'compensate-stock', {
      type: 'CompensationRan',
      status: 'COMPENSATING',
      data: { compensation: 'StockReleased' },
    });

    await runActivity(acts.recordOrderEvent, reserved);
    await runActivity(acts.recordOrderEvent, compensating);
    await runActivity(acts.recordOrderEvent, compensating, 2);

    expect((await orderRows(order.orderId)).map((o) => o.status)).toEqual(['COMPENSATING']);
    expect(await eventRows(order.orderId)).toEqual([
      { type: 'OrderPlaced', idempotency_key: order.idempotencyKey, data: { items: order.items } },
      { type: 'StockReserved', idempotency_key: reserved.idempotencyKey, data: {} },
      { type: 'CompensationRan', idempotency_key: compensating.idempotencyKey, data: { compensation: 'StockReleased' } },
    ]);

    // A stale retry of an earlier event (its key already written) must not move the status back.
    await runActivity(acts.recordOrderEvent, reserved, 3);
    expect((await orderRows(order.orderId)).map((o) => o.status)).toEqual(['COMPENSATING']);
    expect(await eventRows(order.orderId)).toHaveLength(3);
  });

  it('recordOrderEvents writes a log in order, at the times given, ends on the last status, and a retry after a partial write doubles nothing', async () => {
    const order = newOrder();
    await runActivity(acts.recordOrderPlaced, order);
    const log = [
      event(order.orderId, 'StockReserved', { type: 'StockReserved', status: 'AUTHORISING_PAYMENT', at: '2026-12-01T10:00:00.000Z' }),
      event(order.orderId, 'PaymentAuthorised', { type: 'PaymentAuthorised', status: 'CREATING_SHIPMENT', at: '2026-12-01T10:00:01.000Z' }),
      event(order.orderId, 'OrderFailed', { type: 'OrderFailed', status: 'FAILED', failureReason: 'SHIPPING_UNAVAILABLE', at: '2026-12-03T10:00:00.000Z' }),
    ];
    // The first attempt wrote one entry before it was lost; the retry sends the whole batch again.
    await runActivity(acts.recordOrderEvent, log[0]!);
    await runActivity(acts.recordOrderEvents, { events: log }, 2);

    expect((await orderRows(order.orderId)).map((o) => [o.status, o.failure_reason])).toEqual([['FAILED', 'SHIPPING_UNAVAILABLE']]);
    const { rows } = await pool.query<{ type: string; created_at: Date }>('SELECT type, created_at FROM order_events WHERE order_id = $1 ORDER BY id', [
      order.orderId,
    ]);
    expect(rows.map((r) => r.type)).toEqual(['OrderPlaced', 'StockReserved', 'PaymentAuthorised', 'OrderFailed']);
    expect(rows.slice(1).map((r) => r.created_at.toISOString())).toEqual(log.map((e) => e.at));
  });

  it('StockReserved with pricing sets each item price, the total and the currency', async () => {
    const order = newOrder();
    await runActivity(acts.recordOrderPlaced, order);
    const reserved = event(order.orderId, 'StockReserved', {
      type: 'StockReserved',
      status: 'AUTHORISING_PAYMENT',
      data: { reservationId: `${orderWorkflowId(order.orderId)}:reservation` },
      pricing: {
        lines: [
          { sku: 'MUG-LOGO', quantity: 2, unitPrice: 1299 },
          { sku: 'SOCKS-3PK', quantity: 1, unitPrice: 999 },
        ],
        total: 2 * 1299 + 999,
        currency: 'EUR',
      },
    });

    await runActivity(acts.recordOrderEvent, reserved);
    await runActivity(acts.recordOrderEvent, reserved, 2);

    expect(await orderRows(order.orderId)).toMatchObject([{ status: 'AUTHORISING_PAYMENT', currency: 'EUR', total_amount: 3597 }]);
    expect(await itemRows(order.orderId)).toEqual([
      { sku: 'MUG-LOGO', quantity: 2, unit_price: 1299 },
      { sku: 'SOCKS-3PK', quantity: 1, unit_price: 999 },
    ]);
    expect((await eventRows(order.orderId)).map((e) => e.type)).toEqual(['OrderPlaced', 'StockReserved']);
  });

  it('OrderFailed records the failure reason with the status', async () => {
    const order = newOrder();
    await runActivity(acts.recordOrderPlaced, order);

    await runActivity(
      acts.recordOrderEvent,
      event(order.orderId, 'OrderFailed', { type: 'OrderFailed', status: 'FAILED', failureReason: 'OUT_OF_STOCK', data: { sku: 'VINYL-LTD' } }),
    );

    expect(await orderRows(order.orderId)).toMatchObject([{ status: 'FAILED', failure_reason: 'OUT_OF_STOCK', total_amount: null }]);
    expect((await eventRows(order.orderId)).at(-1)).toMatchObject({ type: 'OrderFailed', data: { sku: 'VINYL-LTD' } });
  });

  it('an event for an order that was never recorded fails and writes nothing', async () => {
    const orderId = randomUUID();

    await expect(
      runActivity(acts.recordOrderEvent, event(orderId, 'StockReserved', { type: 'StockReserved', status: 'AUTHORISING_PAYMENT' })),
    ).rejects.toThrow();

    expect(await orderRows(orderId)).toEqual([]);
    expect(await eventRows(orderId)).toEqual([]);
  });
});
