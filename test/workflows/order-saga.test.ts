import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import { CancelledFailure, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  cancelOrderUpdate,
  confirmPickupSignal,
  getOrderStateQuery,
  resolveCompensationUpdate,
  retryCompensationUpdate,
  reviewOrderUpdate,
  ORDER_SEARCH_ATTRIBUTES,
  orderWorkflowId,
  stepKey,
  type OrderState,
  type OrderStatus,
} from '../../contracts/orders';
import { apiEnv, orderTimingsFrom } from '../../api/config';
import { parseEnv } from '../../lib/config';
import { createFakeServices } from '../support/fake-services';
import { ensureSearchAttributes } from '../../lib/temporal/search-attributes';
import { CUSTOMER, OPERATOR, REVIEWER, STOREFRONT, gate, orderInput, sagaHarness } from '../support/saga';
import { bundleWorkflows, quietRuntime } from '../support/temporal';

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundle;

beforeAll(async () => {
  quietRuntime();
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: inject('testServerPath') } },
  });
  await ensureSearchAttributes(env.connection, 'default', ORDER_SEARCH_ATTRIBUTES);
  bundle = await bundleWorkflows();
});

afterAll(async () => {
  await env?.teardown();
});

const { startOrder, waitForStatus, confirmPickup, run } = sagaHarness(
  () => env,
  () => bundle,
);

/**
 * How long the order waited for the carrier, in workflow time, from its own event log: from the
 * shipment's booking to the next thing the saga did (the pickup, or the first undo).
 */
function pickupWaitMs(state: OrderState): number {
  const booked = state.events.findIndex((e) => e.type === 'ShipmentCreated');
  const next = state.events.slice(booked + 1).find((e) => e.type !== 'ReservationRenewed' && e.type !== 'PaymentReauthorised');
  if (booked < 0 || !next) throw new Error(`no pickup wait in ${state.events.map((e) => e.type).join(', ')}`);
  return Date.parse(next.at) - Date.parse(state.events[booked]!.at);
}

