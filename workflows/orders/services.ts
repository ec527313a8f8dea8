import { ActivityFailure, ApplicationFailure, proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { InventoryActivities } from '../../activities/inventory';
import type { OrderActivities } from '../../activities/orders';
import type { PaymentActivities } from '../../activities/payments';
import type { ShippingActivities } from '../../activities/shipping';
import { ErrorType } from '../../contracts/errors';
import { INVENTORY_TASK_QUEUE } from '../../contracts/inventory';
import { PAYMENTS_TASK_QUEUE } from '../../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../../contracts/shipping';

/**
 * The services the saga calls, each proxy tied to the reason an order fails with when that
 * service does not answer: a step cannot fall through to INTERNAL_ERROR because someone forgot
 * to list an activity.
 */

const BUSINESS_FAILURES = Object.values(ErrorType);

/**
 * A forward step retries infrastructure failures with backoff, but gives up after five minutes
 * so an order cannot hang on a pool that is down: it then fails and compensates instead.
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

/** Turns "the retries ran out" into the named unavailability of the service that did not answer. */
function failingAs<T extends object>(activities: T, unavailable: ErrorType): T {
  return new Proxy(activities, {
    get(target, name) {
      const call = Reflect.get(target, name) as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        try {
          return await call(...args);
        } catch (err) {
          const gaveUp = err instanceof ActivityFailure && (err.retryState === RetryState.TIMEOUT || err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED);
          const business = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && BUSINESS_FAILURES.includes(err.cause.type as ErrorType);
          if (!gaveUp || business) throw err;
          throw ApplicationFailure.create({ type: unavailable, message: `${String(name)}: ${rootMessage(err)}`, nonRetryable: true, cause: err });
        }
      };
    },
  });
}

/** The innermost message of a failure chain: what actually went wrong. */
export function rootMessage(err: unknown): string {
  let current = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

const service = <T extends object>(taskQueue: string, unavailable: ErrorType, options: (queue: string) => ActivityOptions) =>
  failingAs(proxyActivities<T>(options(taskQueue)), unavailable);

export const inventory = service<InventoryActivities>(INVENTORY_TASK_QUEUE, ErrorType.InventoryUnavailable, forwardStep);
export const payments = service<PaymentActivities>(PAYMENTS_TASK_QUEUE, ErrorType.PaymentsUnavailable, forwardStep);
export const shipping = service<ShippingActivities>(SHIPPING_TASK_QUEUE, ErrorType.ShippingServiceUnavailable, forwardStep);
export const undoInventory = service<InventoryActivities>(INVENTORY_TASK_QUEUE, ErrorType.InventoryUnavailable, compensationStep);
export const undoPayments = service<PaymentActivities>(PAYMENTS_TASK_QUEUE, ErrorType.PaymentsUnavailable, compensationStep);
export const undoShipping = service<ShippingActivities>(SHIPPING_TASK_QUEUE, ErrorType.ShippingServiceUnavailable, compensationStep);

/**
 * The orders service's own database, written by the worker that runs the saga: local activities
 * need no task-queue round trip, and all those of one workflow task cost one billable action.
 * The audit trail never drops an event, so they retry without a deadline.
 */
const ordersDatabase = {
  startToCloseTimeout: '10s',
  localRetryThreshold: '10s', // longer backoffs become a timer, so a long outage does not pin the workflow task
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: BUSINESS_FAILURES },
} satisfies Parameters<typeof proxyLocalActivities>[0];
export const orderRecords = proxyLocalActivities<OrderActivities>(ordersDatabase);

/**
 * The order's first record, the saga's first step: like any forward step it gives up after five
 * minutes (ORDERS_UNAVAILABLE) rather than leave an order PENDING for as long as the database is
 * away, and a row the database refuses fails at once (INVALID_DATA).
 */
export const firstRecord = failingAs(proxyLocalActivities<OrderActivities>({ ...ordersDatabase, scheduleToCloseTimeout: '5m' }), ErrorType.OrdersUnavailable);
