import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderWorkflowId, stepKey } from '../contracts/orders';
import type { DatabaseName } from '../lib/infra/databases';
import { eventually, request, validOrder } from './support/http';
import { startInProcessApi } from './support/in-process-api';

/**
 * A hundred orders, each cancelled at its own moment across the saga, pickup included: before the
 * reservation, while the money or the carrier is being asked, right as the carrier picks the
 * parcel up, while the capture runs, and once it is too late. Whatever the moment, the order, our
 * shipping and payments databases, the carrier and the payment provider must end up telling the
 * same story.
 */
const ORDERS = 100;
const PICKUP_DELAY_MS = 1_000;
/** the latest cancel comes this much past an order's whole saga (measured first): the too-late end is covered too */
const OVERSHOOT = 1.2;
/**
 * Orders in flight at once: one process runs the API and every pool here, so a burst of a hundred
 * would measure its queues, not the saga; on a slow machine the run takes longer instead.
 */
const IN_FLIGHT = 10;

let platform: Awaited<ReturnType<typeof startInProcessApi>>;
const dbs = new Map<DatabaseName, pg.Pool>();

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'race',
    namespace: 'race',
    // pickups polled often: the relay delivers each one close to its moment, in small batches
    env: { CARRIER_PICKUP_DELAY_MS: String(PICKUP_DELAY_MS), PICKUP_POLL_INTERVAL_MS: '50' },
  });
  for (const db of ['inventory', 'payments', 'shipping', 'sandbox'] as const) dbs.set(db, new pg.Pool({ connectionString: platform.urls[db], max: 2 }));
});

afterAll(async () => {
  await platform?.stop();
  await Promise.all([...dbs.values()].map((p) => p.end()));
});

const sql = async <T extends pg.QueryResultRow>(db: DatabaseName, text: string, params: unknown[] = []) => (await dbs.get(db)!.query<T>(text, params)).rows;

/**
 * A request as the storefront. A 5xx (the API's deadline passed on a busy machine) is sent again,
 * as the API asks: placing with the same Idempotency-Key, reading and cancelling are idempotent.
 * `retried` says an earlier answer was lost.
 */
async function call(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const headers = { ...(await platform.auth.as('storefront')), ...options.headers };
  for (let attempt = 1; ; attempt++) {
    const res = await request(platform.baseUrl, method, path, { ...options, headers });
    if (res.status < 500 || attempt === 5) return { ...res, retried: attempt > 1 };
    await sleep(200 * attempt);
  }
}

/** A small seeded generator: the jitter differs between orders, and a run can be told from its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

interface Raced {
  orderId: string;
  cancelAfterMs: number;
  /** the cancel's answer: accepted in this status, or refused as too late */
  cancel: { accepted: true; from: string } | { accepted: false; status: number; message: string };
  final: { status: string; total: number | null };
}

const SKUS = ['TSHIRT-BLK-M', 'MUG-LOGO', 'SOCKS-3PK', 'CAP-NAVY'];

/** Places an order as the storefront; resolves once the API accepted it. */
async function place(index: number): Promise<string> {
  const body = validOrder({ customerId: `racer-${index}`, items: [{ sku: SKUS[index % SKUS.length]!, quantity: 1 + (index % 2) }] });
  const placed = await call('POST', '/orders', { body, headers: { 'Idempotency-Key': randomUUID() } });
  expect(placed.status, JSON.stringify(placed.body)).toBe(202);
  return placed.body.orderId as string;
}

/** Waits on the workflow itself (a long poll, not a hundred clients polling), then reads the order as the storefront does. */
async function finalOf(orderId: string): Promise<Raced['final']> {
  await platform.client.workflow.getHandle(orderWorkflowId(orderId)).result();
  const order = await eventually(async () => {
    const res = await call('GET', `/orders/${orderId}`);
    return res.status === 200 ? (res.body as Raced['final']) : undefined;
  }, `order ${orderId}`);
  return { status: order.status, total: order.total };
}

async function placeAndCancel(index: number, cancelAfterMs: number): Promise<Raced> {
  const orderId = await place(index);
  await sleep(cancelAfterMs);
  const answer = await call('POST', `/orders/${orderId}/cancel`, { body: { reason: 'race' } });
  expect([202, 409], JSON.stringify(answer.body)).toContain(answer.status);
  const message = String(answer.body?.message ?? '');
  let cancel: Raced['cancel'];
  if (answer.status === 202) cancel = { accepted: true, from: answer.retried ? 'answer lost, then accepted' : (answer.body.previousStatus as string) };
  // after a lost answer, a refusal may be our own earlier cancel at work: the order is unwinding
  else if (answer.retried && /is (COMPENSATING|NEEDS_ATTENTION|CANCELLED)/.test(message)) cancel = { accepted: true, from: 'answer lost, then accepted' };
  else cancel = { accepted: false, status: answer.status, message };
  return { orderId, cancelAfterMs, cancel, final: await finalOf(orderId) };
}

/**
 * How long an order takes from acceptance to COMPLETED on this machine now, with as many in flight
 * as the race will have (the median of a round, after a first round that warms the platform up):
 * the cancels are spread over it, so they land across the saga on a fast machine and a loaded one alike.
 */
