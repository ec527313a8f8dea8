import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailActivities, type Mailer } from '../../activities/notifications/email';
import { createRelay } from '../../activities/notifications/relay';
import { addressKind, webhookUrlProblem, type Resolver } from '../../activities/notifications/targets';
import { createWebhookActivities, type WebhookSettings } from '../../activities/notifications/webhooks';
import { createOrderActivities, createOrderEventsRead } from '../../activities/orders';
import { createOrdersDb, type OrdersDb } from '../../activities/orders/db';
import { NotificationErrorType, type OrderEmailInput, type OrderEventRecord } from '../../contracts/notifications';
import { orderWorkflowId, stepKey } from '../../contracts/orders';
import { createPool, type Pool } from '../../lib/db';
import { createLogger } from '../../lib/logger';
import { keyringFromEnv } from '../../lib/temporal/codec';
import { seal, unseal } from '../../lib/temporal/sealed';
import { createTestDatabases } from '../support/databases';
import { startWebhookReceiver } from '../support/webhook-receiver';
import { runActivity } from './helpers';

/**
 * The notifications service's activities and relay against a real PostgreSQL: the URL and address
 * rules, the check on every delivery of what a host resolves to, sealed values, an email sent once
 * however its attempts overlap, the orders service's event read, and the relay's gaps.
 */
const keyring = keyringFromEnv();
const log = createLogger('test', 'silent');
let urls: Awaited<ReturnType<typeof createTestDatabases>>;
let pool: Pool;
let ordersPool: Pool;
let ordersDb: OrdersDb;

beforeAll(async () => {
  urls = await createTestDatabases('act_notifications');
  pool = createPool(urls.notifications, 4, 'test');
  ordersPool = createPool(urls.orders, 2, 'test');
  ordersDb = createOrdersDb(ordersPool);
});

afterAll(async () => {
  await ordersDb?.$disconnect();
  await Promise.all([pool?.end(), ordersPool?.end()]);
});

const settings: WebhookSettings = {
  allowLoopbackHttp: false,
  requestTimeoutMs: 1_000,
  retryInitialMs: 100,
  retryMaxIntervalMs: 1_000,
  retryForMs: 60_000,
  disableAfterFailures: 100,
  disableAfterMs: 60_000,
  secretGraceMs: 60_000,
};
const OWNER = 'https://auth.test#shop';

/** A resolver that knows a few names, as a DNS that an attacker controls would answer. */
const resolverOf =
  (names: Record<string, string>): Resolver =>
  (hostname, _options, callback) => {
    const address = names[hostname];
    if (!address) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
  };

/** An endpoint with one event waiting. */
async function endpointWithEvent(acts: ReturnType<typeof createWebhookActivities>, url: string) {
  const endpointId = randomUUID();
  await runActivity(acts.createWebhookEndpoint, { endpointId, owner: OWNER, url, events: ['order.placed'] });
  const eventId = `evt_${Math.floor(Math.random() * 1e9)}`;
  await pool.query(`INSERT INTO webhook_messages (endpoint_id, event_id, order_id, type, payload) VALUES ($1, $2, $3, 'order.placed', '{}')`, [
    endpointId,
    eventId,
    randomUUID(),
  ]);
  return { endpointId, eventId };
}
const attempts = async (endpointId: string) =>
  (await pool.query<{ outcome: string; error: string | null }>(`SELECT outcome, error FROM webhook_attempts WHERE endpoint_id = $1 ORDER BY id`, [endpointId]))
    .rows;

