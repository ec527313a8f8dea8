import cors from 'cors';
import express, { type RequestHandler } from 'express';
import type { Store } from 'express-rate-limit';
import helmet from 'helmet';
import type { Client } from '@temporalio/client';
import type { OrdersDb } from '../activities/orders/db';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { NOTIFICATIONS_TASK_QUEUE } from '../contracts/notifications';
import type { OrderTimings } from '../contracts/orders';
import type { Logger } from '../lib/logger';
import { httpMetrics } from '../lib/metrics';
import { requestLog } from '../lib/http/request-log';
import { httpTracing } from '../lib/tracing';
import { requireToken, type Authenticator } from './authentication';
import { createCatalogue, type Catalogue } from './catalogue';
import { API_DEFAULTS } from './config';
import { HttpError, errorHandler } from './errors';
import { createHealthCheck, healthRouter, type WorkerUrls } from './health';
import { clientRateLimit, deadline, publicRateLimit, type RateLimits } from './limits';
import { metricsRouter } from './metrics';
import { ROUTES, docsRouter } from './openapi';
import { createOrderAccess } from './order-access';
import { orderEventsRouter } from './order-events';
import { ordersRouter } from './orders';
import { productsRouter } from './products';
import { reviewsRouter } from './reviews';
import { webhooksRouter } from './webhooks';
import type { Guards } from './routes';

export interface AppDeps {
  client: Client;
  db: OrdersDb;
  log: Logger;
  /** verifies bearer tokens against the trusted issuers' keys */
  authenticate: Authenticator;
  /** where the rate-limit counters live, shared by every replica: a store per limiter, keys under `prefix` (PostgresRateLimitStore) */
  rateLimitStore: (prefix: string) => Store;
  rateLimits?: RateLimits;
  /** past this a request answers 503 with Retry-After */
  requestTimeoutMs?: number;
  /** browser origins allowed to call the API (CORS); none by default */
  corsOrigins?: string[];
  /** the auth service's token endpoint, for the OpenAPI document's security scheme */
  tokenUrl: string;
  /**
   * Which proxies in front may say who the caller is (X-Forwarded-For): Express's `trust proxy`
   * (1: one proxy, an ingress; a list of addresses). None by default: otherwise any caller could
   * pick the address the public rate limit counts it under.
   */
  trustProxy?: boolean | number | string;
  /** base URLs of each pool's processes: their /healthz, and the inventory pool's /products for the catalogue */
  workers: WorkerUrls;
  /** the waits of each new order (pickup timeout, reservation hold, authorisation validity, review) */
  timings?: OrderTimings;
  /** webhook endpoints may be plain http: on this machine (WEBHOOKS_ALLOW_LOOPBACK_HTTP: npm start, tests) */
  allowLoopbackWebhooks?: boolean;
  catalogueTtlMs?: number;
  catalogueTimeoutMs?: number;
  healthTimeoutMs?: number;
  catalogue?: Catalogue;
}

/**
 * Cross-origin calls only from the allow-listed origins: to any other, a preflight answers 403 and
 * no response carries Access-Control-Allow-Origin, so a browser shows the page nothing.
 */
function corsPolicy(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  const policy = cors({
    origin: (origin, done) => done(null, origin !== undefined && allowed.has(origin)),
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id', 'traceparent'],
    exposedHeaders: ['Location', 'X-Request-Id', 'Idempotent-Replayed', 'Retry-After', 'RateLimit', 'RateLimit-Policy'],
    maxAge: 600,
  });
  return (req, res, next) => {
    const origin = req.header('origin');
    if (req.method === 'OPTIONS' && origin && !allowed.has(origin)) {
      return void res.status(403).json({ error: 'cors_denied', message: `origin ${origin} is not allowed to call this API` });
    }
    policy(req, res, next);
  };
}

/** A known path asked with a method it does not answer: 405 naming the methods it does (RFC 9110 §15.5.6). */
function methodNotAllowed(): RequestHandler {
  const paths = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const route of ROUTES) {
    const entry = paths.get(route.path) ?? { pattern: new RegExp(`^${route.path.replace(/\{\w+\}/g, '[^/]+')}$`), methods: new Set(['OPTIONS']) };
    entry.methods.add(route.method.toUpperCase());
    if (route.method === 'get') entry.methods.add('HEAD');
    paths.set(route.path, entry);
  }
  return (req, _res, next) => {
    const known = [...paths.values()].find((p) => p.pattern.test(req.path));
    if (!known) return next();
    const allow = [...known.methods].sort().join(', ');
    throw new HttpError(405, 'method_not_allowed', `${req.method} is not answered here; use ${allow}`, undefined, { Allow: allow });
  };
}

/** The storefront's REST API: middleware and one router per resource; the routes live in their modules. */
export function createApp({
  client,
  db,
  log,
  authenticate,
  rateLimitStore,
  rateLimits = API_DEFAULTS.rateLimits,
  requestTimeoutMs = API_DEFAULTS.requestTimeoutMs,
  corsOrigins = [],
  tokenUrl,
  trustProxy = false,
  workers,
  timings = {},
  allowLoopbackWebhooks = false,
  catalogueTtlMs = API_DEFAULTS.catalogueTtlMs,
  catalogueTimeoutMs = API_DEFAULTS.catalogueTimeoutMs,
  healthTimeoutMs = API_DEFAULTS.healthTimeoutMs,
  catalogue = createCatalogue({ urls: workers[INVENTORY_TASK_QUEUE], ttlMs: catalogueTtlMs, timeoutMs: catalogueTimeoutMs }),
}: AppDeps) {
  const access = createOrderAccess({ client, db });
  const perClient = clientRateLimit(rateLimitStore('client:'), rateLimits);
  const guards: Guards = {
    token: (scopes) => [requireToken(authenticate, scopes), perClient],
    public: [publicRateLimit(rateLimitStore('public:'), rateLimits)],
  };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxy);
  app.use(requestLog(log));
  app.use(
    helmet({
      // Swagger UI at /docs loads its own script and styles from the API, and data: images. No
      // upgrade-insecure-requests: behind TLS termination the API may be served over plain HTTP.
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:'], 'upgrade-insecure-requests': null } },
    }),
  );
  app.use(corsPolicy(corsOrigins));
  app.use(deadline(client, requestTimeoutMs));
  app.use(httpTracing);
  app.use(httpMetrics);

  app.use(productsRouter({ catalogue, guards }));
  app.use(ordersRouter({ guards, client, db, access, catalogue, timings }));
  app.use(reviewsRouter({ access, guards }));
  app.use(orderEventsRouter({ guards, db, access }));
  app.use(
    webhooksRouter({ guards, client, urls: workers[NOTIFICATIONS_TASK_QUEUE], allowLoopbackHttp: allowLoopbackWebhooks, readTimeoutMs: catalogueTimeoutMs }),
  );
  app.use(healthRouter(createHealthCheck({ client, db, workers, timeoutMs: healthTimeoutMs }), guards));
  app.use(metricsRouter(guards));
  app.use(docsRouter(guards, { tokenUrl }));

  app.use(methodNotAllowed());
  app.use(() => {
    throw new HttpError(404, 'not_found', 'no such route');
  });
  app.use(errorHandler());
  return app;
}
