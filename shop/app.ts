import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import { TEST_TOKENS } from '../activities/payments/provider';
import { SERVED_COUNTRIES } from '../activities/shipping/carrier';
import { COMPENSATIONS, ORDER_STEPS, orderWorkflowId } from '../contracts/orders';
import { requestLog } from '../lib/http/request-log';
import type { Logger } from '../lib/logger';

const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');
const SESSION_COOKIE = 'shop_session';
/** Sessions live in this process only (a development shop); past this many the oldest is forgotten. */
const MAX_SESSIONS = 10_000;
const MAX_ORDERS_PER_SESSION = 50;
/**
 * How often an order stream asks for the order's live state (a workflow query through the API):
 * often while the saga moves on its own, seldom while it waits on someone else (the carrier, a
 * reviewer, an operator), which is where an order spends nearly all its time. Each new entry of
 * the log asks at once.
 */
const LIVE_MOVING_MS = 1_000;
const LIVE_WAITING_MS = 5_000;
const WAITING = new Set(['AWAITING_PICKUP', 'AWAITING_REVIEW', 'NEEDS_ATTENTION']);
const ORDER_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** A country the simulated carrier refuses: checking out there fails at the shipment and unwinds. */
const REFUSED_COUNTRY = 'AQ';

export interface ShopDeps {
  /** the platform's public API */
  apiUrl: string;
  /** access tokens for the API: the storefront's, and an operator's for the operator view (none: the view is off) */
  tokens: { storefront: () => Promise<string>; operator?: () => Promise<string> };
  /** who may open the operator view: the operator client's own ID and secret, as HTTP Basic credentials */
  operatorLogin?: { id: string; secret: string };
  /** the Temporal Web UI the operator view links each order to */
  temporalUi?: { url: string; namespace: string };
  log: Logger;
  /** one call to the API, the event stream aside */
  apiTimeoutMs?: number;
}

interface Session {
  /** the customer ID the shop places this browser's orders under */
  customerId: string;
  /** the orders this browser placed, newest first: the only ones it may see or cancel */
  orders: Array<{ orderId: string; placedAt: string }>;
}

/** What the browser sends to check out: the shop builds the API's order from it. */
const checkoutSchema = z.object({
  items: z
    .array(z.object({ sku: z.string().max(64), quantity: z.number().int() }))
    .min(1)
    .max(100),
  card: z.string().max(80),
  name: z.string().max(200),
  line1: z.string().max(200),
  city: z.string().max(100),
  postalCode: z.string().max(20),
  country: z.string().max(2),
  email: z.string().max(320).optional(),
});

