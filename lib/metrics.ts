import { createServer, type Server, type ServerResponse } from 'node:http';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import type { Context } from '@temporalio/activity';
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Pool } from './db';

/**
 * The platform's Prometheus metrics: one registry per process, the same names in every process
 * (a counter a process never moves stays at 0), so a sum over all processes is always right.
 * Orders per minute: `sum(rate(orders_created_total[5m])) * 60`; average order value:
 * `sum(rate(order_value_sum[5m])) / sum(rate(order_value_count[5m]))`.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const registers = [registry];

export const ordersCreated = new Counter({ name: 'orders_created_total', help: 'Orders accepted by the API', registers });
export const ordersCompleted = new Counter({ name: 'orders_completed_total', help: 'Orders that completed', registers });
export const ordersFailed = new Counter({ name: 'orders_failed_total', help: 'Orders that failed, by reason', labelNames: ['reason'], registers });
export const ordersCancelled = new Counter({ name: 'orders_cancelled_total', help: 'Orders cancelled', registers });
export const orderValue = new Histogram({
  name: 'order_value',
  help: 'Total of each completed order, in currency units',
  labelNames: ['currency'],
  buckets: [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
  registers,
});

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Notifications (the notifications pool). Failing endpoints: `sum(rate(webhook_deliveries_total{outcome!="delivered"}[5m])) by (outcome)`.
export const orderEventsRelayed = new Counter({ name: 'order_events_relayed_total', help: 'Order events the notifications relay handed on', registers });
export const webhookDeliveries = new Counter({
  name: 'webhook_deliveries_total',
  help: 'Webhook delivery attempts, by outcome: delivered, failed (retried later), expired (past its retry budget)',
  labelNames: ['outcome'],
  registers,
});
export const webhookDeliveryDuration = new Histogram({
  name: 'webhook_delivery_duration_seconds',
  help: 'Time from sending a webhook to its answer (or error)',
  buckets: latencyBuckets,
  registers,
});
export const webhookEndpointsDisabled = new Counter({
  name: 'webhook_endpoints_disabled_total',
  help: 'Webhook endpoints disabled after failing repeatedly (each waits for its client to enable it again)',
  registers,
});
export const customerEmailsSent = new Counter({
  name: 'customer_emails_sent_total',
  help: 'Customer emails accepted by the SMTP server, by topic',
  labelNames: ['topic'],
  registers,
});
export const httpDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP requests served by the API',
  labelNames: ['method', 'route', 'status'],
  buckets: latencyBuckets,
  registers,
});
export const activityDuration = new Histogram({
  name: 'activity_duration_seconds',
  help: 'Activity executions in this worker',
  labelNames: ['activity', 'task_queue', 'outcome'],
  buckets: latencyBuckets,
  registers,
});

const pools = new Map<string, Pool>();
new Gauge({
  name: 'db_pool_connections',
  help: 'Connections of this process’s database pools: in use, idle, and requests waiting for one',
  labelNames: ['state', 'database'],
  registers,
  collect() {
    this.reset();
    for (const [database, pool] of pools) {
      this.set({ state: 'in_use', database }, pool.totalCount - pool.idleCount);
      this.set({ state: 'idle', database }, pool.idleCount);
      this.set({ state: 'waiting', database }, pool.waitingCount);
    }
  },
});

/** Reports this pool in db_pool_connections, so exhaustion shows before it hurts. */
export function trackPool(database: string, pool: Pool): Pool {
  pools.set(database, pool);
  return pool;
}

/** Express middleware: times each request under its route pattern, not its raw path. */
export const httpMetrics: RequestHandler = (req, res, next) => {
  const end = httpDuration.startTimer();
  res.on('finish', () => {
    // Express types `req.route` as any; it is the matched layer's route, with the pattern as `path`.
    const routePath = (req.route as { path?: unknown } | undefined)?.path;
    const route = typeof routePath === 'string' ? `${req.baseUrl}${routePath}` : 'unmatched';
    end({ method: req.method, route, status: String(res.statusCode) });
  });
  next();
};

/** Times every activity this worker runs, by type, task queue and outcome. */
export class ActivityMetricsInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { activityType, taskQueue } = this.ctx.info;
    const end = activityDuration.startTimer({ activity: activityType, task_queue: taskQueue });
    try {
      const result = await next(input);
      end({ outcome: 'completed' });
      return result;
    } catch (err) {
      end({ outcome: 'failed' });
      throw err;
    }
  }
}

/** Our metrics, then those of the Temporal SDK's core (served by the Runtime on a local port). */
export async function renderMetrics(coreMetricsUrl?: string): Promise<string> {
  const ours = await registry.metrics();
  if (!coreMetricsUrl) return ours;
  const core = await fetch(coreMetricsUrl)
    .then((r) => r.text())
    .catch(() => '');
  return `${ours}\n${core}`;
}

/** One answer of a worker's JSON routes. */
export interface JsonAnswer {
  status: number;
  body: unknown;
}
/** A worker's JSON route, given the request's query (the orders pool's `/events?after=`). */
export type WorkerRoutes = Record<`/${string}`, (query: URLSearchParams) => Promise<JsonAnswer>>;

/**
 * A worker process's own HTTP server: /metrics, and the JSON routes its pool adds (/livez,
 * /healthz, the inventory pool's /products). node:http rather than express: a handful of fixed
 * GET routes need no router, and a worker should not carry the API's middleware.
 */
export function serveWorkerHttp(
  port: number,
  host: string,
  { coreMetricsUrl, routes = {} }: { coreMetricsUrl?: string; routes?: WorkerRoutes } = {},
): Promise<Server> {
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://worker');
    const path = url.pathname;
    if (req.method !== 'GET') return json(res, 405, { error: 'method_not_allowed', message: 'only GET' });
    if (path === '/metrics') {
      renderMetrics(coreMetricsUrl).then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    const route = routes[path as `/${string}`];
    if (!route) return json(res, 404, { error: 'not_found', message: 'no such route' });
    route(url.searchParams).then(
      ({ status, body }) => json(res, status, body),
      // A read whose service cannot answer (its database is away): the caller keeps its last copy.
      (err: Error) => json(res, 503, { error: 'unavailable', message: err.message }),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
