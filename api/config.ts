import { z } from 'zod';
import { duration, localDatabaseUrl, logLevel, poolSize, temporalEnv } from '../lib/config';

/** The API's configuration, from the environment (the benchmark reads its pool size from here too). */
export const apiEnv = z.object({
  ...temporalEnv,
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: logLevel,
  ORDERS_DATABASE_URL: z.string().url().default(localDatabaseUrl('orders')),
  API_DB_POOL_MAX: poolSize(5),
  PICKUP_TIMEOUT: duration.default('48h'),
  RESERVATION_HOLD: duration.default('24h'),
  AUTHORISATION_VALIDITY: duration.default('7d'),
  // orders above this total, in currency units, wait for a reviewer; 0 turns review off
  REVIEW_ABOVE: z.coerce.number().min(0).default(1000),
  REVIEW_TIMEOUT: duration.default('24h'),
});
