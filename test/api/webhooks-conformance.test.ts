import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../../contracts/auth';
import { NOTIFICATIONS_TASK_QUEUE } from '../../contracts/notifications';
import { eventually, request, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';
import { type CallOptions, type Method, openApiChecker, stalledTemporalClient } from '../support/openapi';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

/**
 * The webhook routes against the API's own OpenAPI document, as test/api/conformance.test.ts does
 * for the others: a real request for every documented answer of every /webhooks route, each body
 * validated against the document's schema (JSON Schema 2020-12), and a check at the end that
 * nothing documented for these paths went unexercised and nothing undocumented was answered.
 */
const NAMESPACE = 'webhooks-conformance';
const OWN_PATHS = (path: string) => path === '/webhooks' || path.startsWith('/webhooks/');
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
let receiver: WebhookReceiver;
/** Every request checked against the API's OpenAPI document, and counted for the check at the end; called as the storefront unless said. */
const openApi = openApiChecker({ caller: () => 'storefront' });
const { call } = openApi;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [platform, receiver] = await Promise.all([
    startInProcessApi({ prefix: 'webhooks_conformance', namespace: NAMESPACE, env: { CARRIER_PICKUP_DELAY_MS: '100', RELAY_POLL_INTERVAL_MS: '100' } }),
    startWebhookReceiver(),
  ]);
  await openApi.load(platform);
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await receiver?.stop();
  await platform?.stop();
});

const create = (body: unknown = { url: receiver.url, events: ['order.placed'] }, options: CallOptions = {}) => call('post', '/webhooks', { body, ...options });

/** Every /webhooks route with a request good in every way but the one a test changes (`id` names an endpoint of the caller). */
const ROUTES = (id: string): Array<{ method: Method; template: string; options: CallOptions }> => [
  { method: 'post', template: '/webhooks', options: { body: { url: receiver.url, events: ['order.placed'] } } },
  { method: 'get', template: '/webhooks', options: {} },
  { method: 'get', template: '/webhooks/{id}', options: { params: { id } } },
  { method: 'delete', template: '/webhooks/{id}', options: { params: { id } } },
  { method: 'post', template: '/webhooks/{id}/rotate-secret', options: { params: { id } } },
  { method: 'post', template: '/webhooks/{id}/enable', options: { params: { id } } },
  { method: 'get', template: '/webhooks/{id}/deliveries', options: { params: { id } } },
  { method: 'post', template: '/webhooks/{id}/deliveries/{eventId}/replay', options: { params: { id, eventId: 'evt_1' } } },
];

