import { z } from 'zod';
import { ORDER_TIMING_DEFAULTS, type OrderTimings } from '../contracts/orders';
import { duration, localDatabaseUrl, logLevel, poolSize } from '../lib/config';

/** Defaults of the API's own timings; createApp falls back to the same when a test passes none. */
export const API_DEFAULTS = { catalogueTtlMs: 5_000, catalogueTimeoutMs: 2_000, healthTimeoutMs: 3_000 } as const;

/** `npm start`'s first worker HTTP port (METRICS_BASE_PORT); its processes take the next ports in pool order. */
export const LOCAL_WORKER_BASE_PORT = 9464;
const localWorker = (n: number) => `http://127.0.0.1:${LOCAL_WORKER_BASE_PORT + n}`;

/**
 * Base URLs of a pool's processes, comma-separated: the API asks each for /healthz (and
 * inventory's for /products). Empty for a pool run with no process: /healthz then says so.
 */
const workerUrls = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((list) =>
      list
        .split(',')
        .map((url) => url.trim().replace(/\/+$/, ''))
        .filter(Boolean),
    )
    .pipe(z.array(z.url()));

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
  // How old a catalogue copy may be for SKU checks and GET /products.
  CATALOGUE_TTL_MS: z.coerce.number().int().min(0).default(API_DEFAULTS.catalogueTtlMs),
  // A slow inventory must not stall order placement: past this the last good copy answers.
  CATALOGUE_TIMEOUT_MS: z.coerce.number().int().min(1).default(API_DEFAULTS.catalogueTimeoutMs),
  // Each probe of GET /healthz (Temporal, a queue, a pool process) answers within this, or counts as failed.
  HEALTH_TIMEOUT_MS: z.coerce.number().int().min(1).default(API_DEFAULTS.healthTimeoutMs),
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