async function sagaDuration(): Promise<number> {
  const round = (first: number) =>
    Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, i) => {
        const orderId = await place(first + i);
        const accepted = Date.now();
        expect((await finalOf(orderId)).status).toBe('COMPLETED');
        return Date.now() - accepted;
      }),
    );
  await round(ORDERS);
  const took = (await round(ORDERS + IN_FLIGHT)).sort((a, b) => a - b);
  return took[Math.floor(took.length / 2)]!;
}

/** What every party holds for each order, read once all orders have ended. */
async function ledgers(orderIds: string[]) {
  const byOrder = <T extends { order_id: string }>(rows: T[]) => new Map(rows.map((r) => [r.order_id, r]));
  const shipments = byOrder(
    await sql<{ order_id: string; id: string; status: string; carrier_ref: string | null }>(
      'shipping',
      'SELECT order_id, id, status, carrier_ref FROM shipments WHERE order_id = ANY($1)',
      [orderIds],
    ),
  );
  const payments = byOrder(
    await sql<{ order_id: string; id: string; status: string; authorisation_id: string | null; captured_amount: number; refunded_amount: number }>(
      'payments',
      'SELECT order_id, id, status, authorisation_id, captured_amount, refunded_amount FROM payments WHERE order_id = ANY($1)',
      [orderIds],
    ),
  );
  const reservations = byOrder(
    await sql<{ order_id: string; status: string }>('inventory', 'SELECT order_id, status FROM reservations WHERE order_id = ANY($1)', [orderIds]),
  );
  // The carrier's and the provider's own records, found through the keys we sent them (not through
  // what our databases say they sent), so a booking or authorisation we lost track of shows too.
  const keys = orderIds.flatMap((id) => [stepKey(orderWorkflowId(id), 'shipment:book'), stepKey(orderWorkflowId(id), 'payment:authorise')]);
  const sent = new Map(
    (
      await sql<{ idempotency_key: string; subject: string | null }>(
        'sandbox',
        'SELECT idempotency_key, subject FROM sim_operations WHERE idempotency_key = ANY($1)',
        [keys],
      )
    ).map((r) => [r.idempotency_key, r.subject]),
  );
  const carrier = new Map(
    (
      await sql<{ ref: string; status: string; picked_up: boolean }>(
        'sandbox',
        'SELECT ref, status, pickup_notified_at IS NOT NULL AS picked_up FROM sim_shipments',
      )
    ).map((r) => [r.ref, r]),
  );
  const provider = new Map(
    (
      await sql<{ id: string; status: string; captured: number; refunded: number }>('sandbox', 'SELECT id, status, captured, refunded FROM sim_authorisations')
    ).map((r) => [r.id, r]),
  );
  return (orderId: string) => {
    const shipment = shipments.get(orderId);
    const payment = payments.get(orderId);
    const bookedRef = sent.get(stepKey(orderWorkflowId(orderId), 'shipment:book')) ?? undefined;
    const authorisationId = sent.get(stepKey(orderWorkflowId(orderId), 'payment:authorise')) ?? undefined;
    return {
      shipment,
      payment,
      reservation: reservations.get(orderId),
      bookedRef,
      booking: bookedRef ? carrier.get(bookedRef) : undefined,
      authorisationId,
      authorisation: authorisationId ? provider.get(authorisationId) : undefined,
    };
  };
}

type View = ReturnType<Awaited<ReturnType<typeof ledgers>>>;

/** Where each party disagrees with the order's end; empty when they all agree. */
function disagreements(order: Raced, view: View): string[] {
  const problems: string[] = [];
  const { shipment, payment, booking, authorisation, reservation } = view;
  const live = (s: string | undefined) => s === 'PENDING' || s === 'CREATED' || s === 'PICKED_UP';
  if (order.cancel.accepted ? order.final.status !== 'CANCELLED' : order.final.status !== 'COMPLETED') {
    problems.push(`order ${order.final.status} after a cancel ${order.cancel.accepted ? 'accepted' : 'refused'}`);
  }
  if (order.final.status === 'CANCELLED') {
    if (live(shipment?.status)) problems.push(`shipping database: shipment ${shipment?.status}`);
    if (booking && booking.status !== 'CANCELLED') problems.push(`carrier: booking ${booking.status}`);
    if (shipment?.carrier_ref && shipment.carrier_ref !== view.bookedRef) problems.push('shipping database: a booking the carrier never made');
    if (payment && !['VOIDED', 'REFUNDED', 'DECLINED'].includes(payment.status)) problems.push(`payments database: payment ${payment.status}`);
    if (payment && payment.captured_amount !== payment.refunded_amount)
      problems.push(`payments database: ${payment.captured_amount - payment.refunded_amount} kept`);
    if (authorisation && !['VOIDED', 'REFUNDED'].includes(authorisation.status)) problems.push(`provider: authorisation ${authorisation.status}`);
    if (authorisation && authorisation.captured !== authorisation.refunded) problems.push(`provider: ${authorisation.captured - authorisation.refunded} kept`);
    if (reservation && reservation.status !== 'RELEASED') problems.push(`inventory: reservation ${reservation.status}`);
  } else if (order.final.status === 'COMPLETED') {
    if (shipment?.status !== 'PICKED_UP') problems.push(`shipping database: shipment ${shipment?.status ?? 'missing'}`);
    if (booking?.status !== 'PICKED_UP') problems.push(`carrier: booking ${booking?.status ?? 'missing'}`);
    if (shipment?.carrier_ref !== view.bookedRef) problems.push('shipping database and carrier name different bookings');
    if (payment?.status !== 'CAPTURED' || payment.captured_amount !== order.final.total || payment.refunded_amount !== 0) {
      problems.push(
        `payments database: ${payment?.status ?? 'missing'} ${payment?.captured_amount ?? 0}-${payment?.refunded_amount ?? 0} of ${order.final.total}`,
      );
    }
    if (authorisation?.status !== 'CAPTURED' || authorisation.captured !== order.final.total || authorisation.refunded !== 0) {
      problems.push(`provider: ${authorisation?.status ?? 'missing'} ${authorisation?.captured ?? 0}-${authorisation?.refunded ?? 0} of ${order.final.total}`);
    }
    if (payment?.authorisation_id !== view.authorisationId) problems.push('payments database and provider name different authorisations');
    if (reservation?.status !== 'COMMITTED') problems.push(`inventory: reservation ${reservation?.status ?? 'missing'}`);
  }
  return problems;
}

