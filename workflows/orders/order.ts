import { ApplicationFailure, condition, log, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { sameIdentity, type Identity } from '../../contracts/auth';
import { ErrorType, type FailureReason } from '../../contracts/errors';
import {
  ORDER_TIMING_DEFAULTS,
  OrderStatusAttribute,
  OrderTotalAttribute,
  cancelOrderUpdate,
  confirmPickupSignal,
  getOrderStateQuery,
  isPublished,
  isTerminal,
  resolveCompensationUpdate,
  retryCompensationUpdate,
  reviewOrderUpdate,
  stepKey,
  type OrderEventType,
  type OrderState,
  type OrderStatus,
  type OrderStep,
  type PickupConfirmation,
  type CancelOrderRequest,
  type PlaceOrderInput,
  type RecordOrderEventInput,
  type ReviewOrderRequest,
} from '../../contracts/orders';
import { orderRecords } from './services';

/**
 * The statuses an operator's query looks for (README, "Useful queries"): only these are written
 * to the OrderStatus search attribute, each one a billable upsert. The others are seconds long
 * and visible in GET /orders/:id and the workflow's current details.
 */
const SEARCHED_STATUSES: ReadonlySet<OrderStatus> = new Set(['AWAITING_REVIEW', 'AWAITING_PICKUP', 'NEEDS_ATTENTION', 'COMPLETED', 'FAILED', 'CANCELLED']);

/** Statuses from which a customer can no longer cancel: the undos have begun, or the order is done. */
const NOT_CANCELLABLE: ReadonlySet<OrderStatus> = new Set(['COMPENSATING', 'NEEDS_ATTENTION', 'COMPLETING']);

export interface OperatorDecision {
  action: 'retry' | 'resolve';
  operator: string;
  note?: string;
}

type Wait = 'pickupTimeout' | 'reservationHold' | 'authorisationValidity' | 'reviewTimeout';

type EventDetails = Pick<RecordOrderEventInput, 'data' | 'pricing' | 'failureReason'> & {
  suffix?: string;
  status?: OrderStatus;
  /** the entry is already in the orders database (the order's first, written with the order itself) */
  written?: boolean;
};

/**
 * One order's state, its event log and the messages it answers (the query, the customer's
 * cancel, the reviewer's decision, the operator's retry or resolve, the carrier's pickup).
 * The saga (./index.ts) moves it along; handlers only record what was asked.
 */
export class Order {
  readonly state: OrderState;
  readonly input: PlaceOrderInput;
  pickup?: PickupConfirmation;
  review?: NonNullable<OrderState['review']>;
  operatorDecision?: OperatorDecision;
  /** the orders database has the order's row: its log can be written there */
  recorded = false;
  /** log entries the orders database does not have yet */
  private unwritten: RecordOrderEventInput[] = [];
  private searchedStatus: OrderStatus = 'PENDING';
  private searchedTotal = false;

  constructor(input: PlaceOrderInput) {
    this.input = input;
    this.state = {
      orderId: input.orderId,
      placedBy: input.placedBy,
      customerId: input.customerId,
      status: 'PENDING',
      items: input.items.map(({ sku, quantity }) => ({ sku, quantity })),
      steps: [],
      compensations: [],
      events: [],
    };
    this.listen();
  }

  get orderId(): string {
    return this.input.orderId;
  }

  /** The idempotency key of one of this order's side effects: the workflow ID and the step. */
  key(step: string): string {
    return stepKey(workflowInfo().workflowId, step);
  }

  /** A wait of this order, as configured for it at placement, in milliseconds. */
  timing(name: Wait): number {
    return msToNumber(this.timingText(name) as Duration);
  }

  /** The same wait as it was written (48h, 7d). */
  timingText(name: Wait): string {
    return this.input[name] ?? ORDER_TIMING_DEFAULTS[name];
  }

  get cancelRequested(): boolean {
    return this.state.cancellationReason !== undefined;
  }

  throwIfCancelRequested(): void {
    if (this.cancelRequested) {
      throw ApplicationFailure.create({ type: ErrorType.OrderCancelled, message: this.state.cancellationReason!, nonRetryable: true });
    }
  }

  /**
   * Moves the order to `status`. The search attribute follows only where an operator's query
   * needs it, and when leaving NEEDS_ATTENTION, so that query stops listing an order being unwound.
   */
  enter(status: OrderStatus): void {
    this.state.status = status;
    setCurrentDetails(`**${status}**${this.state.failureReason ? ` (${this.state.failureReason})` : ''}`);
    if (!SEARCHED_STATUSES.has(status) && this.searchedStatus !== 'NEEDS_ATTENTION') return;
    const total = this.state.total !== undefined && !this.searchedTotal ? [{ key: OrderTotalAttribute, value: this.state.total / 100 }] : [];
    upsertSearchAttributes([{ key: OrderStatusAttribute, value: status }, ...total]);
    this.searchedStatus = status;
    this.searchedTotal ||= total.length > 0;
  }

  /** Appends to the event log; the status it records is the order's now unless given. */
  record(type: OrderEventType, { suffix, status, written = false, ...details }: EventDetails = {}): void {
    const at = new Date().toISOString();
    const event: RecordOrderEventInput = {
      orderId: this.orderId,
      type,
      idempotencyKey: this.key(suffix ? `${type}:${suffix}` : type),
      status: status ?? this.state.status,
      at,
      ...details,
    };
    this.state.events.push({ type, at, data: details.data ?? {} });
    if (!written) this.unwritten.push(event);
  }

  /** Records a forward step as done: in the log, then in the state (a reader never sees a step the log lacks). */
  stepDone(step: OrderStep, details?: EventDetails): void {
    this.record(step, details);
    this.state.steps.push(step);
  }

  /**
   * Writes the log entries the orders database does not have yet, in order, each with the status
   * it moved the order to: one local activity, one billable action.
   */
  async writeLog(): Promise<void> {
    if (this.unwritten.length === 0) return;
    if (!this.recorded) {
      // The database never took the order (it refused its data, or stayed away past the first
      // step's deadline): there is no row to hang the log on. The workflow keeps it, and says so.
      log.error('order log not written: the orders database has no record of this order', { orderId: this.orderId, entries: this.unwritten.length });
      return;
    }
    await orderRecords.recordOrderEvents({ events: this.unwritten });
    this.unwritten = [];
  }

  /**
   * Writes the log now if it holds an event subscribers hear (ORDER_EVENT_TOPICS): the orders
   * database is their outbox, so "stock reserved" reaches a webhook while the order is still
   * running. One local activity in the step's own workflow task: one billable action.
   */
  async publish(): Promise<void> {
    if (this.unwritten.some((e) => isPublished(e.type))) await this.writeLog();
  }

  /** Ends the order: the database has every entry and the terminal status before the state shows it. */
  async end(status: 'COMPLETED' | 'FAILED' | 'CANCELLED', failureReason?: FailureReason): Promise<void> {
    await this.writeLog();
    this.state.failureReason = failureReason;
    this.enter(status);
  }

  /** Waits for an operator to retry or resolve the stuck undos. */
  async awaitOperator(): Promise<OperatorDecision> {
    this.operatorDecision = undefined;
    await condition(() => this.operatorDecision !== undefined);
    return this.operatorDecision!;
  }

  private listen(): void {
    const { orderId } = this;
    setHandler(getOrderStateQuery, () => this.state);
    setHandler(confirmPickupSignal, (confirmation) => {
      this.pickup ??= confirmation;
    });
    setHandler(
      cancelOrderUpdate,
      ({ reason, requestedBy }) => {
        // A cancel is idempotent: a repeat (a storefront retrying, an operator too) changes nothing.
        if (this.cancelRequested) return { orderId, status: this.state.status, repeated: true };
        this.state.cancellationReason = reason ?? (requestedBy.role === 'operator' ? `cancelled by operator ${requestedBy.subject}` : 'cancelled by customer');
        log.info('cancellation requested', { orderId, by: requestedBy.role });
        return { orderId, status: this.state.status };
      },
      {
        validator: ({ requestedBy }: CancelOrderRequest) => {
          requireIdentity(requestedBy, 'a cancel');
          if (requestedBy.role !== 'operator' && !sameIdentity(requestedBy, this.input.placedBy)) {
            throw refusal(ErrorType.NotOrderOwner, `order ${orderId} was placed by another client`);
          }
          // A repeat of an accepted cancel is accepted while the order unwinds: the handler says so.
          if (this.cancelRequested && !isTerminal(this.state.status)) return;
          if (isTerminal(this.state.status) || NOT_CANCELLABLE.has(this.state.status)) {
            throw refusal(ErrorType.OrderNotCancellable, `order ${orderId} is ${this.state.status} and can no longer be cancelled`);
          }
        },
      },
    );
    setHandler(
      reviewOrderUpdate,
      ({ decision, reviewer, reason }) => {
        this.review ??= { decision, reviewer: reviewer.subject, reviewerIssuer: reviewer.issuer, ...(reason ? { reason } : {}) };
        return { orderId, decision };
      },
      {
        validator: ({ decision, reviewer }: ReviewOrderRequest) => {
          requireIdentity(reviewer, 'a review');
          // Four eyes: whoever placed an order cannot be the one who lets it through.
          if (sameIdentity(reviewer, this.input.placedBy)) throw refusal(ErrorType.SelfReview, `order ${orderId} was placed by its reviewer`);
          if (this.state.status !== 'AWAITING_REVIEW' || this.review !== undefined) {
            throw refusal(ErrorType.NotAwaitingReview, `order ${orderId} is ${this.state.status}, not awaiting review`);
          }
          if (decision !== 'approve' && decision !== 'reject') throw refusal(ErrorType.NotAwaitingReview, 'decision must be approve or reject');
        },
      },
    );
    const needsAttention = (_request?: unknown) => {
      if (this.state.status !== 'NEEDS_ATTENTION') throw refusal(ErrorType.NotNeedingAttention, `order ${orderId} is ${this.state.status}`);
    };
    const pending = () => ({ orderId, pending: this.state.attention?.pending ?? [] });
    setHandler(
      retryCompensationUpdate,
      ({ operator }) => {
        this.operatorDecision = { action: 'retry', operator };
        return pending();
      },
      { validator: needsAttention },
    );
    setHandler(
      resolveCompensationUpdate,
      ({ operator, note }) => {
        this.operatorDecision = { action: 'resolve', operator, note };
        return pending();
      },
      {
        validator: ({ note }: { note?: string }) => {
          needsAttention();
          if (!note?.trim()) throw refusal(ErrorType.NotNeedingAttention, 'say what was done by hand in `note`');
        },
      },
    );
  }
}

const refusal = (type: ErrorType, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/** Every change to an order is someone's: an update that names no one (no issuer and subject) is refused. */
function requireIdentity(who: Identity | undefined, what: string): void {
  if (!who?.issuer?.trim() || !who.subject?.trim()) throw refusal(ErrorType.IdentityRequired, `${what} must name who sends it (issuer and subject)`);
}
