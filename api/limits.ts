import type { Client } from '@temporalio/client';
import type { Request, RequestHandler, Response } from 'express';
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

/** One fixed-window limiter over the shared store, answering 429 as every limit of the API does. */
function limiter(
  store: Store,
  windowMs: number,
  limit: number | ((req: Request, res: Response) => number),
  keyGenerator: (req: Request, res: Response) => string,
) {
  return rateLimit({
    windowMs,
    limit,
    keyGenerator,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    // The store unreachable: the request goes through, so a limit cannot take the API down with its database.
    passOnStoreError: true,
    store,
    handler: (_req, res, _next, options) => {
      res.status(options.statusCode).json({ error: 'rate_limited', message: 'too many requests: wait Retry-After seconds' });
    },
  });
}

/**
 * Per-client limits: a token's own limit (its client's `rate_limit_per_minute`) or the default,
 * counted in a store every API replica shares. Over the limit: 429 with Retry-After and the IETF
 * RateLimit headers (draft 8: `RateLimit-Policy` and `RateLimit`).
 */
export function clientRateLimit(store: Store, limits: RateLimits): RequestHandler {
  const principal = (res: Response) => res.locals.principal as Principal | undefined;
  return limiter(
    store,
    limits.windowMs,
    (_req, res) => perWindow(principal(res)?.rateLimitPerMinute ?? limits.perClientPerMinute, limits.windowMs),
    (req, res) => principal(res)?.key ?? ipKeyGenerator(req.ip ?? ''),
  );
}

/** The public routes (the catalogue, health, the docs): per calling address. */
export function publicRateLimit(store: Store, limits: RateLimits): RequestHandler {
  return limiter(store, limits.windowMs, perWindow(limits.publicPerMinute, limits.windowMs), (req) => ipKeyGenerator(req.ip ?? ''));
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
