import { Router, type RequestHandler } from 'express';
import { reviewOrderUpdate } from '../contracts/orders';
import { HttpError, noOrder } from './errors';
import type { OrderAccess } from './order-access';
import { defineRoute, mount } from './routes';
import { errorSchema, orderParams, reviewHeaders, reviewOrderSchema, reviewResultSchema } from './schemas';

export const reviewOrderRoute = defineRoute({
  method: 'post',
  path: '/orders/{id}/review',
  operationId: 'reviewOrder',
  tag: 'orders',
  summary: 'Approve or reject an order held for review (reviewers only)',
  params: orderParams,
  notFound: (params) => noOrder(String(params.id)),
  headers: reviewHeaders,
  body: reviewOrderSchema,
  responses: {
    200: { description: 'the decision is recorded; an approved order goes on, a rejected one unwinds', body: reviewResultSchema },
    400: { description: 'fields at fault (`body.*`, `headers.x-user`)', body: errorSchema },
    403: { description: 'no `X-Role: reviewer`', body: errorSchema },
    404: { description: 'no such order', body: errorSchema },
    409: { description: 'the order is not awaiting review', body: errorSchema },
    413: { description: 'the body is larger than 64 kB', body: errorSchema },
  },
});

export const reviewRoutes = [reviewOrderRoute];

// Before validation on purpose: someone without the role learns nothing about the order or the body.
const requireReviewer: RequestHandler = (req, _res, next) => {
  if (req.header('X-Role') !== 'reviewer') throw new HttpError(403, 'forbidden', 'reviewing orders needs the reviewer role (X-Role: reviewer)');
  next();
};

export function reviewsRouter({ access }: { access: OrderAccess }): Router {
  const router = Router();
  mount(
    router,
    reviewOrderRoute,
    async function reviewOrder({ params: { id }, headers, body }, req) {
      const reviewer = headers['x-user'];
      const result = await access.update(id, reviewOrderUpdate, [{ decision: body.decision, reviewer, ...(body.reason ? { reason: body.reason } : {}) }], {
        code: 'not_awaiting_review',
        fallback: 'the order is not awaiting review',
        ended: (status) => `order ${id} is ${status}`,
      });
      req.log.info({ orderId: id, decision: result.decision, reviewer }, 'order reviewed');
      return { status: 200, body: result };
    },
    { before: [requireReviewer] },
  );
  return router;
}
