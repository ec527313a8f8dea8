import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { CATALOGUE } from '../../prisma/inventory/seed';
import { PAYMENTS_TASK_QUEUE } from '../../contracts/payments';
import { orderWorkflowId } from '../../contracts/orders';
import { DATABASES, databaseUrlVar, type DatabaseName } from '../../lib/infra/databases';
import { DATA_DIR } from '../../lib/infra/paths';
import { POOLS, launchPlatform, waitForHttp, type PoolCounts, type RunningPlatform } from '../../lib/infra/platform';
import { freeFixedPort } from '../../lib/net';
import { temporalConnectionSettings } from '../../lib/temporal/connection';
import { notificationsBundlePath, orderBundlePath } from './bundles';
import { createTestDatabases, queryDatabase } from './databases';
import { eventually, request as send, requestRetrying, validOrder } from './http';
import { launchedClients } from './launched';
import { parsePrometheus, sumOf } from './prometheus';

export interface E2eTarget {
  /** the describe block's title */
  title: string;
  /**
   * How the platform's processes reach Temporal, as a deployment would set it: TEMPORAL_ADDRESS,
   * and TEMPORAL_TLS_* or TEMPORAL_API_KEY where the server asks for them. Every process reads it
   * through the connection factory (lib/temporal/connection.ts), and so does this suite's raw reader.
   */
  temporalEnv: Record<string, string>;
  /** a namespace the server already has, this suite's alone */
  namespace: string;
  /** the prefix of this run's databases on the test PostgreSQL; default `e2e` */
  databasePrefix?: string;
}

/**
 * The platform as a user runs it, over real sockets: PostgreSQL, every pool as separate `node`
 * processes (payments scaled to two), the auth service and the API, on the Temporal `target`
 * names (the dev server of the main suite, or the multi-node cluster of the cluster suite).
 * Declares the describe block and its hooks; the test file says which Temporal.
 */
