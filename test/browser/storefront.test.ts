import { notificationsBundlePath, orderBundlePath } from '../support/bundles';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { Webhook } from 'standardwebhooks';
import { SCOPES } from '../../contracts/auth';
import { isEmailed, topicOf } from '../../contracts/notifications';
import { ORDER_SEARCH_ATTRIBUTES, ORDER_STEPS, ORDER_TOPICS, orderWorkflowId } from '../../contracts/orders';
import { ensureClients, tokenSource, type ClientCredentials } from '../../lib/infra/clients';
import { DATABASES, databaseUrlVar, type DatabaseName } from '../../lib/infra/databases';
import { startMailServer, type RunningMailServer } from '../../lib/infra/mail';
import { DATA_DIR, PROJECT_ROOT } from '../../lib/infra/paths';
import { POOLS, launchPlatform, waitForHttp, type RunningPlatform } from '../../lib/infra/platform';
import { freeFixedPort } from '../../lib/net';
import { ensureSearchAttributes } from '../../lib/temporal/search-attributes';
import { CATALOGUE } from '../../prisma/inventory/seed';
import { ensureChromium, launchBrowser, type LaunchedBrowser } from '../support/browser';
import { createTestDatabases, queryDatabase } from '../support/databases';
import { eventually, request } from '../support/http';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

/**
 * The demo shop (shop/) in a real Chromium, against the platform as real processes: the pools, the
 * auth service, the API and the shop server, each its own `node`. A customer buys, is declined,
 * cancels, and keeps watching while the orders worker is SIGKILLed; an operator lists the orders.
 * The shop's storefront has a webhook endpoint (a receiver here) and each customer an email address
 * (the local mail server): every order's events reach both, once per event ID, the IDs the page saw.
 */
const NAMESPACE = 'browser';
const UI_URL = 'http://127.0.0.1:8233';
/** Slow enough to see (and act during) AWAITING_PICKUP, fast enough to keep the file short. */
const PICKUP_DELAY_MS = 5_000;
/** The screenshot for the README is written to docs/ only when asked, so that a test run leaves the tree as it was. */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' ? join(PROJECT_ROOT, 'docs', 'storefront-order.png') : join(DATA_DIR, 'test', 'browser', 'storefront-order.png');

let platform: RunningPlatform;
let urls: Record<DatabaseName, string>;
let clients: Record<'storefront' | 'operator', ClientCredentials>;
let storefrontToken: () => Promise<string>;
let mail: RunningMailServer;
let receiver: WebhookReceiver;
/** the shop's webhook endpoint's signing secret */
let webhook: Webhook;
const MAIL_DOMAIN = 'shop.example';
let browser: LaunchedBrowser;
let shopUrl: string;
let installMs = 0;
const timings: Record<string, number> = {};
const seconds = (ms = 0) => `${(ms / 1000).toFixed(1)}s`;
/** Generous: two cores shared with the rest of the suite. */
const TEST_TIMEOUT = 120_000;

/** A namespace of this file's own on the shared dev server, with the order search attributes. */
async function ensureNamespace(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') }).catch((err: { code?: number }) => {
      if (err.code !== 6) throw err; // ALREADY_EXISTS: an earlier run of this file
    });
    // Until the frontend's namespace cache has it, the namespace is "not found": ask again.
    await eventually(() => ensureSearchAttributes(connection, namespace, ORDER_SEARCH_ATTRIBUTES).catch(() => undefined), 'the namespace', 120, 500);
  } finally {
    await connection.close();
  }
}

