import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { RetryState, type Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import type { InventoryActivities } from '../activities/inventory';
import type { OrderActivities } from '../activities/orders';
import type { PaymentActivities } from '../activities/payments';
import type { ShippingActivities } from '../activities/shipping';
import { ErrorType, FailureReason, failureReasonByErrorType } from '../contracts/errors';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import {
  ORDERS_TASK_QUEUE,
  cancelOrderUpdate,
  confirmPickupSignal,
  getOrderStateQuery,
  isTerminal,
  OrderStatusAttribute,
  OrderTotalAttribute,
  resolveCompensationUpdate,
  reviewOrderUpdate,
  type ReviewOrderRequest,
  retryCompensationUpdate,
  stepKey,
  type Compensation,
  type OrderEventType,
  type OrderResult,
  type OrderState,
  type OrderStatus,
  type OrderStep,
  type PickupConfirmation,
  type PlaceOrderInput,
  type RecordOrderEventInput,
} from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';

export const DEFAULT_PICKUP_TIMEOUT = '48h';
export const DEFAULT_RESERVATION_HOLD = '24h';
export const DEFAULT_AUTHORISATION_VALIDITY = '7d';

/**
 * Versioned change (Temporal patch): orders started before it waited for pickup with one timer;
 * orders started after it also renew their stock reservation and re-authorise their payment
 * before either expires. Both kinds replay (test/replay/histories/v1 and v2).
 */
export const DURABLE_HOLDS_PATCH = 'durable-holds';
/** Versioned change: OrderStatus / OrderTotal search attributes upserted at every transition. */
export const SEARCH_ATTRIBUTES_PATCH = 'search-attributes';
export const DEFAULT_REVIEW_TIMEOUT = '24h';
/** Versioned change: the order's event log written with local activities. */
export const LOCAL_EVENT_LOG_PATCH = 'local-event-log';
/** Versioned change: the order itself recorded with a local activity too (its first step). */
export const LOCAL_ORDER_PLACED_PATCH = 'local-order-placed';

/** Renew this long before a hold runs out: an hour, or a tenth of a short hold. */
const renewalMargin = (holdMs: number) => Math.min(3_600_000, holdMs / 10);

const BUSINESS_FAILURES = Object.values(ErrorType);

/**
 * A forward step calls another service. It retries infrastructure failures with backoff, but
 * gives up after five minutes so an order cannot hang on a pool that is down: it then fails
 * and compensates instead.
 */
const forwardStep = (taskQueue: string): ActivityOptions => ({
  taskQueue,
  startToCloseTimeout: '15s', // one call to a database and a provider; longer means a stuck connection
  scheduleToCloseTimeout: '5m',
  retry: { initialInterval: '250ms', backoffCoefficient: 2, maximumInterval: '20s', nonRetryableErrorTypes: BUSINESS_FAILURES },
});

/**
 * An undo retries for half an hour; past that budget something needs a person (a service down
 * that long, or a refusal no retry will change), so the order waits in NEEDS_ATTENTION.
 */
export const COMPENSATION_BUDGET = '30m';
const compensationStep = (taskQueue: string): ActivityOptions => ({
  taskQueue,
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: COMPENSATION_BUDGET,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '1m' },
});

const orders = proxyActivities<OrderActivities>({
  taskQueue: ORDERS_TASK_QUEUE,
  startToCloseTimeout: '10s', // a single write to the orders database
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s' }, // the audit trail never drops an event
});
/**
 * The order and its event log are the orders service's own database, written by the worker that
 * runs the saga: as local activities they need no task-queue round trip and no extra workflow
 * task (BENCHMARKS.md).
 */
const eventLog = proxyLocalActivities<OrderActivities>({
  startToCloseTimeout: '10s',
  localRetryThreshold: '10s', // longer backoffs become a timer, so a long outage does not pin the workflow task
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s' },
});
const inventory = proxyActivities<InventoryActivities>(forwardStep(INVENTORY_TASK_QUEUE));
const payments = proxyActivities<PaymentActivities>(forwardStep(PAYMENTS_TASK_QUEUE));
const shipping = proxyActivities<ShippingActivities>(forwardStep(SHIPPING_TASK_QUEUE));
const undoInventory = proxyActivities<InventoryActivities>(compensationStep(INVENTORY_TASK_QUEUE));
const undoPayments = proxyActivities<PaymentActivities>(compensationStep(PAYMENTS_TASK_QUEUE));
const undoShipping = proxyActivities<ShippingActivities>(compensationStep(SHIPPING_TASK_QUEUE));

