import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from 'express';
import { z } from 'zod';
import type { OrdersDb } from '../activities/orders/db';
import { SCOPES } from '../contracts/auth';
import { isTerminal } from '../contracts/orders';
import { principalOf } from './authentication';
import { noOrder } from './errors';
import type { OrderAccess } from './order-access';
import { defineRoute, mount, type Guards } from './routes';
import { errorSchema, orderParams } from './schemas';

/** How often a stream looks for new entries of its order's log (one indexed query). */
const POLL_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
/** A stream ends after this; the browser's EventSource reconnects with Last-Event-ID and goes on. */
const MAX_STREAM_MS = 30 * 60_000;

/** One event of the stream, its fields as SSE names them (`data` is JSON: `{ type, at, data }`, `{ status }` or, last, `end`'s `{ status }`). */
const sseEventSchema = z
  .object({
    id: z.string().optional(),
    event: z.string().optional(),
    data: z.string().optional(),
    retry: z.number().int().optional(),
  })
  .meta({ id: 'OrderStreamEvent' });

export const orderEventsRoute = defineRoute({
  method: 'get',
  path: '/orders/{id}/events',
  operationId: 'streamOrderEvents',
  tag: 'orders',
  access: { scopes: [SCOPES.read, SCOPES.operate, SCOPES.review] },
  summary: 'The order’s event log as it happens (Server-Sent Events)',
  description:
    'Each entry of the order’s log is an SSE event (`id`: its position in the log, `event`: its type, `data`: `{ type, at, status, data }`), ' +
    'from the first (or after `Last-Event-ID`), then each new one as the saga writes it: the steps, and the undos on a failure. ' +
    'A `status` event carries the order’s status when it changes; the stream ends with an `end` event once the order has ended. ' +
    'Authorised like GET /orders/{id}: someone else’s order answers 404.',
  params: orderParams,
  notFound: (params) => noOrder(String(params.id)),
  responses: {
    200: { description: 'the event stream: each item one Server-Sent Event', body: sseEventSchema, contentType: 'text/event-stream' },
    404: { description: 'no such order', body: errorSchema },
    503: { description: 'the orders database is unavailable right now: retry after `Retry-After` seconds', body: errorSchema },
  },
});

export const orderEventRoutes = [orderEventsRoute];

/** One SSE message. */
const message = (event: string, data: unknown, id?: string) => `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * The live order page's feed: the saga writes each published step to the orders database as it
 * happens (its outbox), and this streams those rows. It reads the database, never the workflow:
 * a watched order costs no Temporal query.
 */
export function orderEventsRouter({ guards, db, access }: { guards: Guards; db: OrdersDb; access: OrderAccess }): Router {
  const router = Router();
  mount(router, guards, orderEventsRoute, async function streamOrderEvents({ params: { id } }, req, res) {
    access.assertVisible(principalOf(res.locals), id, await access.ownerOf(id));
    const resumeAfter = Number.parseInt(req.header('last-event-id') ?? '', 10);
    let after = BigInt(Number.isSafeInteger(resumeAfter) && resumeAfter > 0 ? resumeAfter : 0);
    res
      .status(200)
      .set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    res.write('retry: 1000\n\n');

    const closed = new AbortController();
    res.on('close', () => closed.abort());
    const until = Date.now() + MAX_STREAM_MS;
    let lastStatus: string | undefined;
    let lastWrite = Date.now();
    while (!closed.signal.aborted && Date.now() < until) {
      // The status first, then the log: the saga commits an event no later than the status it leads
      // to, so a log read after a terminal status has every event. Read side by side, the log could be
      // the older snapshot and the stream would end without the last steps.
      const order = await db.order.findUnique({ where: { id }, select: { status: true } });
      const events = await db.orderEvent.findMany({ where: { orderId: id, id: { gt: after } }, orderBy: { id: 'asc' }, take: 100 });
      for (const e of events) {
        res.write(message(e.type, { type: e.type, at: e.createdAt.toISOString(), data: e.data }, String(e.id)));
        after = e.id;
      }
      if (order && order.status !== lastStatus) {
        lastStatus = order.status;
        res.write(message('status', { status: order.status }));
      }
      if (events.length > 0 || lastStatus !== undefined) lastWrite = Date.now();
      // Ended, and its whole log sent (the database has it all before the status shows the end).
      if (order && isTerminal(order.status) && events.length < 100) {
        res.write(message('end', { status: order.status }));
        break;
      }
      if (Date.now() - lastWrite > KEEPALIVE_MS) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      if (events.length < 100) await sleep(POLL_MS, undefined, { signal: closed.signal }).catch(() => undefined);
    }
    res.end();
    return { status: 200, body: {} };
  });
  return router;
}
