import type { Client } from '@temporalio/client';
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import type { Principal } from './authentication';

export interface RateLimits {
  /** the fixed window the limits count in */
  windowMs: number;
  /** requests per minute of a client whose token carries no limit of its own */
  perClientPerMinute: number;
  /** requests per minute from one address to the public routes */
  publicPerMinute: number;
}

const perWindow = (perMinute: number, windowMs: number) => Math.max(1, Math.ceil((perMinute * windowMs) / 60_000));

/**
 * Per-client limits: a token's own limit (its client's `rate_limit_per_minute`) or the default,
 * counted in a store every API replica shares. Over the limit: 429 with Retry-After and the IETF
 * RateLimit headers (draft 8: `RateLimit-Policy` and `RateLimit`). When the store cannot be
 * reached the request goes through: a limit must not take the API down with its database.
 */
export function clientRateLimit(store: Store, limits: RateLimits): RequestHandler {
  return rateLimit({
    windowMs: limits.windowMs,
    limit: (_req, res) => perWindow((res.locals.principal as Principal | undefined)?.rateLimitPerMinute ?? limits.perClientPerMinute, limits.windowMs),
    keyGenerator: (req, res) => (res.locals.principal as Principal | undefined)?.key ?? ipKeyGenerator(req.ip ?? ''),
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    passOnStoreError: true,
    store,
    handler: (_req, res, _next, options) => {
      res.status(options.statusCode).json({ error: 'rate_limited', message: 'too many requests: wait Retry-After seconds' });
    },
  });
}

/** The public routes (the catalogue, health, the docs): per calling address. */
export function publicRateLimit(store: Store, limits: RateLimits): RequestHandler {
  return rateLimit({
    windowMs: limits.windowMs,
    limit: perWindow(limits.publicPerMinute, limits.windowMs),
    keyGenerator: (req) => ipKeyGenerator(req.ip ?? ''),
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    passOnStoreError: true,
    store,
    handler: (_req, res, _next, options) => {
      res.status(options.statusCode).json({ error: 'rate_limited', message: 'too many requests: wait Retry-After seconds' });
    },
  });
}

/**
 * A deadline on every request: past `ms` the caller gets 503 with Retry-After instead of a hang,
 * and every Temporal call the request makes carries the same deadline, so it stops waiting too.
 * (The API's database pool has a statement timeout of the same length.) A request retried after a
 * 503 is safe: placing an order is idempotent on its key, reads and cancels are idempotent.
 */
export function deadline(client: Client, ms: number): RequestHandler {
  return (req, res, next) => {
    const at = Date.now() + ms;
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      res
        .status(503)
        .set('Retry-After', '1')
        .json({ error: 'timeout', message: `no answer within ${ms} ms; retry the request` });
    }, ms);
    timer.unref();
    res.on('close', () => clearTimeout(timer));
    // AsyncLocalStorage: every Temporal call made while handling this request inherits the deadline.
    void client.withDeadline(at, async () => next());
  };
}
