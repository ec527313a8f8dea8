import { Router } from 'express';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { z } from 'zod';
import type { OrdersDb } from '../activities/orders/db';
import { SCOPES, identityKey } from '../contracts/auth';
import {
  ORDERS_TASK_QUEUE,
  cancelOrderUpdate,
  CustomerIdAttribute,
  getOrderStateQuery,
  OrderStatusAttribute,
  OrderTotalAttribute,
  isTerminal,
  orderWorkflowId,
  type OrderStatus,
  type OrderTimings,
  type PlaceOrderInput,
} from '../contracts/orders';
import type { FailureReason } from '../contracts/errors';
import { ordersCreated } from '../lib/metrics';
import type { orderWorkflow } from '../workflows';
import type { Catalogue } from './catalogue';
import { HttpError, noOrder } from './errors';
import { hasAny, principalOf } from './authentication';
import { liveOrderView, seesEveryOrder, storedOrderView, subjectOf, type OrderAccess } from './order-access';
import { defineRoute, mount, type Guards } from './routes';
import {
  acceptedOrderSchema,
  cancelOrderSchema,
  cancellingSchema,
  encodeOrderCursor,
  errorSchema,
  listOrdersQuery,
  orderIdFromKey,
  orderPageSchema,
  orderParams,
  orderViewSchema,
  placeOrderHeaders,
  placeOrderSchema,
  requestHash,
  type PlaceOrderBody,
} from './schemas';

const notFound = { description: 'no such order', body: errorSchema };
const badRequest = { description: 'fields at fault: `fields` lists every one (`headers.*`, `body.*`)', body: errorSchema };
const tooLarge = { description: 'the body is larger than 64 kB', body: errorSchema };
const byOrderId = (params: Record<string, string>) => noOrder(String(params.id));

export const placeOrderRoute = defineRoute({
  method: 'post',
  path: '/orders',
  operationId: 'placeOrder',
  tag: 'orders',
  access: { scopes: [SCOPES.write] },
  summary: 'Place an order',
  description:
    'Starts the order saga. The order ID is derived from the client and its Idempotency-Key, so any number of repeats name the same order and start nothing new. ' +
    'Nothing is started or stored for a refused request.',
  headers: placeOrderHeaders,
  body: placeOrderSchema,
  responses: {
    202: {
      description: 'accepted; with `Idempotent-Replayed: true`, the order this key placed before',
      body: acceptedOrderSchema,
      headers: z.object({
        Location: z.string().meta({ description: 'the order: /orders/{orderId}' }),
        'Idempotent-Replayed': z.enum(['true', 'false']),
      }),
      links: {
        GetOrder: { operationId: 'getOrder', parameters: { id: '$response.body#/orderId' }, description: 'the order' },
        StreamOrderEvents: { operationId: 'streamOrderEvents', parameters: { id: '$response.body#/orderId' }, description: 'its live feed' },
        CancelOrder: { operationId: 'cancelOrder', parameters: { id: '$response.body#/orderId' }, description: 'cancel it while in flight' },
      },
    },
    400: badRequest,
    413: tooLarge,
    422: { description: 'this Idempotency-Key was used for a different request', body: errorSchema },
    503: {
      description:
        'the catalogue cannot be read to check the SKUs, no answer within the request deadline, or Temporal or the orders database is unavailable right now: nothing was started; retry with the same key',
      body: errorSchema,
    },
  },
});

export const listOrdersRoute = defineRoute({
  method: 'get',
  path: '/orders',
  operationId: 'listOrders',
  tag: 'orders',
  access: { scopes: [SCOPES.read, SCOPES.operate, SCOPES.review] },
  summary: 'A page of orders, newest first',
  description:
    'With orders:read, the orders this client placed; operators and reviewers see every order. Read from the orders database, never the workflows: ' +
    'an order in flight shows the status of its last published step (GET /orders/{id} has the live one). `nextCursor` names the next page.',
  query: listOrdersQuery,
  responses: {
    200: { description: 'a page of orders', body: orderPageSchema },
    400: { description: 'fields at fault: `query.limit` or `query.cursor`', body: errorSchema },
    503: {
      description: 'the orders database is unavailable right now, or no answer within the request deadline: retry after `Retry-After` seconds',
      body: errorSchema,
    },
  },
});