describe('webhook targets', () => {
  it('accepts https: to public hosts only; plain http: to loopback only where allowed', () => {
    const strict = { allowLoopbackHttp: false };
    const local = { allowLoopbackHttp: true };
    expect(webhookUrlProblem('https://shop.example/hook', strict)).toBeUndefined();
    expect(webhookUrlProblem('https://93.184.215.14:8443/hook?x=1', strict)).toBeUndefined();
    expect(webhookUrlProblem('http://shop.example/hook', strict)).toBe('must be https:');
    expect(webhookUrlProblem('http://shop.example/hook', local)).toMatch(/plain http: only to 127.0.0.1, localhost or \[::1\]/);
    for (const url of ['http://127.0.0.1:9/h', 'http://localhost:9/h', 'http://[::1]:9/h', 'https://localhost/h']) {
      expect(webhookUrlProblem(url, local), url).toBeUndefined();
      expect(webhookUrlProblem(url, strict), url).toBeDefined();
    }
    expect(webhookUrlProblem('https://user:pw@shop.example/', strict)).toMatch(/credentials/);
    expect(webhookUrlProblem('https://shop.example/#x', strict)).toMatch(/fragment/);
    expect(webhookUrlProblem('javascript:alert(1)', strict)).toBe('must be https:');
    // Every spelling of an internal address is the address.
    for (const [url, kind] of [
      ['https://10.0.0.1/', 'private'],
      ['https://2130706433/', 'loopback'],
      ['https://0x7f.1/', 'loopback'],
      ['https://[::ffff:192.168.1.1]/', 'private'],
      ['https://[fd00::1]/', 'private'],
      ['https://169.254.169.254/', 'link-local'],
      ['https://[fe80::1]/', 'link-local'],
      ['https://100.64.0.1/', 'private'],
      ['https://0.0.0.0/', 'reserved'],
      ['https://[::]/', 'reserved'],
    ]) {
      expect(webhookUrlProblem(url!, strict), url).toBe(`must not point at a ${kind} address`);
      if (kind !== 'loopback') expect(webhookUrlProblem(url!, local), url).toBe(`must not point at a ${kind} address`);
    }
    expect(addressKind('8.8.8.8')).toBe('public');
    expect(addressKind('2606:4700::1111')).toBe('public');
  });

  it('refuses, on every delivery, a host that resolves to a private, link-local or loopback address', async () => {
    const acts = createWebhookActivities({
      pool,
      keyring,
      log,
      settings,
      resolve: resolverOf({ 'hooks.shop.example': '10.0.0.7', 'meta.shop.example': '169.254.169.254', 'self.shop.example': '127.0.0.1' }),
    });
    for (const [host, kind] of [
      ['hooks.shop.example', 'private'],
      ['meta.shop.example', 'link-local'],
      ['self.shop.example', 'loopback'],
    ]) {
      const { endpointId } = await endpointWithEvent(acts, `https://${host}/hook`);
      const round = await runActivity(acts.deliverPendingWebhooks, { endpointId });
      expect(round).toEqual({ state: 'retry', delivered: 0, retryInMs: expect.any(Number) });
      expect(await attempts(endpointId)).toEqual([{ outcome: 'FAILED', error: `refused: ${host} resolves to a ${kind} address` }]);
    }
  });

  it('delivers to loopback where it is allowed, signed, and records the attempt', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const acts = createWebhookActivities({
        pool,
        keyring,
        log,
        settings: { ...settings, allowLoopbackHttp: true },
        resolve: resolverOf({ localhost: '127.0.0.1' }),
      });
      const { endpointId, eventId } = await endpointWithEvent(acts, receiver.url.replace('127.0.0.1', 'localhost'));
      expect(await runActivity(acts.deliverPendingWebhooks, { endpointId })).toEqual({ state: 'idle', delivered: 1 });
      expect(receiver.log().map((r) => [r.id, r.signature.startsWith('v1,')])).toEqual([[eventId, true]]);
      expect(await attempts(endpointId)).toEqual([{ outcome: 'DELIVERED', error: null }]);
      // Delivered is delivered: a second round sends nothing.
      expect(await runActivity(acts.deliverPendingWebhooks, { endpointId })).toEqual({ state: 'idle', delivered: 0 });
      expect(receiver.log()).toHaveLength(1);
    } finally {
      await receiver.stop();
    }
  });

  it('keeps secrets sealed: a value opens only for its purpose and with its keyring; the row holds no plain secret', async () => {
    const sealed = seal(keyring, 'whsec_abc', 'webhook-secret');
    expect(sealed).toMatch(/^v1\.test-run\./);
    expect(unseal(keyring, sealed, 'webhook-secret')).toBe('whsec_abc');
    expect(() => unseal(keyring, sealed, 'customer-email')).toThrow();
    expect(() => unseal(keyring, sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA'), 'webhook-secret')).toThrow();
    const acts = createWebhookActivities({ pool, keyring, log, settings });
    const endpointId = randomUUID();
    const created = await runActivity(acts.createWebhookEndpoint, { endpointId, owner: OWNER, url: 'https://shop.example/h', events: ['order.placed'] });
    // A retry of the creation returns the same secret rather than a new one nobody saw.
    expect((await runActivity(acts.createWebhookEndpoint, { endpointId, owner: OWNER, url: 'https://shop.example/h', events: ['order.placed'] })).secret).toBe(
      created.secret,
    );
    const { rows } = await pool.query<{ secret: string }>(`SELECT secret FROM webhook_endpoints WHERE id = $1`, [endpointId]);
    expect(rows[0]!.secret).not.toContain(created.secret.slice(6));
    // A rotation retried with its ID rotates once.
    const rotated = await runActivity(acts.rotateWebhookSecret, { endpointId, rotationId: 'r-1' });
    expect((await runActivity(acts.rotateWebhookSecret, { endpointId, rotationId: 'r-1' })).secret).toBe(rotated.secret);
    const { rows: after } = await pool.query<{ previous_secret: string }>(`SELECT previous_secret FROM webhook_endpoints WHERE id = $1`, [endpointId]);
    expect(unseal(keyring, after[0]!.previous_secret, 'webhook-secret')).toBe(created.secret);
  });
});