const unavailableReason: Record<string, FailureReason> = {
  [INVENTORY_TASK_QUEUE]: FailureReason.INVENTORY_UNAVAILABLE,
  [PAYMENTS_TASK_QUEUE]: FailureReason.PAYMENTS_UNAVAILABLE,
  [SHIPPING_TASK_QUEUE]: FailureReason.SHIPPING_SERVICE_UNAVAILABLE,
};

type EventDetails = Pick<RecordOrderEventInput, 'data' | 'pricing'>;

interface Undo {
  name: Compensation;
  run: () => Promise<boolean>;
}

/**
 * The order saga: record → reserve stock → authorise payment → create shipment → wait for the
 * carrier's pickup → capture payment → complete. Each undo is registered before the step it
 * undoes (the step may have acted even if its answer was lost) and the undos run in reverse.
 */
export async function orderWorkflow(input: PlaceOrderInput): Promise<OrderResult> {
  const { workflowId } = workflowInfo();
  const key = (step: string) => stepKey(workflowId, step);
  const { orderId } = input;
  const state: OrderState = {
    orderId,
    customerId: input.customerId,
    status: 'PENDING',
    items: input.items.map(({ sku, quantity }) => ({ sku, quantity })),
    steps: [],
    compensations: [],
  };
  const undos: Undo[] = [];
  let pickup: PickupConfirmation | undefined;
  let cancelledByTemporal: unknown;

  // Versioned change: orders started after it keep their OrderStatus and OrderTotal search attributes current.
  const upsertsSearchAttributes = patched(SEARCH_ATTRIBUTES_PATCH);
  // Versioned change: orders started after it write their event log with local activities.
  const localEventLog = patched(LOCAL_EVENT_LOG_PATCH);
  function setStatus(status: OrderStatus): void {
    state.status = status;
    if (upsertsSearchAttributes) upsertSearchAttributes([{ key: OrderStatusAttribute, value: status }]);
  }

  setHandler(getOrderStateQuery, () => state);
  setHandler(confirmPickupSignal, (confirmation) => {
    pickup ??= confirmation;
  });
  setHandler(
    cancelOrderUpdate,
    ({ reason }) => {
      state.cancellationReason = reason ?? 'cancelled by customer';
      log.info('cancellation requested', { orderId, reason: state.cancellationReason });
      return { orderId, status: state.status };
    },
    {
      validator: (_request) => {
        if (isTerminal(state.status) || ['COMPENSATING', 'NEEDS_ATTENTION', 'COMPLETING'].includes(state.status)) {
          throw ApplicationFailure.create({
            type: ErrorType.OrderNotCancellable,
            message: `order ${orderId} is ${state.status} and can no longer be cancelled`,
            nonRetryable: true,
          });
        }
      },
    },
  );

  const record = (type: OrderEventType, extra: EventDetails & { suffix?: string; failureReason?: FailureReason; status?: OrderStatus } = {}) =>
    (localEventLog ? eventLog : orders).recordOrderEvent({
      orderId,
      type,
      idempotencyKey: key(extra.suffix ? `${type}:${extra.suffix}` : type),
      status: extra.status ?? state.status,
      data: extra.data,
      failureReason: extra.failureReason,
      pricing: extra.pricing,
    });

  /** Runs one forward step, unless the customer asked to cancel before it began. */
  async function step<T>(status: OrderStatus, name: OrderStep, run: () => Promise<T>, details?: (r: T) => EventDetails): Promise<T> {
    throwIfCancelRequested();
    setStatus(status);
    const result = await run();
    // The event is written before the step shows in the state, so a reader never sees a step the log lacks.
    await record(name, details?.(result));
    state.steps.push(name);
    return result;
  }

  function throwIfCancelRequested(): void {
    if (state.cancellationReason !== undefined) {
      throw ApplicationFailure.create({ type: ErrorType.OrderCancelled, message: state.cancellationReason, nonRetryable: true });
    }
  }

  let operatorDecision: { action: 'retry' | 'resolve'; operator: string; note?: string } | undefined;
  const needsAttention = (_request: unknown) => {
    if (state.status !== 'NEEDS_ATTENTION') {
      throw ApplicationFailure.create({ type: ErrorType.NotNeedingAttention, message: `order ${orderId} is ${state.status}`, nonRetryable: true });
    }
  };
  setHandler(
    retryCompensationUpdate,
    ({ operator }) => {
      operatorDecision = { action: 'retry', operator };
      return { orderId, pending: state.attention?.pending ?? [] };
    },
    { validator: needsAttention },
  );
  setHandler(
    resolveCompensationUpdate,
    ({ operator, note }) => {
      operatorDecision = { action: 'resolve', operator, note };
      return { orderId, pending: state.attention?.pending ?? [] };
    },
    {
      validator: (request) => {
        needsAttention(request);
        if (!request.note?.trim()) {
          throw ApplicationFailure.create({ type: ErrorType.NotNeedingAttention, message: 'say what was done by hand in `note`', nonRetryable: true });
        }
      },
    },
  );

  let review: ReviewOrderRequest | undefined;
  setHandler(
    reviewOrderUpdate,
    (request) => {
      review ??= request;
      return { orderId, decision: request.decision };
    },
    {
      validator: ({ decision, reviewer }) => {
        if (state.status !== 'AWAITING_REVIEW' || review !== undefined) {
          throw ApplicationFailure.create({ type: ErrorType.NotAwaitingReview, message: `order ${orderId} is ${state.status}, not awaiting review`, nonRetryable: true });
        }
        if (decision !== 'approve' && decision !== 'reject') {
          throw ApplicationFailure.create({ type: ErrorType.NotAwaitingReview, message: 'decision must be approve or reject', nonRetryable: true });
        }
        if (!reviewer?.trim()) {
          throw ApplicationFailure.create({ type: ErrorType.NotAwaitingReview, message: 'a review needs a reviewer', nonRetryable: true });
        }
      },
    },
  );

  /** Holds a large order until an operator approves it; nobody deciding in time is a rejection. */
  async function awaitReview(): Promise<void> {
    throwIfCancelRequested();
    setStatus('AWAITING_REVIEW');
    const timeout = input.reviewTimeout ?? DEFAULT_REVIEW_TIMEOUT;
    await record('ReviewRequested', { data: { total: state.total, currency: state.currency, threshold: input.reviewAbove } });
    const decided = await condition(() => review !== undefined || state.cancellationReason !== undefined, timeout);
    throwIfCancelRequested();
    const outcome = decided && review ? review : { decision: 'reject' as const, reviewer: 'system', reason: `not reviewed within ${timeout}` };
    state.review = outcome;
    await record('OrderReviewed', { data: { ...outcome } });
    if (outcome.decision === 'reject') {
      throw ApplicationFailure.create({ type: ErrorType.ReviewRejected, message: `rejected by ${outcome.reviewer}: ${outcome.reason ?? 'no reason given'}`, nonRetryable: true });
    }
  }

  /**
   * Runs the undos in order. One that fails past its retry budget parks the order in
   * NEEDS_ATTENTION with what is left to undo, until an operator retries or resolves it by hand.
   */
  async function compensate(pending: Undo[]): Promise<void> {
    let round = 0;
    while (pending.length > 0) {
      const undo = pending[0]!;
      try {
        if (await undo.run()) {
          await record('CompensationRan', { suffix: undo.name, data: { compensation: undo.name } });
          state.compensations.push(undo.name);
        }
        pending.shift();
        continue;
      } catch (err) {
        const error = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
        setStatus('NEEDS_ATTENTION');
        state.attention = { pending: pending.map((u) => u.name), error, since: new Date().toISOString() };
        log.error('compensation stuck; order needs attention', { orderId, pending: state.attention.pending, error });
        await record('NeedsAttention', { suffix: String(++round), data: { ...state.attention } });
      }
      operatorDecision = undefined;
      await condition(() => operatorDecision !== undefined);
      const decision = operatorDecision!;
      state.attention = undefined;
      setStatus('COMPENSATING');
      if (decision.action === 'resolve') {
        state.resolvedByHand = pending.map((u) => u.name);
        await record('CompensationResolvedByHand', {
          suffix: String(round),
          data: { operator: decision.operator, note: decision.note, compensations: state.resolvedByHand },
        });
        return;
      }
      await record('CompensationRetried', { suffix: String(round), data: { operator: decision.operator } });
    }
  }

  try {
    const renewsHolds = patched(DURABLE_HOLDS_PATCH);
    const reservationHoldMs = msToNumber((input.reservationHold ?? DEFAULT_RESERVATION_HOLD) as Duration);
    const authorisationValidityMs = msToNumber((input.authorisationValidity ?? DEFAULT_AUTHORISATION_VALIDITY) as Duration);
    // Versioned change: orders started after it record themselves in the first workflow task.
    await (patched(LOCAL_ORDER_PLACED_PATCH) ? eventLog : orders).recordOrderPlaced({
      orderId,
      customerId: input.customerId,
      requestHash: input.requestHash,
      items: input.items,
      shippingAddress: input.shippingAddress,
      idempotencyKey: key('OrderPlaced'),
    });
    state.steps.push('OrderPlaced');

    const reservationId = key('reservation');
    undos.push({ name: 'StockReleased', run: async () => (await undoInventory.releaseStock({ reservationId, orderId })).released });
    const reservation = await step('RESERVING_STOCK', 'StockReserved', () =>
      inventory.reserveStock({ reservationId, orderId, items: input.items, ...(renewsHolds ? { holdMs: reservationHoldMs } : {}) }),
      (r) => ({ data: { reservationId, total: r.total, currency: r.currency }, pricing: r }),
    );
    state.items = reservation.lines;
    state.total = reservation.total;
    state.currency = reservation.currency;
    if (upsertsSearchAttributes) upsertSearchAttributes([{ key: OrderTotalAttribute, value: reservation.total / 100 }]);
    if (input.reviewAbove !== undefined && reservation.total > input.reviewAbove) await awaitReview();
    let reservationRenewAt = Date.now() + reservationHoldMs - renewalMargin(reservationHoldMs);

    const paymentId = key('payment');
    undos.push({ name: 'PaymentVoided', run: async () => (await undoPayments.voidPayment({ paymentId, orderId })).action !== 'NONE' });
    await step('AUTHORISING_PAYMENT', 'PaymentAuthorised', () =>
      payments.authorisePayment({ paymentId, orderId, amount: reservation.total, currency: reservation.currency, token: input.payment.token }),
      (a) => ({ data: { authorisationId: a.authorisationId, amount: a.amount } }),
    );

    const shipmentId = key('shipment');
    undos.push({ name: 'ShipmentCancelled', run: async () => (await undoShipping.cancelShipment({ shipmentId, orderId })).cancelled });
    await step('CREATING_SHIPMENT', 'ShipmentCreated', () =>
      shipping.createShipment({ shipmentId, orderId, address: input.shippingAddress, items: input.items }),
      (s) => ({ data: { carrierRef: s.carrierRef, trackingNumber: s.trackingNumber } }),
    );

    let authorisationRenewAt = Date.now() + authorisationValidityMs - renewalMargin(authorisationValidityMs);

    await step('AWAITING_PICKUP', 'PickupConfirmed', async () => {
      const timeout = input.pickupTimeout ?? DEFAULT_PICKUP_TIMEOUT;
      const settled = () => pickup !== undefined || state.cancellationReason !== undefined;
      if (!renewsHolds) {
        await condition(settled, timeout);
      } else {
        // Wait for the carrier, waking only to renew what would otherwise expire meanwhile.
        const deadline = Date.now() + msToNumber(timeout as Duration);
        let renewals = 0;
        let reauthorisations = 0;
        while (!settled() && Date.now() < deadline) {
          const wakeAt = Math.min(deadline, reservationRenewAt, authorisationRenewAt);
          if (Date.now() < wakeAt) {
            await condition(settled, wakeAt - Date.now());
            continue;
          }
          if (Date.now() >= reservationRenewAt) {
            const { expiresAt } = await inventory.renewReservation({ reservationId, holdMs: reservationHoldMs });
            reservationRenewAt = Date.now() + reservationHoldMs - renewalMargin(reservationHoldMs);
            await record('ReservationRenewed', { suffix: String(++renewals), data: { expiresAt } });
          }
          if (Date.now() >= authorisationRenewAt) {
            const round = ++reauthorisations;
            const { authorisationId } = await payments.reauthorisePayment({ paymentId, orderId, token: input.payment.token, round });
            authorisationRenewAt = Date.now() + authorisationValidityMs - renewalMargin(authorisationValidityMs);
            await record('PaymentReauthorised', { suffix: String(round), data: { authorisationId, round } });
          }
        }
      }
      throwIfCancelRequested();
      if (!pickup) {
        throw ApplicationFailure.create({ type: ErrorType.PickupTimeout, message: `carrier did not pick up within ${timeout}`, nonRetryable: true });
      }
      return pickup;
    }, (p) => ({ data: { ...p } }));

    undos.push({ name: 'PaymentRefunded', run: async () => (await undoPayments.refundPayment({ paymentId, orderId })).action !== 'NONE' });
    await step('CAPTURING_PAYMENT', 'PaymentCaptured', () => payments.capturePayment({ paymentId, orderId }), (c) => ({ data: { ...c } }));

    throwIfCancelRequested();
    setStatus('COMPLETING');
    await inventory.commitStock({ reservationId, orderId });
    // The terminal status is written to the orders database before the live state shows it, so a
    // reader never sees an ended order whose record is not complete yet.
    await record('OrderCompleted', { status: 'COMPLETED', data: { total: state.total, currency: state.currency } });
    state.steps.push('OrderCompleted');
    setStatus('COMPLETED');
  } catch (err) {
    const outcome = classify(err);
    cancelledByTemporal = isCancellation(err) ? err : undefined;
    log.warn('order did not complete; compensating', { orderId, outcome: outcome.status, reason: outcome.failureReason });
    setStatus('COMPENSATING');
    // A cancelled workflow still unwinds: the undos run in a scope that cancellation cannot reach.
    await CancellationScope.nonCancellable(async () => {
      await compensate([...undos].reverse());
      await record(outcome.status === 'CANCELLED' ? 'OrderCancelled' : 'OrderFailed', {
        status: outcome.status,
        failureReason: outcome.failureReason,
        data: { reason: outcome.failureReason ?? state.cancellationReason ?? 'cancelled', message: outcome.message },
      });
      state.failureReason = outcome.failureReason;
      setStatus(outcome.status);
    });
  }

  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  // Cancelled from the Web UI or CLI: once unwound, the execution ends as Canceled there too.
  if (cancelledByTemporal) throw cancelledByTemporal;
  return {
    orderId,
    status: state.status as OrderResult['status'],
    ...(state.failureReason ? { failureReason: state.failureReason } : {}),
    compensations: state.compensations,
  };
}