export const getOrderRoute = defineRoute({
  method: 'get',
  path: '/orders/{id}',
  operationId: 'getOrder',
  tag: 'orders',
  access: { scopes: [SCOPES.read, SCOPES.operate, SCOPES.review] },
  summary: 'An order: live from its workflow while it runs, from the orders database once it has ended',
  description: 'With orders:read, only the orders this client placed: any other answers 404, as an unknown ID does. Operators and reviewers read every order.',
  params: orderParams,
  notFound: byOrderId,
  responses: {
    200: { description: 'the order', body: orderViewSchema },
    404: notFound,
    503: {
      description: 'the order could not be read in time (the request deadline), or Temporal or the orders database is unavailable right now: retry',
      body: errorSchema,
    },
  },
});

export const cancelOrderRoute = defineRoute({
  method: 'post',
  path: '/orders/{id}/cancel',
  operationId: 'cancelOrder',
  tag: 'orders',
  access: { scopes: [SCOPES.write, SCOPES.operate] },
  summary: 'Cancel an order in flight; it unwinds what it has done',
  description: 'With orders:write, only an order this client placed (any other answers 404); operators cancel any order.',
  params: orderParams,
  notFound: byOrderId,
  body: cancelOrderSchema,
  responses: {
    202: {
      description:
        'the cancellation is accepted; the order ends CANCELLED. A cancel is idempotent: once one is accepted, a repeat answers 202 with `Idempotent-Replayed: true` and changes nothing',
      body: cancellingSchema,
      headers: z.object({ 'Idempotent-Replayed': z.enum(['true', 'false']) }),
    },
    400: badRequest,
    404: notFound,
    409: { description: 'the order can no longer be cancelled: it is completing, has ended otherwise, or is unwinding for another reason', body: errorSchema },
    413: tooLarge,
    503: {
      description:
        'no answer within the request deadline, or the order cannot take a cancel right now (Temporal unavailable, its workflow task being retried): retry after `Retry-After` seconds (a cancel is idempotent)',
      body: errorSchema,
    },
  },
});

export const orderRoutes = [placeOrderRoute, listOrdersRoute, getOrderRoute, cancelOrderRoute];

export interface OrdersDeps {
  guards: Guards;
  client: Client;
  db: OrdersDb;
  access: OrderAccess;
  catalogue: Catalogue;
  /** the waits of each new order (pickup timeout, reservation hold, authorisation validity, review) */
  timings: OrderTimings;
}

