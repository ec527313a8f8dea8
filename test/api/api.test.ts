import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrdersDb } from '../../activities/orders/db';
import { orderIdFromKey } from '../../api/schemas';
import { OrderTotalAttribute, orderWorkflowId } from '../../contracts/orders';
import { eventually, request, validOrder } from '../support/http';
import { identityKey } from '../../contracts/auth';
import { TEST_CLIENTS, type TestClient } from '../support/auth';
import { startInProcessApi } from '../support/in-process-api';
import { readSse } from '../support/sse';

let baseUrl: string;
let client: Client;
let db: OrdersDb;
let platform: Awaited<ReturnType<typeof startInProcessApi>>;

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'api',
    namespace: 'api-test',
    // A slow carrier keeps orders in flight long enough to cancel them.
    env: { CARRIER_PICKUP_DELAY_MS: '1500' },
    // Orders above 200.00 EUR wait for a reviewer.
    app: { timings: { reviewAbove: 20_000 } },
  });
  ({ baseUrl, client, db } = platform);
});

afterAll(async () => {
  await platform?.stop();
});

/** A request over real HTTP as one of the test clients (the storefront unless said). */
const call = async (
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  who: TestClient = 'storefront',
) => request(baseUrl, method, path, { ...options, headers: { ...(await platform.auth.as(who)), ...options.headers } });

/** `key: null` sends no Idempotency-Key at all. */
const post = (body: unknown, key: string | null = randomUUID(), extra: { rawBody?: string } = {}) =>
  call('POST', '/orders', { body, headers: key === null ? {} : { 'Idempotency-Key': key }, ...extra });

const waitForTerminal = (orderId: string) =>
  eventually(async () => {
    const res = await call('GET', `/orders/${orderId}`);
    return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(res.body?.status) ? res.body : undefined;
  }, `order ${orderId} to end`);

