import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  setWorkflowOptions,
} from '@temporalio/workflow';
import { identityKey } from '../../contracts/auth';
import { ErrorType, FailureReason, failureReasonByErrorType } from '../../contracts/errors';
import type { Reservation } from '../../contracts/inventory';
import type { OrderResult, PickupConfirmation, PlaceOrderInput } from '../../contracts/orders';
import { Compensations } from './compensations';
import { Holds } from './holds';
import { Order } from './order';
import { firstRecord, inventory, payments, shipping, undoInventory, undoPayments, undoShipping } from './services';

/**
 * The order saga, as the README lists it: record → reserve stock → (review) → authorise payment
 * → create the shipment → wait for the carrier's pickup, keeping the holds alive → capture →
 * complete. A failure or a cancellation runs the undos registered so far, in reverse.
 */
export async function orderWorkflow(input: PlaceOrderInput): Promise<OrderResult> {
  const order = new Order(input);
  const undo = new Compensations(order);
  let cancelledByTemporal: Error | undefined;
  try {
    await recordOrder(order);
    const reservation = await reserveStock(order, undo);
    const reservedAt = Date.now();
    if (input.reviewAbove !== undefined && reservation.total > input.reviewAbove) await awaitReview(order);
    await authorisePayment(order, undo, reservation);
    const holds = new Holds(order, reservedAt, Date.now());
    await createShipment(order, undo);
    await awaitPickup(order, holds);
    await capturePayment(order, undo);
    await complete(order);
  } catch (err) {
    if (isCancellation(err)) cancelledByTemporal = err as Error;
    await unwind(order, undo, err);
  }
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  // Cancelled from the Web UI or CLI: once unwound, the execution ends as Canceled there too.
  if (cancelledByTemporal) throw cancelledByTemporal;
  const { orderId, status, failureReason, compensations } = order.state;
  return { orderId, status: status as OrderResult['status'], ...(failureReason ? { failureReason } : {}), compensations };
}
// An order finishes on the build it started on (Worker Versioning), however many days it waits: a
// deploy never replays it on changed code, so a saga change needs no patch, only a new build.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, orderWorkflow);

/** 1. The order and its first event, in the orders database, in the first workflow task. */
async function recordOrder(order: Order): Promise<void> {
  const { orderId, placedBy, customerId, requestHash, items, shippingAddress, email } = order.input;
  await firstRecord.recordOrderPlaced({
    orderId,
    placedBy: identityKey(placedBy),
    customerId,
    requestHash,
    items,
    shippingAddress,
    ...(email ? { email } : {}),
    idempotencyKey: order.key('OrderPlaced'),
  });
  order.recorded = true;
  order.stepDone('OrderPlaced', { data: { items }, written: true });
}

/** 2. Takes the units from stock, priced: the prices the order is charged at. */
async function reserveStock(order: Order, undo: Compensations): Promise<Reservation> {
  const reservationId = order.key('reservation');
  undo.register('StockReleased', async () => (await undoInventory.releaseStock({ reservationId, orderId: order.orderId })).released);
  order.throwIfCancelRequested();
  order.enter('RESERVING_STOCK');
  const reservation = await inventory.reserveStock({
    reservationId,
    orderId: order.orderId,
    items: order.input.items,
    holdMs: order.timing('reservationHold'),
  });
  Object.assign(order.state, { items: reservation.lines, total: reservation.total, currency: reservation.currency });
  order.stepDone('StockReserved', { data: { reservationId, total: reservation.total, currency: reservation.currency }, pricing: reservation });
  await order.publish();
  return reservation;
}

/** A large order waits for a reviewer before any money is touched; nobody deciding in time is a rejection. */
async function awaitReview(order: Order): Promise<void> {
  order.throwIfCancelRequested();
  order.enter('AWAITING_REVIEW');
  order.record('ReviewRequested', { data: { total: order.state.total, currency: order.state.currency, threshold: order.input.reviewAbove } });
  const decided = await condition(() => order.review !== undefined || order.cancelRequested, order.timing('reviewTimeout'));
  order.throwIfCancelRequested();
  const outcome =
    decided && order.review
      ? order.review
      : { decision: 'reject' as const, reviewer: 'system', reason: `not reviewed within ${order.timingText('reviewTimeout')}` };
  order.state.review = outcome;
  order.record('OrderReviewed', { data: { ...outcome } });
  if (outcome.decision === 'reject') {
    throw ApplicationFailure.create({
      type: ErrorType.ReviewRejected,
      message: `rejected by ${outcome.reviewer}: ${outcome.reason ?? 'no reason given'}`,
      nonRetryable: true,
    });
  }
}

/** 3. Authorises the reserved total with the payment provider. */
async function authorisePayment(order: Order, undo: Compensations, reservation: Reservation): Promise<void> {
  const paymentId = order.key('payment');
  undo.register('PaymentVoided', async () => (await undoPayments.voidPayment({ paymentId, orderId: order.orderId })).action !== 'NONE');
  order.throwIfCancelRequested();
  order.enter('AUTHORISING_PAYMENT');
  const { total: amount, currency } = reservation;
  const authorisation = await payments.authorisePayment({ paymentId, orderId: order.orderId, amount, currency, token: order.input.payment.token });
  order.stepDone('PaymentAuthorised', { data: { authorisationId: authorisation.authorisationId, amount: authorisation.amount } });
  await order.publish();
}