beforeAll(async () => {
  installMs = await ensureChromium();
  const started = Date.now();
  [urls, mail, receiver] = await Promise.all([
    createTestDatabases('browser'),
    startMailServer(),
    startWebhookReceiver(),
    ensureNamespace(inject('temporalAddress'), NAMESPACE),
  ]);
  timings.databasesMs = Date.now() - started;
  // Ports the processes bind later: below the range outgoing connections take theirs from (each worker's: launchPlatform's).
  const [apiPort, authPort, shopPort] = [await freeFixedPort(), await freeFixedPort(), await freeFixedPort()];
  const authUrl = `http://127.0.0.1:${authPort}`;
  // The shop acts as this storefront and this operator: their secrets go to the shop process only.
  clients = await ensureClients(urls.auth, {
    storefront: { id: 'browser-shop', name: 'Browser test shop', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks], rateLimitPerMinute: 1_000_000 },
    operator: { id: 'browser-operator', name: 'Browser test operator', scopes: [SCOPES.operate, SCOPES.read, SCOPES.review], rateLimitPerMinute: 1_000_000 },
  });
  const { storefront, operator } = clients;
  storefrontToken = tokenSource(authUrl, storefront);
  platform = await launchPlatform({
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: NAMESPACE,
      WORKFLOW_BUNDLE_PATH: await orderBundlePath(),
      NOTIFICATIONS_WORKFLOW_BUNDLE_PATH: await notificationsBundlePath(),
      LOG_LEVEL: 'warn',
      CARRIER_PICKUP_DELAY_MS: String(PICKUP_DELAY_MS),
      // One build for the whole file: a worker restarted after a commit has landed must still serve the orders pinned to it.
      WORKER_BUILD_ID: 'browser-test',
      // Where the operator view links each order (not followed here).
      TEMPORAL_UI_URL: UI_URL,
      // A fresh catalogue on every read: the stock a page shows is the stock now.
      CATALOGUE_TTL_MS: '0',
      // Notifications: customer emails to the local mail server, webhooks to this file's receiver on loopback, found quickly.
      SMTP_URL: mail.smtpUrl,
      MAIL_FROM: `Demo shop <orders@${MAIL_DOMAIN}>`,
      WEBHOOKS_ALLOW_LOOPBACK_HTTP: 'true',
      RELAY_POLL_INTERVAL_MS: '100',
      ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
    },
    counts: Object.fromEntries(POOLS.map((pool) => [pool, 1])),
    apiPort,
    authPort,
    shop: { port: shopPort, storefront, operator },
    // A killed process comes back after 1 s, as under npm start.
    restart: true,
    logDir: join(DATA_DIR, 'test', `browser-logs-${process.pid}`),
  });
  shopUrl = platform.shopUrl!;
  await Promise.all([
    waitForHttp(`${platform.apiUrl}/healthz`, 150_000),
    waitForHttp(`${platform.authUrl}/healthz`, 150_000),
    waitForHttp(`${shopUrl}/shop/healthz`, 150_000),
  ]);
  timings.platformMs = Date.now() - started;
  const endpoint = await request(platform.apiUrl, 'POST', '/webhooks', {
    body: { url: receiver.url, events: ORDER_TOPICS },
    headers: { Authorization: `Bearer ${await storefrontToken()}` },
  });
  expect(endpoint.status).toBe(201);
  webhook = new Webhook(endpoint.body.secret);
  browser = await launchBrowser();
  browser.context.setDefaultTimeout(30_000);
  timings.startMs = Date.now() - started;
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
  await Promise.all([mail?.stop(), receiver?.stop()]);
  console.log(
    `[browser] chromium install ${installMs ? seconds(installMs) : 'not needed'}; databases and namespace ${seconds(timings.databasesMs)}, ` +
      `platform up ${seconds(timings.platformMs)}, browser up ${seconds(timings.startMs)} (from the start of the file's set-up)`,
  );
});

/** Each test's last page, for a person to look at: .data/test/browser/<name>.png. */
const keepPicture = (page: Page, name: string) => page.locator('body').screenshot({ path: join(DATA_DIR, 'test', 'browser', `${name}.png`) });

/** Buys `items` in the shop as a customer would, and lands on the order page; returns the order ID. */
async function checkout(
  page: Page,
  { items, card = 'tok_visa', country = 'GB', email }: { items: Array<[sku: string, quantity: number]>; card?: string; country?: string; email?: string },
) {
  await page.goto(`${shopUrl}/shop`);
  for (const [sku, quantity] of items) {
    const add = page.locator(`#catalogue tr[data-sku="${sku}"] button.add`);
    for (let i = 0; i < quantity; i++) await add.click();
    await page
      .locator(`#qty-${sku}`)
      .and(page.locator(`[value="${quantity}"]`))
      .waitFor();
  }
  await page.selectOption('#card', card);
  await page.selectOption('#country', country);
  if (email) await page.getByLabel('Email for order updates').fill(email);
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.waitForURL(/\/shop\/orders\/[0-9a-f-]{36}$/);
  return page.url().split('/').pop()!;
}

const waitForStatus = (page: Page, status: string, timeout = 60_000) => page.locator(`#status-badge[data-status="${status}"]`).waitFor({ timeout });

/** Each step of the saga as the page shows it: [step, state] in the saga's order. */
const stepsShown = (page: Page) =>
  page.locator('#steps li').evaluateAll((items) => items.map((li) => [li.getAttribute('data-step'), li.getAttribute('data-state')]));
