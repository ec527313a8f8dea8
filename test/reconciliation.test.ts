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
  for (const db of ['orders', 'inventory', 'payments', 'sandbox'] as const) dbs.set(db, new pg.Pool({ connectionString: urls[db], max: 2 }));
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
  await sql('orders', `INSERT INTO orders (id, customer_id, request_hash, status, shipping_address, updated_at) VALUES ($1, 'c', 'h', $2, '{}', now())`, [
    orderId,
    status,
  ]);
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

const sweep = () =>
  client.workflow.execute<typeof reconciliationWorkflow>('reconciliationWorkflow', {
    taskQueue: ORDERS_TASK_QUEUE,
    workflowId: `reconciliation-test-${randomUUID()}`,
    args: [{ olderThanMs: 0 }],
  });

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
});