/** Nothing of the order that `key` would have placed exists: no row, no workflow. */
async function expectNothingStored(key: string) {
  const orderId = orderIdFromKey(identityKey({ issuer: platform.auth.issuer, subject: TEST_CLIENTS.storefront.id }), key);
  expect(await db.order.findUnique({ where: { id: orderId } })).toBeNull();
  await expect(client.workflow.getHandle(orderWorkflowId(orderId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('POST /orders validation', () => {
  const cases: Array<{ name: string; body: unknown; key?: string | null; rawBody?: string; fields: string[] }> = [
    { name: 'a missing Idempotency-Key', body: validOrder(), key: null, fields: ['headers.idempotency-key'] },
    {
      name: 'an empty body',
      body: {},
      fields: ['body.customerId', 'body.items', 'body.payment', 'body.shippingAddress'],
    },
    { name: 'a body that is not JSON', body: undefined, rawBody: '{"customerId": ', fields: ['body'] },
    {
      name: 'non-positive and fractional quantities',
      body: validOrder({
        items: [
          { sku: 'MUG-LOGO', quantity: 0 },
          { sku: 'CAP-NAVY', quantity: -3 },
          { sku: 'SOCKS-3PK', quantity: 1.5 },
        ],
      }),
      fields: ['body.items.0.quantity', 'body.items.1.quantity', 'body.items.2.quantity'],
    },
    {
      name: 'an unknown SKU',
      body: validOrder({
        items: [
          { sku: 'MUG-LOGO', quantity: 1 },
          { sku: 'NO-SUCH-THING', quantity: 1 },
        ],
      }),
      fields: ['body.items.1.sku'],
    },
    {
      name: 'every field at fault at once, including the header',
      body: validOrder({
        customerId: '',
        payment: { token: '4242424242424242' },
        shippingAddress: { name: 'x', line1: 'y', city: 'z', postalCode: '1', country: 'united kingdom' },
      }),
      key: null,
      fields: ['headers.idempotency-key', 'body.customerId', 'body.payment.token', 'body.shippingAddress.country'],
    },
    { name: 'an unexpected field', body: { ...validOrder(), discount: 100 }, fields: ['body'] },
    {
      name: 'the same SKU twice',
      body: validOrder({
        items: [
          { sku: 'MUG-LOGO', quantity: 1 },
          { sku: 'MUG-LOGO', quantity: 2 },
        ],
      }),
      fields: ['body.items.1.sku'],
    },
    { name: 'no items', body: validOrder({ items: [] }), fields: ['body.items'] },
  ];

  for (const c of cases) {
    it(`refuses ${c.name} with 400 listing the fields, and stores nothing`, async () => {
      const key = randomUUID();
      const res = await post(c.body, c.key === null ? null : key, c.rawBody ? { rawBody: c.rawBody } : {});
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('validation_failed');
      const fields = (res.body.fields as Array<{ field: string; message: string }>).map((f) => f.field);
      expect(fields.sort()).toEqual([...c.fields].sort());
      for (const f of res.body.fields) expect(f.message).toEqual(expect.any(String));
      await expectNothingStored(key);
    });
  }
});

describe('placing and reading orders', () => {
  it('accepts an order with 202 and a Location, and the order completes', async () => {
    const res = await post(validOrder());
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('PENDING');
    expect(res.headers.get('location')).toBe(`/orders/${res.body.orderId}`);

    const live = await call('GET', res.headers.get('location')!);
    expect(live.status).toBe(200);
    expect(live.body.orderId).toBe(res.body.orderId);
    expect(['PENDING', 'RESERVING_STOCK', 'AUTHORISING_PAYMENT', 'CREATING_SHIPMENT', 'AWAITING_PICKUP']).toContain(live.body.status);

    const done = await waitForTerminal(res.body.orderId);
    expect(done).toMatchObject({ status: 'COMPLETED', total: 2 * 1299, currency: 'EUR', items: [{ sku: 'MUG-LOGO', quantity: 2, unitPrice: 1299 }] });
    expect(done.steps).toEqual([
      'OrderPlaced',
      'StockReserved',
      'PaymentAuthorised',
      'ShipmentCreated',
      'PickupConfirmed',
      'PaymentCaptured',
      'OrderCompleted',
    ]);
    expect(done.events.map((e: { type: string }) => e.type)).toEqual(done.steps);
  });

  it('never shows a step or an end that its event log does not have yet, however often it is read', async () => {
    // Read as fast as the API answers through a whole order: the live state comes from the workflow and the
    // event log from the database, and no answer may mix a newer state with an older log.
    const forward = ['OrderPlaced', 'StockReserved', 'PaymentAuthorised', 'ShipmentCreated', 'PickupConfirmed', 'PaymentCaptured', 'OrderCompleted'];
    const res = await post(validOrder());
    const reads: Array<{ status: string; steps: string[]; events: string[] }> = [];
    for (let i = 0; i < 5_000; i++) {
      const { body } = await call('GET', `/orders/${res.body.orderId}`);
      const events = (body.events as Array<{ type: string }>).map((e) => e.type);
      reads.push({ status: body.status, steps: body.steps, events });
      if (body.status === 'COMPLETED') break;
    }
    expect(reads.at(-1)?.status).toBe('COMPLETED');
    const statuses = new Set(reads.map((r) => r.status));
    expect(statuses.size).toBeGreaterThan(2);
    for (const r of reads) {
      const logged = r.events.filter((t) => forward.includes(t));
      expect(logged.slice(0, r.steps.length), `status ${r.status}`).toEqual(r.steps);
      if (r.status === 'COMPLETED') expect(r.events.at(-1)).toBe('OrderCompleted');
    }
  });

  it('answers a repeated Idempotency-Key with the same order and starts nothing new', async () => {
    const key = randomUUID();
    const first = await post(validOrder(), key);
    const again = await post(validOrder(), key);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.orderId).toBe(first.body.orderId);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    await waitForTerminal(first.body.orderId);
    const afterEnd = await post(validOrder(), key);
    expect(afterEnd.status).toBe(202);
    expect(afterEnd.body).toEqual({ orderId: first.body.orderId, status: 'COMPLETED' });
    expect(await db.order.count({ where: { id: first.body.orderId } })).toBe(1);
    expect(await db.orderEvent.count({ where: { orderId: first.body.orderId, type: 'OrderPlaced' } })).toBe(1);
  });

  it('creates exactly one order when the same key arrives ten times at once', async () => {
    const key = randomUUID();
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(validOrder(), key)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    expect(new Set(answers.map((a) => a.body.orderId)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'false')).toHaveLength(1);
    const orderId = answers[0]!.body.orderId;
    const done = await waitForTerminal(orderId);
    expect(done.status).toBe('COMPLETED');
    const runs = await client.workflow.count(`WorkflowId = "${orderWorkflowId(orderId)}"`);
    expect(runs.count).toBe(1);
  });

  it('refuses the same key with a different body with 422', async () => {
    const key = randomUUID();
    const first = await post(validOrder(), key);
    expect(first.status).toBe(202);
    const other = await post(validOrder({ items: [{ sku: 'CAP-NAVY', quantity: 1 }] }), key);
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    await waitForTerminal(first.body.orderId);
    const later = await post(validOrder({ customerId: 'someone-else' }), key);
    expect(later.status).toBe(422);
  });

  it('answers 404 for an order that does not exist', async () => {
    expect((await call('GET', `/orders/${randomUUID()}`)).status).toBe(404);
    expect((await call('GET', '/orders/not-a-uuid')).status).toBe(404);
    expect((await call('POST', `/orders/${randomUUID()}/cancel`, { body: {} })).status).toBe(404);
  });

  it('ends FAILED with the reason for a declined card', async () => {
    const res = await post(validOrder({ payment: { token: 'tok_declined' } }));
    const done = await waitForTerminal(res.body.orderId);
    expect(done).toMatchObject({ status: 'FAILED', failureReason: 'PAYMENT_DECLINED', compensations: ['StockReleased'] });
  });
});

describe('cancelling orders', () => {
  it('cancels an order in flight: 202, then CANCELLED with its compensations', async () => {
    const placed = await post(validOrder());
    const cancel = await call('POST', `/orders/${placed.body.orderId}/cancel`, { body: { reason: 'ordered by mistake' } });
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ orderId: placed.body.orderId, status: 'CANCELLING' });
    const done = await waitForTerminal(placed.body.orderId);
    expect(done.status).toBe('CANCELLED');
    expect(done.steps).not.toContain('PaymentCaptured');
    expect(done.events.at(-1).type).toBe('OrderCancelled');
  });

  it('is idempotent: a repeated cancel answers 202 replayed, in flight and once cancelled, and the first reason stands', async () => {
    const placed = await post(validOrder());
    const orderId = placed.body.orderId as string;
    const first = await call('POST', `/orders/${orderId}/cancel`, { body: { reason: 'ordered by mistake' } });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBe('false');
    // The storefront never saw the first answer, say, and sends it again; an operator cancels it too.
    const again = await call('POST', `/orders/${orderId}/cancel`, { body: { reason: 'second thoughts' } });
    const operator = await call('POST', `/orders/${orderId}/cancel`, { body: { reason: 'by the operator' } }, 'operator');
    for (const repeat of [again, operator]) {
      expect(repeat.status).toBe(202);
      expect(repeat.headers.get('idempotent-replayed')).toBe('true');
      // Unwinding still, or (the fakes are quick) unwound already.
      expect(repeat.body).toMatchObject({ orderId, status: expect.stringMatching(/^CANCELL(ING|ED)$/) });
    }
    const done = await waitForTerminal(orderId);
    expect(done.status).toBe('CANCELLED');
    expect(done.events.filter((e: { type: string }) => e.type === 'OrderCancelled').map((e: { data: { reason: string } }) => e.data.reason)).toEqual([
      'ordered by mistake',
    ]);
    const late = await call('POST', `/orders/${orderId}/cancel`, { body: {} });
    expect(late.status).toBe(202);
    expect(late.headers.get('idempotent-replayed')).toBe('true');
    expect(late.body).toEqual({ orderId, status: 'CANCELLED', previousStatus: 'CANCELLED' });
  });

  it('refuses to cancel a completed order with 409', async () => {
    const placed = await post(validOrder());
    await waitForTerminal(placed.body.orderId);
    const cancel = await call('POST', `/orders/${placed.body.orderId}/cancel`, { body: {} });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error).toBe('not_cancellable');
    const after = await call('GET', `/orders/${placed.body.orderId}`);
    expect(after.body.status).toBe('COMPLETED');
  });

  it('validates the cancel body', async () => {
    const placed = await post(validOrder());
    const cancel = await call('POST', `/orders/${placed.body.orderId}/cancel`, { body: { reason: 42 } });
    expect(cancel.status).toBe(400);
    expect(cancel.body.fields.map((f: { field: string }) => f.field)).toEqual(['body.reason']);
    await waitForTerminal(placed.body.orderId);
  });
});