class ShopError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The demo shop: the pages a customer and an operator use, and a small backend under /shop/api
 * that calls the platform's public API as a storefront client. The storefront's credential (and
 * the operator's) stay in this process: the browser holds only a session cookie, and a session
 * sees and cancels only the orders it placed.
 */
export function createShopApp({ apiUrl, tokens, operatorLogin, temporalUi, log, apiTimeoutMs = 15_000 }: ShopDeps) {
  const sessions = new Map<string, Session>();

  function sessionOf(req: Request, res: Response, create: boolean): Session | undefined {
    const id = /(?:^|;\s*)shop_session=([A-Za-z0-9_-]{43})/.exec(req.header('cookie') ?? '')?.[1];
    const found = id ? sessions.get(id) : undefined;
    if (found || !create) return found;
    const fresh = randomBytes(32).toString('base64url');
    const session: Session = { customerId: `shop-${randomBytes(6).toString('hex')}`, orders: [] };
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(fresh, session);
    res.cookie(SESSION_COOKIE, fresh, { httpOnly: true, sameSite: 'strict', path: '/shop', secure: req.secure, maxAge: 7 * 86_400_000 });
    return session;
  }

  /** The order, if this browser placed it; any other answers 404 as an unknown one. */
  function ownOrder(req: Request, res: Response): string {
    const id = String(req.params.id).toLowerCase();
    if (!ORDER_ID.test(id) || !sessionOf(req, res, false)?.orders.some((o) => o.orderId === id)) {
      throw new ShopError(404, 'not_found', 'no such order in this browser’s orders');
    }
    return id;
  }

  /** One call to the API. A network failure is a 502: the API is not there. */
  async function api(
    path: string,
    { token, method = 'GET', body, headers = {} }: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    let res: globalThis.Response;
    try {
      res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(apiTimeoutMs),
      });
    } catch (err) {
      log.warn({ err, path }, 'API call failed');
      throw new ShopError(502, 'api_unavailable', 'the order platform’s API did not answer: try again');
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = { error: 'bad_gateway', message: text.slice(0, 200) };
    }
    return { status: res.status, body: parsed };
  }

  /** Sends the API's answer on as it is (status and JSON body). */
  const relay = (res: Response, answer: { status: number; body: unknown }) => void res.status(answer.status).json(answer.body ?? {});

  const storefrontToken = async () => {
    try {
      return await tokens.storefront();
    } catch (err) {
      log.error({ err }, 'no storefront token');
      throw new ShopError(502, 'auth_unavailable', 'the shop could not sign in to the order platform');
    }
  };

  /** The operator view: HTTP Basic with the operator client's own credentials, compared in constant time. */
  const operatorOnly: RequestHandler = (req, res, next) => {
    if (!operatorLogin || !tokens.operator)
      throw new ShopError(404, 'not_configured', 'the operator view is off: set SHOP_OPERATOR_ID and SHOP_OPERATOR_SECRET');
    const given = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.header('authorization') ?? '')?.[1];
    const digest = (s: string) => createHash('sha256').update(s).digest();
    const expected = digest(`${operatorLogin.id}:${operatorLogin.secret}`);
    if (given && timingSafeEqual(digest(Buffer.from(given, 'base64').toString('utf8')), expected)) return next();
    res.set('WWW-Authenticate', 'Basic realm="shop operator", charset="UTF-8"');
    throw new ShopError(401, 'unauthorized', 'sign in with the operator client’s ID and secret');
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestLog(log, { healthPath: '/shop/healthz' }));
  app.use(
    helmet({
      // Everything the pages load comes from this server; they talk to nothing else.
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          'default-src': ["'self'"],
          'img-src': ["'self'", 'data:'],
          'object-src': ["'none'"],
          'base-uri': ["'none'"],
          'form-action': ["'self'"],
          'frame-ancestors': ["'none'"],
        },
      },
    }),
  );

  app.get('/', (_req, res) => res.redirect(302, '/shop'));
  app.get('/shop/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.use('/shop/assets', express.static(join(PUBLIC_DIR, 'assets'), { index: false, maxAge: 0 }));
  const page =
    (file: string): RequestHandler =>
    (_req, res) =>
      res.sendFile(join(PUBLIC_DIR, file));
  app.get(['/shop', '/shop/'], page('index.html'));
  app.get('/shop/orders/:id', (req, res, next) => (ORDER_ID.test(req.params.id) ? page('order.html')(req, res, next) : next()));
  app.get('/shop/operator', operatorOnly, page('operator.html'));

  const shopApi = express.Router();
  shopApi.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  // JSON only: a cross-site form cannot send it, and the session cookie is SameSite=Strict besides.
  shopApi.use(express.json({ limit: '32kb' }));
  shopApi.use((req, _res, next) => {
    if (req.method === 'POST' && !req.is('application/json')) throw new ShopError(415, 'unsupported_media_type', 'send JSON');
    next();
  });

  shopApi.get('/products', async (_req, res) => relay(res, await api('/products')));

  // What the pages offer and show: the simulation's test cards and countries, the saga's steps in order.
  const options = {
    cards: Object.entries(TEST_TOKENS).map(([token, outcome]) => ({ token, outcome })),
    countries: [...SERVED_COUNTRIES.map((code) => ({ code, served: true })), { code: REFUSED_COUNTRY, served: false }],
    steps: ORDER_STEPS,
    compensations: COMPENSATIONS,
  };
  shopApi.get('/options', (_req, res) => void res.json(options));

  shopApi.get('/orders', (req, res) => void res.json({ orders: sessionOf(req, res, false)?.orders ?? [] }));

  shopApi.post('/orders', async (req, res) => {
    const parsed = checkoutSchema.safeParse(req.body);
    if (!parsed.success) throw new ShopError(400, 'validation_failed', 'the checkout form is incomplete');
    const key = req.header('idempotency-key');
    if (!key || !/^[A-Za-z0-9-]{8,64}$/.test(key)) throw new ShopError(400, 'validation_failed', 'an Idempotency-Key header is required');
    const session = sessionOf(req, res, true)!;
    const { items, card, name, line1, city, postalCode, country, email } = parsed.data;
    const order = {
      customerId: session.customerId,
      items,
      payment: { token: card },
      shippingAddress: { name, line1, city, postalCode, country },
      ...(email?.trim() ? { email: email.trim() } : {}),
    };
    // The key is the storefront's, shared by every browser: scoped to this customer, one browser cannot name another's order.
    const answer = await api('/orders', {
      method: 'POST',
      token: await storefrontToken(),
      body: order,
      headers: { 'idempotency-key': `${session.customerId}:${key}` },
    });
    if (answer.status === 202) {
      const { orderId } = answer.body as { orderId: string };
      if (!session.orders.some((o) => o.orderId === orderId)) {
        session.orders.unshift({ orderId, placedAt: new Date().toISOString() });
        session.orders.length = Math.min(session.orders.length, MAX_ORDERS_PER_SESSION);
      }
    }
    relay(res, answer);
  });

  shopApi.get('/orders/:id', async (req, res) => {
    const id = ownOrder(req, res);
    relay(res, await api(`/orders/${id}`, { token: await storefrontToken() }));
  });

  shopApi.post('/orders/:id/cancel', async (req, res) => {
    const id = ownOrder(req, res);
    relay(
      res,
      await api(`/orders/${id}/cancel`, { method: 'POST', token: await storefrontToken(), body: { reason: 'cancelled by the customer in the shop' } }),
    );
  });

  shopApi.get('/orders/:id/events', async (req, res) => {
    const id = ownOrder(req, res);
    // EventSource sends Last-Event-ID when it reconnects by itself; the page's own reconnect passes ?after=.
    const after = req.header('last-event-id') ?? (typeof req.query.after === 'string' ? req.query.after : undefined);
    await relayOrderStream(req, res, id, after && /^\d{1,18}$/.test(after) ? after : undefined);
  });

  /**
   * The order page's one live feed: the API's event stream of the order (its log as the saga
   * writes it, then `end`) relayed message by message, each entry of the log as a `log` message,
   * and a `live` message whenever the order's live state (from its workflow) changes: while the
   * order runs the log has only its published steps, and the page shows where the saga is in
   * between (AWAITING_PICKUP).
   */
  async function relayOrderStream(req: Request, res: Response, id: string, after: string | undefined): Promise<void> {
    const token = await storefrontToken();
    const stop = new AbortController();
    res.on('close', () => stop.abort());
    let upstream: globalThis.Response;
    try {
      upstream = await fetch(`${apiUrl}/orders/${id}/events`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, ...(after ? { 'last-event-id': after } : {}) },
        signal: stop.signal,
      });
    } catch (err) {
      if (stop.signal.aborted) return;
      log.warn({ err, orderId: id }, 'order stream: API unavailable');
      throw new ShopError(502, 'api_unavailable', 'the order platform’s API did not answer');
    }
    if (!upstream.ok || !upstream.body) return relay(res, { status: upstream.status, body: await upstream.json().catch(() => ({})) });

    res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const send = (block: string) => {
      if (!res.writableEnded) res.write(`${block}\n\n`);
    };
    let ended = false;

    // A new entry of the log ends followLiveState's pause at once (or the next one, if it is asking right now).
    let wake: (() => void) | undefined;
    let woken = false;
    const nudge = () => (wake ? wake() : (woken = true));
    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken || stop.signal.aborted) {
          woken = false;
          return resolve();
        }
        const done = () => {
          clearTimeout(timer);
          stop.signal.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        stop.signal.addEventListener('abort', done);
        wake = done;
      });
    const followLiveState = async () => {
      let last = '';
      while (!ended && !stop.signal.aborted) {
        const answer = await api(`/orders/${id}`, { token: await storefrontToken() }).catch(() => undefined);
        let waiting = false;
        if (answer?.status === 200) {
          const view = answer.body as { status: string };
          const text = JSON.stringify(liveState(view));
          if (text !== last) send(`event: live\ndata: ${(last = text)}`);
          if (ENDED.has(view.status)) break;
          waiting = WAITING.has(view.status);
        } else {
          // The orders worker may be down (no one answers the workflow query): the log keeps coming meanwhile.
          send(`event: live-unavailable\ndata: ${JSON.stringify({ status: answer?.status ?? 502 })}`);
        }
        await pause(waiting ? LIVE_WAITING_MS : LIVE_MOVING_MS);
      }
    };
    const following = followLiveState();

    // Whole messages only, so that a `live` message never lands inside one of the API's.
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of upstream.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          // Entries of the log go out as `log` (each names its own type in its data): one listener hears every kind.
          const entry = /^id: /m.test(block);
          send(entry ? block.replace(/^event: .*$/m, 'event: log') : block);
          if (/^event: end$/m.test(block)) ended = true;
          if (entry) nudge();
        }
      }
    } catch (err) {
      // The browser left, or the API's stream broke off: the browser reconnects with Last-Event-ID.
      if (!stop.signal.aborted) log.warn({ err, orderId: id }, 'order stream: the API’s stream broke off');
    }
    ended = true;
    stop.abort();
    await following;
    res.end();
  }

  shopApi.get('/operator/orders', operatorOnly, async (req, res) => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const query = new URLSearchParams({ limit: '20', ...(cursor ? { cursor } : {}) });
    const answer = await api(`/orders?${query.toString()}`, { token: await tokens.operator!() });
    if (answer.status !== 200) return relay(res, answer);
    const page = answer.body as { orders: Array<{ orderId: string }>; nextCursor: string | null };
    res.json({
      ...page,
      orders: page.orders.map((o) => ({
        ...o,
        ...(temporalUi
          ? {
              workflowUrl: `${temporalUi.url}/namespaces/${encodeURIComponent(temporalUi.namespace)}/workflows/${encodeURIComponent(orderWorkflowId(o.orderId))}`,
            }
          : {}),
      })),
    });
  });

  app.use('/shop/api', shopApi);
  app.use((_req, _res) => {
    throw new ShopError(404, 'not_found', 'no such page');
  });
  const errors: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    // body-parser's refusals carry their 4xx status (not JSON, too large).
    const status = (err as { status?: unknown }).status;
    const known =
      err instanceof ShopError
        ? err
        : typeof status === 'number' && status >= 400 && status < 500
          ? new ShopError(status, 'bad_request', (err as Error).message)
          : undefined;
    if (!known) req.log.error({ err }, 'shop error');
    if (res.headersSent) return void res.end();
    res.status(known?.status ?? 500).json({ error: known?.code ?? 'internal', message: known?.message ?? 'something went wrong in the shop' });
  };
  app.use(errors);
  return app;
}

/** The part of the order's live state the page shows; its log comes by the stream itself. */
function liveState(view: Record<string, unknown>) {
  const { status, steps, compensations, failureReason, cancellationReason, attention, items, total, currency, events } = view;
  return { status, steps, compensations, failureReason, cancellationReason, attention, items, total, currency, events };
}