export function describeE2eSuite({ title, temporalEnv, namespace, databasePrefix = 'e2e' }: E2eTarget): void {
  describe(title, () => {
    let platform: RunningPlatform;
    let urls: Record<DatabaseName, string>;
    let clients: Awaited<ReturnType<typeof launchedClients>>;
    const placedOrderIds: string[] = [];
    // Every pool at one process but payments at two: a pool of several processes shares its task queue.
    const counts = Object.fromEntries(POOLS.map((pool) => [pool, pool === PAYMENTS_TASK_QUEUE ? 2 : 1])) as PoolCounts;

    /** A request as the test storefront, with its token. */
    const request: typeof send = async (base, method, path, options = {}) =>
      send(base, method, path, { ...options, headers: { ...(await clients.headers()), ...options.headers } });
    /** As a storefront sends what changes an order: a 503 (past the API's deadline: "retry the request") is sent again, same key. */
    const requestRetried: typeof send = async (base, method, path, options = {}) =>
      requestRetrying(base, method, path, { ...options, headers: { ...(await clients.headers()), ...options.headers } });

    const query = <T extends pg.QueryResultRow>(db: DatabaseName, sql: string, params: unknown[] = []) => queryDatabase<T>(urls[db], sql, params);

    beforeAll(async () => {
      urls = await createTestDatabases(databasePrefix);
      const bundle = await orderBundlePath();
      platform = await launchPlatform({
        env: {
          ...process.env,
          ...temporalEnv,
          TEMPORAL_NAMESPACE: namespace,
          WORKFLOW_BUNDLE_PATH: bundle,
          NOTIFICATIONS_WORKFLOW_BUNDLE_PATH: await notificationsBundlePath(),
          LOG_LEVEL: 'warn',
          // Long enough that a cancel sent right after acceptance, or once the order is seen waiting
          // for pickup, finds it still waiting: the pickup must not win the race. On the cluster, on two
          // busy cores, 1.5 s did not hold: two of the cancelled orders were captured first (and
          // refunded), where the test expects their authorisations voided.
          CARRIER_PICKUP_DELAY_MS: '10000',
          ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
        },
        counts,
        apiPort: await freeFixedPort(),
        authPort: await freeFixedPort(),
        logDir: join(DATA_DIR, 'test', `${databasePrefix}-logs-${process.pid}`),
      });
      await waitForHttp(`${platform.apiUrl}/healthz`, 120_000);
      await waitForHttp(`${platform.authUrl}/healthz`, 60_000);
      clients = await launchedClients(platform.authUrl, urls.auth);
    }, 180_000);

    afterAll(async () => {
      await platform?.stop();
    });

    it('runs 32 concurrent orders to their expected ends, and the four databases reconcile', async () => {
      const api = platform.apiUrl;
      const mix = orderMix();
      const placed: Placed[] = await Promise.all(
        mix.map(async ({ expected, body, cancelAt }) => {
          const res = await requestRetried(api, 'POST', '/orders', { body, headers: { 'Idempotency-Key': randomUUID() } });
          expect(res.status).toBe(202);
          if (cancelAt === 'awaiting-pickup') {
            await eventually(
              async () => ((await request(api, 'GET', `/orders/${res.body.orderId}`)).body?.status === 'AWAITING_PICKUP' ? true : undefined),
              'pickup wait',
              600,
              20,
            );
          }
          if (cancelAt) {
            // Sent again after a 503, as a storefront does: a cancel is idempotent, so a first that took
            // effect answers 202 replayed (and the pickup, 10 s away, cannot win the race meanwhile).
            const cancel = await requestRetried(api, 'POST', `/orders/${res.body.orderId}/cancel`, { body: { reason: 'e2e' } });
            expect(cancel.status).toBe(202);
          }
          return { orderId: res.body.orderId as string, expected, items: body.items };
        }),
      );

      const finals = await Promise.all(
        placed.map((p) =>
          eventually(
            async () => {
              const res = await request(api, 'GET', `/orders/${p.orderId}`);
              return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(res.body?.status) ? res.body : undefined;
            },
            `order ${p.orderId}`,
            600,
            100,
          ),
        ),
      );
      const outcome = (o: { status: string; failureReason?: string }) => (o.status === 'FAILED' ? o.failureReason : o.status);
      expect(finals.map(outcome)).toEqual(placed.map((p) => p.expected));

      // Stock: what is left is what was seeded less what completed orders took.
      const completed = placed.filter((p) => p.expected === 'COMPLETED');
      const stock = await query<{ sku: string; stock: number }>('inventory', 'SELECT sku, stock FROM products');
      for (const product of CATALOGUE) {
        const sold = completed
          .flatMap((p) => p.items)
          .filter((i) => i.sku === product.sku)
          .reduce((n, i) => n + i.quantity, 0);
        expect({ sku: product.sku, stock: stock.find((s) => s.sku === product.sku)?.stock }).toEqual({ sku: product.sku, stock: product.stock - sold });
      }

      // Money: captured in our books and at the provider equals the completed orders' totals.
      const completedTotal = finals.filter((o) => o.status === 'COMPLETED').reduce((sum, o) => sum + o.total, 0);
      expect(completedTotal).toBeGreaterThan(0);
      const [books] = await query<{ captured: string; refunded: string }>(
        'payments',
        'SELECT coalesce(sum(captured_amount), 0) AS captured, coalesce(sum(refunded_amount), 0) AS refunded FROM payments',
      );
      const [provider] = await query<{ captured: string; captures: string }>(
        'sandbox',
        `SELECT coalesce(sum(captured - refunded), 0) AS captured,
                (SELECT count(*) FROM sim_operations WHERE kind = 'capture') AS captures FROM sim_authorisations`,
      );
      expect(Number(books!.captured) - Number(books!.refunded)).toBe(completedTotal);
      expect(Number(provider!.captured)).toBe(completedTotal);
      expect(Number(provider!.captures)).toBe(completed.length);

      // Nothing left open anywhere.
      const openReservations = await query('inventory', `SELECT id FROM reservations WHERE status = 'HELD'`);
      const openPayments = await query('payments', `SELECT id FROM payments WHERE status IN ('PENDING', 'AUTHORISED')`);
      const openAuthorisations = await query('sandbox', `SELECT id FROM sim_authorisations WHERE status = 'AUTHORISED'`);
      const liveShipments = await query<{ order_id: string }>('shipping', `SELECT order_id FROM shipments WHERE status IN ('PENDING', 'CREATED', 'PICKED_UP')`);
      expect(openReservations).toEqual([]);
      expect(openPayments).toEqual([]);
      expect(openAuthorisations).toEqual([]);
      expect(liveShipments.map((s) => s.order_id).sort()).toEqual(completed.map((p) => p.orderId).sort());

      // The outside world agrees with our books, order by order: the carrier holds a live booking for
      // each completed order and has cancelled every other booking; the provider captured each
      // completed order's total and holds nothing for any other order.
      const completedIds = new Set(completed.map((p) => p.orderId));
      const bookings = await query<{ order_id: string; carrier_ref: string }>(
        'shipping',
        'SELECT order_id, carrier_ref FROM shipments WHERE carrier_ref IS NOT NULL',
      );
      const atCarrier = new Map(
        (await query<{ ref: string; status: string }>('sandbox', 'SELECT ref, status FROM sim_shipments')).map((r) => [r.ref, r.status]),
      );
      expect(atCarrier.size).toBe(bookings.length);
      const carrierView = bookings.map((b) => ({ orderId: b.order_id, completed: completedIds.has(b.order_id), atCarrier: atCarrier.get(b.carrier_ref) }));
      expect(carrierView.filter((v) => v.completed !== (v.atCarrier === 'BOOKED' || v.atCarrier === 'PICKED_UP'))).toEqual([]);
      expect(carrierView.filter((v) => !v.completed).map((v) => v.atCarrier)).toEqual(carrierView.filter((v) => !v.completed).map(() => 'CANCELLED'));
      // the cancels sent once the carrier was booked are among them
      expect(carrierView.filter((v) => !v.completed).length).toBeGreaterThanOrEqual(2);
      const totals = new Map(finals.map((o) => [o.orderId as string, o.total as number]));
      const authorised = await query<{ order_id: string; authorisation_id: string }>(
        'payments',
        'SELECT order_id, authorisation_id FROM payments WHERE authorisation_id IS NOT NULL',
      );
      const atProvider = new Map(
        (
          await query<{ id: string; status: string; captured: number; refunded: number }>(
            'sandbox',
            'SELECT id, status, captured, refunded FROM sim_authorisations',
          )
        ).map((r) => [r.id, r]),
      );
      expect(atProvider.size).toBe(authorised.length);
      const providerView = authorised.map((p) => ({ orderId: p.order_id, ...atProvider.get(p.authorisation_id) }));
      expect(providerView.filter((v) => completedIds.has(v.orderId)).map((v) => [v.orderId, v.status, (v.captured ?? 0) - (v.refunded ?? 0)])).toEqual(
        providerView.filter((v) => completedIds.has(v.orderId)).map((v) => [v.orderId, 'CAPTURED', totals.get(v.orderId)]),
      );
      expect(providerView.filter((v) => !completedIds.has(v.orderId) && v.status !== 'VOIDED')).toEqual([]);

      // One row per order in the orders service, each with its terminal status.
      const rows = await query<{ id: string; status: string }>('orders', 'SELECT id, status FROM orders');
      expect(rows).toHaveLength(placed.length);
      placedOrderIds.push(...placed.map((p) => p.orderId));
    }, 240_000);

    it('keeps the customers’ data out of Temporal: raw histories, read without the codec, show no name, address or payment token', async () => {
      expect(placedOrderIds.length).toBeGreaterThan(0);
      // A bare connection, as anyone with access to the Temporal server (or its Web UI's HTTP API) reads it: no payload codec.
      // (The same settings as the platform's processes: on a cluster with mTLS, its client certificate.)
      const connection = await Connection.connect(temporalConnectionSettings({ ...temporalEnv, TEMPORAL_NAMESPACE: namespace }).connection);
      const customer = validOrder();
      const secrets = [
        customer.shippingAddress.name,
        customer.shippingAddress.line1,
        customer.shippingAddress.city,
        customer.shippingAddress.postalCode,
        'tok_visa',
        'tok_declined',
      ];
      const leaks: string[] = [];
      let payloads = 0;
      try {
        for (const orderId of placedOrderIds) {
          const { history } = await connection.workflowService.getWorkflowExecutionHistory({
            namespace,
            execution: { workflowId: orderWorkflowId(orderId) },
          });
          const described = await connection.workflowService.describeWorkflowExecution({ namespace, execution: { workflowId: orderWorkflowId(orderId) } });
          for (const [what, message] of [
            ['history', proto.temporal.api.history.v1.History.encode(history!).finish()],
            ['description', proto.temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(described).finish()],
          ] as const) {
            const bytes = Buffer.from(message);
            for (const secret of secrets) if (bytes.includes(secret)) leaks.push(`${orderId} ${what}: "${secret}"`);
          }
          payloads += history!.events!.filter((e) => e.workflowExecutionStartedEventAttributes?.input?.payloads?.length).length;
          const input = history!.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
          expect(Buffer.from(input.metadata!.encoding!).toString()).toBe('binary/encrypted');
        }
      } finally {
        await connection.close();
      }
      expect(payloads).toBe(placedOrderIds.length);
      expect(leaks).toEqual([]);
    });

    it('exposes business and technical metrics from the API and every worker process', async () => {
      const processes = platform.processes().filter((p) => p.metricsUrl);
      expect(processes.map((p) => p.name)).toEqual(expect.arrayContaining(['api', ...POOLS.map((pool) => `${pool}-worker-1`)]));
      const operator = await clients.headers('operator');
      const scraped = await Promise.all(
        processes.map(async (p) => ({
          name: p.name,
          samples: parsePrometheus(await (await fetch(p.metricsUrl!, { headers: p.name === 'api' ? operator : {} })).text()),
        })),
      );
      const all = scraped.flatMap((s) => s.samples);
      const api = scraped.find((s) => s.name === 'api')!.samples;

      const rows = await query<{ status: string; failure_reason: string | null; total_amount: number | null; currency: string | null }>(
        'orders',
        'SELECT status, failure_reason, total_amount, currency FROM orders',
      );
      const completed = rows.filter((r) => r.status === 'COMPLETED');
      expect(sumOf(api, 'orders_created_total')).toBe(rows.length);
      expect(sumOf(all, 'orders_completed_total')).toBe(completed.length);
      expect(sumOf(all, 'orders_cancelled_total')).toBe(rows.filter((r) => r.status === 'CANCELLED').length);
      for (const reason of ['PAYMENT_DECLINED', 'SHIPPING_UNAVAILABLE', 'OUT_OF_STOCK']) {
        expect({ reason, count: sumOf(all, 'orders_failed_total', { reason }) }).toEqual({
          reason,
          count: rows.filter((r) => r.failure_reason === reason).length,
        });
      }
      expect(sumOf(all, 'order_value_count', { currency: 'EUR' })).toBe(completed.length);
      expect(sumOf(all, 'order_value_sum', { currency: 'EUR' })).toBeCloseTo(completed.reduce((sum, r) => sum + r.total_amount!, 0) / 100, 2);

      expect(sumOf(api, 'http_request_duration_seconds_count', { method: 'POST', route: '/orders', status: '202' })).toBe(rows.length);
      expect(sumOf(api, 'http_request_duration_seconds_count', { method: 'GET', route: '/orders/:id', status: '200' })).toBeGreaterThan(0);
      // every reservation made (a release before any reservation leaves a marker without a currency)
      const [reservations] = await query<{ made: string }>('inventory', 'SELECT count(*) AS made FROM reservations WHERE currency IS NOT NULL');
      expect(sumOf(all, 'activity_duration_seconds_count', { activity: 'reserveStock', task_queue: 'inventory', outcome: 'completed' })).toBe(
        Number(reservations!.made),
      );
      expect(sumOf(all, 'activity_duration_seconds_count', { activity: 'authorisePayment', task_queue: 'payments', outcome: 'failed' })).toBeGreaterThan(0);
      // each pool's own database, and the simulations' sandbox
      for (const database of [...POOLS, 'sandbox'].map((db) => `${databasePrefix}_${db}`)) {
        expect(
          all.some((s) => s.name === 'db_pool_connections' && s.labels.database === database && s.labels.state === 'idle'),
          database,
        ).toBe(true);
      }
      // the SDK core's own metrics, from the Runtime, on the same endpoint
      const ordersWorker = scraped.find((s) => s.name === 'orders-worker-1')!.samples;
      expect(ordersWorker.some((s) => s.name.startsWith('temporal_workflow_completed'))).toBe(true);
    });

    it('drains and exits cleanly on SIGTERM', async () => {
      const names = platform.processes().map((p) => p.name);
      const exits = platform
        .processes()
        .map(({ name, child }) => new Promise<{ name: string; code: number | null }>((resolve) => child.once('exit', (code) => resolve({ name, code }))));
      await platform.stop();
      const codes = await Promise.all(exits);
      expect(codes.map((c) => c.name).sort()).toEqual([...names].sort());
      expect(codes.filter((c) => c.code !== 0)).toEqual([]);
    }, 60_000);
  });
}

