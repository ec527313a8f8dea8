import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyDatabaseErrors } from '../activities/database-errors';
import { createInventoryActivities } from '../activities/inventory';
import { createInventoryDb } from '../activities/inventory/db';
import { createOrderActivities } from '../activities/orders';
import { createOrdersDb } from '../activities/orders/db';
import { ORDERS_TASK_QUEUE, getOrderStateQuery, orderWorkflowId, stepKey, type PlaceOrderInput } from '../contracts/orders';
import type { DatabaseName } from '../lib/infra/databases';
import { createPool, type Pool } from '../lib/db';
import type { orderWorkflow } from '../workflows/orders';
import { failureOf, runActivity } from './activities/helpers';
import { createTestDatabases, queryDatabase } from './support/databases';
import { startInProcessPools } from './support/in-process-pools';
import { STOREFRONT, orderInput } from './support/saga';
import { bundleWorkflows, quietRuntime, testClient } from './support/temporal';

/**
 * Data a database refuses (SQLSTATE class 22 or 23) ends the work at once with a reason: an
 * activity fails non-retryably as InvalidData, and an order carrying such data (sent straight to
 * Temporal, past the API's own checks) fails INVALID_DATA instead of retrying its first step forever.
 */
const NAMESPACE = 'data-errors';
let urls: Record<DatabaseName, string>;
let pools: Awaited<ReturnType<typeof startInProcessPools>>;
let client: Client;
let connection: Connection;
const opened: Pool[] = [];

beforeAll(async () => {
  quietRuntime();
  urls = await createTestDatabases('dataerr');
  pools = await startInProcessPools({ urls, namespace: NAMESPACE, bundle: await bundleWorkflows() });
  ({ client, connection } = await testClient(NAMESPACE));
});

afterAll(async () => {
  await pools?.stop();
  await connection?.close();
  await Promise.all(opened.map((p) => p.end()));
});

const pool = (url: string) => {
  const p = createPool(url, 2, 'data-errors-test');
  opened.push(p);
  return p;
};

const NUL = 'Ada\u0000Lovelace';
const LONE_SURROGATE = 'Ada \ud800 Lovelace';

describe('activities classify database errors', () => {
  it('turns text the database refuses (NUL, a lone surrogate) and a missing parent row into a non-retryable InvalidData, naming only the SQLSTATE', async () => {
    const orders = classifyDatabaseErrors(createOrderActivities({ db: createOrdersDb(pool(urls.orders)) }));
    const record = (overrides: { customerId?: string; name?: string }) => {
      const orderId = randomUUID();
      return runActivity(orders.recordOrderPlaced, {
        orderId,
        placedBy: 'https://auth.test#storefront-1',
        customerId: overrides.customerId ?? 'c-1',
        requestHash: 'h',
        items: [{ sku: 'MUG-LOGO', quantity: 1 }],
        shippingAddress: { name: overrides.name ?? 'Ada', line1: 'x', city: 'y', postalCode: 'z', country: 'GB' },
        idempotencyKey: stepKey(orderWorkflowId(orderId), 'OrderPlaced'),
      });
    };
    const nul = await failureOf(record({ customerId: NUL }));
    const surrogate = await failureOf(record({ name: LONE_SURROGATE }));
    const orphan = await failureOf(
      runActivity(orders.recordOrderEvent, { orderId: randomUUID(), type: 'StockReserved', idempotencyKey: randomUUID(), status: 'RESERVING_STOCK' }),
    );
    for (const [failure, state] of [
      [nul, /^22/],
      [surrogate, /^22/],
      [orphan, /^23503$/],
    ] as const) {
      expect(failure).toMatchObject({ type: 'InvalidData', nonRetryable: true });
      expect((failure.details?.[0] as { sqlState: string }).sqlState).toMatch(state);
      expect(failure.message).not.toContain('Ada');
    }
  });

  it('does the same for the other services (inventory, a SKU with a NUL), and leaves stock untouched', async () => {
    const inventoryPool = pool(urls.inventory);
    const inventory = classifyDatabaseErrors(createInventoryActivities({ db: createInventoryDb(inventoryPool) }));
    const before = await queryDatabase<{ stock: number }>(urls.inventory, `SELECT stock FROM products WHERE sku = 'MUG-LOGO'`);
    const failure = await failureOf(
      runActivity(inventory.reserveStock, {
        reservationId: randomUUID(),
        orderId: randomUUID(),
        items: [
          { sku: 'MUG-LOGO', quantity: 1 },
          { sku: 'BAD\u0000SKU', quantity: 1 },
        ],
      }),
    );
    expect(failure).toMatchObject({ type: 'InvalidData', nonRetryable: true });
    expect(await queryDatabase<{ stock: number }>(urls.inventory, `SELECT stock FROM products WHERE sku = 'MUG-LOGO'`)).toEqual(before);
  });

  it('leaves infrastructure errors retryable: a database that cannot be reached is not a data error', async () => {
    const unreachable = createPool('postgresql://postgres:postgres@127.0.0.1:9/orders', 1, 'unreachable');
    opened.push(unreachable);
    const orders = classifyDatabaseErrors(createOrderActivities({ db: createOrdersDb(unreachable) }));
    const err = await runActivity(orders.getOrderStatuses, { orderIds: [randomUUID()] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(err instanceof ApplicationFailure && err.nonRetryable).toBe(false);
  });
});

describe('an order whose data the database refuses', () => {
  const start = (input: PlaceOrderInput) =>
    client.workflow.start<typeof orderWorkflow>('orderWorkflow', { taskQueue: ORDERS_TASK_QUEUE, workflowId: orderWorkflowId(input.orderId), args: [input] });

  const cases: Array<[string, Partial<PlaceOrderInput>]> = [
    ['a NUL in the customer ID', { customerId: `c-${NUL}` }],
    ['a lone surrogate in the address', { shippingAddress: { name: LONE_SURROGATE, line1: '1 Road', city: 'London', postalCode: 'N1', country: 'GB' } }],
    ['a NUL in a SKU', { items: [{ sku: 'MUG\u0000LOGO', quantity: 1 }] }],
  ];
  for (const [what, overrides] of cases) {
    it(`fails INVALID_DATA at once for ${what}, touching no service and leaving nothing open`, async () => {
      const input = orderInput({ placedBy: STOREFRONT, ...overrides });
      const handle = await start(input);
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'FAILED', failureReason: 'INVALID_DATA', compensations: [] });
      const state = await handle.query(getOrderStateQuery);
      expect(state.events.map((e) => e.type)).toEqual(['OrderFailed']);
      expect(await queryDatabase(urls.inventory, 'SELECT id FROM reservations WHERE order_id = $1', [input.orderId])).toEqual([]);
      expect(await queryDatabase(urls.orders, 'SELECT id FROM orders WHERE id = $1', [input.orderId])).toEqual([]);
    }, 30_000);
  }
});