interface Outcome {
  status: 'FAILED' | 'CANCELLED';
  failureReason?: FailureReason;
  message?: string;
}

/** Turns whatever stopped the saga into the order's terminal state. */
function classify(err: unknown): Outcome {
  if (isCancellation(err)) return { status: 'CANCELLED', message: 'workflow cancelled' };
  if (err instanceof ApplicationFailure && err.type === ErrorType.OrderCancelled) {
    return { status: 'CANCELLED', message: err.message };
  }
  const failure = err instanceof ActivityFailure ? err.cause : err;
  if (failure instanceof ApplicationFailure && failure.type) {
    const reason = failureReasonByErrorType[failure.type];
    if (reason) return { status: 'FAILED', failureReason: reason, message: failure.message };
  }
  // Retries ran out on a retryable failure: the service did not answer within the step's deadline.
  if (err instanceof ActivityFailure && (err.retryState === RetryState.TIMEOUT || err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED)) {
    const queue = activityQueues[err.activityType];
    return { status: 'FAILED', failureReason: (queue && unavailableReason[queue]) || FailureReason.INTERNAL_ERROR, message: failure instanceof Error ? failure.message : undefined };
  }
  return { status: 'FAILED', failureReason: FailureReason.INTERNAL_ERROR, message: err instanceof Error ? err.message : String(err) };
}

const activityQueues: Record<string, string> = {
  reserveStock: INVENTORY_TASK_QUEUE,
  commitStock: INVENTORY_TASK_QUEUE,
  authorisePayment: PAYMENTS_TASK_QUEUE,
  capturePayment: PAYMENTS_TASK_QUEUE,
  createShipment: SHIPPING_TASK_QUEUE,
};
