import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../../contracts/auth';
import { NOTIFICATIONS_TASK_QUEUE } from '../../contracts/notifications';
import type { TestClient } from '../support/auth';
import { eventually, request, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';
import { testTemporalSettings } from '../support/temporal';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

/**
 * The webhook routes against the API's own OpenAPI document, as test/api/conformance.test.ts does
 * for the others: a real request for every documented answer of every /webhooks route, each body
 * validated against the document's schema (JSON Schema 2020-12), and a check at the end that
 * nothing documented for these paths went unexercised and nothing undocumented was answered.
 */
type Method = 'get' | 'post' | 'delete';
interface Operation {
  responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: unknown }> }>;
}
interface Document {
  paths: Record<string, Partial<Record<Method, Operation>>>;
}

const NAMESPACE = 'webhooks-conformance';
const OWN_PATHS = (path: string) => path === '/webhooks' || path.startsWith('/webhooks/');
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
let doc: Document;
let receiver: WebhookReceiver;
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
const validators = new WeakMap<object, ValidateFunction>();
const exercised = new Set<string>();
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [platform, receiver] = await Promise.all([
    startInProcessApi({ prefix: 'webhooks_conformance', namespace: NAMESPACE, env: { CARRIER_PICKUP_DELAY_MS: '100', RELAY_POLL_INTERVAL_MS: '100' } }),
    startWebhookReceiver(),
  ]);
  doc = (await (await fetch(`${platform.baseUrl}/openapi.json`)).json()) as Document;
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await receiver?.stop();
  await platform?.stop();
});

function validator(schema: object): ValidateFunction {
  const anchored = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(anchored)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith('#/') ? `openapi.json${x}` : anchored(x)]),
          )
        : v;
  let validate = validators.get(schema);
  if (!validate) validators.set(schema, (validate = ajv.compile(anchored(schema) as object)));
  return validate;
}

interface CallOptions {
  params?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
  base?: string;
  /** who calls: a test client, a raw token, or null for none (default: the storefront) */
  as?: TestClient | { token: string } | null;
}

/** One request, checked against the document: a documented status, its required headers, its content type and schema. */
async function call(method: Method, template: string, options: CallOptions = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? ''));
  const caller = options.as === undefined ? 'storefront' : options.as;
  const authorization = caller === null ? {} : typeof caller === 'object' ? { Authorization: `Bearer ${caller.token}` } : await platform.auth.as(caller);
  const res = await fetch(`${options.base ?? platform.baseUrl}${path}`, {
    method: method.toUpperCase(),
    headers: Object.fromEntries(
      Object.entries({ 'content-type': 'application/json', ...authorization, ...options.headers }).map(([k, v]) => [k.toLowerCase(), v]),
    ),
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await res.text();
  const what = `${method.toUpperCase()} ${template} → ${res.status}`;
  const reply = doc.paths[template]?.[method]?.responses[String(res.status)];
  expect(reply, `${what} is not documented: ${text.slice(0, 300)}`).toBeDefined();
  exercised.add(`${method.toUpperCase()} ${template} ${res.status}`);
  for (const [name, header] of Object.entries(reply!.headers ?? {})) {
    if (header.required) expect(res.headers.get(name), `${what}: header ${name}`).not.toBeNull();
  }
  const media = Object.keys(reply!.content ?? {});
  if (media.length === 0) return { status: res.status, headers: res.headers, body: text };
  const contentType = res.headers.get('content-type') ?? '';
  const mediaType = media.find((m) => contentType.startsWith(m));
  expect(mediaType, `${what}: content-type ${contentType}`).toBeDefined();
  const body: unknown = JSON.parse(text);
  const validate = validator(reply!.content![mediaType!]!.schema as object);
  expect(validate(body), `${what}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`).toBe(true);
  return { status: res.status, headers: res.headers, body };
}

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

/** A TCP server that accepts connections and never says a word: a Temporal frontend that has stalled. */
async function silentServer(): Promise<{ address: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the webhook routes against the generated OpenAPI document', () => {
  it('documents every webhook route with its scope', () => {
    expect(Object.keys(doc.paths).filter(OWN_PATHS).sort()).toEqual(
      [
        '/webhooks',
        '/webhooks/{id}',
        '/webhooks/{id}/rotate-secret',
        '/webhooks/{id}/enable',
        '/webhooks/{id}/deliveries',
        '/webhooks/{id}/deliveries/{eventId}/replay',
      ].sort(),
    );
    expect((doc.paths['/webhooks/{id}']!.delete as unknown as { security: unknown }).security).toEqual([{ oauth2: [SCOPES.webhooks] }]);
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
    const silent = await silentServer();
    const connection = Connection.lazy({ address: silent.address });
    cleanups.push(async () => {
      await connection.close();
      await silent.close();
    });
    const stalled = new Client({ connection, namespace: NAMESPACE, dataConverter: testTemporalSettings(NAMESPACE).dataConverter });
    const base = await platform.serve({ client: stalled, requestTimeoutMs: 1_000 });
    for (const route of [ROUTES(id)[0]!, ...ROUTES(id).filter((r) => r.method !== 'get' && r.template !== '/webhooks')]) {
      const started = Date.now();
      const res = await call(route.method, route.template, { ...route.options, base });
      expect(res.status, route.template).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it('exercised every documented answer of every webhook route (conformance.test.ts covers the other paths)', () => {
    const documented = Object.entries(doc.paths)
      .filter(([path]) => OWN_PATHS(path))
      .flatMap(([path, item]) =>
        Object.entries(item).flatMap(([method, operation]) => Object.keys(operation.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
      );
    expect([...exercised].filter((e) => OWN_PATHS(e.split(' ')[1]!)).sort()).toEqual(documented.sort());
  });
});
