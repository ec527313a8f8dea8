import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDERS_TASK_QUEUE, RECONCILIATION_SCHEDULE_ID, type OrderStatus } from '../contracts/orders';
import type { DatabaseName } from '../lib/infra/databases';
import type { reconciliationWorkflow } from '../workflows/reconciliation';
import { createTestDatabases } from './support/databases';
import { startInProcessPools } from './support/in-process-pools';
import { bundleWorkflows, quietRuntime, testClient } from './support/temporal';

const NAMESPACE = 'reconciliation';
let urls: Record<DatabaseName, string>;
let pools: Awaited<ReturnType<typeof startInProcessPools>>;
let connection: Connection;
let client: Client;
const dbs = new Map<DatabaseName, pg.Pool>();

beforeAll(async () => {
  quietRuntime();
  urls = await createTestDatabases('reconcile');
  pools = await startInProcessPools({ urls, namespace: NAMESPACE, bundle: await bundleWorkflows() });
  ({ client, connection } = await testClient(NAMESPACE));
  for (const db of ['orders', 'inventory', 'payments', 'shipping', 'sandbox'] as const) dbs.set(db, new pg.Pool({ connectionString: urls[db], max: 2 }));
});

afterAll(async () => {
  await pools?.stop();
  await connection?.close();
  await Promise.all([...dbs.values()].map((p) => p.end()));
});

const sql = async <T extends pg.QueryResultRow>(db: DatabaseName, text: string, params: unknown[] = []) => (await dbs.get(db)!.query<T>(text, params)).rows;

/**
 * Leaves behind what a saga can leave when a person or a crash intervenes: an order in the given
 * status, with a reservation of one VINYL-LTD still HELD and, optionally, an authorisation still open.
 */
async function leftover(status: OrderStatus, withPayment: boolean) {
  const orderId = randomUUID();
  const workflowId = `order-${orderId}`;
  await sql(
    'orders',
    `INSERT INTO orders (id, placed_by, customer_id, request_hash, status, shipping_address, updated_at) VALUES ($1, 'test#storefront', 'c', 'h', $2, '{}', now())`,
    [orderId, status],
  );
  await sql('inventory', `UPDATE products SET stock = stock - 1 WHERE sku = 'VINYL-LTD'`);
  await sql('inventory', `INSERT INTO reservations (id, order_id, status, currency, updated_at) VALUES ($1, $2, 'HELD', 'EUR', now())`, [
    `${workflowId}:reservation`,
    orderId,
  ]);
  await sql('inventory', `INSERT INTO reservation_lines (reservation_id, sku, quantity, unit_price) VALUES ($1, 'VINYL-LTD', 1, 3499)`, [
    `${workflowId}:reservation`,
  ]);
  const paymentId = `${workflowId}:payment`;
  if (withPayment) {
    const authorisationId = `auth_${orderId}`;
    await sql('sandbox', `INSERT INTO sim_authorisations (id, amount, currency, status) VALUES ($1, 3499, 'EUR', 'AUTHORISED')`, [authorisationId]);
    await sql(
      'payments',
      `INSERT INTO payments (id, order_id, status, amount, currency, authorisation_id, updated_at) VALUES ($1, $2, 'AUTHORISED', 3499, 'EUR', $3, now())`,
      [paymentId, orderId, authorisationId],
    );
  }
  return { orderId, reservationId: `${workflowId}:reservation`, paymentId, authorisationId: `auth_${orderId}` };
}

const sweep = (olderThanMs = 0) =>
  client.workflow.execute<typeof reconciliationWorkflow>('reconciliationWorkflow', {
    taskQueue: ORDERS_TASK_QUEUE,
    workflowId: `reconciliation-test-${randomUUID()}`,
    args: [{ olderThanMs }],
  });

type CarrierStatus = 'BOOKED' | 'PICKED_UP' | 'CANCELLED';

/**
 * An order in the given status whose shipment we hold as `ours` while the carrier holds its booking
 * as `atCarrier` (null: no booking). `recorded: false` is a booking whose reference never reached
 * our row: the carrier still knows it by the booking's idempotency key.
 */
async function shipmentLeftover(orderStatus: OrderStatus, ours: string, atCarrier: CarrierStatus | null, { recorded = true } = {}) {
  const orderId = randomUUID();
  const shipmentId = `order-${orderId}:shipment`;
  const ref = `shp_${orderId.replace(/-/g, '').slice(0, 20)}`;
  await sql(
    'orders',
    `INSERT INTO orders (id, placed_by, customer_id, request_hash, status, shipping_address, updated_at) VALUES ($1, 'test#storefront', 'c', 'h', $2, '{}', now())`,
    [orderId, orderStatus],
  );
  if (atCarrier) {
    await sql('sandbox', `INSERT INTO sim_operations (idempotency_key, system, kind, subject, response) VALUES ($1, 'carrier', 'book', $2, $3)`, [
      `${shipmentId}:book`,
      ref,
      JSON.stringify({ outcome: 'booked', carrierRef: ref, trackingNumber: 'TRK000000000000' }),
    ]);
    // picked up (or not) long ago as far as the pickup relay goes: it has nothing to hand out
    await sql(
      'sandbox',
      `INSERT INTO sim_shipments (ref, country, status, pickup_at, pickup_notified_at)
       VALUES ($1, 'DE', $2, now() + interval '1 day', CASE WHEN $2 = 'PICKED_UP' THEN now() END)`,
      [ref, atCarrier],
    );
  }
  await sql(
    'shipping',
    `INSERT INTO shipments (id, order_id, status, carrier_ref, tracking_number, country, address, updated_at) VALUES ($1, $2, $3, $4, $5, 'DE', '{}', now())`,
    [shipmentId, orderId, ours, atCarrier && recorded ? ref : null, atCarrier && recorded ? 'TRK000000000000' : null],
  );
  return { orderId, shipmentId, ref };
}