describe('the live order feed (Server-Sent Events)', () => {
  it('streams every step as it happens, each with its id, then the end; resumes after Last-Event-ID', async () => {
    const placed = await post(validOrder());
    const headers = await platform.auth.as('storefront');
    const stream = await readSse(`${baseUrl}/orders/${placed.body.orderId}/events`, headers, (e) => e.event === 'end');
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    expect(stream.headers.get('cache-control')).toBe('no-store');
    const steps = stream.events.filter((e) => e.id !== undefined);
    expect(steps.map((e) => e.event)).toEqual([
      'OrderPlaced',
      'StockReserved',
      'PaymentAuthorised',
      'ShipmentCreated',
      'PickupConfirmed',
      'PaymentCaptured',
      'OrderCompleted',
    ]);
    const ids = steps.map((e) => Number(e.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(stream.events.at(-1)).toEqual({ event: 'end', data: { status: 'COMPLETED' } });
    expect(stream.events.filter((e) => e.event === 'status').map((e) => e.data.status)).toContain('COMPLETED');
    // The steps arrived while the order ran: the first came well before the carrier's pickup (1.5 s later).
    const at = (type: string) => Date.parse(steps.find((e) => e.event === type)!.data.at);
    expect(at('PickupConfirmed') - at('StockReserved')).toBeGreaterThan(1_000);

    const resumed = await readSse(`${baseUrl}/orders/${placed.body.orderId}/events`, { ...headers, 'Last-Event-ID': steps[4]!.id! }, (e) => e.event === 'end');
    expect(resumed.events.filter((e) => e.id !== undefined).map((e) => e.event)).toEqual(['PaymentCaptured', 'OrderCompleted']);
  });

  it('shows the undos of a failed order, and answers 404 for another client’s order', async () => {
    const placed = await post(validOrder({ shippingAddress: { name: 'A', line1: 'B', city: 'C', postalCode: 'D', country: 'AQ' } }));
    const stream = await readSse(`${baseUrl}/orders/${placed.body.orderId}/events`, await platform.auth.as('storefront'), (e) => e.event === 'end');
    const types = stream.events.filter((e) => e.id !== undefined).map((e) => e.event);
    // The carrier refused the shipment, so there was no booking to cancel: two undos ran, in reverse.
    expect(types).toEqual(['OrderPlaced', 'StockReserved', 'PaymentAuthorised', 'CompensationRan', 'CompensationRan', 'OrderFailed']);
    expect(stream.events.filter((e) => e.event === 'CompensationRan').map((e) => e.data.data.compensation)).toEqual(['PaymentVoided', 'StockReleased']);
    expect(stream.events.at(-1)).toEqual({ event: 'end', data: { status: 'FAILED' } });
    const other = await readSse(`${baseUrl}/orders/${placed.body.orderId}/events`, await platform.auth.as('otherStorefront'));
    expect(other.status).toBe(404);
  });
});

describe('methods', () => {
  it('answers 405 with Allow for a method a documented path does not answer, and 404 for an unknown path', async () => {
    for (const [method, path, allow] of [
      ['DELETE', `/orders/${randomUUID()}`, 'GET, HEAD, OPTIONS'],
      ['PUT', '/orders', 'GET, HEAD, OPTIONS, POST'],
      ['PATCH', '/docs/', 'GET, HEAD, OPTIONS'],
      ['POST', '/products', 'GET, HEAD, OPTIONS'],
    ] as const) {
      const res = await fetch(`${baseUrl}${path}`, { method });
      expect({ method, path, status: res.status, allow: res.headers.get('allow') }).toEqual({ method, path, status: 405, allow });
    }
    expect((await fetch(`${baseUrl}/no-such-thing`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('catalogue and health', () => {
  it('lists the catalogue with prices and available stock', async () => {
    const res = await call('GET', '/products');
    expect(res.status).toBe(200);
    const vinyl = res.body.find((p: { sku: string }) => p.sku === 'VINYL-LTD');
    expect(vinyl).toEqual({ sku: 'VINYL-LTD', name: 'Limited edition vinyl', price: 3499, currency: 'EUR', available: 5 });
  });

  it('reports healthy only when Temporal, the orders database and every pool answer', async () => {
    const res = await call('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body.checks.map((c: { service: string; ok: boolean }) => [c.service, c.ok])).toEqual([
      ['temporal', true],
      ['orders', true],
      ['inventory', true],
      ['payments', true],
      ['shipping', true],
      ['notifications', true],
    ]);
  });
});

describe('operators: search attributes, listing and review', () => {
  it('keeps OrderStatus, CustomerId and OrderTotal current, and lists the order with a readable summary', async () => {
    const customerId = `customer-${randomUUID()}`;
    const placed = await post(validOrder({ customerId, items: [{ sku: 'CAP-NAVY', quantity: 2 }] }));
    await waitForTerminal(placed.body.orderId);
    const query = `OrderStatus = "COMPLETED" AND CustomerId = "${customerId}"`;
    const count = await eventually(
      async () => {
        const { count } = await client.workflow.count(query);
        return count === 1 ? count : undefined;
      },
      'visibility to catch up',
      100,
      100,
    );
    expect(count).toBe(1);
    const listed = [];
    for await (const wf of client.workflow.list({ query })) listed.push(wf);
    expect(listed.map((w) => w.workflowId)).toEqual([orderWorkflowId(placed.body.orderId)]);
    expect(listed[0]!.typedSearchAttributes.get(OrderTotalAttribute)).toBe(35.98);
    expect((await client.workflow.count(`OrderStatus = "FAILED" AND CustomerId = "${customerId}"`)).count).toBe(0);

    const description = await client.workflow.getHandle(orderWorkflowId(placed.body.orderId)).describe();
    expect(await description.staticSummary()).toBe(`2 items, 35.98 EUR, customer ${customerId}`);
    expect(await description.staticDetails()).toContain('2 × Navy cap (CAP-NAVY) at 17.99 EUR');
    expect(await description.staticDetails()).not.toContain('tok_');
  });

  it('holds an order above the threshold for review; only a reviewer may approve it, and then it completes', async () => {
    const placed = await post(validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }));
    const review = (who: TestClient, body: unknown, headers: Record<string, string> = {}) =>
      call('POST', `/orders/${placed.body.orderId}/review`, { body, headers }, who);
    await eventually(async () => {
      const res = await call('GET', `/orders/${placed.body.orderId}`);
      return res.body.status === 'AWAITING_REVIEW' ? true : undefined;
    }, 'the order to await review');
    // The storefront's token has no orders:review; a header naming a role or a user changes nothing.
    expect((await review('storefront', { decision: 'approve' }, { 'X-Role': 'reviewer', 'X-User': 'risk@example.com' })).status).toBe(403);
    const bad = await review('reviewer', { decision: 'maybe' });
    expect(bad.status).toBe(400);
    expect(bad.body.fields.map((f: { field: string }) => f.field).sort()).toEqual(['body.decision']);
    const approved = await review('reviewer', { decision: 'approve' }, { 'X-User': 'someone-else@example.com' });
    expect(approved.status).toBe(200);
    expect(approved.body).toEqual({ orderId: placed.body.orderId, decision: 'approve' });
    const twice = await review('reviewer', { decision: 'reject' });
    expect(twice.status).toBe(409);
    const done = await waitForTerminal(placed.body.orderId);
    expect(done.status).toBe('COMPLETED');
    // The recorded reviewer is the token's verified subject, never what a header said.
    expect(done.events.find((e: { type: string }) => e.type === 'OrderReviewed').data).toMatchObject({
      decision: 'approve',
      reviewer: TEST_CLIENTS.reviewer.id,
    });
    expect(done.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['ReviewRequested', 'OrderReviewed']));
  });

  it('fails REVIEW_REJECTED when a reviewer rejects, with the stock put back', async () => {
    const placed = await post(validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }));
    await eventually(async () => ((await call('GET', `/orders/${placed.body.orderId}`)).body.status === 'AWAITING_REVIEW' ? true : undefined), 'review');
    const rejected = await call('POST', `/orders/${placed.body.orderId}/review`, { body: { decision: 'reject', reason: 'address mismatch' } }, 'reviewer');
    expect(rejected.status).toBe(200);
    const done = await waitForTerminal(placed.body.orderId);
    expect(done).toMatchObject({ status: 'FAILED', failureReason: 'REVIEW_REJECTED', compensations: ['StockReleased'] });
  });
});
