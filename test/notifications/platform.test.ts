import { notificationsBundlePath, orderBundlePath } from '../support/bundles';
import { randomUUID } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SCOPES } from '../../contracts/auth';
import { orderEmailWorkflowId } from '../../contracts/notifications';
import { ORDER_EVENT_TOPICS, orderWorkflowId, type OrderEventTopic } from '../../contracts/orders';
import { ensureClients, tokenSource } from '../../lib/infra/clients';
import { DATABASES, databaseUrlVar, type DatabaseName } from '../../lib/infra/databases';
import { startMailServer, type RunningMailServer } from '../../lib/infra/mail';
import { DATA_DIR } from '../../lib/infra/paths';
import { launchPlatform, waitForHttp, type RunningPlatform } from '../../lib/infra/platform';
import { freeFixedPort } from '../../lib/net';
import { createTestDatabases, queryDatabase } from '../support/databases';
import { eventually, requestRetrying, validOrder } from '../support/http';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

/**
 * The notifications pool as a real process beside the rest of the platform, SIGKILLed twice while
 * it is delivering: every webhook still arrives (signed, in order per order), every customer gets
 * exactly one email per event (placed, shipped, completed / failed / cancelled), and no log line
 * of any process, nor any raw workflow history, holds a customer's address.
 */
const NAMESPACE = 'notifications-e2e';
const logDir = join(DATA_DIR, 'test', `notifications-e2e-logs-${process.pid}`);
let urls: Record<DatabaseName, string>;
let platform: RunningPlatform;
let mail: RunningMailServer;
let receiver: WebhookReceiver;
let token: () => Promise<string>;

beforeAll(async () => {
  [urls, mail] = await Promise.all([createTestDatabases('notif_e2e'), startMailServer()]);
  // Slow on purpose, so the kills land while a delivery is in flight.
  receiver = await startWebhookReceiver(() => ({ status: 200, delayMs: 250 }));
  platform = await launchPlatform({
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: NAMESPACE,
      WORKFLOW_BUNDLE_PATH: await orderBundlePath(),
      NOTIFICATIONS_WORKFLOW_BUNDLE_PATH: await notificationsBundlePath(),
      // info: the lines a customer's address could slip into are there to be searched
      LOG_LEVEL: 'info',
      CARRIER_PICKUP_DELAY_MS: '300',
      REVIEW_ABOVE: '0',
      SMTP_URL: mail.smtpUrl,
      MAIL_FROM: 'Test shop <orders@shop.example>',
      WEBHOOKS_ALLOW_LOOPBACK_HTTP: 'true',
      RELAY_POLL_INTERVAL_MS: '100',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_RETRY_INITIAL: '200ms',
      WEBHOOK_RETRY_MAX_INTERVAL: '1s',
      ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
    },
    counts: { orders: 1, inventory: 1, payments: 1, shipping: 1, notifications: 1 },
    apiPort: await freeFixedPort(),
    authPort: await freeFixedPort(),
    logDir,
    // a killed worker comes back after a second, as under a process supervisor
    restart: true,
  });
  await waitForHttp(`${platform.apiUrl}/healthz`, 150_000);
  await waitForHttp(`${platform.authUrl}/healthz`, 60_000);
  const { storefront } = await ensureClients(urls.auth, {
    storefront: { id: 'notifications-shop', name: 'Notifications shop', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks], rateLimitPerMinute: 1_000_000 },
  });
  token = tokenSource(platform.authUrl, storefront);
}, 240_000);

afterAll(async () => {
  await platform?.stop();
  await Promise.all([mail?.stop(), receiver?.stop()]);
  await rm(logDir, { recursive: true, force: true });
});

const call = async (method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) =>
  requestRetrying(platform.apiUrl, method, path, { ...options, headers: { Authorization: `Bearer ${await token()}`, ...options.headers } });

const TOPIC_OF = ORDER_EVENT_TOPICS as Record<string, OrderEventTopic>;
const EMAILED: Record<string, OrderEventTopic[]> = {
  COMPLETED: ['order.placed', 'order.shipped', 'order.completed'],
  FAILED: ['order.placed', 'order.failed'],
  CANCELLED: ['order.placed', 'order.cancelled'],
};

async function killNotificationsWorker(): Promise<void> {
  const worker = platform.processes().find((p) => p.name === 'notifications-worker-1' && p.child.exitCode === null && p.child.signalCode === null);
  expect(worker, 'a running notifications worker').toBeDefined();
  const exited = new Promise((resolve) => worker!.child.once('exit', resolve));
  worker!.child.kill('SIGKILL');
  await exited;
}

