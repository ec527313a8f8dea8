import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SCOPES } from '../../contracts/auth';
import { postgresUrl } from '../../lib/infra/postgres';
import { createLogger } from '../../lib/logger';
import type { TestClient } from '../support/auth';
import { queryDatabase, unreachableOrdersDb } from '../support/databases';
import { eventually, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';
import { type CallOptions, type Method, openApiChecker, stalledTemporalClient } from '../support/openapi';

/** The webhook routes: their own conformance test has them (webhooks-conformance.test.ts). */
const isWebhookPath = (path: string) => path === '/webhooks' || path.startsWith('/webhooks/');

/**
 * The API against its own OpenAPI document: real requests for every documented answer of every
 * route, each body validated against the document's schema (JSON Schema 2020-12), and a check at
 * the end that nothing documented went unexercised and nothing undocumented was answered. Every
 * request to a route that needs a token carries the token of the client that route is for.
 */
const NAMESPACE = 'api-conformance';
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
let client: Client;
const placed: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'conformance',
    namespace: NAMESPACE,
    // A slow carrier keeps orders in flight long enough to cancel them.
    env: { CARRIER_PICKUP_DELAY_MS: '1500' },
    // Orders above 200.00 EUR wait for a reviewer; a short TTL lets the catalogue go stale within a test.
    app: { timings: { reviewAbove: 20_000 }, catalogueTtlMs: 300 },
  });
  client = platform.client;
  await openApi.load(platform);
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await platform?.stop();
});

/** The client each route is called as unless a test says otherwise; public routes are called with no token. */
const CALLER: Record<string, TestClient> = {
  'POST /orders': 'storefront',
  'GET /orders': 'storefront',
  'GET /orders/{id}': 'storefront',
  'GET /orders/{id}/events': 'storefront',
  'POST /orders/{id}/cancel': 'storefront',
  'POST /orders/{id}/review': 'reviewer',
  'GET /metrics': 'prometheus',
};

/** Every request checked against the API's OpenAPI document, and counted for the check at the end. */
const openApi = openApiChecker({ caller: (route) => CALLER[route] });
const { call } = openApi;

const placeOrder = async (body: unknown, key: string | null = randomUUID()) => {
  const res = await call('post', '/orders', { body, headers: key === null ? {} : { 'Idempotency-Key': key } });
  if (res.status === 202) placed.push(res.body.orderId);
  return res;
};
const orderStatus = async (orderId: string) => (await call('get', '/orders/{id}', { params: { id: orderId } })).body.status as string;
const waitForTerminal = (orderId: string) =>
  eventually(async () => {
    const status = await orderStatus(orderId);
    return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(status) ? status : undefined;
  }, `order ${orderId} to end`);
const tooLarge = { note: 'x'.repeat(70_000) };

/** Workflows in the namespace that a request could have started (not the reconciliation schedule's runs). */
const countWorkflows = async () => (await client.workflow.count('TemporalScheduledById IS NULL')).count;

/** A request to each route that needs a token, good in every way but the one a test changes. */
const TOKEN_ROUTES: Array<{ method: Method; template: string; options: () => CallOptions }> = [
  { method: 'post', template: '/orders', options: () => ({ body: validOrder(), headers: { 'Idempotency-Key': randomUUID() } }) },
  { method: 'get', template: '/orders', options: () => ({}) },
  { method: 'get', template: '/orders/{id}', options: () => ({ params: { id: randomUUID() } }) },
  { method: 'post', template: '/orders/{id}/cancel', options: () => ({ params: { id: randomUUID() }, body: {} }) },
  { method: 'post', template: '/orders/{id}/review', options: () => ({ params: { id: randomUUID() }, body: { decision: 'approve' } }) },
  { method: 'get', template: '/metrics', options: () => ({}) },
  { method: 'get', template: '/orders/{id}/events', options: () => ({ params: { id: randomUUID() } }) },
];