describe('orderWorkflow', () => {
  it('completes the happy path and records every step in order', async () => {
    const fakes = createFakeServices();
    const input = orderInput();
    const { result, state } = await run(fakes, async () => {
      const handle = await startOrder(input);
      await confirmPickup(handle);
      const result = await handle.result();
      return { result, state: await handle.query(getOrderStateQuery) };
    });

    expect(result).toEqual({ orderId: input.orderId, status: 'COMPLETED', compensations: [] });
    // every call but the event log's own writes (recordOrderEvent, recordOrderEvents)
    expect(fakes.calls.filter((c) => !c.startsWith('recordOrderEvent'))).toEqual([
      'recordOrderPlaced',
      'reserveStock',
      'authorisePayment',
      'createShipment',
      'capturePayment',
      'commitStock',
    ]);
    expect(state.steps).toEqual([
      'OrderPlaced',
      'StockReserved',
      'PaymentAuthorised',
      'ShipmentCreated',
      'PickupConfirmed',
      'PaymentCaptured',
      'OrderCompleted',
    ]);
    expect(state.total).toBe(2 * 1299 + 1799);
    expect(fakes.events.map((e) => e.type)).toEqual([
      'StockReserved',
      'PaymentAuthorised',
      'ShipmentCreated',
      'PickupConfirmed',
      'PaymentCaptured',
      'OrderCompleted',
    ]);
    expect(fakes.events.at(-1)?.status).toBe('COMPLETED');
    expect(fakes.stock['MUG-LOGO']).toBe(98);
    expect([...fakes.paymentStates.values()].map((p) => p.status)).toEqual(['CAPTURED']);
  });

  it('fails OUT_OF_STOCK without touching payment or shipping', async () => {
    const fakes = createFakeServices({ stock: { 'MUG-LOGO': 1, 'CAP-NAVY': 100 } });
    const result = await run(fakes, async () => (await startOrder(orderInput())).result());

    expect(result.status).toBe('FAILED');
    expect(result.failureReason).toBe('OUT_OF_STOCK');
    expect(result.compensations).toEqual([]);
    expect(fakes.calls).not.toContain('authorisePayment');
    expect(fakes.calls).not.toContain('capturePayment');
    expect(fakes.calls).not.toContain('createShipment');
    expect(fakes.paymentStates.size).toBe(0);
    expect(fakes.stock).toEqual({ 'MUG-LOGO': 1, 'CAP-NAVY': 100 });
    expect(fakes.events.at(-1)).toMatchObject({ type: 'OrderFailed', status: 'FAILED', failureReason: 'OUT_OF_STOCK' });
  });

  it('releases the stock when the payment is declined', async () => {
    const fakes = createFakeServices({ declinedTokens: ['tok_declined'] });
    const result = await run(fakes, async () => (await startOrder(orderInput({ payment: { token: 'tok_declined' } }))).result());

    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'PAYMENT_DECLINED', compensations: ['StockReleased'] });
    expect(fakes.stock).toEqual({ 'MUG-LOGO': 100, 'CAP-NAVY': 100 });
    expect(fakes.calls).not.toContain('createShipment');
    expect(fakes.calls).not.toContain('capturePayment');
  });

  it('voids the authorisation and releases the stock when the carrier refuses, in reverse order', async () => {
    const fakes = createFakeServices({ refusedCountries: ['AQ'] });
    const input = orderInput({ shippingAddress: { ...orderInput().shippingAddress, country: 'AQ' } });
    const result = await run(fakes, async () => (await startOrder(input)).result());

    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'SHIPPING_UNAVAILABLE', compensations: ['PaymentVoided', 'StockReleased'] });
    const undoCalls = fakes.calls.filter((c) => ['cancelShipment', 'voidPayment', 'releaseStock'].includes(c));
    expect(undoCalls).toEqual(['cancelShipment', 'voidPayment', 'releaseStock']);
    expect([...fakes.paymentStates.values()].map((p) => p.status)).toEqual(['VOIDED']);
    expect(fakes.calls).not.toContain('capturePayment');
    expect(fakes.stock['MUG-LOGO']).toBe(100);
  });

  const cancelCases: Array<{ stage: string; activity?: string; status?: OrderStatus; compensations: string[]; captured?: boolean }> = [
    { stage: 'while reserving stock', activity: 'reserveStock', compensations: ['StockReleased'] },
    { stage: 'while authorising payment', activity: 'authorisePayment', compensations: ['PaymentVoided', 'StockReleased'] },
    { stage: 'while creating the shipment', activity: 'createShipment', compensations: ['ShipmentCancelled', 'PaymentVoided', 'StockReleased'] },
    { stage: 'while awaiting pickup', status: 'AWAITING_PICKUP', compensations: ['ShipmentCancelled', 'PaymentVoided', 'StockReleased'] },
    { stage: 'while capturing payment', activity: 'capturePayment', compensations: ['PaymentRefunded', 'ShipmentCancelled', 'StockReleased'], captured: true },
  ];

  for (const c of cancelCases) {
    it(`cancels ${c.stage}: runs ${c.compensations.join(', ')} and ends CANCELLED`, async () => {
      const held = c.activity ? gate(c.activity) : undefined;
      const fakes = createFakeServices({ onCall: held?.onCall });
      const input = orderInput();
      const { result, accepted, repeated } = await run(fakes, async () => {
        const handle = await startOrder(input);
        if (c.activity === 'capturePayment') await confirmPickup(handle);
        if (held) await held.entered;
        else await waitForStatus(handle, c.status!);
        const accepted = await handle.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'customer changed their mind', requestedBy: CUSTOMER }] });
        // A repeat (the storefront retrying, an operator too) is accepted as one and changes nothing.
        const repeated = await handle.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'by the operator', requestedBy: OPERATOR }] });
        held?.open();
        return { result: await handle.result(), accepted, repeated };
      });

      expect(accepted.orderId).toBe(input.orderId);
      expect(accepted.repeated).toBeUndefined();
      expect(repeated).toMatchObject({ orderId: input.orderId, repeated: true });
      expect(fakes.events.filter((e) => e.type === 'OrderCancelled').map((e) => (e.data as { reason?: string }).reason)).toEqual([
        'customer changed their mind',
      ]);
      expect(result.status).toBe('CANCELLED');
      expect(result.compensations).toEqual(c.compensations);
      expect(fakes.stock).toEqual({ 'MUG-LOGO': 100, 'CAP-NAVY': 100 });
      const payment = [...fakes.paymentStates.values()][0];
      if (c.captured) expect(payment?.status).toBe('REFUNDED');
      else expect(payment?.status === undefined || payment.status === 'VOIDED').toBe(true);
      expect(fakes.events.at(-1)).toMatchObject({ type: 'OrderCancelled', status: 'CANCELLED' });
    });
  }

  it('refuses a cancellation once the order is compensating or done', async () => {
    const held = gate('releaseStock');
    const fakes = createFakeServices({ declinedTokens: ['tok_declined'], onCall: held.onCall });
    const outcome = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ payment: { token: 'tok_declined' } }));
      await held.entered;
      const refused = await handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: CUSTOMER }] }).then(
        () => undefined,
        (err: unknown) => err,
      );
      held.open();
      return { refused, result: await handle.result() };
    });
    expect(outcome.refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((outcome.refused as WorkflowUpdateFailedError).cause?.message).toMatch(/COMPENSATING/);
    expect(outcome.result.status).toBe('FAILED');
  });

  it('checks who sends each update: only its own client or an operator cancels, nobody anonymous, never a reviewer of their own order', async () => {
    const fakes = createFakeServices();
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => 'accepted',
        (err: unknown) => ((err as WorkflowUpdateFailedError).cause as { type?: string } | undefined)?.type ?? String(err),
      );
    const stranger = { issuer: STOREFRONT.issuer, subject: 'storefront-2', role: 'customer' as const };
    const impostor = { issuer: 'https://elsewhere.test', subject: STOREFRONT.subject, role: 'customer' as const };
    const outcome = await run(fakes, async () => {
      const reviewed = await startOrder(orderInput({ reviewAbove: 3000 }));
      await waitForStatus(reviewed, 'AWAITING_REVIEW');
      const selfReview = await refusal(reviewed.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: STOREFRONT }] }));
      const anonymousReview = await refusal(
        reviewed.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: undefined as unknown as typeof REVIEWER }] }),
      );
      const stillAwaiting = (await reviewed.query(getOrderStateQuery)).status;
      await reviewed.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'reject', reviewer: REVIEWER, reason: 'test' }] });

      const handle = await startOrder(orderInput());
      await waitForStatus(handle, 'AWAITING_PICKUP');
      const byStranger = await refusal(handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: stranger }] }));
      const byImpostor = await refusal(handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: impostor }] }));
      const byNobody = await refusal(handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: { issuer: '', subject: '', role: 'operator' } }] }));
      const afterRefusals = (await handle.query(getOrderStateQuery)).status;
      const byOperator = await refusal(handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: OPERATOR }] }));
      return {
        selfReview,
        anonymousReview,
        stillAwaiting,
        byStranger,
        byImpostor,
        byNobody,
        afterRefusals,
        byOperator,
        result: await handle.result(),
        reviewedResult: await reviewed.result(),
      };
    });
    expect(outcome).toMatchObject({
      selfReview: 'SelfReview',
      anonymousReview: 'IdentityRequired',
      stillAwaiting: 'AWAITING_REVIEW',
      byStranger: 'NotOrderOwner',
      byImpostor: 'NotOrderOwner',
      byNobody: 'IdentityRequired',
      afterRefusals: 'AWAITING_PICKUP',
      byOperator: 'accepted',
    });
    expect(outcome.result.status).toBe('CANCELLED');
    expect(outcome.reviewedResult).toMatchObject({ status: 'FAILED', failureReason: 'REVIEW_REJECTED' });
  });

  it('unwinds when the workflow itself is cancelled (Web UI or CLI cancel)', async () => {
    const fakes = createFakeServices();
    const { failure, state } = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      await waitForStatus(handle, 'AWAITING_PICKUP');
      await handle.cancel();
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      return { failure, state: await handle.query(getOrderStateQuery) };
    });
    // The execution ends Canceled in Temporal, after the order itself was unwound.
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(state.status).toBe('CANCELLED');
    expect(state.compensations).toEqual(['ShipmentCancelled', 'PaymentVoided', 'StockReleased']);
    expect(fakes.stock).toEqual({ 'MUG-LOGO': 100, 'CAP-NAVY': 100 });
    expect(fakes.events.at(-1)).toMatchObject({ type: 'OrderCancelled', status: 'CANCELLED' });
  });

  it('waits days for the carrier: a pickup 40 hours later completes, in skipped time', async () => {
    const fakes = createFakeServices();
    const realStart = Date.now();
    const { result, waitedMs } = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      await waitForStatus(handle, 'AWAITING_PICKUP');
      const before = await env.currentTimeMs();
      await env.sleep('40 hours');
      await handle.signal(confirmPickupSignal, { carrierRef: 'ref', pickedUpAt: new Date(await env.currentTimeMs()).toISOString() });
      const result = await handle.result();
      return { result, waitedMs: (await env.currentTimeMs()) - before };
    });
    console.log(`40 hours of workflow time took ${Date.now() - realStart} ms of real time`);
    expect(result.status).toBe('COMPLETED');
    expect(waitedMs).toBeGreaterThanOrEqual(40 * 3600_000);
  });

  it('fails SHIPPING_TIMEOUT after 48 hours without a pickup, and compensates', async () => {
    const fakes = createFakeServices();
    const { result, waitedMs, state } = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      const before = await env.currentTimeMs();
      const result = await handle.result();
      return { result, waitedMs: (await env.currentTimeMs()) - before, state: await handle.query(getOrderStateQuery) };
    });
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'SHIPPING_TIMEOUT' });
    expect(result.compensations).toEqual(['ShipmentCancelled', 'PaymentVoided', 'StockReleased']);
    expect(waitedMs).toBeGreaterThanOrEqual(48 * 3600_000);
    // and no later: the carrier gets 48 hours, not "at least 48 hours" (read from the order's own log:
    // the test server's clock may run on past the end of a workflow)
    expect(pickupWaitMs(state)).toBeGreaterThanOrEqual(48 * 3600_000);
    expect(pickupWaitMs(state)).toBeLessThan(48 * 3600_000 + 60_000);
  });

  it('times out the pickup after the PICKUP_TIMEOUT this deployment configures (48 hours by default)', async () => {
    const waitFor = async (processEnv: NodeJS.ProcessEnv) => {
      const fakes = createFakeServices();
      return run(fakes, async () => {
        const handle = await startOrder(orderInput({ ...orderTimingsFrom(parseEnv(apiEnv, processEnv)) }));
        const result = await handle.result();
        return { result, waitedMs: pickupWaitMs(await handle.query(getOrderStateQuery)) };
      });
    };
    const byDefault = await waitFor({});
    expect(byDefault.result).toMatchObject({ status: 'FAILED', failureReason: 'SHIPPING_TIMEOUT' });
    expect(byDefault.waitedMs).toBeGreaterThanOrEqual(48 * 3600_000);
    expect(byDefault.waitedMs).toBeLessThan(48 * 3600_000 + 60_000);
    const configured = await waitFor({ PICKUP_TIMEOUT: '3h' });
    expect(configured.result).toMatchObject({ status: 'FAILED', failureReason: 'SHIPPING_TIMEOUT' });
    expect(configured.waitedMs).toBeGreaterThanOrEqual(3 * 3600_000);
    expect(configured.waitedMs).toBeLessThan(3 * 3600_000 + 60_000);
  });

  it('a cancel while awaiting pickup takes effect at once, not when the wait would have ended', async () => {
    const fakes = createFakeServices();
    const { result, tookMs } = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      await waitForStatus(handle, 'AWAITING_PICKUP');
      await handle.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'changed my mind', requestedBy: CUSTOMER }] });
      const result = await handle.result();
      return { result, tookMs: pickupWaitMs(await handle.query(getOrderStateQuery)) };
    });
    expect(result).toMatchObject({ status: 'CANCELLED', compensations: ['ShipmentCancelled', 'PaymentVoided', 'StockReleased'] });
    // seconds of workflow time: the wait woke on the cancel instead of sleeping out its 48 hours or its next renewal
    expect(tookMs).toBeLessThan(60_000);
    expect(fakes.calls).not.toContain('renewReservation');
  });

  it('renews the reservation every 23 hours and re-authorises the payment before 7 days while waiting 8 days for pickup', async () => {
    const fakes = createFakeServices();
    const result = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ pickupTimeout: '10d' }));
      await waitForStatus(handle, 'AWAITING_PICKUP');
      await env.sleep('8 days');
      await confirmPickup(handle);
      return handle.result();
    });
    expect(result.status).toBe('COMPLETED');
    // 24-hour holds renewed an hour before they end: at 23 h, 46 h, … 184 h
    expect(fakes.attempts.renewReservation).toBe(8);
    expect(fakes.attempts.reauthorisePayment).toBe(1);
    expect(fakes.events.filter((e) => e.type === 'PaymentReauthorised')).toHaveLength(1);
    const reauthorisedAt = fakes.calls.indexOf('reauthorisePayment');
    expect(reauthorisedAt).toBeGreaterThan(-1);
    expect(fakes.calls.indexOf('capturePayment')).toBeGreaterThan(reauthorisedAt);
  });

  it('fails PAYMENT_DECLINED and unwinds when the re-authorisation is declined', async () => {
    const fakes = createFakeServices({ declineReauthorisation: true });
    const result = await run(fakes, async () => (await startOrder(orderInput({ pickupTimeout: '10d' }))).result());
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'PAYMENT_DECLINED' });
    expect(result.compensations).toEqual(['ShipmentCancelled', 'PaymentVoided', 'StockReleased']);
    expect(fakes.attempts.renewReservation).toBe(7);
    expect(fakes.calls).not.toContain('capturePayment');
  });

  it('parks in NEEDS_ATTENTION when an undo outlives its retry budget; an operator retry then finishes it', async () => {
    const failFirst: Record<string, number> = { releaseStock: Number.MAX_SAFE_INTEGER };
    const fakes = createFakeServices({ declinedTokens: ['tok_declined'], failFirst });
    const { parked, result } = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ payment: { token: 'tok_declined' } }));
      await env.sleep('31 minutes');
      await waitForStatus(handle, 'NEEDS_ATTENTION');
      const parked = await handle.query(getOrderStateQuery);
      failFirst.releaseStock = 0; // the operator fixed inventory
      await handle.executeUpdate(retryCompensationUpdate, { args: [{ operator: 'ops@example.com' }] });
      return { parked, result: await handle.result() };
    });
    expect(parked.status).toBe('NEEDS_ATTENTION');
    expect(parked.attention?.pending).toEqual(['StockReleased']);
    expect(parked.attention?.error).toMatch(/simulated infrastructure failure/);
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'PAYMENT_DECLINED', compensations: ['StockReleased'] });
    expect(fakes.stock['MUG-LOGO']).toBe(100);
    expect(fakes.events.map((e) => e.type)).toEqual(expect.arrayContaining(['NeedsAttention', 'CompensationRetried', 'CompensationRan', 'OrderFailed']));
  });

  it('keeps what is left to undo while parked, and ends when an operator resolves it by hand', async () => {
    const fakes = createFakeServices({ refusedCountries: ['AQ'], failFirst: { voidPayment: Number.MAX_SAFE_INTEGER } });
    const input = orderInput({ shippingAddress: { ...orderInput().shippingAddress, country: 'AQ' } });
    const { parked, refusals, result, state } = await run(fakes, async () => {
      const handle = await startOrder(input);
      await env.sleep('31 minutes');
      await waitForStatus(handle, 'NEEDS_ATTENTION');
      const parked = await handle.query(getOrderStateQuery);
      const refusals = await Promise.all([
        handle.executeUpdate(resolveCompensationUpdate, { args: [{ operator: 'ops', note: '  ' }] }).then(
          () => undefined,
          (e: unknown) => e,
        ),
        handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: CUSTOMER }] }).then(
          () => undefined,
          (e: unknown) => e,
        ),
      ]);
      await handle.executeUpdate(resolveCompensationUpdate, { args: [{ operator: 'ops', note: 'voided at the provider console; stock recounted' }] });
      const result = await handle.result();
      return { parked, refusals, result, state: await handle.query(getOrderStateQuery) };
    });
    expect(parked.attention?.pending).toEqual(['PaymentVoided', 'StockReleased']);
    expect(refusals.every((e) => e instanceof WorkflowUpdateFailedError)).toBe(true);
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'SHIPPING_UNAVAILABLE', compensations: [] });
    expect(state.resolvedByHand).toEqual(['PaymentVoided', 'StockReleased']);
    expect(fakes.calls).not.toContain('releaseStock');
    expect(fakes.events.find((e) => e.type === 'CompensationResolvedByHand')?.data).toMatchObject({ operator: 'ops' });
  });

  it('refuses an operator retry for an order that does not need attention', async () => {
    const fakes = createFakeServices();
    const refused = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      await waitForStatus(handle, 'AWAITING_PICKUP');
      const refused = await handle.executeUpdate(retryCompensationUpdate, { args: [{ operator: 'ops' }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await confirmPickup(handle);
      await handle.result();
      return refused;
    });
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/AWAITING_PICKUP/);
  });

  it('holds an order above the review threshold until an operator approves it', async () => {
    const fakes = createFakeServices();
    const { refusedEarly, result, state } = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ reviewAbove: 3000 }));
      await waitForStatus(handle, 'AWAITING_REVIEW');
      const refusedEarly = await handle
        .executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: { issuer: REVIEWER.issuer, subject: ' ' } }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      await handle.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: REVIEWER }] });
      await confirmPickup(handle);
      return { refusedEarly, result: await handle.result(), state: await handle.query(getOrderStateQuery) };
    });
    expect(refusedEarly).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(result.status).toBe('COMPLETED');
    expect(state.review).toEqual({ decision: 'approve', reviewer: REVIEWER.subject, reviewerIssuer: REVIEWER.issuer });
    expect(fakes.events.map((e) => e.type).slice(0, 3)).toEqual(['StockReserved', 'ReviewRequested', 'OrderReviewed']);
    expect(fakes.calls.indexOf('authorisePayment')).toBeGreaterThan(-1);
  });

  it('rejects an order nobody reviews within 24 hours, releasing its stock', async () => {
    const fakes = createFakeServices();
    const { result, state, waitedMs } = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ reviewAbove: 3000 }));
      await waitForStatus(handle, 'AWAITING_REVIEW');
      const before = await env.currentTimeMs();
      const result = await handle.result();
      return { result, state: await handle.query(getOrderStateQuery), waitedMs: (await env.currentTimeMs()) - before };
    });
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'REVIEW_REJECTED', compensations: ['StockReleased'] });
    expect(state.review).toMatchObject({ decision: 'reject', reviewer: 'system' });
    expect(waitedMs).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(fakes.calls).not.toContain('authorisePayment');
    expect(fakes.stock).toEqual({ 'MUG-LOGO': 100, 'CAP-NAVY': 100 });
  });

  it('does not hold an order at or below the threshold, and refuses a review it did not ask for', async () => {
    const fakes = createFakeServices();
    const { refused, result } = await run(fakes, async () => {
      const handle = await startOrder(orderInput({ reviewAbove: 2 * 1299 + 1799 }));
      await waitForStatus(handle, 'AWAITING_PICKUP');
      const refused = await handle.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: REVIEWER }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await confirmPickup(handle);
      return { refused, result: await handle.result() };
    });
    expect(result.status).toBe('COMPLETED');
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/not awaiting review/);
    expect(fakes.events.map((e) => e.type)).not.toContain('ReviewRequested');
  });

  it('retries infrastructure failures and still charges once', async () => {
    const fakes = createFakeServices({ failFirst: { authorisePayment: 2, reserveStock: 1 } });
    const result = await run(fakes, async () => {
      const handle = await startOrder(orderInput());
      await confirmPickup(handle);
      return handle.result();
    });
    expect(result.status).toBe('COMPLETED');
    expect(fakes.attempts.authorisePayment).toBe(3);
    expect(fakes.attempts.reserveStock).toBe(2);
    expect(fakes.attempts.capturePayment).toBe(1);
  });

  it('retries a capture whose answer was lost with the same key, so the customer is charged once', async () => {
    // The provider took the money twice over but each answer was lost: every retry must name the same payment.
    const fakes = createFakeServices({ loseAnswer: { capturePayment: 2 }, failFirst: { commitStock: 1 } });
    const input = orderInput();
    const result = await run(fakes, async () => {
      const handle = await startOrder(input);
      await confirmPickup(handle);
      return handle.result();
    });
    expect(result).toEqual({ orderId: input.orderId, status: 'COMPLETED', compensations: [] });
    expect(fakes.attempts.capturePayment).toBe(3);
    expect(fakes.charges).toEqual([stepKey(orderWorkflowId(input.orderId), 'payment')]);
    expect(fakes.calls).not.toContain('refundPayment');
  });

  for (const { activity, reason } of [
    { activity: 'renewReservation', reason: 'INVENTORY_UNAVAILABLE' },
    { activity: 'reauthorisePayment', reason: 'PAYMENTS_UNAVAILABLE' },
  ]) {
    it(`fails ${reason} when ${activity} cannot reach its service during a long wait, and unwinds`, async () => {
      const fakes = createFakeServices({ failFirst: { [activity]: Number.MAX_SAFE_INTEGER } });
      const result = await run(fakes, async () => (await startOrder(orderInput({ pickupTimeout: '10d' }))).result());
      expect(result).toMatchObject({ status: 'FAILED', failureReason: reason, compensations: ['ShipmentCancelled', 'PaymentVoided', 'StockReleased'] });
      expect(fakes.attempts[activity]).toBeGreaterThan(3);
      expect(fakes.calls).not.toContain('capturePayment');
    });
  }

  it('fails INVENTORY_UNAVAILABLE and compensates when inventory stays down past its deadline', async () => {
    const fakes = createFakeServices({ failFirst: { reserveStock: Number.MAX_SAFE_INTEGER } });
    const result = await run(fakes, async () => (await startOrder(orderInput())).result());
    expect(result).toMatchObject({ status: 'FAILED', failureReason: 'INVENTORY_UNAVAILABLE' });
    expect(fakes.attempts.reserveStock).toBeGreaterThan(3);
    expect(fakes.calls).toContain('releaseStock');
    expect(fakes.calls).not.toContain('authorisePayment');
  });
});
