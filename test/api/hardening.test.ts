import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { WorkflowNotFoundError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrdersDb } from '../../activities/orders/db';
import { orderIdFromKey } from '../../api/schemas';
import { identityKey, SCOPES } from '../../contracts/auth';
import { orderWorkflowId } from '../../contracts/orders';
import { createPool } from '../../lib/db';
import { createLogger } from '../../lib/logger';
import { TEST_CLIENTS, type TestClient } from '../support/auth';
import { unreachableOrdersDb } from '../support/databases';
import { eventually, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';
import { stalledTemporalClient } from '../support/openapi';

/**
 * The findings of the trust-boundaries review, one test each, every one failing on the API as it
 * was before: text that PostgreSQL cannot store, bodies in other charsets and encodings, duplicate
 * keys, over-long idempotency keys, order IDs in upper case, no rate limit, no deadline, no CORS
 * policy, cacheable order data, missing security headers, and cross-site form posts.
 */
const NAMESPACE = 'api-hardening';
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
/** An API on the same platform whose log lines are kept: a refusal must never be logged as an error. */
let base: string;
const logged: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'hardening',
    namespace: NAMESPACE,
    // A slow carrier keeps orders in flight long enough to cancel them.
    env: { CARRIER_PICKUP_DELAY_MS: '1500' },
    app: { timings: { reviewAbove: 20_000 } },
  });
  // One proxy in front, as in production behind an ingress: it says who calls (X-Forwarded-For).
  base = await platform.serve({ log: createLogger('api', 'info', { write: (line: string) => void logged.push(line) }), trustProxy: 1 });
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await platform?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** Header names in one case, so that a test's Content-Type replaces the default instead of joining it. */
const lowerCased = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

