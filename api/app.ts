import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { OrdersDb } from '../activities/orders/db';
import {
  ORDERS_TASK_QUEUE,
  cancelOrderUpdate,
  CustomerIdAttribute,
  getOrderStateQuery,
  OrderStatusAttribute,
  OrderTotalAttribute,
  reviewOrderUpdate,
  healthWorkflowId,
  isTerminal,
  orderWorkflowId,
  type Compensation,
  type OrderState,
  type OrderStep,
  type OrderTimings,
  type PlaceOrderInput,
  type ServiceHealth,
} from '../contracts/orders';
import type { Logger } from '../lib/logger';
import { httpMetrics, ordersCreated, registry, renderMetrics } from '../lib/metrics';
import { httpTracing } from '../lib/tracing';
import type { orderWorkflow } from '../workflows/orders';
import type { platformHealthWorkflow } from '../workflows/health';
import { createCatalogue, type Catalogue } from './catalogue';
import { HttpError, errorHandler, validationFailed } from './errors';
import {
  cancelOrderSchema,
  fieldErrors,
  idempotencyKeySchema,
  orderIdFromKey,
  orderIdSchema,
  placeOrderSchema,
  requestHash,
  reviewOrderSchema,
  type FieldError,
  type PlaceOrderBody,
} from './schemas';

export interface AppDeps {
  client: Client;
  db: OrdersDb;
  log: Logger;
  /** the waits of each new order (pickup timeout, reservation hold, authorisation validity) */
  timings?: OrderTimings;
  catalogueTtlMs?: number;
  catalogue?: Catalogue;
}

const FORWARD_STEPS: readonly string[] = [
  'OrderPlaced',
  'StockReserved',
  'PaymentAuthorised',
  'ShipmentCreated',
  'PickupConfirmed',
  'PaymentCaptured',
  'OrderCompleted',
] satisfies OrderStep[];

type StoredOrder = NonNullable<Awaited<ReturnType<typeof readStoredOrderFrom>>>;

function readStoredOrderFrom(db: OrdersDb, orderId: string) {
  return db.order.findUnique({
    where: { id: orderId },
    include: { items: { orderBy: { sku: 'asc' } }, events: { orderBy: { id: 'asc' } } },
  });
}

const eventsView = (order: StoredOrder | null) =>
  (order?.events ?? []).map((e) => ({ type: e.type, at: e.createdAt.toISOString(), data: e.data }));

/** An ended order as the database holds it: its final state no longer needs the workflow. */
function endedOrderView(order: StoredOrder) {
  return {
    orderId: order.id,
    customerId: order.customerId,
    status: order.status,
    items: order.items.map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice })),
    total: order.totalAmount,
    currency: order.currency,
    steps: order.events.map((e) => e.type).filter((t) => FORWARD_STEPS.includes(t)),
    compensations: order.events
      .filter((e) => e.type === 'CompensationRan')
      .map((e) => (e.data as { compensation: Compensation }).compensation),
    ...(order.failureReason ? { failureReason: order.failureReason } : {}),
    events: eventsView(order),
  };
}

