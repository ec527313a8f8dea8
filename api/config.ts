import { z } from 'zod';
import { ORDER_TIMING_DEFAULTS, type OrderTimings } from '../contracts/orders';
import { duration, localDatabaseUrl, logLevel, poolSize, temporalEnv } from '../lib/config';

/** The API's configuration, from the environment (the benchmark reads its pool size from here too). */
export const apiEnv = z.object({
  ...temporalEnv,
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
});
export type ApiConfig = z.infer<typeof apiEnv>;

/** The waits every new order is started with, from this deployment's config. */
export function orderTimingsFrom(config: Pick<ApiConfig, 'PICKUP_TIMEOUT' | 'RESERVATION_HOLD' | 'AUTHORISATION_VALIDITY' | 'REVIEW_TIMEOUT' | 'REVIEW_ABOVE'>): OrderTimings {
  return {
    pickupTimeout: config.PICKUP_TIMEOUT,
    reservationHold: config.RESERVATION_HOLD,
    authorisationValidity: config.AUTHORISATION_VALIDITY,
    reviewTimeout: config.REVIEW_TIMEOUT,
    ...(config.REVIEW_ABOVE > 0 ? { reviewAbove: Math.round(config.REVIEW_ABOVE * 100) } : {}),
  };
}
