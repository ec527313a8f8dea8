import { Router } from 'express';
import { SCOPES } from '../contracts/auth';
import { reviewOrderUpdate } from '../contracts/orders';
import { principalOf } from './authentication';
import { noOrder } from './errors';
import type { OrderAccess } from './order-access';
import { defineRoute, mount, type Guards } from './routes';
import { errorSchema, orderParams, reviewOrderSchema, reviewResultSchema } from './schemas';

export const reviewOrderRoute = defineRoute({
  method: 'post',
  path: '/orders/{id}/review',
  operationId: 'reviewOrder',
  tag: 'orders',
  access: { scopes: [SCOPES.review] },
  summary: 'Approve or reject an order held for review (reviewers only)',
  description:
    'The reviewer recorded on the order is the verified subject of the token, never a header. A reviewer cannot decide an order their own client placed (403).',
  params: orderParams,
  notFound: (params) => noOrder(String(params.id)),
  body: reviewOrderSchema,
  responses: {
    200: { description: 'the decision is recorded; an approved order goes on, a rejected one unwinds', body: reviewResultSchema },
    400: { description: 'fields at fault (`body.*`)', body: errorSchema },
    403: { description: 'the token lacks orders:review, or its client placed this order (four eyes)', body: errorSchema },
    404: { description: 'no such order', body: errorSchema },
    409: { description: 'the order is not awaiting review', body: errorSchema },
    413: { description: 'the body is larger than 64 kB', body: errorSchema },
    503: {
      description:
        'no answer within the request deadline, or the order cannot take a review right now (Temporal unavailable, its workflow task being retried): retry after `Retry-After` seconds',
      body: errorSchema,
    },
  },
});

export const reviewRoutes = [reviewOrderRoute];

export function reviewsRouter({ access, guards }: { access: OrderAccess; guards: Guards }): Router {
  const router = Router();
  mount(router, guards, reviewOrderRoute, async function reviewOrder({ params: { id }, body }, req, res) {
    const reviewer = principalOf(res.locals).identity;
    // The workflow's validator refuses the order's own client (403) and an order not awaiting review (409).
    const result = await access.update(id, reviewOrderUpdate, [{ decision: body.decision, reviewer, ...(body.reason ? { reason: body.reason } : {}) }], {
      code: 'not_awaiting_review',
      fallback: 'the order is not awaiting review',
      ended: (status) => `order ${id} is ${status}`,
    });
    req.log.info({ orderId: id, decision: result.decision, reviewer: reviewer.subject }, 'order reviewed');
    return { status: 200, body: result };
  });
  return router;
}