/** The storefront's REST API: validates at the edge, starts or signals order workflows, reads. */
export function createApp({ client, db, log, timings = {}, catalogueTtlMs = 5_000, catalogue: given }: AppDeps) {
  const catalogue = given ?? createCatalogue(client, catalogueTtlMs);
  const app = express();
  const readStoredOrder = (orderId: string) => readStoredOrderFrom(db, orderId);
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
    req.headers['x-request-id'] = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info({ requestId, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });
  app.use(httpTracing);
  app.use(httpMetrics);
  app.use(express.json({ limit: '64kb' }));

  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await renderMetrics());
  });

  app.get('/products', async (_req, res) => {
    res.json(await catalogue.list());
  });

  app.post('/orders', async (req, res) => {
    const key = idempotencyKeySchema.safeParse(req.header('Idempotency-Key'));
    const body = placeOrderSchema.safeParse(req.body ?? {});
    const problems: FieldError[] = [
      ...(key.success ? [] : fieldErrors(key.error, ['headers', 'idempotency-key'])),
      ...(body.success ? [] : fieldErrors(body.error, ['body'])),
    ];
    if (body.success) {
      const unknown = new Set(await catalogue.unknownSkus(body.data.items.map((i) => i.sku)));
      body.data.items.forEach((item, index) => {
        if (unknown.has(item.sku)) problems.push({ field: `body.items.${index}.sku`, message: `unknown SKU ${item.sku}` });
      });
    }
    if (problems.length > 0 || !key.success || !body.success) throw validationFailed(problems);

    const orderId = orderIdFromKey(key.data);
    const hash = requestHash(body.data);
    const location = `/orders/${orderId}`;
    const accepted = (status: string, replayed: boolean) => {
      res.status(202).location(location).setHeader('Idempotent-Replayed', String(replayed));
      res.json({ orderId, status });
    };

    // The order may outlive its workflow's retention in Temporal; its row does not.
    const recorded = await db.order.findUnique({ where: { id: orderId }, select: { requestHash: true, status: true } });
    if (recorded) {
      assertSameRequest(recorded.requestHash, hash);
      return accepted(recorded.status, true);
    }

    const input: PlaceOrderInput = { orderId, ...body.data, requestHash: hash, ...timings };
    const workflowId = orderWorkflowId(orderId);
    const listing = describeOrder(body.data, catalogue);
    try {
      await client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
        taskQueue: ORDERS_TASK_QUEUE,
        workflowId,
        args: [input],
        // One workflow per order, ever: a repeat of the key can never start a second one.
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        memo: { requestHash: hash, customerId: body.data.customerId },
        typedSearchAttributes: [
          { key: OrderStatusAttribute, value: 'PENDING' },
          { key: CustomerIdAttribute, value: body.data.customerId },
          { key: OrderTotalAttribute, value: listing.total / 100 },
        ],
        // What the Web UI's workflow list shows: an order list, with no payment data in it.
        staticSummary: listing.summary,
        staticDetails: listing.details,
      });
      ordersCreated.inc();
      log.info({ orderId, workflowId, customerId: body.data.customerId }, 'order accepted');
      return accepted('PENDING', false);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const handle = client.workflow.getHandle(workflowId);
    const described = await handle.describe();
    assertSameRequest(described.memo?.requestHash, hash);
    const state = await handle.query(getOrderStateQuery).catch(() => undefined);
    return accepted(state?.status ?? 'PENDING', true);
  });

  app.get('/orders/:id', async (req, res) => {
    const orderId = parseOrderId(req);
    const stored = await readStoredOrder(orderId);
    if (stored && isTerminal(stored.status)) return res.json(endedOrderView(stored));
    let state: OrderState;
    try {
      state = await client.workflow.getHandle(orderWorkflowId(orderId)).query(getOrderStateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no order ${orderId}`);
      throw err;
    }
    // The workflow writes an event before it moves its state on, so the event log read after the query is never
    // behind it. An order that ended between the two reads is answered wholly from the database.
    const fresh = await readStoredOrder(orderId);
    if (fresh && isTerminal(fresh.status)) return res.json(endedOrderView(fresh));
    res.json({ ...state, total: state.total ?? null, currency: state.currency ?? null, events: eventsView(fresh) });
  });

  app.post('/orders/:id/cancel', async (req, res) => {
    const orderId = parseOrderId(req);
    const body = cancelOrderSchema.safeParse(req.body ?? {});
    if (!body.success) throw validationFailed(fieldErrors(body.error, ['body']));
    try {
      const result = await client.workflow
        .getHandle(orderWorkflowId(orderId))
        .executeUpdate(cancelOrderUpdate, { args: [{ ...(body.data.reason ? { reason: body.data.reason } : {}) }] });
      log.info({ orderId, from: result.status }, 'cancellation accepted');
      res.status(202).json({ orderId, status: 'CANCELLING', previousStatus: result.status });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        throw new HttpError(409, 'not_cancellable', err.cause?.message ?? 'the order can no longer be cancelled');
      }
      if (err instanceof WorkflowNotFoundError) {
        const order = await db.order.findUnique({ where: { id: orderId }, select: { status: true } });
        if (order) throw new HttpError(409, 'not_cancellable', `order ${orderId} is ${order.status} and can no longer be cancelled`);
        throw new HttpError(404, 'not_found', `no order ${orderId}`);
      }
      throw err;
    }
  });

  app.post('/orders/:id/review', async (req, res) => {
    if (req.header('X-Role') !== 'reviewer') throw new HttpError(403, 'forbidden', 'reviewing orders needs the reviewer role (X-Role: reviewer)');
    const orderId = parseOrderId(req);
    const body = reviewOrderSchema.safeParse(req.body ?? {});
    const reviewer = req.header('X-User')?.trim();
    const problems = [...(body.success ? [] : fieldErrors(body.error, ['body'])), ...(reviewer ? [] : [{ field: 'headers.x-user', message: 'who reviews: required' }])];
    if (!body.success || !reviewer) throw validationFailed(problems);
    try {
      const result = await client.workflow
        .getHandle(orderWorkflowId(orderId))
        .executeUpdate(reviewOrderUpdate, { args: [{ decision: body.data.decision, reviewer, ...(body.data.reason ? { reason: body.data.reason } : {}) }] });
      log.info({ orderId, decision: result.decision, reviewer }, 'order reviewed');
      res.json(result);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new HttpError(409, 'not_awaiting_review', err.cause?.message ?? 'the order is not awaiting review');
      if (err instanceof WorkflowNotFoundError) {
        const order = await db.order.findUnique({ where: { id: orderId }, select: { status: true } });
        if (order) throw new HttpError(409, 'not_awaiting_review', `order ${orderId} is ${order.status}`);
        throw new HttpError(404, 'not_found', `no order ${orderId}`);
      }
      throw err;
    }
  });

  app.get('/healthz', async (_req, res) => {
    const [temporal, ordersDb, services] = await Promise.allSettled([
      client.workflowService.getSystemInfo({}),
      db.$queryRaw`SELECT 1`,
      client.workflow.execute<typeof platformHealthWorkflow>('platformHealthWorkflow', {
        taskQueue: ORDERS_TASK_QUEUE,
        workflowId: healthWorkflowId(randomUUID()),
        workflowExecutionTimeout: '5s',
      }),
    ]);
    const checks: ServiceHealth[] = [
      { service: 'temporal', ...settled(temporal) },
      { service: 'orders', ...settled(ordersDb) },
      ...(services.status === 'fulfilled'
        ? services.value
        : ['inventory', 'payments', 'shipping'].map((service) => ({ service, ...settled(services) }))),
    ];
    const ok = checks.every((c) => c.ok);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });

  app.use((_req: Request, _res: Response) => {
    throw new HttpError(404, 'not_found', 'no such route');
  });
  app.use(errorHandler(log));
  return app;
}

/** The order as the Web UI lists it: a one-line summary and the lines, priced from the catalogue. */
function describeOrder(order: PlaceOrderBody, catalogue: Catalogue): { summary: string; details: string; total: number } {
  const lines = order.items.map(({ sku, quantity }) => {
    const product = catalogue.product(sku);
    return { sku, quantity, name: product?.name ?? sku, price: product?.price ?? 0, currency: product?.currency ?? '' };
  });
  const total = lines.reduce((sum, l) => sum + l.quantity * l.price, 0);
  const currency = lines[0]?.currency ?? '';
  const money = (minor: number) => `${(minor / 100).toFixed(2)} ${currency}`;
  const units = lines.reduce((n, l) => n + l.quantity, 0);
  return {
    total,
    summary: `${units} item${units === 1 ? '' : 's'}, ${money(total)}, customer ${order.customerId}`,
    details: [
      `Customer: ${order.customerId}`,
      `Ship to: ${order.shippingAddress.city}, ${order.shippingAddress.country}`,
      '',
      ...lines.map((l) => `- ${l.quantity} × ${l.name} (${l.sku}) at ${money(l.price)}`),
      '',
      `Estimated total: ${money(total)}`,
    ].join('\n'),
  };
}

function assertSameRequest(recordedHash: unknown, hash: string): void {
  if (recordedHash !== hash) {
    throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used for a different request');
  }
}

function parseOrderId(req: Request): string {
  const parsed = orderIdSchema.safeParse(req.params.id);
  if (!parsed.success) throw new HttpError(404, 'not_found', `no order ${String(req.params.id)}`);
  return parsed.data;
}

function settled(result: PromiseSettledResult<unknown>): { ok: boolean; error?: string } {
  if (result.status === 'fulfilled') return { ok: true };
  const err = result.reason as Error;
  return { ok: false, error: err?.message ?? String(err) };
}