describe('customer emails', () => {
  const input = (): OrderEmailInput => ({
    eventId: `evt_${Math.floor(Math.random() * 1e9)}`,
    orderId: randomUUID(),
    topic: 'order.placed',
    to: seal(keyring, 'ada@example.com', 'customer-email'),
    at: new Date().toISOString(),
    data: { items: [{ sku: 'MUG-LOGO', quantity: 2 }] },
  });

  it('sends one message per event, however its attempts repeat or overlap', async () => {
    const sent: Array<Parameters<Mailer['sendMail']>[0]> = [];
    const mailer: Mailer = {
      sendMail: async (message) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        sent.push(message);
      },
      close: () => undefined,
    };
    const acts = createEmailActivities({ pool, keyring, mailer, from: 'Shop <orders@shop.example>', log });
    const email = input();
    const [a, b] = await Promise.all([runActivity(acts.sendOrderEmail, email), runActivity(acts.sendOrderEmail, email, 2)]);
    expect([a.sent, b.sent].sort()).toEqual([false, true]);
    expect((await runActivity(acts.sendOrderEmail, email, 3)).sent).toBe(false);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toEqual(
      expect.objectContaining({
        to: 'ada@example.com',
        messageId: `<${email.eventId}.order-email@shop.example>`,
        subject: expect.stringContaining(email.orderId.slice(0, 8).toUpperCase()),
      }),
    );
    expect(sent[0]!.text).toContain('2 × MUG-LOGO');
  });

  it('a refusal for good is final, and its failure names no address; a server away is retried', async () => {
    const failing = (err: object): Mailer => ({
      sendMail: async () => Promise.reject(Object.assign(new Error('550 <ada@example.com>: no such user'), err)),
      close: () => undefined,
    });
    const rejected = createEmailActivities({
      pool,
      keyring,
      mailer: failing({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' }),
      from: 'orders@shop.example',
      log,
    });
    const email = input();
    const err = await runActivity(rejected.sendOrderEmail, email).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: NotificationErrorType.EmailRejected, nonRetryable: true, message: 'SMTP RCPT TO EENVELOPE 550' });
    const away = createEmailActivities({ pool, keyring, mailer: failing({ code: 'ECONNECTION' }), from: 'orders@shop.example', log });
    const retried = await runActivity(away.sendOrderEmail, email).catch((e: unknown) => e);
    expect(retried).not.toBeInstanceOf(ApplicationFailure);
    expect(String(retried)).not.toContain('ada@');
    // Nothing was recorded as sent: a later attempt sends it.
    const { rows } = await pool.query(`SELECT sent_at FROM sent_emails WHERE event_id = $1`, [email.eventId]);
    expect(rows).toEqual([]);
  });
});

