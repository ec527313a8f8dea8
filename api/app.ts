import { randomUUID } from 'node:crypto';
import express from 'express';
import { pinoHttp } from 'pino-http';
import type { Client } from '@temporalio/client';
import type { OrdersDb } from '../activities/orders/db';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import type { OrderTimings } from '../contracts/orders';
import type { Logger } from '../lib/logger';
import { httpMetrics } from '../lib/metrics';
import { httpTracing } from '../lib/tracing';
import { createCatalogue, type Catalogue } from './catalogue';
import { API_DEFAULTS } from './config';
import { HttpError, errorHandler } from './errors';
import { createHealthCheck, healthRouter, type WorkerUrls } from './health';
import { metricsRouter } from './metrics';
import { docsRouter } from './openapi';
import { createOrderAccess } from './order-access';
import { ordersRouter } from './orders';
import { productsRouter } from './products';
import { reviewsRouter } from './reviews';

export interface AppDeps {
  client: Client;
  db: OrdersDb;
  log: Logger;
  /** base URLs of each pool's processes: their /healthz, and the inventory pool's /products for the catalogue */
  workers: WorkerUrls;
  /** the waits of each new order (pickup timeout, reservation hold, authorisation validity, review) */
  timings?: OrderTimings;
  catalogueTtlMs?: number;
  catalogueTimeoutMs?: number;
  healthTimeoutMs?: number;
  catalogue?: Catalogue;
}

/** The storefront's REST API: middleware and one router per resource; the routes live in their modules. */
export function createApp({
  client,
  db,
  log,
  workers,
  timings = {},
  catalogueTtlMs = API_DEFAULTS.catalogueTtlMs,
  catalogueTimeoutMs = API_DEFAULTS.catalogueTimeoutMs,
  healthTimeoutMs = API_DEFAULTS.healthTimeoutMs,
  catalogue = createCatalogue({ urls: workers[INVENTORY_TASK_QUEUE], ttlMs: catalogueTtlMs, timeoutMs: catalogueTimeoutMs }),
}: AppDeps) {
  const access = createOrderAccess({ client, db });
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(log));
  app.use(httpTracing);
  app.use(httpMetrics);
  app.use(express.json({ limit: '64kb' }));

  app.use(productsRouter({ catalogue }));
  app.use(ordersRouter({ client, db, access, catalogue, timings }));
  app.use(reviewsRouter({ access }));
  app.use(healthRouter(createHealthCheck({ client, db, workers, timeoutMs: healthTimeoutMs })));
  app.use(metricsRouter());
  app.use(docsRouter());

  app.use(() => {
    throw new HttpError(404, 'not_found', 'no such route');
  });
  app.use(errorHandler());
  return app;
}

/** One line per request, under its request id: the caller's X-Request-Id, or a new one, sent back either way. */
function requestLog(log: Logger) {
  return pinoHttp({
    logger: log,
    genReqId: (req, res) => {
      const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
      req.headers['x-request-id'] = requestId;
      res.setHeader('X-Request-Id', requestId);
      return requestId;
    },
    customAttributeKeys: { reqId: 'requestId', responseTime: 'ms' },
    // req.log, which the handlers log through, carries only the request id; the request line has the rest.
    quietReqLogger: true,
    // Method, URL and status only: no headers (they may carry credentials), no bodies (payment tokens).
    serializers: {
      req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    // A failing health check is the check doing its job (and polled while the pools start): a warning, not an error.
    customLogLevel: (req, res, err) => (err || res.err ? 'error' : res.statusCode >= 500 ? (req.url === '/healthz' ? 'warn' : 'error') : 'info'),
    // pino-http invents an Error, with a stack, for every 5xx; only a real one (set by the error handler) is worth logging.
    customErrorObject: (_req, res, _err, val: Record<string, unknown>) => (res.err ? val : { ...val, err: undefined }),
    customSuccessMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
    // Scraped and probed every few seconds: a line each would drown the requests that matter.
    autoLogging: { ignore: (req) => req.url === '/metrics' || req.url === '/livez' },
  });
}