describe('the API against its generated OpenAPI document', () => {
  it('serves the document, generated from the zod schemas, with every route in it', async () => {
    const res = await call('get', '/openapi.json');
    expect(res.body.openapi).toBe('3.1.0');
    // The webhook routes are listed and checked answer by answer in webhooks-conformance.test.ts.
    expect(
      Object.keys(res.body.paths)
        .filter((path) => !isWebhookPath(path))
        .sort(),
    ).toEqual(
      [
        '/products',
        '/orders',
        '/orders/{id}',
        '/orders/{id}/cancel',
        '/orders/{id}/review',
        '/orders/{id}/events',
        '/healthz',
        '/livez',
        '/metrics',
        '/openapi.json',
        '/docs',
        '/docs/',
      ].sort(),
    );
    // The token routes name the OAuth2 scheme and their scopes; the public ones need nothing.
    expect(res.body.components.securitySchemes.oauth2.flows.clientCredentials.tokenUrl).toBe(`${platform.auth.issuer}/oauth/token`);
    expect(res.body.paths['/orders/{id}/review'].post.security).toEqual([{ oauth2: [SCOPES.review] }]);
    expect(res.body.paths['/products'].get.security).toEqual([]);
  });

  it('serves interactive docs at /docs with their assets from the API itself', async () => {
    const redirect = await call('get', '/docs');
    expect(redirect.headers.get('location')).toBe('/docs/');
    const page = await call('get', '/docs/');
    expect(page.body).toContain('swagger-ui');
    const asset = await fetch(`${platform.baseUrl}/docs/swagger-ui-bundle.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('javascript');
    expect(await (await fetch(`${platform.baseUrl}/docs/swagger-ui-init.js`)).text()).toContain('"openapi": "3.1.0"');
  });

  it('answers /livez and /metrics, and sends back the request id', async () => {
    const live = await call('get', '/livez', { headers: { 'X-Request-Id': 'req-42' } });
    expect(live.body).toEqual({ status: 'ok' });
    expect(live.headers.get('x-request-id')).toBe('req-42');
    expect((await call('get', '/metrics')).body).toContain('http_request_duration_seconds');
  });

  it('starts no workflow for GET /products, GET /healthz or any other read', async () => {
    const before = await countWorkflows();
    expect((await call('get', '/products')).body.length).toBeGreaterThan(0);
    const health = await call('get', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body.checks.map((c: { service: string; ok: boolean }) => [c.service, c.ok])).toEqual([
      ['temporal', true],
      ['orders', true],
      ['inventory', true],
      ['payments', true],
      ['shipping', true],
      ['notifications', true],
    ]);
    await call('get', '/livez');
    await call('get', '/openapi.json');
    expect((await call('get', '/orders/{id}', { params: { id: randomUUID() } })).status).toBe(404);
    // Visibility is eventually consistent: give a workflow that was started time to show.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await countWorkflows()).toBe(before);
  });

  it('POST /orders: 202, 202 replayed with the live status, 400, 413 and 422', async () => {
    const key = randomUUID();
    const first = await placeOrder(validOrder(), key);
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBe('false');
    const again = await placeOrder(validOrder(), key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.orderId).toBe(first.body.orderId);
    // The count the read test relies on does see a workflow that a request starts.
    await eventually(async () => ((await countWorkflows()) > 0 ? true : undefined), 'the order workflow to be counted');

    const bad = await placeOrder({ ...validOrder(), items: [{ sku: 'NO-SUCH-THING', quantity: 0 }] }, null);
    expect(bad.status).toBe(400);
    expect(bad.body.fields.map((f: { field: string }) => f.field).sort()).toEqual(['body.items.0.quantity', 'headers.idempotency-key']);
    expect((await placeOrder({ ...validOrder(), ...tooLarge })).status).toBe(413);
    expect((await placeOrder(validOrder({ customerId: 'someone-else' }), key)).status).toBe(422);
  });

  it('GET /orders/{id}: 200 while in flight and once ended, 404 for an unknown or impossible id', async () => {
    const { body } = await placeOrder(validOrder());
    const live = await call('get', '/orders/{id}', { params: { id: body.orderId } });
    expect(live.status).toBe(200);
    expect(live.body.orderId).toBe(body.orderId);
    expect(await waitForTerminal(body.orderId)).toBe('COMPLETED');
    const ended = await call('get', '/orders/{id}', { params: { id: body.orderId } });
    expect(ended.body.events.at(-1).type).toBe('OrderCompleted');
    expect((await call('get', '/orders/{id}', { params: { id: randomUUID() } })).status).toBe(404);
    expect((await call('get', '/orders/{id}', { params: { id: 'not-a-uuid' } })).status).toBe(404);
    // The live feed of an ended order: its whole log, then the end (the stream closes, so the body can be read whole).
    const feed = await call('get', '/orders/{id}/events', { params: { id: body.orderId } });
    expect(feed.status).toBe(200);
    expect(feed.body).toContain('event: OrderCompleted');
    expect(feed.body).toContain('event: end');
    expect((await call('get', '/orders/{id}/events', { params: { id: randomUUID() } })).status).toBe(404);
  });

  it('GET /orders: 200 with the caller’s own orders newest first, page by page (an operator sees every order); 400 for a bad limit or cursor', async () => {
    const mine = [(await placeOrder(validOrder())).body.orderId as string, (await placeOrder(validOrder())).body.orderId as string];
    const list = async (options: CallOptions = {}) => (await call('get', '/orders', options)).body as { orders: any[]; nextCursor: string | null };
    const listed = await eventually(async () => {
      const { orders } = await list({ query: { limit: '100' } });
      return mine.every((id) => orders.some((o) => o.orderId === id)) ? orders : undefined;
    }, 'the orders to be listed');
    expect(listed.map((o) => o.createdAt)).toEqual(listed.map((o) => o.createdAt as string).sort((a, b) => b.localeCompare(a)));
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list({ query: { limit: '1', ...(cursor ? { cursor } : {}) } });
      paged.push(...page.orders.map((o) => o.orderId as string));
      cursor = page.nextCursor;
    } while (cursor && paged.length <= listed.length);
    expect(paged).toEqual(listed.map((o) => o.orderId));
    expect((await list({ as: 'otherStorefront' })).orders.filter((o) => mine.includes(o.orderId))).toEqual([]);
    expect((await list({ as: 'operator', query: { limit: '100' } })).orders.map((o) => o.orderId)).toEqual(expect.arrayContaining(mine));
    const bad = await call('get', '/orders', { query: { limit: '0', cursor: 'not-a-cursor' } });
    expect(bad.status).toBe(400);
    expect(bad.body.fields.map((f: { field: string }) => f.field).sort()).toEqual(['query.cursor', 'query.limit']);
  });

  it('POST /orders/{id}/cancel: 202, 400, 404, 409 and 413', async () => {
    const inFlight = (await placeOrder(validOrder())).body.orderId as string;
    const cancel = (id: string, body: unknown) => call('post', '/orders/{id}/cancel', { params: { id }, body });
    expect((await cancel(inFlight, { reason: 42 })).status).toBe(400);
    expect((await cancel(inFlight, tooLarge)).status).toBe(413);
    const accepted = await cancel(inFlight, { reason: 'ordered by mistake' });
    expect(accepted.status).toBe(202);
    expect(accepted.body.status).toBe('CANCELLING');
    expect(accepted.headers.get('idempotent-replayed')).toBe('false');
    expect(await waitForTerminal(inFlight)).toBe('CANCELLED');
    // Idempotent: a repeat finds it cancelled and says so.
    const repeated = await cancel(inFlight, {});
    expect(repeated.status).toBe(202);
    expect(repeated.body).toMatchObject({ status: 'CANCELLED', previousStatus: 'CANCELLED' });
    expect(repeated.headers.get('idempotent-replayed')).toBe('true');
    const completed = (await placeOrder(validOrder())).body.orderId as string;
    expect(await waitForTerminal(completed)).toBe('COMPLETED');
    expect((await cancel(completed, {})).status).toBe(409);
    expect((await cancel(randomUUID(), {})).status).toBe(404);
  });

  it('POST /orders/{id}/review: 200, 400, 403, 404, 409 and 413', async () => {
    const held = (await placeOrder(validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }))).body.orderId as string;
    const review = (id: string, body: unknown, as?: TestClient) => call('post', '/orders/{id}/review', { params: { id }, body, ...(as ? { as } : {}) });
    await eventually(async () => ((await orderStatus(held)) === 'AWAITING_REVIEW' ? true : undefined), 'the order to await review');
    // The storefront's token has no orders:review.
    const refused = await review(held, { decision: 'approve' }, 'storefront');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toContain('insufficient_scope');
    expect((await review(held, { decision: 'maybe' })).status).toBe(400);
    expect((await review(held, tooLarge)).status).toBe(413);
    expect((await review(randomUUID(), { decision: 'approve' })).status).toBe(404);
    expect((await review(held, { decision: 'approve' })).body).toEqual({ orderId: held, decision: 'approve' });
    expect((await review(held, { decision: 'reject' })).status).toBe(409);
  });

  it('every route that needs a token: 401 without one (with WWW-Authenticate), 403 with one that lacks its scope', async () => {
    for (const route of TOKEN_ROUTES) {
      const what = `${route.method.toUpperCase()} ${route.template}`;
      const missing = await call(route.method, route.template, { ...route.options(), as: null });
      expect(missing.status, what).toBe(401);
      expect(missing.body.error, what).toBe('unauthorized');
      expect(missing.headers.get('www-authenticate'), what).toMatch(/^Bearer realm="order-platform"/);
      // Prometheus holds metrics:read only; the storefront holds no metrics scope.
      const wrongScope = await call(route.method, route.template, { ...route.options(), as: route.template === '/metrics' ? 'storefront' : 'prometheus' });
      expect(wrongScope.status, what).toBe(403);
      expect(wrongScope.headers.get('www-authenticate'), what).toContain('error="insufficient_scope"');
    }
  });

  it('every route with a body: 415 for another media type, another charset or an unknown Content-Encoding', async () => {
    const id = randomUUID();
    const asLatin1 = await call('post', '/orders', {
      body: validOrder(),
      headers: { 'Idempotency-Key': randomUUID(), 'Content-Type': 'application/json; charset=latin1' },
    });
    expect(asLatin1.status).toBe(415);
    expect(asLatin1.body.message).toBe('unsupported charset "latin1": send UTF-8 JSON');
    const asText = await call('post', '/orders/{id}/cancel', { params: { id }, rawBody: '{}', headers: { 'Content-Type': 'text/plain' } });
    expect(asText.status).toBe(415);
    const encoded = await call('post', '/orders/{id}/review', {
      params: { id },
      rawBody: '{"decision":"approve"}',
      headers: { 'Content-Encoding': 'zstd-xyz' },
    });
    expect(encoded.status).toBe(415);
    expect(encoded.body.message).toContain('zstd-xyz');
  });

  it('every route: 429 with Retry-After over the rate limit (per client on the token routes, per address on the public ones)', async () => {
    // One request a minute: whatever the window's boundary, one of three requests in a row is over.
    const overTheLimit = async (send: () => Promise<{ status: number; headers: Headers }>) => {
      for (let i = 0; i < 3; i++) {
        const res = await send();
        if (res.status === 429) return res;
      }
      throw new Error('no 429 in three requests');
    };
    const limited = await platform.auth.register({
      id: 'conformance-limited',
      name: 'A client allowed one request a minute',
      scopes: [SCOPES.write, SCOPES.read, SCOPES.review, SCOPES.metrics],
      rateLimitPerMinute: 1,
    });
    const token = await platform.auth.tokenFor(limited.id, limited.secret);
    for (const route of TOKEN_ROUTES) {
      const res = await overTheLimit(() => call(route.method, route.template, { ...route.options(), as: { token } }));
      expect(Number(res.headers.get('retry-after')), `${route.template}: Retry-After`).toBeGreaterThan(0);
      expect(res.headers.get('ratelimit-policy')).toMatch(/q=1;\s*w=60/);
    }

    // A proxy in front says who calls (the API trusts one); a fresh address for each route.
    const base = await platform.serve({ rateLimits: { windowMs: 60_000, perClientPerMinute: 600, publicPerMinute: 1 }, trustProxy: 1 });
    const publicRoutes = ['/products', '/healthz', '/livez', '/openapi.json', '/docs', '/docs/'];
    for (const [n, template] of publicRoutes.entries()) {
      const headers = { 'X-Forwarded-For': `198.51.100.${n + 10}` };
      const res = await overTheLimit(() => call('get', template, { base, headers }));
      expect(Number(res.headers.get('retry-after')), `${template}: Retry-After`).toBeGreaterThan(0);
    }
  });

  it('GET /orders/{id}, cancel and review: 503 with Retry-After when Temporal does not answer within the request deadline', async () => {
    const stalled = await stalledTemporalClient(NAMESPACE);
    cleanups.push(stalled.close);
    const base = await platform.serve({ client: stalled.client, requestTimeoutMs: 1_000 });
    const id = randomUUID();
    for (const [method, template, body] of [
      ['get', '/orders/{id}', undefined],
      ['post', '/orders/{id}/cancel', {}],
      ['post', '/orders/{id}/review', { decision: 'approve' }],
    ] as const) {
      const started = Date.now();
      const res = await call(method, template, { base, params: { id }, body });
      expect(res.status, template).toBe(503);
      expect(res.body.error).toBe('timeout');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it('GET /orders and its events feed: 503 with Retry-After when the orders database is down', async () => {
    const down = await unreachableOrdersDb();
    cleanups.push(down.close);
    const base = await platform.serve({ db: down.db });
    for (const [template, params] of [
      ['/orders', {}],
      ['/orders/{id}/events', { id: randomUUID() }],
    ] as const) {
      const res = await call('get', template, { base, params });
      expect(res.status, template).toBe(503);
      expect(res.body.error).toBe('unavailable');
      expect(res.headers.get('retry-after')).toBe('2');
    }
  });

  it('logs one line per request under its X-Request-Id, with no body and no payment token', async () => {
    const lines: string[] = [];
    const log = createLogger('api', 'info', { write: (line: string) => void lines.push(line) });
    const base = await platform.serve({ log });
    const accepted = await call('post', '/orders', { base, body: validOrder(), headers: { 'Idempotency-Key': randomUUID(), 'X-Request-Id': 'req-order-1' } });
    expect(accepted.headers.get('x-request-id')).toBe('req-order-1');
    placed.push(accepted.body.orderId);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(entries).toContainEqual(expect.objectContaining({ requestId: 'req-order-1', req: { method: 'POST', url: '/orders' }, res: { statusCode: 202 } }));
    expect(entries).toContainEqual(expect.objectContaining({ requestId: 'req-order-1', orderId: accepted.body.orderId, msg: 'order accepted' }));
    const written = lines.join('');
    expect(written).not.toContain('tok_visa');
    expect(written).not.toContain('shippingAddress');
    // Nor the bearer token the request carried.
    expect(written).not.toContain(await platform.auth.token('storefront'));
  });

  it('GET /healthz turns 503 naming the pool whose database fails, and 200 once it is back', async () => {
    for (const orderId of placed) await waitForTerminal(orderId);
    const admin = postgresUrl(inject('pgPort'), 'postgres');
    const database = new URL(platform.urls.payments).pathname.slice(1);
    await queryDatabase(admin, `ALTER DATABASE "${database}" ALLOW_CONNECTIONS false`);
    try {
      await queryDatabase(admin, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
      const own = await fetch(`${platform.pools.payments.url}/healthz`);
      expect(own.status).toBe(503);
      expect(((await own.json()) as { checks: unknown[] }).checks).toContainEqual(expect.objectContaining({ service: 'database', ok: false }));

      const health = await call('get', '/healthz');
      expect(health.status).toBe(503);
      expect(health.body.status).toBe('unavailable');
      const failing = health.body.checks.filter((c: { ok: boolean }) => !c.ok);
      expect(failing.map((c: { service: string }) => c.service)).toEqual(['payments']);
      expect(failing[0].error).toContain('database');
    } finally {
      await queryDatabase(admin, `ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`);
    }
    await eventually(async () => ((await call('get', '/healthz')).status === 200 ? true : undefined), 'health to come back');
  });

  it('when the inventory pool stops: /healthz names it, the catalogue keeps its last good copy, an API without one answers 503', async () => {
    const before = (await call('get', '/products')).body;
    platform.pools.inventory.stop();
    await platform.pools.inventory.finished;
    await new Promise((r) => setTimeout(r, 400)); // past the catalogue's TTL

    expect((await call('get', '/products')).body).toEqual(before);
    const health = await call('get', '/healthz');
    expect(health.status).toBe(503);
    expect(health.body.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { service: string }) => c.service)).toEqual(['inventory']);

    const fresh = await platform.serve();
    expect((await call('get', '/products', { base: fresh })).status).toBe(503);
    const refused = await call('post', '/orders', { base: fresh, body: validOrder(), headers: { 'Idempotency-Key': randomUUID() } });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('unavailable');
  });

  it('exercised every documented answer of every route (the webhook routes’: webhooks-conformance.test.ts)', () => {
    const { documented, exercised } = openApi.coverage((path) => !isWebhookPath(path));
    expect(exercised).toEqual(documented);
  });
});