/** Where a shipment stands, here and at the carrier. */
async function shipmentState({ shipmentId, ref }: { shipmentId: string; ref: string }) {
  const [ours] = await sql<{ status: string; carrier_ref: string | null; reconciled: boolean; reconciliation_issue: string | null }>(
    'shipping',
    'SELECT status, carrier_ref, reconciled_at IS NOT NULL AS reconciled, reconciliation_issue FROM shipments WHERE id = $1',
    [shipmentId],
  );
  const [theirs] = await sql<{ status: string }>('sandbox', 'SELECT status FROM sim_shipments WHERE ref = $1', [ref]);
  return { ours: ours!.status, ref: ours!.carrier_ref, reconciled: ours!.reconciled, issue: ours!.reconciliation_issue, atCarrier: theirs?.status ?? null };
}

describe('reconciliation', () => {
  it('is scheduled as soon as an orders worker starts', async () => {
    const schedule = await client.schedule.getHandle(RECONCILIATION_SCHEDULE_ID).describe();
    expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconciliationWorkflow', taskQueue: ORDERS_TASK_QUEUE });
    expect(schedule.spec.intervals?.[0]?.every).toBe(5 * 60_000);
  });

  it('settles what ended orders left open, leaves live orders alone, and a second sweep finds nothing', async () => {
    const [stockBefore] = await sql<{ stock: number }>('inventory', `SELECT stock FROM products WHERE sku = 'VINYL-LTD'`);
    const failed = await leftover('FAILED', true);
    const cancelled = await leftover('CANCELLED', false);
    const completed = await leftover('COMPLETED', false);
    const live = await leftover('AWAITING_PICKUP', true);

    const report = await sweep();
    expect(report.reservationsReleased.sort()).toEqual([failed.reservationId, cancelled.reservationId].sort());
    expect(report.reservationsCommitted).toEqual([completed.reservationId]);
    expect(report.paymentsVoided).toEqual([failed.paymentId]);

    const statuses = await sql<{ id: string; status: string }>('inventory', 'SELECT id, status FROM reservations');
    const statusOf = (id: string) => statuses.find((r) => r.id === id)?.status;
    expect([statusOf(failed.reservationId), statusOf(cancelled.reservationId), statusOf(completed.reservationId), statusOf(live.reservationId)]).toEqual([
      'RELEASED',
      'RELEASED',
      'COMMITTED',
      'HELD',
    ]);
    // two released, one committed for good, one still held for the live order
    const [stockAfter] = await sql<{ stock: number }>('inventory', `SELECT stock FROM products WHERE sku = 'VINYL-LTD'`);
    expect(stockAfter!.stock).toBe(stockBefore!.stock - 2);
    const auths = await sql<{ id: string; status: string }>('sandbox', 'SELECT id, status FROM sim_authorisations WHERE id = ANY($1)', [
      [failed.authorisationId, live.authorisationId],
    ]);
    expect(Object.fromEntries(auths.map((a) => [a.id, a.status]))).toEqual({ [failed.authorisationId]: 'VOIDED', [live.authorisationId]: 'AUTHORISED' });

    const again = await sweep();
    expect(again.reservationsReleased).toEqual([]);
    expect(again.reservationsCommitted).toEqual([]);
    expect(again.paymentsVoided).toEqual([]);
  });

  it('brings every shipment of an ended order into agreement with the carrier, or reports it, once', async () => {
    // a cancelled order whose parcel the carrier still has booked (the saga's cancel never reached it)
    const cancelledLive = await shipmentLeftover('CANCELLED', 'CREATED', 'BOOKED');
    // the race of issue 11: the carrier returned the parcel to sender, our row stayed PICKED_UP
    const cancelledAtCarrierOnly = await shipmentLeftover('FAILED', 'PICKED_UP', 'CANCELLED');
    // a completed order whose pickup we never recorded
    const pickedUpAtCarrierOnly = await shipmentLeftover('COMPLETED', 'CREATED', 'PICKED_UP');
    // a completed order whose parcel the carrier cancelled: for a person
    const completedButCancelled = await shipmentLeftover('COMPLETED', 'PICKED_UP', 'CANCELLED');
    // CANCELLED here, live at the carrier: a booking whose reference never reached our row, and one that did
    const markerButBooked = await shipmentLeftover('CANCELLED', 'CANCELLED', 'BOOKED', { recorded: false });
    const cancelledButPickedUp = await shipmentLeftover('CANCELLED', 'CANCELLED', 'PICKED_UP');
    // in agreement already
    const completed = await shipmentLeftover('COMPLETED', 'PICKED_UP', 'PICKED_UP');
    const cancelled = await shipmentLeftover('CANCELLED', 'CANCELLED', 'CANCELLED');
    // an order still running: its shipment is none of the sweep's business yet
    const live = await shipmentLeftover('PENDING', 'CREATED', 'BOOKED');

    const report = await sweep();

    expect(report.shipmentsChecked).toBe(9);
    expect(report.shipmentsVerified).toBe(2);
    expect(report.shipmentsCancelled.sort()).toEqual([cancelledLive, markerButBooked, cancelledButPickedUp].map((s) => s.shipmentId).sort());
    expect(report.shipmentsMarkedCancelled).toEqual([cancelledAtCarrierOnly.shipmentId]);
    expect(report.shipmentsMarkedPickedUp).toEqual([pickedUpAtCarrierOnly.shipmentId]);
    expect(report.anomalies.filter((a) => a.id.endsWith(':shipment'))).toEqual([
      { id: completedButCancelled.shipmentId, orderId: completedButCancelled.orderId, issue: expect.stringContaining('carrier cancelled its parcel') },
    ]);

    const cancelledBoth = { ours: 'CANCELLED', atCarrier: 'CANCELLED', reconciled: true, issue: null };
    expect(await shipmentState(cancelledLive)).toMatchObject(cancelledBoth);
    expect(await shipmentState(cancelledAtCarrierOnly)).toMatchObject(cancelledBoth);
    expect(await shipmentState(pickedUpAtCarrierOnly)).toMatchObject({ ours: 'PICKED_UP', atCarrier: 'PICKED_UP', reconciled: true, issue: null });
    expect(await shipmentState(completedButCancelled)).toMatchObject({
      ours: 'CANCELLED',
      atCarrier: 'CANCELLED',
      reconciled: true,
      issue: expect.stringContaining('order COMPLETED'),
    });
    expect(await shipmentState(markerButBooked)).toMatchObject({ ...cancelledBoth, ref: markerButBooked.ref });
    expect(await shipmentState(cancelledButPickedUp)).toMatchObject(cancelledBoth);
    expect(await shipmentState(completed)).toMatchObject({ ours: 'PICKED_UP', atCarrier: 'PICKED_UP', reconciled: true });
    expect(await shipmentState(cancelled)).toMatchObject(cancelledBoth);
    expect(await shipmentState(live)).toMatchObject({ ours: 'CREATED', atCarrier: 'BOOKED', reconciled: false });
    // the sweep's cancels are its own keys at the carrier, one each
    const cancels = await sql<{ idempotency_key: string }>(
      'sandbox',
      `SELECT idempotency_key FROM sim_operations WHERE kind = 'cancel' ORDER BY idempotency_key`,
    );
    expect(cancels.map((c) => c.idempotency_key)).toEqual(
      [cancelledLive, markerButBooked, cancelledButPickedUp].map((s) => `${s.shipmentId}:cancel:reconciliation`).sort(),
    );

    const again = await sweep();
    expect(again.shipmentsChecked).toBe(1); // the live order's, still not its business
    expect(again.shipmentsVerified).toBe(0);
    expect(again.shipmentsCancelled).toEqual([]);
    expect(again.shipmentsMarkedCancelled).toEqual([]);
    expect(again.shipmentsMarkedPickedUp).toEqual([]);
    expect(again.anomalies).toEqual([]);
  });

  it('leaves shipments touched recently alone, and two sweeps at once do each fix once', async () => {
    const cancelledLive = await shipmentLeftover('CANCELLED', 'CREATED', 'BOOKED');
    const pickedUpAtCarrierOnly = await shipmentLeftover('COMPLETED', 'CREATED', 'PICKED_UP');
    const completedButCancelled = await shipmentLeftover('COMPLETED', 'PICKED_UP', 'CANCELLED');

    const early = await sweep(60_000);
    expect(early.shipmentsChecked).toBe(0);
    expect(await shipmentState(cancelledLive)).toMatchObject({ ours: 'CREATED', atCarrier: 'BOOKED', reconciled: false });

    const both = await Promise.all([sweep(), sweep()]);
    expect(both.flatMap((r) => r.shipmentsCancelled)).toEqual([cancelledLive.shipmentId]);
    expect(both.flatMap((r) => r.shipmentsMarkedPickedUp)).toEqual([pickedUpAtCarrierOnly.shipmentId]);
    expect(both.flatMap((r) => r.anomalies).map((a) => a.id)).toEqual([completedButCancelled.shipmentId]);
    expect(await shipmentState(cancelledLive)).toMatchObject({ ours: 'CANCELLED', atCarrier: 'CANCELLED', reconciled: true });
  });
});
