import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDER_TOPICS } from '../../contracts/orders';
import { createLogger } from '../../lib/logger';
import type { TestClient } from '../support/auth';
import { eventually, request, validOrder } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';
import { parsePrometheus, sumOf } from '../support/prometheus';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../support/webhook-receiver';

/**
 * Webhooks through the real API, relay, workflows and HTTP: signed deliveries that survive a
 * receiver failing, hanging and dawdling on purpose, in order per order; an endpoint disabled
 * after failing for long enough, whose events wait and arrive once it is enabled; rotation,
 * replay, the signature refusing a tampered body or a stale timestamp; and the API's refusals.
 */
const logLines: string[] = [];
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'webhooks',
    namespace: 'webhooks',
    env: {
      CARRIER_PICKUP_DELAY_MS: '200',
      RELAY_POLL_INTERVAL_MS: '100',
      WEBHOOK_TIMEOUT_MS: '600',
      WEBHOOK_RETRY_INITIAL: '200ms',
      WEBHOOK_RETRY_MAX_INTERVAL: '1s',
      WEBHOOK_DISABLE_AFTER_FAILURES: '4',
      WEBHOOK_DISABLE_AFTER: '1s',
    },
    log: createLogger('test-pools', 'warn', { write: (line: string) => void logLines.push(line) }),
  });
});

afterAll(async () => {
  await Promise.all(receivers.map((r) => r.stop()));
  await platform?.stop();
});

const call = async (who: TestClient, method: string, path: string, body?: unknown) =>
  request(platform.baseUrl, method, path, { headers: await platform.auth.as(who), ...(body === undefined ? {} : { body }) });

async function receiver(...args: Parameters<typeof startWebhookReceiver>) {
  const r = await startWebhookReceiver(...args);
  receivers.push(r);
  return r;
}

async function register(who: TestClient, url: string, events: readonly string[] = ORDER_TOPICS) {
  const res = await call(who, 'POST', '/webhooks', { url, events });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.headers.get('location')).toBe(`/webhooks/${res.body.id}`);
  expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  return res.body as { id: string; secret: string };
}

async function place(who: TestClient, overrides: Record<string, unknown> = {}) {
  const res = await request(platform.baseUrl, 'POST', '/orders', {
    headers: { ...(await platform.auth.as(who)), 'Idempotency-Key': randomUUID() },
    body: validOrder({ email: 'grace@example.com', ...overrides }),
  });
  expect(res.status).toBe(202);
  return res.body.orderId as string;
}

const position = (eventId: string) => Number(eventId.replace('evt_', ''));
const COMPLETED = ['order.placed', 'order.stock_reserved', 'order.payment_authorised', 'order.shipped', 'order.completed'];
const DECLINED = ['order.placed', 'order.stock_reserved', 'order.failed'];

/** Waits until every order's expected topics have been accepted by the receiver, then returns the accepted requests. */
const acceptedAll = (r: WebhookReceiver, expected: Map<string, string[]>, what: string) =>
  eventually(
    async () => {
      const accepted = r.accepted();
      const done = [...expected].every(([orderId, topics]) =>
        topics.every((t) => accepted.some((a) => a.event.data.orderId === orderId && a.event.type === t)),
      );
      return done ? accepted : undefined;
    },
    what,
    600,
    100,
  );

const verifies = (secret: string, request: Pick<ReceivedWebhook, 'id' | 'timestamp' | 'signature' | 'body'>) =>
  new Webhook(secret).verify(request.body, { 'webhook-id': request.id, 'webhook-timestamp': request.timestamp, 'webhook-signature': request.signature });