/** One request over real HTTP to `base` as a test client (the storefront unless said; `null`: no token). */
async function send(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; as?: TestClient | null; to?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const who = options.as === undefined ? 'storefront' : options.as;
  const res = await fetch(`${options.to ?? base}${path}`, {
    method,
    headers: lowerCased({ 'content-type': 'application/json', ...(who ? await platform.auth.as(who) : {}), ...options.headers }),
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (res.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : text };
}

const place = (body: unknown, key: string = randomUUID(), extra: { raw?: string | Buffer; headers?: Record<string, string>; to?: string } = {}) =>
  send('POST', '/orders', { body, ...extra, headers: { 'Idempotency-Key': key, ...extra.headers } });

const waitFor = (orderId: string, statuses: string[]) =>
  eventually(
    async () => {
      const res = await send('GET', `/orders/${orderId}`);
      return statuses.includes(res.body?.status) ? res.body : undefined;
    },
    `order ${orderId} to be ${statuses.join(' or ')}`,
  );
const ENDED = ['COMPLETED', 'FAILED', 'CANCELLED'];

/** Nothing of the order the storefront's `key` would have placed exists: no row, no workflow. */
async function expectNothingStored(key: string) {
  const orderId = orderIdFromKey(identityKey({ issuer: platform.auth.issuer, subject: TEST_CLIENTS.storefront.id }), key);
  expect(await platform.db.order.findUnique({ where: { id: orderId } })).toBeNull();
  await expect(platform.client.workflow.getHandle(orderWorkflowId(orderId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

/** What the API logged at error level or above (pino: 50 and up). */
const errorsLogged = () => logged.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((e) => e.level >= 50);

/** A copy of `value` with the text at `path` replaced. */
function withText(value: Record<string, unknown>, path: string[], text: string): Record<string, unknown> {
  const copy = structuredClone(value);
  let at: any = copy;
  for (const key of path.slice(0, -1)) at = at[key];
  at[path.at(-1)!] = text;
  return copy;
}

describe('text that cannot be stored is refused at the edge', () => {
  // Every free-text field of an order (the token and the country have patterns of their own).
  const TEXT_FIELDS = [
    ['customerId'],
    ['items', '0', 'sku'],
    ['shippingAddress', 'name'],
    ['shippingAddress', 'line1'],
    ['shippingAddress', 'city'],
    ['shippingAddress', 'postalCode'],
  ];
  const BAD = { NUL: 'a\u0000b', 'a lone high surrogate': 'a\ud800b', 'a lone low surrogate': 'a\udc00b', 'an escape character': 'a\u001bb' };

  for (const path of TEXT_FIELDS) {
    for (const [what, text] of Object.entries(BAD)) {
      it(`POST /orders: ${what} in ${path.join('.')} → 400 naming the field, nothing stored`, async () => {
        const key = randomUUID();
        const res = await place(withText(validOrder(), path, text), key);
        expect(res.status).toBe(400);
        expect(res.body.fields).toEqual([{ field: `body.${path.join('.')}`, message: expect.stringContaining('control characters') }]);
        await expectNothingStored(key);
      });
    }
  }

  it('accepts text that is merely unusual: accents, an emoji (a proper surrogate pair), a tab', async () => {
    const res = await place(validOrder({ customerId: 'zoë-😀', shippingAddress: { ...validOrder().shippingAddress, name: 'Zoë\tBrontë' } }));
    expect(res.status).toBe(202);
    expect((await send('GET', `/orders/${res.body.orderId}`)).body.customerId).toBe('zoë-😀');
  });

  it('the reasons of a cancel and a review are text fields too', async () => {
    const id = randomUUID();
    const cancel = await send('POST', `/orders/${id}/cancel`, { body: { reason: 'oops\u0000' } });
    expect(cancel.status).toBe(400);
    expect(cancel.body.fields.map((f: { field: string }) => f.field)).toEqual(['body.reason']);
    const review = await send('POST', `/orders/${id}/review`, { body: { decision: 'reject', reason: '\ud800' }, as: 'reviewer' });
    expect(review.status).toBe(400);
    expect(review.body.fields.map((f: { field: string }) => f.field)).toEqual(['body.reason']);
    expect(errorsLogged()).toEqual([]);
  });
});

describe('bodies the API does not read', () => {
  const POST_ROUTES: Array<{ path: () => string; body: unknown; as: TestClient }> = [
    { path: () => '/orders', body: validOrder(), as: 'storefront' },
    { path: () => `/orders/${randomUUID()}/cancel`, body: { reason: 'changed my mind' }, as: 'storefront' },
    { path: () => `/orders/${randomUUID()}/review`, body: { decision: 'approve' }, as: 'reviewer' },
  ];
  const post = (route: (typeof POST_ROUTES)[number], key: string, options: { raw?: string | Buffer; headers?: Record<string, string> }) =>
    send('POST', route.path(), { as: route.as, raw: options.raw ?? JSON.stringify(route.body), headers: { 'Idempotency-Key': key, ...options.headers } });

  it('415 for JSON in another charset (latin1) on every POST route, and nothing stored', async () => {
    for (const route of POST_ROUTES) {
      const key = randomUUID();
      const res = await post(route, key, { headers: { 'Content-Type': 'application/json; charset=latin1' } });
      expect(res.status, route.path()).toBe(415);
      expect(res.body).toEqual({ error: 'unsupported_media_type', message: expect.stringContaining('"latin1"') });
      await expectNothingStored(key);
    }
    // UTF-8 said out loud is fine.
    expect((await post(POST_ROUTES[0]!, randomUUID(), { headers: { 'Content-Type': 'application/json; charset=UTF-8' } })).status).toBe(202);
    expect(errorsLogged()).toEqual([]);
  });

  it('415 for an unknown Content-Encoding, 400 for a corrupt or truncated gzip body; a good gzip body is read', async () => {
    for (const route of POST_ROUTES) {
      const key = randomUUID();
      const unknown = await post(route, key, { headers: { 'Content-Encoding': 'zstd-xyz' } });
      expect(unknown.status, route.path()).toBe(415);
      expect(unknown.body.message).toContain('zstd-xyz');
      const corrupt = await post(route, key, { raw: randomBytes(64), headers: { 'Content-Encoding': 'gzip' } });
      expect(corrupt.status, route.path()).toBe(400);
      expect(corrupt.body.error).toBe('bad_request');
      const gzipped = gzipSync(JSON.stringify(route.body));
      const truncated = await post(route, key, { raw: gzipped.subarray(0, gzipped.length - 12), headers: { 'Content-Encoding': 'gzip' } });
      expect(truncated.status, route.path()).toBe(400);
      await expectNothingStored(key);
    }
    const key = randomUUID();
    const gzipped = await post(POST_ROUTES[0]!, key, { raw: gzipSync(JSON.stringify(validOrder())), headers: { 'Content-Encoding': 'gzip' } });
    expect(gzipped.status).toBe(202);
    expect(errorsLogged()).toEqual([]);
  });

  it('400 naming the key for duplicate keys in the JSON (the last one would have won: tok_visa over tok_declined), nothing stored', async () => {
    const { shippingAddress } = validOrder();
    const raw = `{"customerId":"customer-42","items":[{"sku":"MUG-LOGO","quantity":1}],"payment":{"token":"tok_declined","token":"tok_visa"},"shippingAddress":${JSON.stringify(shippingAddress)}}`;
    expect(JSON.parse(raw)).toMatchObject({ payment: { token: 'tok_visa' } });
    const key = randomUUID();
    const res = await place(undefined, key, { raw });
    expect(res.status).toBe(400);
    expect(res.body.fields).toEqual([{ field: 'body.payment.token', message: expect.stringContaining('more than once') }]);
    await expectNothingStored(key);
    const nested = await send('POST', `/orders/${randomUUID()}/review`, { as: 'reviewer', raw: '{"decision":"approve","decision":"reject"}' });
    expect(nested.status).toBe(400);
    expect(nested.body.fields.map((f: { field: string }) => f.field)).toEqual(['body.decision']);
    expect(errorsLogged()).toEqual([]);
  });

  it('an Idempotency-Key over 255 characters is refused with a message saying so; 255 is accepted', async () => {
    const long = 'k'.repeat(256);
    const res = await place(validOrder(), long);
    expect(res.status).toBe(400);
    expect(res.body.fields).toEqual([{ field: 'headers.idempotency-key', message: 'the Idempotency-Key header must be at most 255 characters' }]);
    await expectNothingStored(long);
    expect((await place(validOrder(), `${randomUUID()}-`.padEnd(255, 'k'))).status).toBe(202);
  });

  it('a cross-site form post to cancel (no token, form-encoded) is refused with 401 and the order is not cancelled', async () => {
    const placed = await place(validOrder());
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId as string;
    const form = { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example', Cookie: 'session=anything' };
    const forged = await send('POST', `/orders/${orderId}/cancel`, { as: null, raw: 'reason=gotcha', headers: form });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('access-control-allow-origin')).toBeNull();
    // Even with the right token a form body is not read as a cancel.
    expect(
      (await send('POST', `/orders/${orderId}/cancel`, { raw: 'reason=gotcha', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status,
    ).toBe(415);
    const done = await waitFor(orderId, ENDED);
    expect(done.status).toBe('COMPLETED');
    expect(done.events.map((e: { type: string }) => e.type)).not.toContain('OrderCancelled');
    expect(errorsLogged()).toEqual([]);
  });
});

describe('order IDs in any case', () => {
  it('an upper-case ID names the same order in flight and once ended, and cancels it', async () => {
    const placed = await place(validOrder());
    const orderId = placed.body.orderId as string;
    const upper = orderId.toUpperCase();
    expect(upper).not.toBe(orderId);
    const live = await send('GET', `/orders/${upper}`);
    expect(live.status).toBe(200);
    expect(live.body.orderId).toBe(orderId);
    expect(ENDED).not.toContain(live.body.status);
    const cancelled = await send('POST', `/orders/${upper}/cancel`, { body: {} });
    expect(cancelled.status).toBe(202);
    expect(cancelled.body.orderId).toBe(orderId);
    const done = await eventually(async () => {
      const res = await send('GET', `/orders/${upper}`);
      return ENDED.includes(res.body?.status) ? res : undefined;
    }, 'the order to end');
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ orderId, status: 'CANCELLED' });
    // Read again once ended, now from the orders database, in mixed case too.
    const mixed = orderId.replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c));
    const stored = await send('GET', `/orders/${mixed}`);
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ orderId, status: 'CANCELLED', steps: done.body.steps, compensations: done.body.compensations });
  });
});

describe('rate limits', () => {
  const numbers = (header: string | null) => Object.fromEntries([...(header ?? '').matchAll(/([a-z]+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));

  it('a client over its own limit gets 429 with Retry-After and the RateLimit headers, and recovers after the window', async () => {
    const to = await platform.serve({ rateLimits: { windowMs: 3_000, perClientPerMinute: 100, publicPerMinute: 100 } });
    // 40 a minute is 2 in each 3-second window (the API's default here would be 5).
    const { secret } = await platform.auth.register({ id: 'hardening-tiny', name: 'tiny', scopes: [SCOPES.read], rateLimitPerMinute: 40 });
    const token = await platform.auth.tokenFor('hardening-tiny', secret);
    const get = () => send('GET', `/orders/${randomUUID()}`, { as: null, to, headers: { Authorization: `Bearer ${token}` } });
    const answers: Answer[] = [];
    while (answers.length < 6 && answers.at(-1)?.status !== 429) answers.push(await get());
    const limited = answers.at(-1)!;
    expect(limited.status).toBe(429);
    expect(answers.slice(0, -1).every((a) => a.status === 404)).toBe(true);
    expect(limited.body).toEqual({ error: 'rate_limited', message: expect.any(String) });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);
    expect(numbers(limited.headers.get('ratelimit-policy'))).toMatchObject({ q: 2, w: 3 });
    expect(numbers(limited.headers.get('ratelimit'))).toMatchObject({ r: 0 });
    expect(numbers(answers[0]!.headers.get('ratelimit')).r).toBe(1);

    const since = Date.now();
    const after = await eventually(
      async () => {
        const res = await get();
        return res.status === 429 ? undefined : res;
      },
      'the next window',
      100,
      200,
    );
    expect(after.status).toBe(404);
    expect(Date.now() - since).toBeLessThanOrEqual(retryAfter * 1000 + 1_000);
  });

  it('each request counts once against its limit, the docs page too (one RateLimit header, remaining down by one)', async () => {
    // From an address of its own (the API trusts one proxy in front to say who calls).
    const headers = { 'X-Forwarded-For': '203.0.113.77' };
    const remaining: number[] = [];
    for (const path of ['/livez', '/docs/', '/docs/', '/docs', '/openapi.json', '/docs/']) {
      const res = await fetch(`${base}${path}`, { redirect: 'manual', headers });
      await res.arrayBuffer();
      expect(res.status, path).toBeLessThan(400);
      const header = res.headers.get('ratelimit') ?? '';
      expect(header.split(',').length, `${path}: ${header}`).toBe(1);
      remaining.push(numbers(header).r);
    }
    expect(remaining.map((r) => remaining[0]! - r)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('two API instances on the same database count a client together', async () => {
    const limits = { windowMs: 10_000, perClientPerMinute: 600, publicPerMinute: 600 };
    const [a, b] = [await platform.serve({ rateLimits: limits }), await platform.serve({ rateLimits: limits })];
    // 24 a minute is 4 in each 10-second window.
    const { secret } = await platform.auth.register({ id: 'hardening-shared', name: 'shared', scopes: [SCOPES.read], rateLimitPerMinute: 24 });
    const token = await platform.auth.tokenFor('hardening-shared', secret);
    const get = (to: string) => send('GET', `/orders/${randomUUID()}`, { as: null, to, headers: { Authorization: `Bearer ${token}` } });
    let first = await get(a);
    // All six requests must fall in one window: start in a fresh one if this one is nearly over.
    if (numbers(first.headers.get('ratelimit')).t! < 5) {
      await new Promise((r) => setTimeout(r, numbers(first.headers.get('ratelimit')).t! * 1000 + 100));
      first = await get(a);
    }
    const answers = [first, await get(b), await get(a), await get(b), await get(a), await get(b)];
    expect(answers.map((r) => r.status)).toEqual([404, 404, 404, 404, 429, 429]);
    expect(answers.slice(0, 4).map((r) => numbers(r.headers.get('ratelimit')).r)).toEqual([3, 2, 1, 0]);
  });
});

describe('a deadline on every request', () => {
  it('GET /orders/:id answers 503 with Retry-After within the deadline when Temporal does not answer, instead of hanging', async () => {
    const stalled = await stalledTemporalClient(NAMESPACE);
    cleanups.push(stalled.close);
    const lines: string[] = [];
    const to = await platform.serve({
      client: stalled.client,
      requestTimeoutMs: 1_500,
      log: createLogger('api', 'info', { write: (l: string) => void lines.push(l) }),
    });

    const placed = await place(validOrder());
    expect(placed.status).toBe(202);
    for (const id of [placed.body.orderId as string, randomUUID(), randomUUID()]) {
      const started = Date.now();
      const res = await send('GET', `/orders/${id}`, { to, timeoutMs: 10_000 });
      const took = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('timeout');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(took).toBeGreaterThanOrEqual(1_400);
      expect(took).toBeLessThan(3_500);
    }
    // Placing an order answers 503 too, and the same request retried where Temporal answers places it once.
    const key = randomUUID();
    expect((await place(validOrder(), key, { to })).status).toBe(503);
    const retried = await place(validOrder(), key);
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBe('false');
    // Whichever met the deadline first, the request's timer or the Temporal call carrying it, the answer is the 503, logged with no error.
    const entries = lines.map((l) => JSON.parse(l) as { res?: { statusCode: number }; err?: unknown });
    expect(entries.filter((e) => e.res).map((e) => e.res!.statusCode)).toEqual([503, 503, 503, 503]);
    expect(entries.filter((e) => e.err)).toEqual([]);
  });

  it('answers 503 within the deadline when the orders database stalls, its statements bounded by the same deadline as api/main.ts sets it', async () => {
    const pool = createPool(platform.urls.orders, 2, 'hardening-stalled', undefined, { statementTimeoutMs: 1_500 });
    const db = createOrdersDb(pool);
    cleanups.push(async () => {
      await db.$disconnect();
      await pool.end();
    });
    const lines: string[] = [];
    const to = await platform.serve({ db, requestTimeoutMs: 1_500, log: createLogger('api', 'info', { write: (l: string) => void lines.push(l) }) });
    const placed = await place(validOrder());
    expect((await send('GET', `/orders/${placed.body.orderId}`, { to })).status).toBe(200);

    // Another session holds the orders table: every read of it waits.
    const holder = new pg.Client({ connectionString: platform.urls.orders });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      for (const id of [placed.body.orderId as string, randomUUID(), randomUUID()]) {
        const started = Date.now();
        const res = await send('GET', `/orders/${id}`, { to, timeoutMs: 10_000 });
        const took = Date.now() - started;
        expect(res.status).toBe(503);
        expect(res.body.error).toBe('timeout');
        expect(res.headers.get('retry-after')).toBe('1');
        expect(took).toBeGreaterThanOrEqual(1_400);
        expect(took).toBeLessThan(3_500);
      }
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await send('GET', `/orders/${placed.body.orderId}`, { to })).status).toBe(200);
    const entries = lines.map((l) => JSON.parse(l) as { res?: { statusCode: number }; err?: unknown });
    expect(entries.filter((e) => e.res).map((e) => e.res!.statusCode)).toEqual([200, 503, 503, 503, 200]);
    expect(entries.filter((e) => e.err)).toEqual([]);
  });
});

describe('a part that is down answers 503 with Retry-After, never 500', () => {
  it('the orders database refusing connections: placing, listing and reading answer 503, and nothing is started', async () => {
    const { db, close } = await unreachableOrdersDb();
    cleanups.push(close);
    const lines: string[] = [];
    const to = await platform.serve({ db, log: createLogger('api', 'info', { write: (l: string) => void lines.push(l) }) });

    const placed = await place(validOrder());
    expect(placed.status).toBe(202);
    const key = randomUUID();
    const answers = [await place(validOrder(), key, { to }), await send('GET', '/orders', { to }), await send('GET', `/orders/${placed.body.orderId}`, { to })];
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'unavailable', message: expect.stringContaining('database') });
      expect(res.headers.get('retry-after')).toBe('2');
    }
    await expectNothingStored(key);
    // Logged as errors, with what was down: an operator is told, unlike a deadline's 503.
    const entries = lines.map((l) => JSON.parse(l) as { res?: { statusCode: number }; err?: { message?: string } });
    expect(entries.filter((e) => e.res).map((e) => e.res!.statusCode)).toEqual([503, 503, 503]);
    expect(entries.filter((e) => e.err).length).toBe(3);
  });

  it("an order whose workflow task is failing: a cancel, a review and a read answer 503 (Temporal's FAILED_PRECONDITION), and the order is untouched", async () => {
    // An order's workflow whose every task fails, as after a bad deploy: a raw poller fails its tasks
    // until the third attempt is pending, from which Temporal refuses updates and queries at once.
    const orderId = randomUUID();
    const taskQueue = `hardening-failing-${orderId}`;
    const handle = await platform.client.workflow.start('orderWorkflow', { taskQueue, workflowId: orderWorkflowId(orderId), args: [] });
    cleanups.push(() => handle.terminate('test over').then(() => undefined));
    const service = platform.client.workflowService;
    const pendingAttempt = async () => (await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0;
    while ((await pendingAttempt()) < 3) {
      const task = await platform.client.connection.withDeadline(Date.now() + 30_000, () =>
        service.pollWorkflowTaskQueue({ namespace: NAMESPACE, taskQueue: { name: taskQueue }, identity: 'hardening-broken-worker' }),
      );
      await service.respondWorkflowTaskFailed({
        namespace: NAMESPACE,
        taskToken: task.taskToken,
        cause: temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
        failure: { message: 'a bug in this build' },
        identity: 'hardening-broken-worker',
      });
    }

    const cancel = await send('POST', `/orders/${orderId}/cancel`, { body: {}, as: 'operator' });
    const review = await send('POST', `/orders/${orderId}/review`, { body: { decision: 'approve' }, as: 'reviewer' });
    // Reading it too: the order's live state is a query, refused the same way.
    const read = await send('GET', `/orders/${orderId}`, { as: 'operator' });
    for (const res of [cancel, review, read]) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'unavailable', message: expect.stringContaining('workflow task') });
      expect(res.headers.get('retry-after')).toBe('30');
    }
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(false);
  });
});

