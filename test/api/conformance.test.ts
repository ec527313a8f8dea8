import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postgresUrl } from '../../lib/infra/postgres';
import { createLogger } from '../../lib/logger';
import { queryDatabase } from '../support/databases';
import { eventually, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';

/**
 * The API against its own OpenAPI document: real requests for every documented answer of every
 * route, each body validated against the document's schema (JSON Schema 2020-12), and a check at
 * the end that nothing documented went unexercised and nothing undocumented was answered.
 */
type Method = 'get' | 'post';
interface Operation {
  responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: unknown }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Partial<Record<Method, Operation>>>;
}

let platform: Awaited<ReturnType<typeof startInProcessApi>>;
let client: Client;
let doc: Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
const validators = new WeakMap<object, ValidateFunction>();
const exercised = new Set<string>();
const placed: string[] = [];

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'conformance',
    namespace: 'api-conformance',
    // A slow carrier keeps orders in flight long enough to cancel them.
    env: { CARRIER_PICKUP_DELAY_MS: '1500' },
    // Orders above 200.00 EUR wait for a reviewer; a short TTL lets the catalogue go stale within a test.
    app: { timings: { reviewAbove: 20_000 }, catalogueTtlMs: 300 },
  });
  client = platform.client;
  doc = (await (await fetch(`${platform.baseUrl}/openapi.json`)).json()) as Document;
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  await platform?.stop();
});

/** The document's schema, its `#/components/…` references pointed at the document itself. */
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

/** Sends one request and checks the answer against the document: a documented status, its headers, its content type and schema. */
async function call(
  method: Method,
  template: string,
  options: { params?: Record<string, string>; headers?: Record<string, string>; body?: unknown; base?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? ''));
  const res = await fetch(`${options.base ?? platform.baseUrl}${path}`, {
    method: method.toUpperCase(),
    redirect: 'manual',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
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
  expect(mediaType, `${what}: content-type ${contentType}, documented ${media.join(', ')}`).toBeDefined();
  const body: unknown = mediaType!.includes('json') ? JSON.parse(text) : text;
  const validate = validator(reply!.content![mediaType!]!.schema as object);
  expect(validate(body), `${what}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`).toBe(true);
  return { status: res.status, headers: res.headers, body };
}

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
const reviewer = { 'X-Role': 'reviewer', 'X-User': 'risk@example.com' };

/** Workflows in the namespace that a request could have started (not the reconciliation schedule's runs). */
const countWorkflows = async () => (await client.workflow.count('TemporalScheduledById IS NULL')).count;

describe('the API against its generated OpenAPI document', () => {
  it('serves the document, generated from the zod schemas, with every route in it', async () => {
    const res = await call('get', '/openapi.json');
    expect(res.body.openapi).toBe('3.1.0');
    expect(Object.keys(res.body.paths).sort()).toEqual(
      [
        '/products',
        '/orders',
        '/orders/{id}',
        '/orders/{id}/cancel',
        '/orders/{id}/review',
        '/healthz',
        '/livez',
        '/metrics',
        '/openapi.json',
        '/docs',
        '/docs/',
      ].sort(),
    );
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
  });

  it('POST /orders/{id}/cancel: 202, 400, 404, 409 and 413', async () => {
    const inFlight = (await placeOrder(validOrder())).body.orderId as string;
    const cancel = (id: string, body: unknown) => call('post', '/orders/{id}/cancel', { params: { id }, body });
    expect((await cancel(inFlight, { reason: 42 })).status).toBe(400);
    expect((await cancel(inFlight, tooLarge)).status).toBe(413);
    const accepted = await cancel(inFlight, { reason: 'ordered by mistake' });
    expect(accepted.status).toBe(202);
    expect(accepted.body.status).toBe('CANCELLING');
    expect(await waitForTerminal(inFlight)).toBe('CANCELLED');
    expect((await cancel(inFlight, {})).status).toBe(409);
    expect((await cancel(randomUUID(), {})).status).toBe(404);
  });

  it('POST /orders/{id}/review: 200, 400, 403, 404, 409 and 413', async () => {
    const held = (await placeOrder(validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }))).body.orderId as string;
    const review = (id: string, headers: Record<string, string>, body: unknown) => call('post', '/orders/{id}/review', { params: { id }, headers, body });
    await eventually(async () => ((await orderStatus(held)) === 'AWAITING_REVIEW' ? true : undefined), 'the order to await review');
    expect((await review(held, {}, { decision: 'approve' })).status).toBe(403);
    expect((await review(held, { 'X-Role': 'reviewer' }, { decision: 'maybe' })).status).toBe(400);
    expect((await review(held, reviewer, tooLarge)).status).toBe(413);
    expect((await review(randomUUID(), reviewer, { decision: 'approve' })).status).toBe(404);
    expect((await review(held, reviewer, { decision: 'approve' })).body).toEqual({ orderId: held, decision: 'approve' });
    expect((await review(held, reviewer, { decision: 'reject' })).status).toBe(409);
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

  it('exercised every documented answer of every route', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, operation]) => Object.keys(operation.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
    );
    expect([...exercised].sort()).toEqual(documented.sort());
  });
});