/** Where in the saga the cancel landed, as the order answered it (and, at the pickup, whether the carrier had the parcel). */
function stage(order: Raced, view: View): string {
  if (!order.cancel.accepted) return 'too late (409: completing or completed)';
  if (order.cancel.from === 'AWAITING_PICKUP' && view.booking?.['picked_up']) return 'AWAITING_PICKUP, raced the pickup';
  return order.cancel.from;
}

const STAGES = [
  'PENDING',
  'RESERVING_STOCK',
  'AUTHORISING_PAYMENT',
  'CREATING_SHIPMENT',
  'AWAITING_PICKUP',
  'AWAITING_PICKUP, raced the pickup',
  'CAPTURING_PAYMENT',
  'too late (409: completing or completed)',
  'answer lost, then accepted',
];

describe('a cancel racing the saga', () => {
  it('leaves the order, shipping, payments, the carrier and the provider in agreement, whenever it lands', async () => {
    const seed = Number(process.env.RACE_SEED ?? Date.now() % 1_000_000);
    const rand = random(seed);
    const saga = await sagaDuration();
    const latest = Math.round(saga * OVERSHOOT);
    const step = latest / (ORDERS - 1);
    // evenly spread over [0, latest], each moved by up to half a step, and dealt out in a shuffled
    // order so that orders in flight together do not cancel at neighbouring moments
    const delays = Array.from({ length: ORDERS }, (_, i) => Math.max(0, Math.round(i * step + (rand() - 0.5) * step)));
    for (let i = delays.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [delays[i], delays[j]] = [delays[j]!, delays[i]!];
    }
    const started = Date.now();
    const raced: Raced[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = next++; i < ORDERS; i = next++) raced[i] = await placeAndCancel(i, delays[i]!);
      }),
    );
    const ran = Date.now() - started;

    const viewOf = await ledgers(raced.map((r) => r.orderId));
    const rows = raced.map((order) => ({ order, stage: stage(order, viewOf(order.orderId)), problems: disagreements(order, viewOf(order.orderId)) }));

    const table = STAGES.map((name) => {
      const here = rows.filter((r) => r.stage === name);
      return {
        'cancel landed': name,
        orders: here.length,
        CANCELLED: here.filter((r) => r.order.final.status === 'CANCELLED').length,
        COMPLETED: here.filter((r) => r.order.final.status === 'COMPLETED').length,
        disagreeing: here.filter((r) => r.problems.length > 0).length,
      };
    });
    const unknown = rows.filter((r) => !STAGES.includes(r.stage));
    console.log(
      `race: ${ORDERS} orders, seed ${seed}, carrier pickup ${PICKUP_DELAY_MS} ms after booking, a whole saga ${saga} ms, cancels 0-${latest} ms after acceptance, ${ran} ms`,
    );
    console.table(table);
    const failing = rows.filter((r) => r.problems.length > 0);
    for (const { order, stage: where, problems } of failing) {
      console.log(`  ${order.orderId} (cancel at ${order.cancelAfterMs} ms, ${where}) ended ${order.final.status}: ${problems.join('; ')}`);
    }

    expect(unknown.map((r) => r.stage)).toEqual([]);
    expect(failing.map((r) => ({ orderId: r.order.orderId, stage: r.stage, problems: r.problems }))).toEqual([]);
    // the spread reached both ends and the pickup itself
    expect(rows.some((r) => ['PENDING', 'RESERVING_STOCK', 'AUTHORISING_PAYMENT'].includes(r.stage))).toBe(true);
    expect(rows.some((r) => r.stage.startsWith('AWAITING_PICKUP'))).toBe(true);
    expect(rows.some((r) => !r.order.cancel.accepted)).toBe(true);
  }, 240_000);
});