describe('the order event log and the relay', () => {
  it('the orders read lists every entry in order, data only for published events, the address sealed and only for emailed ones', async () => {
    const acts = createOrderActivities({ db: ordersDb });
    const orderId = randomUUID();
    const key = (step: string) => stepKey(orderWorkflowId(orderId), step);
    await acts.recordOrderPlaced({
      orderId,
      placedBy: OWNER,
      customerId: 'c-1',
      requestHash: 'a'.repeat(64),
      items: [{ sku: 'MUG-LOGO', quantity: 1 }],
      shippingAddress: { name: 'Ada', line1: '1 Road', city: 'London', postalCode: 'N1', country: 'GB' },
      email: 'ada@example.com',
      idempotencyKey: key('OrderPlaced'),
    });
    await acts.recordOrderEvents({
      events: [
        { orderId, type: 'StockReserved', idempotencyKey: key('StockReserved'), status: 'RESERVING_STOCK', data: { total: 1299, currency: 'EUR' } },
        {
          orderId,
          type: 'CompensationRan',
          idempotencyKey: key('CompensationRan:StockReleased'),
          status: 'COMPENSATING',
          data: { compensation: 'StockReleased' },
        },
        {
          orderId,
          type: 'OrderFailed',
          idempotencyKey: key('OrderFailed'),
          status: 'FAILED',
          failureReason: 'PAYMENT_DECLINED',
          data: { reason: 'PAYMENT_DECLINED' },
        },
      ],
    });
    const read = createOrderEventsRead({ db: ordersDb, keyring });
    const page = await read(new URLSearchParams({ after: '0', limit: '10' }));
    const mine = page.events.filter((e) => e.orderId === orderId);
    expect(mine.map((e) => [e.type, e.data !== undefined, e.email !== undefined])).toEqual([
      ['OrderPlaced', true, true],
      ['StockReserved', true, false],
      ['CompensationRan', false, false],
      ['OrderFailed', true, true],
    ]);
    expect(JSON.stringify(page)).not.toContain('ada@example.com');
    expect(unseal(keyring, mine[0]!.email!, 'customer-email')).toBe('ada@example.com');
    expect(page.head).toBe(mine.at(-1)!.id);
    expect((await read(new URLSearchParams({ after: mine.at(-1)!.id }))).events).toEqual([]);
  });

  it('hands on a position committed late, skips one never filled, and never saves its place past an open gap', async () => {
    const endpointId = randomUUID();
    const owner = 'https://auth.test#relay-shop';
    await pool.query(
      `INSERT INTO webhook_endpoints (id, owner, url, events, secret) VALUES ($1, $2, 'https://shop.example/h', '{order.placed,order.completed}', 'x')`,
      [endpointId, owner],
    );
    const log: OrderEventRecord[] = [];
    const entry = (id: number, type: string): OrderEventRecord => ({
      id: String(id),
      orderId: randomUUID(),
      type,
      placedBy: owner,
      at: new Date().toISOString(),
      data: {},
    });
    // Positions 3 and 5 are not there yet: 3 will commit late, 5 never will.
    log.push(entry(1, 'OrderPlaced'), entry(2, 'StockReserved'), entry(4, 'OrderPlaced'), entry(6, 'OrderCompleted'));
    const woken: string[] = [];
    const relay = createRelay({
      pool,
      databaseUrl: urls.notifications,
      readEvents: async (after, limit) => ({
        events: log
          .filter((e) => BigInt(e.id) > after)
          .sort((a, b) => Number(a.id) - Number(b.id))
          .slice(0, limit),
        head: '6',
      }),
      temporal: { wakeEndpoint: async ({ id }) => void woken.push(id), startEmail: async () => undefined },
      settings: { pollIntervalMs: 20, batch: 100, gapTimeoutMs: 1_500, startAt: 'beginning', emails: false },
      log: createLogger('test', 'silent'),
    });
    const queued = async () =>
      (await pool.query<{ event_id: string }>(`SELECT event_id FROM webhook_messages WHERE endpoint_id = $1 ORDER BY id`, [endpointId])).rows.map(
        (r) => r.event_id,
      );
    const saved = async () => (await pool.query<{ position: string }>(`SELECT position::text FROM relay_cursors`)).rows[0]?.position;
    const stop = new AbortController();
    const running = relay.run(stop.signal);
    try {
      const until = async <T>(check: () => Promise<T | undefined>) => {
        for (let i = 0; i < 200; i++) {
          const value = await check();
          if (value !== undefined) return value;
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        throw new Error('gave up');
      };
      await until(async () => ((await queued()).length === 3 ? true : undefined));
      expect(await queued()).toEqual(['evt_1', 'evt_4', 'evt_6']);
      // Saved below the open gap at 3, even though 4 and 6 are handed on.
      await until(async () => ((await saved()) === '2' ? true : undefined));
      log.push(entry(3, 'OrderPlaced'));
      await until(async () => ((await queued()).includes('evt_3') ? true : undefined));
      // 5 never comes: once its gap times out the place moves past it.
      await until(async () => ((await saved()) === '6' ? true : undefined));
      expect(await queued()).toEqual(['evt_1', 'evt_4', 'evt_6', 'evt_3']);
      expect(woken).toContain(endpointId);
    } finally {
      stop.abort();
      await running;
    }
  });
});