/** 4. Books the carrier. */
async function createShipment(order: Order, undo: Compensations): Promise<void> {
  const shipmentId = order.key('shipment');
  undo.register('ShipmentCancelled', async () => (await undoShipping.cancelShipment({ shipmentId, orderId: order.orderId })).cancelled);
  order.throwIfCancelRequested();
  order.enter('CREATING_SHIPMENT');
  const shipment = await shipping.createShipment({ shipmentId, orderId: order.orderId, address: order.input.shippingAddress, items: order.input.items });
  order.stepDone('ShipmentCreated', { data: { carrierRef: shipment.carrierRef, trackingNumber: shipment.trackingNumber } });
}

/**
 * 5. Waits for the shipping service to say the carrier picked the parcel up, for `pickupTimeout`
 * at most, waking only to renew a hold that would otherwise run out meanwhile. A cancel wakes it at once.
 */
async function awaitPickup(order: Order, holds: Holds): Promise<PickupConfirmation> {
  order.throwIfCancelRequested();
  order.enter('AWAITING_PICKUP');
  const deadline = Date.now() + order.timing('pickupTimeout');
  const settled = () => order.pickup !== undefined || order.cancelRequested;
  while (!settled() && Date.now() < deadline) {
    const wakeAt = Math.min(deadline, holds.nextRenewal);
    if (Date.now() < wakeAt) await condition(settled, wakeAt - Date.now());
    else await holds.renewDue();
  }
  order.throwIfCancelRequested();
  if (!order.pickup) {
    throw ApplicationFailure.create({
      type: ErrorType.PickupTimeout,
      message: `carrier did not pick up within ${order.timingText('pickupTimeout')}`,
      nonRetryable: true,
    });
  }
  order.stepDone('PickupConfirmed', { data: { ...order.pickup } });
  await order.publish();
  return order.pickup;
}

/** 6. Takes the money. */
async function capturePayment(order: Order, undo: Compensations): Promise<void> {
  const paymentId = order.key('payment');
  undo.register('PaymentRefunded', async () => (await undoPayments.refundPayment({ paymentId, orderId: order.orderId })).action !== 'NONE');
  order.throwIfCancelRequested();
  order.enter('CAPTURING_PAYMENT');
  const capture = await payments.capturePayment({ paymentId, orderId: order.orderId });
  order.stepDone('PaymentCaptured', { data: { ...capture } });
}

/** 7. The reserved stock is gone for good; the order is recorded COMPLETED, with its whole log. */
async function complete(order: Order): Promise<void> {
  order.throwIfCancelRequested();
  order.enter('COMPLETING');
  await inventory.commitStock({ reservationId: order.key('reservation'), orderId: order.orderId });
  order.stepDone('OrderCompleted', { status: 'COMPLETED', data: { total: order.state.total, currency: order.state.currency } });
  // Committed stock is final: from here on a cancellation can no longer unwind the order.
  await CancellationScope.nonCancellable(() => order.end('COMPLETED'));
}

/** What stopped the saga decides the end: the undos run in reverse, then the order ends FAILED or CANCELLED. */
async function unwind(order: Order, undo: Compensations, err: unknown): Promise<void> {
  const outcome = classify(err);
  log.warn('order did not complete; compensating', { orderId: order.orderId, outcome: outcome.status, reason: outcome.failureReason });
  order.enter('COMPENSATING');
  // A cancelled workflow still unwinds: the undos run in a scope that cancellation cannot reach.
  await CancellationScope.nonCancellable(async () => {
    await undo.runInReverse();
    order.record(outcome.status === 'CANCELLED' ? 'OrderCancelled' : 'OrderFailed', {
      status: outcome.status,
      failureReason: outcome.failureReason,
      data: { reason: outcome.failureReason ?? order.state.cancellationReason ?? 'cancelled', message: outcome.message },
    });
    await order.end(outcome.status, outcome.failureReason);
  });
}

interface Outcome {
  status: 'FAILED' | 'CANCELLED';
  failureReason?: FailureReason;
  message?: string;
}

/** Turns whatever stopped the saga into the order's terminal state. */
function classify(err: unknown): Outcome {
  if (isCancellation(err)) return { status: 'CANCELLED', message: 'workflow cancelled' };
  const failure = err instanceof ActivityFailure ? err.cause : err;
  if (failure instanceof ApplicationFailure && failure.type === ErrorType.OrderCancelled) return { status: 'CANCELLED', message: failure.message };
  const reason = failure instanceof ApplicationFailure && failure.type ? failureReasonByErrorType[failure.type] : undefined;
  if (reason) return { status: 'FAILED', failureReason: reason, message: failure instanceof Error ? failure.message : undefined };
  return { status: 'FAILED', failureReason: FailureReason.INTERNAL_ERROR, message: err instanceof Error ? err.message : String(err) };
}