const undosShown = (page: Page) => page.locator('#compensations li').evaluateAll((items) => items.map((li) => li.getAttribute('data-compensation')));
/** The event log's entries as the page lists them: type and stream id (none for an entry known only from the live state). */
const logShown = (page: Page) =>
  page.locator('#log li').evaluateAll((items) => items.map((li) => ({ type: li.getAttribute('data-event'), id: li.getAttribute('data-event-id') })));

/** The order as the API has it, read as the shop's storefront client. */
async function apiOrder(orderId: string) {
  return (await request(platform.apiUrl, 'GET', `/orders/${orderId}`, { headers: { Authorization: `Bearer ${await storefrontToken()}` } })).body;
}

/**
 * What the outside world heard of an order that has ended: its storefront's webhook endpoint got
 * each published event of the page's log once, in order, signed, under the event ID the page saw
 * (`evt_<stream id>`); the customer got one email per emailed event, at the address typed at checkout.
 */
async function expectNotifications(page: Page, orderId: string, email: string) {
  const published = (await logShown(page)).filter((e) => topicOf(e.type)).map((e) => ({ id: `evt_${e.id}`, topic: topicOf(e.type)! }));
  const emailed = published.filter((p) => isEmailed(p.topic));
  const hooksOf = () => receiver.accepted().filter((r) => r.event.data.orderId === orderId);
  const mailsOf = () => mail.messages().filter((m) => m.headers['x-order-id'] === orderId);
  await eventually(
    async () => (hooksOf().length >= published.length && mailsOf().length >= emailed.length ? true : undefined),
    'webhooks and emails',
    300,
    100,
  );
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // a duplicate would have arrived by now

  const hooks = receiver.log().filter((r) => r.event.data.orderId === orderId);
  expect(hooks.map((r) => [r.id, r.event.type, r.status])).toEqual(published.map((p) => [p.id, p.topic, 204]));
  for (const r of hooks) {
    expect(webhook.verify(r.body, { 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature })).toEqual(r.event);
    expect(r.body).not.toContain(email);
  }
  const mails = mailsOf().map((m) => [m.messageId, m.headers['x-order-event'], m.to.join(',')]);
  expect(mails.sort()).toEqual(emailed.map((p) => [`<${p.id}.order-email@${MAIL_DOMAIN}>`, p.topic, email]).sort());
}

/** A customer's address of their own, per test. */
const customer = (name: string) => `${name}-${Date.now().toString(36)}@customer.example`;