describe('the webhook routes against the generated OpenAPI document', () => {
  it('documents every webhook route with its scope', () => {
    expect(Object.keys(openApi.doc.paths).filter(OWN_PATHS).sort()).toEqual(
      [
        '/webhooks',
        '/webhooks/{id}',
        '/webhooks/{id}/rotate-secret',
        '/webhooks/{id}/enable',
        '/webhooks/{id}/deliveries',
        '/webhooks/{id}/deliveries/{eventId}/replay',
      ].sort(),
    );
    expect((openApi.doc.paths['/webhooks/{id}']!.delete as unknown as { security: unknown }).security).toEqual([{ oauth2: [SCOPES.webhooks] }]);
  });

  it('the life of an endpoint: 201, 200 for each read and change, 202 replay, then 404 once deleted', async () => {
    const created = await create({ url: receiver.url, events: ['order.placed', 'order.completed'] });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`/webhooks/${id}`);
    expect((await call('get', '/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).toContain(id);
    expect((await call('get', '/webhooks/{id}', { params: { id } })).body).toEqual(expect.objectContaining({ id, status: 'ENABLED', url: receiver.url }));

    const placed = await request(platform.baseUrl, 'POST', '/orders', {
      body: validOrder(),
      headers: { ...(await platform.auth.as('storefront')), 'Idempotency-Key': randomUUID() },
    });
    expect(placed.status).toBe(202);
    const delivered = await eventually(async () => receiver.accepted()[0], 'a delivery to the endpoint', 600, 100);
    const deliveries = await call('get', '/webhooks/{id}/deliveries', { params: { id } });
    expect(deliveries.body.deliveries[0]).toEqual(expect.objectContaining({ eventId: delivered.id, outcome: 'DELIVERED', statusCode: 204 }));
    expect((await call('post', '/webhooks/{id}/deliveries/{eventId}/replay', { params: { id, eventId: delivered.id } })).status).toBe(202);
    expect((await call('post', '/webhooks/{id}/rotate-secret', { params: { id } })).body.secret).toMatch(/^whsec_/);
    expect((await call('post', '/webhooks/{id}/enable', { params: { id } })).body.status).toBe('ENABLED');
    expect((await call('delete', '/webhooks/{id}', { params: { id } })).body).toEqual({ id, deleted: true });
    for (const route of ROUTES(id).slice(2)) {
      expect((await call(route.method, route.template, route.options)).status, `${route.method} ${route.template}`).toBe(404);
    }
  });

  it('POST /webhooks: 400 for each field at fault, 413 over 64 kB, 415 for another media type', async () => {
    const bad = await create({ url: 'http://shop.example/hook', events: ['order.exploded'] });
    expect(bad.status).toBe(400);
    expect(bad.body.fields.map((f: { field: string }) => f.field).sort()).toEqual(['body.events.0']);
    const badUrl = await create({ url: 'https://10.0.0.1/hook', events: ['order.placed'] });
    expect(badUrl.body.fields).toEqual([{ field: 'body.url', message: 'must not point at a private address' }]);
    expect((await create({ url: receiver.url, events: ['order.placed'], note: 'x'.repeat(70_000) })).status).toBe(413);
    expect((await call('post', '/webhooks', { rawBody: '{}', headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
  });

  it('every webhook route: 401 without a token, 403 without webhooks:manage, 404 for an unknown or impossible id', async () => {
    for (const route of ROUTES(randomUUID())) {
      const what = `${route.method} ${route.template}`;
      const none = await call(route.method, route.template, { ...route.options, as: null });
      expect(none.status, what).toBe(401);
      expect(none.headers.get('www-authenticate'), what).toMatch(/^Bearer realm="order-platform"/);
      const reviewer = await call(route.method, route.template, { ...route.options, as: 'reviewer' });
      expect(reviewer.status, what).toBe(403);
      expect(reviewer.headers.get('www-authenticate'), what).toContain(`scope="${SCOPES.webhooks}"`);
      if (route.options.params) expect((await call(route.method, route.template, route.options)).status, what).toBe(404);
    }
    expect((await call('get', '/webhooks/{id}', { params: { id: 'not-a-uuid' } })).status).toBe(404);
    const id = (await create()).body.id as string;
    expect((await call('post', '/webhooks/{id}/deliveries/{eventId}/replay', { params: { id, eventId: 'not-an-event' } })).status).toBe(404);
  });

  it('every webhook route: 429 with Retry-After over the client’s rate limit', async () => {
    const limited = await platform.auth.register({ id: 'webhooks-limited', name: 'One request a minute', scopes: [SCOPES.webhooks], rateLimitPerMinute: 1 });
    const token = await platform.auth.tokenFor(limited.id, limited.secret);
    for (const route of ROUTES(randomUUID())) {
      let res: { status: number; headers: Headers } | undefined;
      for (let i = 0; i < 3 && res?.status !== 429; i++) res = await call(route.method, route.template, { ...route.options, as: { token } });
      expect(res!.status, route.template).toBe(429);
      expect(Number(res!.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('every webhook route: 503 when the notifications pool cannot be read, or Temporal does not answer within the request deadline', async () => {
    const id = (await create()).body.id as string;
    // Reads (and the ownership check before each change) go to the notifications pool's processes: none answers here.
    const unreachable = await platform.serve({ workers: { ...platform.workers, [NOTIFICATIONS_TASK_QUEUE]: ['http://127.0.0.1:9'] } });
    for (const route of ROUTES(id).slice(1)) {
      const res = await call(route.method, route.template, { ...route.options, base: unreachable });
      expect(res.status, route.template).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
    }
    // Changes are updates of the endpoint's workflow: a Temporal that never answers meets the request deadline.
    const stalled = await stalledTemporalClient(NAMESPACE);
    cleanups.push(stalled.close);
    const base = await platform.serve({ client: stalled.client, requestTimeoutMs: 1_000 });
    for (const route of [ROUTES(id)[0]!, ...ROUTES(id).filter((r) => r.method !== 'get' && r.template !== '/webhooks')]) {
      const started = Date.now();
      const res = await call(route.method, route.template, { ...route.options, base });
      expect(res.status, route.template).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it('exercised every documented answer of every webhook route (conformance.test.ts covers the other paths)', () => {
    const { documented, exercised } = openApi.coverage(OWN_PATHS);
    expect(exercised).toEqual(documented);
  });
});
