import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { duration, issuerUrl, localDatabaseUrl, logLevel, poolSize, urlList } from '../lib/config';
import type { KeyTimings } from './keys';

export const LOCAL_AUTH_PORT = 3100;
/** The auth service `npm start` runs: the issuer its tokens name. */
export const LOCAL_AUTH_ISSUER = `http://127.0.0.1:${LOCAL_AUTH_PORT}`;

/** The auth service's configuration, from the environment. */
export const authEnv = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(LOCAL_AUTH_PORT),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: logLevel,
  AUTH_DATABASE_URL: z.string().url().default(localDatabaseUrl('auth')),
  AUTH_DB_POOL_MAX: poolSize(3),
  // The issuer URL: what tokens carry in `iss` and where verifiers find the JWKS. Its public address.
  AUTH_ISSUER: issuerUrl(LOCAL_AUTH_ISSUER),
  // Short-lived: a token cannot be revoked, only outlived.
  AUTH_TOKEN_TTL: duration.default('15m'),
  AUTH_KEY_ROTATION_EVERY: duration.default('30d'),
  // At least the API's JWKS cache age (API_JWKS_CACHE_MS, 10 min): verifiers know a key before it signs.
  AUTH_KEY_PUBLISH_AHEAD: duration.default('15m'),
  AUTH_CLOCK_SKEW: duration.default('1m'),
  // Browser origins that may ask for tokens (the API's Swagger UI at /docs), comma-separated; none by default.
  AUTH_CORS_ORIGINS: urlList(),
  // Token requests per minute from one address: each costs a slow hash, so this bounds the CPU a caller can take.
  AUTH_TOKEN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(60),
});
export type AuthConfig = z.infer<typeof authEnv>;

export const ms = (text: string): number => msToNumber(text as Duration);

export const keyTimingsFrom = (config: AuthConfig): KeyTimings => ({
  tokenTtlMs: ms(config.AUTH_TOKEN_TTL),
  rotateEveryMs: ms(config.AUTH_KEY_ROTATION_EVERY),
  publishAheadMs: ms(config.AUTH_KEY_PUBLISH_AHEAD),
  skewMs: ms(config.AUTH_CLOCK_SKEW),
});