describe('the storefront in a real browser', () => {
  it(
    'a customer buys two items and watches every step to COMPLETED; the storefront credential never reaches the browser',
    async () => {
      const page = await browser.context.newPage();
      const seen: Response[] = [];
      const authorisations: string[] = [];
      page.on('response', (res) => void seen.push(res));
      page.on('request', (req) => {
        const header = req.headers().authorization;
        if (header) authorisations.push(header);
      });

      const email = customer('buyer');
      const orderId = await checkout(page, {
        items: [
          ['TSHIRT-BLK-M', 1],
          ['MUG-LOGO', 2],
        ],
        email,
      });
      const statuses = new Set<string>();
      const watching = (async () => {
        while (!page.isClosed() && !statuses.has('COMPLETED')) {
          statuses.add(
            (await page
              .locator('#status-badge')
              .getAttribute('data-status')
              .catch(() => null)) ?? '',
          );
          await new Promise((r) => setTimeout(r, 100));
        }
      })();

      // Mid-saga: the carrier is booked, the parcel not yet picked up. The README's picture.
      await waitForStatus(page, 'AWAITING_PICKUP');
      await page.locator('[data-step="ShipmentCreated"][data-state="done"]').waitFor();
      expect(await stepsShown(page)).toEqual([
        ['OrderPlaced', 'done'],
        ['StockReserved', 'done'],
        ['PaymentAuthorised', 'done'],
        ['ShipmentCreated', 'done'],
        ['PickupConfirmed', 'current'],
        ['PaymentCaptured', 'pending'],
        ['OrderCompleted', 'pending'],
      ]);
      expect(await page.locator('#status').textContent()).toContain('Waiting for the carrier to pick the parcel up');
      await mkdir(join(SCREENSHOT, '..'), { recursive: true });
      await page.locator('body').screenshot({ path: SCREENSHOT });

      await waitForStatus(page, 'COMPLETED');
      await watching;
      expect(await stepsShown(page)).toEqual(ORDER_STEPS.map((step) => [step, 'done']));
      expect(await undosShown(page)).toEqual([]);
      expect(await page.locator('#outcome').textContent()).toBe('The order is complete: every step is done.');
      expect(await page.locator('#cancel').isHidden()).toBe(true);
      // Every step once in the log, each from the stream (with its id), in the saga's order.
      const log = await logShown(page);
      expect(log.map((e) => e.type)).toEqual(ORDER_STEPS);
      expect(log.every((e) => e.id)).toBe(true);
      // The page followed the saga: it showed statuses in between, not just the end.
      expect([...statuses]).toEqual(expect.arrayContaining(['AWAITING_PICKUP', 'COMPLETED']));
      // The total the page shows is the one the platform charged.
      const order = await apiOrder(orderId);
      expect(order.status).toBe('COMPLETED');
      expect(order.total).toBe(CATALOGUE.find((p) => p.sku === 'TSHIRT-BLK-M')!.price + 2 * CATALOGUE.find((p) => p.sku === 'MUG-LOGO')!.price);
      expect(await page.locator('#total').textContent()).toBe(`€${(order.total / 100).toFixed(2)}`);

      // The browser never held a token or a client secret: no Authorization header went out, none came back.
      expect(authorisations).toEqual([]);
      const secrets = [clients.storefront.secret, clients.operator.secret];
      for (const res of seen.filter((r) => !(r.headers()['content-type'] ?? '').includes('event-stream'))) {
        const text = await res.text().catch(() => '');
        for (const secret of secrets) expect(text, res.url()).not.toContain(secret);
        expect(text, res.url()).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./);
      }
      const cookies = await browser.context.cookies(`${shopUrl}/shop`);
      expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([['shop_session', true, 'Strict']]);
      await keepPicture(page, 'completed');
      await expectNotifications(page, orderId, email);
      await page.close();
    },
    TEST_TIMEOUT,
  );

  it(
    'a declined card shows the failure, the stock released, and the catalogue’s stock back where it was',
    async () => {
      const page = await browser.context.newPage();
      const sku = 'HOODIE-GRY-L';
      const stockShown = async () => Number(await page.locator(`#catalogue tr[data-sku="${sku}"] td.stock`).getAttribute('data-stock'));
      await page.goto(`${shopUrl}/shop`);
      const before = await stockShown();

      const email = customer('declined');
      const orderId = await checkout(page, { items: [[sku, 3]], card: 'tok_declined', email });
      await waitForStatus(page, 'FAILED');
      await page.locator('#outcome:not([hidden])').waitFor();
      expect(await page.locator('#status').textContent()).toContain('Failed: the card was declined');
      expect(await stepsShown(page)).toEqual([
        ['OrderPlaced', 'done'],
        ['StockReserved', 'done'],
        ['PaymentAuthorised', 'not-reached'],
        ['ShipmentCreated', 'not-reached'],
        ['PickupConfirmed', 'not-reached'],
        ['PaymentCaptured', 'not-reached'],
        ['OrderCompleted', 'not-reached'],
      ]);
      expect(await undosShown(page)).toEqual(['StockReleased']);
      expect(await page.locator('#outcome').textContent()).toBe('The order failed: the card was declined. What it had done was undone, in reverse.');
      expect((await logShown(page)).map((e) => e.type)).toEqual(['OrderPlaced', 'StockReserved', 'CompensationRan', 'OrderFailed']);
      expect((await apiOrder(orderId)).failureReason).toBe('PAYMENT_DECLINED');
      await keepPicture(page, 'declined');
      await expectNotifications(page, orderId, email);

      // The catalogue (cached by the API for a few seconds) shows the units back, and so does inventory's own table.
      await eventually(
        async () => {
          await page.goto(`${shopUrl}/shop`);
          return (await stockShown()) === before ? true : undefined;
        },
        'the catalogue to show the stock back',
        30,
        1_000,
      );
      const [row] = await queryDatabase<{ stock: number }>(urls.inventory, 'SELECT stock FROM products WHERE sku = $1', [sku]);
      expect(row!.stock).toBe(before);
      await keepPicture(page, 'catalogue');
      await page.close();
    },
    TEST_TIMEOUT,
  );

  it(
    'a cancel during the pickup wait shows the undos in reverse and CANCELLED',
    async () => {
      const page = await browser.context.newPage();
      const email = customer('canceller');
      const orderId = await checkout(page, { items: [['CAP-NAVY', 1]], card: 'tok_mastercard', country: 'DE', email });
      await waitForStatus(page, 'AWAITING_PICKUP');
      await page.getByRole('button', { name: 'Cancel this order' }).click();
      await page.getByText('Cancellation accepted: the steps done so far are being undone.').waitFor();
      await waitForStatus(page, 'CANCELLED');
      await page.locator('#outcome:not([hidden])').waitFor();
      expect(await page.locator('#notice').textContent()).toBe('');
      expect(await undosShown(page)).toEqual(['ShipmentCancelled', 'PaymentVoided', 'StockReleased']);
      expect(await page.locator('#status').textContent()).toContain('Cancelled: cancelled by the customer in the shop');
      expect((await stepsShown(page)).filter(([, state]) => state === 'done')).toEqual([
        ['OrderPlaced', 'done'],
        ['StockReserved', 'done'],
        ['PaymentAuthorised', 'done'],
        ['ShipmentCreated', 'done'],
      ]);
      expect((await logShown(page)).map((e) => e.type).slice(-4)).toEqual(['CompensationRan', 'CompensationRan', 'CompensationRan', 'OrderCancelled']);
      expect((await apiOrder(orderId)).status).toBe('CANCELLED');
      await keepPicture(page, 'cancelled');
      await expectNotifications(page, orderId, email);
      await page.close();
    },
    TEST_TIMEOUT,
  );

  it(
    'the order page keeps its live view while the orders worker is SIGKILLed mid-order and restarted',
    async () => {
      const page = await browser.context.newPage();
      const email = customer('watcher');
      const orderId = await checkout(page, { items: [['SOCKS-3PK', 2]], email });
      await waitForStatus(page, 'AWAITING_PICKUP');
      await page.evaluate(() => ((globalThis as { sameDocument?: boolean }).sameDocument = true));

      const worker = platform.processes().find((p) => p.name === 'orders-worker-1')!;
      const killedPid = worker.child.pid;
      worker.child.kill('SIGKILL');
      // The saga can go on only on the restarted worker: the pickup, the capture and the end arrive on the same page.
      await waitForStatus(page, 'COMPLETED', 120_000);
      const restarted = platform.processes().find((p) => p.name === 'orders-worker-1')!;
      expect(restarted.child.pid).not.toBe(killedPid);
      expect(await page.evaluate(() => (globalThis as { sameDocument?: boolean }).sameDocument)).toBe(true);
      expect(await stepsShown(page)).toEqual(ORDER_STEPS.map((step) => [step, 'done']));
      // Replayed on the new worker, the saga wrote nothing twice: each step once, each with its own id.
      const log = await logShown(page);
      expect(log.map((e) => e.type)).toEqual(ORDER_STEPS);
      expect(new Set(log.map((e) => e.id)).size).toBe(ORDER_STEPS.length);
      expect((await apiOrder(orderId)).status).toBe('COMPLETED');
      await keepPicture(page, 'worker-killed');
      await expectNotifications(page, orderId, email);
      await page.close();
    },
    2 * TEST_TIMEOUT,
  );

  it(
    'the operator view asks for the operator’s credentials, then lists every order newest first, each linked to its workflow in the Web UI',
    async () => {
      const page = await browser.context.newPage();
      const refused = await page.request.get(`${shopUrl}/shop/operator`);
      expect([refused.status(), refused.headers()['www-authenticate']]).toEqual([401, 'Basic realm="shop operator", charset="UTF-8"']);
      expect((await page.request.get(`${shopUrl}/shop/api/operator/orders`)).status()).toBe(401);
      const { id, secret } = clients.operator;
      await page.setExtraHTTPHeaders({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
      await page.goto(`${shopUrl}/shop/operator`);
      await page.locator('#orders:not([hidden])').waitFor();
      const rows = await page
        .locator('#orders tbody tr')
        .evaluateAll((trs) => trs.map((tr) => ({ id: tr.getAttribute('data-order-id'), link: tr.querySelector('a')?.getAttribute('href') })));
      expect(rows).toHaveLength(4);
      const placed = await queryDatabase<{ id: string }>(urls.orders, 'SELECT id FROM orders ORDER BY created_at DESC, id DESC');
      expect(rows.map((r) => r.id)).toEqual(placed.map((o) => o.id));
      for (const row of rows) expect(row.link).toBe(`${UI_URL}/namespaces/${NAMESPACE}/workflows/${orderWorkflowId(row.id)}`);
      expect(await page.locator('#orders-status').textContent()).toBe('4 orders, newest first.');
      await keepPicture(page, 'operator');
      await page.close();
    },
    TEST_TIMEOUT,
  );
});