export function ordersRouter({ guards, client, db, access, catalogue, timings }: OrdersDeps): Router {
  const router = Router();

  // The SKU check needs the catalogue, so it refines the documented schema here; it runs only on
  // an otherwise valid body, and its findings join the same 400 as every other field.
  const placeOrderBody = placeOrderSchema.superRefine(
    async (order, ctx) => {
      const unknown = new Set(await catalogue.unknownSkus(order.items.map((i) => i.sku)));
      order.items.forEach((item, index) => {
        if (unknown.has(item.sku)) ctx.addIssue({ code: 'custom', path: ['items', index, 'sku'], message: `unknown SKU ${item.sku}` });
      });
    },
    { when: ({ issues }) => issues.length === 0 },
  );

  mount(
    router,
    guards,
    placeOrderRoute,
    async function placeOrder({ headers, body }, req, res) {
      const { identity, key: placedBy } = principalOf(res.locals);
      // Keys are the client's own: two storefronts using the same key place two different orders.
      const orderId = orderIdFromKey(placedBy, headers['idempotency-key']);
      const hash = requestHash(body);
      const accepted = (status: OrderStatus, replayed: boolean) =>
        ({ status: 202, body: { orderId, status }, headers: { Location: `/orders/${orderId}`, 'Idempotent-Replayed': String(replayed) } }) as const;

      // The order may outlive its workflow's retention in Temporal; its row does not.
      const recorded = await db.order.findUnique({ where: { id: orderId }, select: { requestHash: true, status: true } });
      if (recorded) {
        assertSameRequest(recorded.requestHash, hash);
        if (isTerminal(recorded.status)) return accepted(recorded.status as OrderStatus, true);
        // In flight, the row keeps its first status until the order ends; the workflow knows where it is now.
        const state = await access
          .handle(orderId)
          .query(getOrderStateQuery)
          .catch(() => undefined);
        return accepted(state?.status ?? (recorded.status as OrderStatus), true);
      }

      const input: PlaceOrderInput = { orderId, placedBy: identity, ...body, requestHash: hash, ...timings };
      const workflowId = orderWorkflowId(orderId);
      const listing = describeOrder(body, catalogue);
      try {
        await client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
          taskQueue: ORDERS_TASK_QUEUE,
          workflowId,
          args: [input],
          // One workflow per order, ever: a repeat of the key can never start a second one.
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          // Encrypted by the payload codec like the input; the customer's personal data is in neither list below.
          memo: { requestHash: hash },
          typedSearchAttributes: [
            { key: OrderStatusAttribute, value: 'PENDING' },
            { key: CustomerIdAttribute, value: body.customerId },
            { key: OrderTotalAttribute, value: listing.total / 100 },
          ],
          // What the Web UI's workflow list shows: an order list, with no payment data in it.
          staticSummary: listing.summary,
          staticDetails: listing.details,
        });
        ordersCreated.inc();
        req.log.info({ orderId, workflowId, customerId: body.customerId }, 'order accepted');
        return accepted('PENDING', false);
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      // A concurrent repeat started it first (or the row is not written yet): the same order, if the same request.
      const handle = access.handle(orderId);
      const described = await handle.describe();
      assertSameRequest(described.memo?.requestHash, hash);
      const state = await handle.query(getOrderStateQuery).catch(() => undefined);
      return accepted(state?.status ?? 'PENDING', true);
    },
    { body: placeOrderBody },
  );

  mount(router, guards, listOrdersRoute, async function listOrders({ query: { limit, cursor } }, _req, res) {
    const principal = principalOf(res.locals);
    // Newest first, and the ID breaks ties between orders placed in the same millisecond.
    const rows = await db.order.findMany({
      where: {
        ...(seesEveryOrder(principal) ? {} : { placedBy: principal.key }),
        ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: limit + 1,
      select: {
        id: true,
        customerId: true,
        status: true,
        totalAmount: true,
        currency: true,
        failureReason: true,
        placedBy: true,
        createdAt: true,
        updatedAt: true,
      },
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      status: 200,
      body: {
        orders: page.map((o) => ({
          orderId: o.id,
          customerId: o.customerId,
          status: o.status as OrderStatus,
          total: o.totalAmount,
          currency: o.currency,
          ...(o.failureReason ? { failureReason: o.failureReason as FailureReason } : {}),
          placedBy: subjectOf(o.placedBy),
          createdAt: o.createdAt.toISOString(),
          updatedAt: o.updatedAt.toISOString(),
        })),
        nextCursor: rows.length > limit && last ? encodeOrderCursor({ createdAt: last.createdAt, id: last.id }) : null,
      },
    };
  });

  mount(router, guards, getOrderRoute, async function getOrder({ params: { id } }, _req, res) {
    const principal = principalOf(res.locals);
    const stored = await access.readStored(id);
    if (stored && isTerminal(stored.status)) {
      access.assertVisible(principal, id, stored.placedBy);
      return { status: 200, body: storedOrderView(stored) };
    }
    // In flight (or ended since the read above): the workflow's state and its own event log, which
    // agree by construction; the database has the whole log before the state shows an end.
    const state = await access.queryLive(id);
    access.assertVisible(principal, id, identityKey(state.placedBy));
    return { status: 200, body: liveOrderView(state) };
  });

  mount(router, guards, cancelOrderRoute, async function cancelOrder({ params: { id }, body }, req, res) {
    const principal = principalOf(res.locals);
    const operator = hasAny(principal, [SCOPES.operate]);
    if (!operator) access.assertVisible(principal, id, await access.ownerOf(id));
    const requestedBy = { ...principal.identity, role: operator ? ('operator' as const) : ('customer' as const) };
    const cancelling = (previousStatus: OrderStatus, replayed: boolean, status: 'CANCELLING' | 'CANCELLED' = 'CANCELLING') =>
      ({ status: 202, body: { orderId: id, status, previousStatus }, headers: { 'Idempotent-Replayed': String(replayed) } }) as const;
    try {
      const result = await access.update(id, cancelOrderUpdate, [{ ...(body.reason ? { reason: body.reason } : {}), requestedBy }], {
        code: 'not_cancellable',
        fallback: 'the order can no longer be cancelled',
        ended: (status) => `order ${id} is ${status} and can no longer be cancelled`,
      });
      if (!result.repeated) req.log.info({ orderId: id, from: result.status }, 'cancellation accepted');
      return cancelling(result.status, result.repeated === true);
    } catch (err) {
      // Refused for having ended: a repeat, if it ended CANCELLED (the orders database has the end first).
      if (!(err instanceof HttpError && err.code === 'not_cancellable')) throw err;
      const stored = await db.order.findUnique({ where: { id }, select: { status: true } });
      if (stored?.status === 'CANCELLED') return cancelling('CANCELLED', true, 'CANCELLED');
      throw err;
    }
  });

  return router;
}

/**
 * The order as the Web UI lists it: a one-line summary and the lines, priced from the catalogue.
 * Nothing personal: no name, address or payment token (these are encrypted in the input only).
 */
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
