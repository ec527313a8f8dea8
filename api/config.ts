import { z } from 'zod';
import { ORDER_TIMING_DEFAULTS, type OrderTimings } from '../contracts/orders';
import { LOCAL_AUTH_ISSUER } from '../auth/config';
import { createAuthenticator, trustedIssuers, trustedIssuersSchema } from './authentication';
import type { AppDeps } from './app';
import { duration, issuerUrl, jsonSetting, localDatabaseUrl, logLevel, poolSize, urlList } from '../lib/config';

/** Defaults of the API's own timings; createApp falls back to the same when a test passes none. */
export const API_DEFAULTS = {
  catalogueTtlMs: 5_000,
  catalogueTimeoutMs: 2_000,
  healthTimeoutMs: 3_000,
  // Above the slowest healthy answer (a query on a busy worker, a 2 s catalogue read), well under a storefront's own timeout.
  requestTimeoutMs: 10_000,
  rateLimits: { windowMs: 60_000, perClientPerMinute: 600, publicPerMinute: 300 },
} as const;

/** `npm start`'s first worker HTTP port (METRICS_BASE_PORT); its processes take the next ports in pool order. */
export const LOCAL_WORKER_BASE_PORT = 9464;
const localWorker = (n: number) => `http://127.0.0.1:${LOCAL_WORKER_BASE_PORT + n}`;

/**
 * Base URLs of a pool's processes, comma-separated: the API asks each for /healthz (and
 * inventory's for /products). Empty for a pool run with no process: /healthz then says so.
 */
const workerUrls = (fallback: string) => urlList(fallback);

/** The API's configuration, from the environment (the benchmark reads its pool size from here too). */
export const apiEnv = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: logLevel,
  ORDERS_DATABASE_URL: z.string().url().default(localDatabaseUrl('orders')),
  API_DB_POOL_MAX: poolSize(5),
  PICKUP_TIMEOUT: duration.default(ORDER_TIMING_DEFAULTS.pickupTimeout),
  RESERVATION_HOLD: duration.default(ORDER_TIMING_DEFAULTS.reservationHold),
  AUTHORISATION_VALIDITY: duration.default(ORDER_TIMING_DEFAULTS.authorisationValidity),
  // orders above this total, in currency units, wait for a reviewer; 0 turns review off
  REVIEW_ABOVE: z.coerce.number().min(0).default(ORDER_TIMING_DEFAULTS.reviewAbove),
  REVIEW_TIMEOUT: duration.default(ORDER_TIMING_DEFAULTS.reviewTimeout),
  // Defaults: one process per pool as `npm start` runs them, which passes the real lists for any count.
  ORDERS_WORKER_URLS: workerUrls(localWorker(0)),
  INVENTORY_WORKER_URLS: workerUrls(localWorker(1)),
  PAYMENTS_WORKER_URLS: workerUrls(localWorker(2)),
  SHIPPING_WORKER_URLS: workerUrls(localWorker(3)),
  NOTIFICATIONS_WORKER_URLS: workerUrls(localWorker(4)),
  // Webhook endpoints may be plain http: on this machine (npm start, tests); never in production.
  WEBHOOKS_ALLOW_LOOPBACK_HTTP: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  // How old a catalogue copy may be for SKU checks and GET /products.
  CATALOGUE_TTL_MS: z.coerce.number().int().min(0).default(API_DEFAULTS.catalogueTtlMs),
  // A slow inventory must not stall order placement: past this the last good copy answers.
  CATALOGUE_TIMEOUT_MS: z.coerce.number().int().min(1).default(API_DEFAULTS.catalogueTimeoutMs),
  // Each probe of GET /healthz (Temporal, a queue, a pool process) answers within this, or counts as failed.
  HEALTH_TIMEOUT_MS: z.coerce.number().int().min(1).default(API_DEFAULTS.healthTimeoutMs),
  // Every request answers within this (503 with Retry-After past it); the database statements too.
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(API_DEFAULTS.requestTimeoutMs),
  // The platform's auth service: tokens it signs carry this `iss`; its keys are at AUTH_JWKS_URL.
  AUTH_ISSUER: issuerUrl(LOCAL_AUTH_ISSUER),
  AUTH_JWKS_URL: z.string().url().optional(),
  // Company identity providers whose tokens the API also accepts (operators, reviewers): see README, "Authentication".
  TRUSTED_ISSUERS: jsonSetting(trustedIssuersSchema).default([]),
  // How long the issuers' keys are cached; an unknown key id refreshes at once.
  API_JWKS_CACHE_MS: z.coerce.number().int().min(0).default(600_000),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1000).default(API_DEFAULTS.rateLimits.windowMs),
  // Requests per minute of one client (its token may carry its own limit) and of one address on the public routes.
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(API_DEFAULTS.rateLimits.perClientPerMinute),
  PUBLIC_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(API_DEFAULTS.rateLimits.publicPerMinute),
  // The proxies in front that may name the caller (X-Forwarded-For): `1` behind one ingress, or their addresses; none by default.
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' || v === 'false' ? false : v === 'true' ? true : /^\d+$/.test(v) ? Number(v) : v)),
  // Browser origins allowed to call the API, comma-separated; none by default.
  CORS_ORIGINS: urlList(),
});
export type ApiConfig = z.infer<typeof apiEnv>;

/** The waits every new order is started with, from this deployment's config. */
export function orderTimingsFrom(
  config: Pick<ApiConfig, 'PICKUP_TIMEOUT' | 'RESERVATION_HOLD' | 'AUTHORISATION_VALIDITY' | 'REVIEW_TIMEOUT' | 'REVIEW_ABOVE'>,
): OrderTimings {
  return {
    pickupTimeout: config.PICKUP_TIMEOUT,
    reservationHold: config.RESERVATION_HOLD,
    authorisationValidity: config.AUTHORISATION_VALIDITY,
    reviewTimeout: config.REVIEW_TIMEOUT,
    ...(config.REVIEW_ABOVE > 0 ? { reviewAbove: Math.round(config.REVIEW_ABOVE * 100) } : {}),
  };
}

/** The API's trust boundary from its config: whose tokens it accepts, its limits, its deadline, its CORS origins. */
export function securityFrom(
  config: Pick<
    ApiConfig,
    | 'AUTH_ISSUER'
    | 'AUTH_JWKS_URL'
    | 'TRUSTED_ISSUERS'
    | 'API_JWKS_CACHE_MS'
    | 'RATE_LIMIT_WINDOW_MS'
    | 'RATE_LIMIT_PER_MINUTE'
    | 'PUBLIC_RATE_LIMIT_PER_MINUTE'
    | 'REQUEST_TIMEOUT_MS'
    | 'CORS_ORIGINS'
    | 'TRUST_PROXY'
  >,
): Pick<AppDeps, 'authenticate' | 'rateLimits' | 'requestTimeoutMs' | 'corsOrigins' | 'tokenUrl' | 'trustProxy'> {
  return {
    authenticate: createAuthenticator({ issuers: trustedIssuers(config), jwksCacheMs: config.API_JWKS_CACHE_MS }),
    rateLimits: {
      windowMs: config.RATE_LIMIT_WINDOW_MS,
      perClientPerMinute: config.RATE_LIMIT_PER_MINUTE,
      publicPerMinute: config.PUBLIC_RATE_LIMIT_PER_MINUTE,
    },
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    corsOrigins: config.CORS_ORIGINS,
    tokenUrl: `${config.AUTH_ISSUER}/oauth/token`,
    trustProxy: config.TRUST_PROXY,
  };
}