describe('notifications as real processes', () => {
  it('loses no webhook and sends each email once across SIGKILLs of the notifications worker, and logs no customer address', async () => {
    const hook = await call('POST', '/webhooks', { body: { url: receiver.url, events: Object.values(ORDER_EVENT_TOPICS) } });
    expect(hook.status).toBe(201);

    // The mail server holds each message before taking it (a slow server), until both kills are done: a kill lands
    // mid-send, never in the moment between the server's 250 and the worker's record of it (README, "Customer
    // emails": that window is the one left, and no test can promise to miss it otherwise).
    mail.hold();
    // Completed, declined and cancelled orders, each with its customer's address.
    const plans = Array.from({ length: 6 }, (_, i) => ({
      email: `customer-${i}-${randomUUID().slice(0, 8)}@example.com`,
      token: i % 3 === 1 ? 'tok_declined' : 'tok_visa',
      cancel: i % 3 === 2,
    }));
    const orderIds = await Promise.all(
      plans.map(async (plan) => {
        const res = await call('POST', '/orders', {
          body: validOrder({ email: plan.email, payment: { token: plan.token } }),
          headers: { 'Idempotency-Key': randomUUID() },
        });
        expect(res.status).toBe(202);
        if (plan.cancel) await call('POST', `/orders/${res.body.orderId}/cancel`, { body: { reason: 'changed my mind' } });
        return res.body.orderId as string;
      }),
    );

    // Kill it while a webhook and an email are in flight, and again once it is back and sending them again.
    for (let kill = 1; kill <= 2; kill++) {
      const before = receiver.log().length;
      await eventually(
        async () => (receiver.log().length > before && receiver.log().at(-1)!.status === 0 && mail.held() > 0 ? true : undefined),
        `a webhook and an email in flight (${kill})`,
        4_000,
        10,
      );
      await killNotificationsWorker();
      // The mail server hears of the dead connections a moment after the process is gone; until then their held
      // messages would still be taken on release, as if the sender had waited for the answer. Every held message
      // is the killed process's: the one notifications worker is restarted only a second later.
      await eventually(async () => (mail.held() === 0 ? true : undefined), `the mail server to see kill ${kill}'s connections close`, 500, 10);
    }
    mail.release();

    const orders = await Promise.all(
      orderIds.map((id) =>
        eventually(async () => {
          const res = await call('GET', `/orders/${id}`);
          return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(res.body?.status)
            ? (res.body as { orderId: string; status: string; events: Array<{ type: string }> })
            : undefined;
        }, `order ${id} to end`),
      ),
    );
    expect(new Set(orders.map((o) => o.status))).toEqual(new Set(['COMPLETED', 'FAILED', 'CANCELLED']));

    // Every published event of every order reached the endpoint, in order, signed.
    const expectedHooks = orders.map((o) => ({ orderId: o.orderId, topics: o.events.map((e) => TOPIC_OF[e.type]).filter((t): t is OrderEventTopic => !!t) }));
    await eventually(
      async () => {
        const accepted = receiver.accepted();
        return expectedHooks.every(({ orderId, topics }) => topics.every((t) => accepted.some((a) => a.event.data.orderId === orderId && a.event.type === t)))
          ? true
          : undefined;
      },
      'every webhook accepted',
      900,
      100,
    );
    const webhook = new Webhook(hook.body.secret);
    for (const { orderId, topics } of expectedHooks) {
      const received = receiver.log().filter((r) => r.event.data.orderId === orderId);
      const positions = received.map((r) => Number(r.id.slice(4)));
      expect(positions, orderId).toEqual([...positions].sort((a, b) => a - b));
      expect([...new Set(received.map((r) => r.event.type))], orderId).toEqual(topics);
      for (const r of received) {
        expect(webhook.verify(r.body, { 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature })).toEqual(r.event);
        expect(r.body).not.toContain('@example.com');
      }
    }

    // One email per event per order: none missing, none twice (by Message-ID, and by order and subject).
    const expectedMails = orders.flatMap((o, i) => EMAILED[o.status]!.map((topic) => ({ orderId: o.orderId, topic, to: plans[i]!.email })));
    await eventually(
      async () => {
        const messages = mail.messages();
        return messages.length >= expectedMails.length ? messages : undefined;
      },
      'every email',
      600,
      100,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a duplicate would arrive now
    const messages = mail.messages();
    expect(messages.length).toBe(expectedMails.length);
    expect(new Set(messages.map((m) => m.messageId)).size).toBe(messages.length);
    expect(messages.map((m) => `${m.headers['x-order-id']} ${m.headers['x-order-event']} ${m.to.join(',')}`).sort()).toEqual(
      expectedMails.map((m) => `${m.orderId} ${m.topic} ${m.to}`).sort(),
    );
    expect(messages.every((m) => m.from?.includes('orders@shop.example') && m.messageId?.endsWith('.order-email@shop.example>'))).toBe(true);
    const sent = await queryDatabase<{ n: string }>(urls.notifications, `SELECT count(*) AS n FROM sent_emails WHERE sent_at IS NOT NULL`);
    expect(Number(sent[0]!.n)).toBe(expectedMails.length);

    // No log line of any process names a customer's address; nor does any raw history (the codec sealed it).
    const files = await readdir(logDir);
    expect(files).toEqual(expect.arrayContaining(['notifications-worker-1.log', 'orders-worker-1.log', 'api.log']));
    const logs = (await Promise.all(files.map((f) => readFile(join(logDir, f), 'utf8')))).join('\n');
    expect(logs).toContain('customer email sent');
    for (const plan of plans) expect(logs).not.toContain(plan.email.split('@')[0]);
    // A bare connection, as anyone who can reach the Temporal server reads it: no payload codec.
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const emailed = await queryDatabase<{ event_id: string }>(urls.notifications, `SELECT event_id FROM sent_emails`);
      const workflowIds = [...emailed.map((e) => orderEmailWorkflowId(e.event_id)), ...orderIds.map(orderWorkflowId)];
      for (const workflowId of workflowIds) {
        const { history } = await connection.workflowService.getWorkflowExecutionHistory({ namespace: NAMESPACE, execution: { workflowId } });
        const bytes = Buffer.from(proto.temporal.api.history.v1.History.encode(history!).finish());
        for (const plan of plans) expect(bytes.includes(plan.email), workflowId).toBe(false);
      }
    } finally {
      await connection.close();
    }
  }, 240_000);
});