describe('browsers', () => {
  it('CORS: a preflight from an origin not on the allow-list is refused with 403 and no Access-Control-Allow-Origin; one on it is allowed', async () => {
    const to = await platform.serve({ corsOrigins: ['https://shop.example'] });
    const preflight = (origin: string, at = to) =>
      fetch(`${at}/orders`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,idempotency-key' },
      });
    const denied = await preflight('https://evil.example');
    expect(denied.status).toBe(403);
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await denied.json()) as { error: string }).error).toBe('cors_denied');
    // The default API allows no origin at all.
    expect((await preflight('https://shop.example', platform.baseUrl)).status).toBe(403);

    const allowed = await preflight('https://shop.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    expect(allowed.headers.get('vary')).toContain('Origin');

    // The answers themselves: readable by the allowed origin only.
    const id = randomUUID();
    const fromEvil = await send('GET', `/orders/${id}`, { to, headers: { Origin: 'https://evil.example' } });
    expect(fromEvil.headers.get('access-control-allow-origin')).toBeNull();
    const fromShop = await send('GET', `/orders/${id}`, { to, headers: { Origin: 'https://shop.example' } });
    expect(fromShop.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(fromShop.headers.get('access-control-expose-headers')).toContain('Retry-After');
  });

  it('order data is never stored by a browser or a proxy: Cache-Control no-store', async () => {
    const placed = await place(validOrder());
    expect(placed.headers.get('cache-control')).toBe('no-store');
    const read = await send('GET', `/orders/${placed.body.orderId}`);
    expect(read.status).toBe(200);
    expect(read.headers.get('cache-control')).toBe('no-store');
    const refused = await send('GET', `/orders/${placed.body.orderId}`, { as: null });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('cache-control')).toBe('no-store');
  });

  it('security headers from helmet on every answer, and no X-Powered-By', async () => {
    for (const [path, who] of [
      ['/orders/' + randomUUID(), 'storefront'],
      ['/products', null],
      ['/docs/', null],
    ] as const) {
      const res = await send('GET', path, { as: who });
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('strict-transport-security'), path).toContain('max-age=');
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'self'");
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });
});