type Expected = 'COMPLETED' | 'PAYMENT_DECLINED' | 'SHIPPING_UNAVAILABLE' | 'OUT_OF_STOCK' | 'CANCELLED';

interface Placed {
  orderId: string;
  expected: Expected;
  items: Array<{ sku: string; quantity: number }>;
}

/** When a cancelled order is cancelled: right after it was accepted, or once its parcel waits for the carrier. */
type CancelAt = 'accepted' | 'awaiting-pickup';

const skus = ['TSHIRT-BLK-M', 'HOODIE-GRY-L', 'MUG-LOGO', 'CAP-NAVY', 'SOCKS-3PK', 'POSTER-A2'];

/**
 * Thirty-two orders whose outcomes are known in advance from the documented test inputs; two of
 * the cancelled ones are cancelled only once the carrier is booked, so the cancel has to reach it.
 */
function orderMix(): Array<{ expected: Expected; body: ReturnType<typeof validOrder>; cancelAt?: CancelAt }> {
  const mix: Array<{ expected: Expected; body: ReturnType<typeof validOrder>; cancelAt?: CancelAt }> = [];
  for (let i = 0; i < 32; i++) {
    const items = [
      { sku: skus[i % skus.length]!, quantity: 1 + (i % 3) },
      { sku: skus[(i + 2) % skus.length]!, quantity: 1 },
    ];
    const base = validOrder({ customerId: `customer-${i % 7}`, items });
    if (i >= 30) mix.push({ expected: 'CANCELLED', body: base, cancelAt: 'awaiting-pickup' });
    else if (i % 10 === 3) mix.push({ expected: 'PAYMENT_DECLINED', body: { ...base, payment: { token: 'tok_declined' } } });
    else if (i % 10 === 5) mix.push({ expected: 'SHIPPING_UNAVAILABLE', body: { ...base, shippingAddress: { ...base.shippingAddress, country: 'AQ' } } });
    else if (i % 10 === 7) mix.push({ expected: 'OUT_OF_STOCK', body: { ...base, items: [...items, { sku: 'TOUR-TEE-SOLD-OUT', quantity: 1 }] } });
    else if (i % 15 === 1) mix.push({ expected: 'CANCELLED', body: base, cancelAt: 'accepted' });
    else mix.push({ expected: 'COMPLETED', body: base });
  }
  return mix;
}