describe('webhooks', () => {
  it('a receiver that fails, times out and answers slowly still gets every event, signed, in order per order; repeats carry the same event ID', async () => {
    // By event: the first attempt fails (500), hangs past the 600 ms timeout, or answers slowly; later attempts are answered.
    const r = await receiver(({ id, attempt }) => {
      const kind = position(id) % 4;
      if (attempt === 1 && kind === 0) return { status: 500 };
      if (attempt === 1 && kind === 1) return { status: 200, delayMs: 900 };
      if (kind === 2) return { status: 200, delayMs: 150 };
      return { status: 204 };
    });
    const { id, secret } = await register('storefront', r.url);
    const completed = await Promise.all([place('storefront'), place('storefront')]);
    const declined = await place('storefront', { payment: { token: 'tok_declined' } });
    const expected = new Map([...completed.map((o) => [o, COMPLETED] as const), [declined, DECLINED]]);
    await acceptedAll(r, expected, 'every event accepted');

    const log = r.log();
    // Every request verifies with the endpoint's secret, and carries nothing personal.
    for (const entry of log) {
      expect(verifies(secret, entry)).toEqual(entry.event);
      expect(entry.body).not.toMatch(/grace@example\.com|Grace Hopper|Navy Yard|tok_/);
      expect(Object.keys(entry.event).sort()).toEqual(['data', 'timestamp', 'type']);
    }
    // Each event ID names one event and one body: a repeat is the same event again.
    const byId = new Map<string, ReceivedWebhook[]>();
    for (const entry of log) byId.set(entry.id, [...(byId.get(entry.id) ?? []), entry]);
    for (const [eventId, entries] of byId) {
      expect(new Set(entries.map((e) => e.body)).size, eventId).toBe(1);
    }
    // Failures and timeouts were retried: some events came more than once, and every one was accepted exactly as often as once or more.
    expect([...byId.values()].some((entries) => entries.length > 1)).toBe(true);
    for (const [orderId, topics] of expected) {
      const forOrder = log.filter((e) => e.event.data.orderId === orderId);
      // In order: no request for an event comes after a request for a later one (a repeat of the same one may).
      const positions = forOrder.map((e) => position(e.id));
      expect(positions, orderId).toEqual([...positions].sort((a, b) => a - b));
      // The first acceptance of each event, in the order the saga published them.
      const firsts = [...new Map(forOrder.filter((e) => e.status >= 200 && e.status < 300).map((e) => [e.id, e.event.type])).values()];
      expect(firsts, orderId).toEqual(topics);
    }
    // The delivery log shows the failures as they happened.
    const deliveries = (await call('storefront', 'GET', `/webhooks/${id}/deliveries`)).body.deliveries as Array<Record<string, any>>;
    expect(deliveries.some((d) => d.outcome === 'FAILED' && d.statusCode === 500)).toBe(true);
    expect(deliveries.some((d) => d.outcome === 'FAILED' && /timed out after 600 ms/.test(d.error))).toBe(true);
    expect(deliveries.filter((d) => d.outcome === 'DELIVERED').length).toBeGreaterThanOrEqual(2 * 5 + 3);
    for (const d of deliveries)
      expect(d).toEqual(expect.objectContaining({ eventId: expect.stringMatching(/^evt_/), orderId: expect.any(String), at: expect.any(String) }));
  });

  it('disables an endpoint that keeps failing, keeps its events, and delivers them in order once it is enabled', async () => {
    const r = await receiver(() => ({ status: 503 }));
    const { id, secret } = await register('otherStorefront', r.url, ['order.placed', 'order.completed']);
    const first = await place('otherStorefront');
    const disabled = await eventually(
      async () => {
        const res = await call('otherStorefront', 'GET', `/webhooks/${id}`);
        return res.body.status === 'DISABLED' ? res.body : undefined;
      },
      'the endpoint to be disabled',
      300,
      100,
    );
    expect(disabled.disabledReason).toMatch(/4 or more failed attempts in a row .* HTTP 503/);
    // Reported: in the delivery log, at warn, and in the metric.
    const log = (await call('otherStorefront', 'GET', `/webhooks/${id}/deliveries`)).body.deliveries as Array<Record<string, any>>;
    expect(log[0]).toEqual(expect.objectContaining({ outcome: 'ENDPOINT_DISABLED', eventId: expect.any(String), error: disabled.disabledReason }));
    expect(log.filter((d) => d.outcome === 'FAILED').length).toBeGreaterThanOrEqual(4);
    const warned = logLines.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l.endpointId === id);
    expect(warned).toEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('webhook endpoint disabled') }));
    const metrics = parsePrometheus(await (await fetch(`${platform.pools.notifications.url}/metrics`)).text());
    expect(sumOf(metrics, 'webhook_endpoints_disabled_total')).toBeGreaterThanOrEqual(1);

    // While it is disabled, another order's events wait; nothing is sent.
    const attemptsWhenDisabled = r.log().length;
    const second = await place('otherStorefront');
    await eventually(
      async () => ((await call('operator', 'GET', `/orders/${second}`)).body.status === 'COMPLETED' ? true : undefined),
      'the second order to complete',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(r.log().length).toBe(attemptsWhenDisabled);

    r.behave(() => ({ status: 200 }));
    const enabled = await call('otherStorefront', 'POST', `/webhooks/${id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body.status).toBe('ENABLED');
    const accepted = await acceptedAll(
      r,
      new Map([
        [first, ['order.placed', 'order.completed']],
        [second, ['order.placed', 'order.completed']],
      ]),
      'the backlog to be delivered',
    );
    expect(accepted.map((a) => [a.event.data.orderId, a.event.type])).toEqual([
      [first, 'order.placed'],
      [first, 'order.completed'],
      [second, 'order.placed'],
      [second, 'order.completed'],
    ]);
    for (const a of accepted) expect(verifies(secret, a)).toEqual(a.event);
    const after = (await call('otherStorefront', 'GET', `/webhooks/${id}/deliveries`)).body.deliveries as Array<Record<string, any>>;
    expect(after.map((d) => d.outcome)).toContain('ENDPOINT_ENABLED');
  });

  it('signatures: a tampered body or a stale timestamp fails the check; a rotation signs with both secrets; a replay sends the same event ID again', async () => {
    const r = await receiver();
    const { id, secret } = await register('storefront', r.url, ['order.placed']);
    const orderId = await place('storefront');
    const [delivery] = await acceptedAll(r, new Map([[orderId, ['order.placed']]]), 'the first event');
    expect(verifies(secret, delivery!)).toEqual(delivery!.event);

    expect(() => verifies(secret, { ...delivery!, body: delivery!.body.replace(orderId, randomUUID()) })).toThrow(/No matching signature/);
    expect(() => verifies(secret, { ...delivery!, body: `${delivery!.body} ` })).toThrow(/No matching signature/);
    // Signed correctly, but ten minutes ago: outside the five minutes Standard Webhooks tolerates.
    const tenMinutesAgo = new Date(Date.now() - 10 * 60_000);
    const stale = {
      ...delivery!,
      timestamp: String(Math.floor(tenMinutesAgo.getTime() / 1000)),
      signature: new Webhook(secret).sign(delivery!.id, tenMinutesAgo, delivery!.body),
    };
    expect(() => verifies(secret, stale)).toThrow(/timestamp too old/);
    expect(() => verifies(secret, { ...delivery!, timestamp: String(Number(delivery!.timestamp) - 1) })).toThrow(/No matching signature/);

    const rotated = await call('storefront', 'POST', `/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(secret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt)).toBeGreaterThan(Date.now());
    expect((await call('storefront', 'GET', `/webhooks/${id}`)).body.previousSecretExpiresAt).toBe(rotated.body.previousSecretExpiresAt);

    const replay = await call('storefront', 'POST', `/webhooks/${id}/deliveries/${delivery!.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual({ eventId: delivery!.id, status: 'QUEUED' });
    const again = await eventually(async () => r.accepted().find((a) => a.id === delivery!.id && a.attempt === 2), 'the replayed event');
    expect(again.body).toBe(delivery!.body);
    // Two signatures during the grace period, one per secret: either secret verifies it alone.
    expect(again.signature.split(' ')).toHaveLength(2);
    expect(verifies(secret, again)).toEqual(again.event);
    expect(verifies(rotated.body.secret, again)).toEqual(again.event);
    expect(() => verifies(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, again)).toThrow(/No matching signature/);
    expect((await call('storefront', 'POST', `/webhooks/${id}/deliveries/evt_999999999/replay`)).status).toBe(404);
  });

  it('refuses what it must not send to, and another client’s endpoint is 404 as an unknown one', async () => {
    const bad = async (url: unknown, events: unknown = ['order.placed']) => {
      const res = await call('storefront', 'POST', '/webhooks', { url, events });
      expect(res.status, JSON.stringify(url)).toBe(400);
      return res.body.fields as Array<{ field: string; message: string }>;
    };
    expect(await bad('not a url')).toEqual([{ field: 'body.url', message: expect.stringContaining('absolute https') }]);
    expect(await bad('http://shop.example/hook')).toEqual([{ field: 'body.url', message: expect.stringContaining('must be https:') }]);
    expect(await bad('https://user:pass@shop.example/hook')).toEqual([{ field: 'body.url', message: expect.stringContaining('credentials') }]);
    expect(await bad('https://10.1.2.3/hook')).toEqual([{ field: 'body.url', message: 'must not point at a private address' }]);
    expect(await bad('https://169.254.169.254/latest/meta-data')).toEqual([{ field: 'body.url', message: 'must not point at a link-local address' }]);
    expect(await bad('https://[::ffff:10.0.0.1]/hook')).toEqual([{ field: 'body.url', message: 'must not point at a private address' }]);
    expect(await bad('ftp://shop.example/hook')).toEqual([{ field: 'body.url', message: expect.stringContaining('https:') }]);
    expect((await bad('https://shop.example/hook', ['order.exploded'])).map((f) => f.field)).toEqual(['body.events.0']);
    expect((await bad('https://shop.example/hook', [])).map((f) => f.field)).toEqual(['body.events']);
    expect((await bad('https://shop.example/hook', ['order.placed', 'order.placed'])).map((f) => f.field)).toEqual(['body.events']);

    const theirs = await register('otherStorefront', 'https://webhooks.invalid/hook', ['order.placed']);
    const unknown = randomUUID();
    for (const [method, suffix] of [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/enable'],
      ['POST', '/rotate-secret'],
      ['GET', '/deliveries'],
      ['POST', '/deliveries/evt_1/replay'],
    ] as const) {
      const mine = await call('storefront', method, `/webhooks/${theirs.id}${suffix}`);
      const none = await call('storefront', method, `/webhooks/${unknown}${suffix}`);
      expect([mine.status, none.status], `${method} ${suffix}`).toEqual([404, 404]);
      expect(mine.body).toEqual(JSON.parse(JSON.stringify(none.body).replaceAll(unknown, theirs.id)));
    }
    expect((await call('storefront', 'GET', '/webhooks')).body.webhooks.map((w: { id: string }) => w.id)).not.toContain(theirs.id);
    // Still there for its owner; deleted, it is gone for everyone.
    expect((await call('otherStorefront', 'GET', `/webhooks/${theirs.id}`)).status).toBe(200);
    expect((await call('otherStorefront', 'DELETE', `/webhooks/${theirs.id}`)).body).toEqual({ id: theirs.id, deleted: true });
    expect((await call('otherStorefront', 'GET', `/webhooks/${theirs.id}`)).status).toBe(404);
    // The order's own API never shows the email.
    const orderId = await place('storefront');
    expect(JSON.stringify((await call('storefront', 'GET', `/orders/${orderId}`)).body)).not.toContain('grace@example.com');
  });
});
