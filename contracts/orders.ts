import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { OrderLine, Product, ReservedLine } from './inventory';
import type { ShippingAddress } from './shipping';
import type { FailureReason } from './errors';
import type { Identity } from './auth';

/** The orders service's contract: task queue, workflow IDs, messages and the order's shapes. */
export const ORDERS_TASK_QUEUE = 'orders';

const ORDER_WORKFLOW_PREFIX = 'order-';
export const orderWorkflowId = (orderId: string): string => `${ORDER_WORKFLOW_PREFIX}${orderId}`;

/** Idempotency key of one side effect of one order: never time or randomness. */
export const stepKey = (workflowId: string, step: string): string => `${workflowId}:${step}`;

/** Every status an order passes through, in the saga's order (the API's schema lists these too). */
export const ORDER_STATUSES = [
  'PENDING',
  'RESERVING_STOCK',
  'AUTHORISING_PAYMENT',
  'AWAITING_REVIEW',
  'CREATING_SHIPMENT',
  'AWAITING_PICKUP',
  'CAPTURING_PAYMENT',
  'COMPLETING',
  'COMPENSATING',
  'NEEDS_ATTENTION',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const TERMINAL_STATUSES: readonly OrderStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];
export const isTerminal = (status: string): boolean => (TERMINAL_STATUSES as readonly string[]).includes(status);

/** Forward steps, in order, named as the events that record them. */
export const ORDER_STEPS = [
  'OrderPlaced',
  'StockReserved',
  'PaymentAuthorised',
  'ShipmentCreated',
  'PickupConfirmed',
  'PaymentCaptured',
  'OrderCompleted',
] as const;
export type OrderStep = (typeof ORDER_STEPS)[number];
export const isOrderStep = (type: string): type is OrderStep => (ORDER_STEPS as readonly string[]).includes(type);

export const COMPENSATIONS = ['StockReleased', 'PaymentVoided', 'PaymentRefunded', 'ShipmentCancelled'] as const;
export type Compensation = (typeof COMPENSATIONS)[number];

export type OrderEventType =
  | OrderStep
  | 'ReservationRenewed'
  | 'PaymentReauthorised'
  | 'CompensationRan'
  | 'ReviewRequested'
  | 'OrderReviewed'
  | 'NeedsAttention'
  | 'CompensationRetried'
  | 'CompensationResolvedByHand'
  | 'OrderFailed'
  | 'OrderCancelled';

/**
 * The order events subscribers hear (webhooks, customer emails, the live order page), named as the
 * webhooks name them. The saga writes each to the orders database as it happens: that table is
 * the outbox the notifications service reads.
 */
export const ORDER_EVENT_TOPICS = {
  OrderPlaced: 'order.placed',
  StockReserved: 'order.stock_reserved',
  PaymentAuthorised: 'order.payment_authorised',
  PickupConfirmed: 'order.shipped',
  OrderCompleted: 'order.completed',
  OrderFailed: 'order.failed',
  OrderCancelled: 'order.cancelled',
  NeedsAttention: 'order.needs_attention',
} as const satisfies Partial<Record<OrderEventType, string>>;
export type OrderEventTopic = (typeof ORDER_EVENT_TOPICS)[keyof typeof ORDER_EVENT_TOPICS];
export const ORDER_TOPICS: readonly OrderEventTopic[] = Object.values(ORDER_EVENT_TOPICS);
export const isPublished = (type: string): type is keyof typeof ORDER_EVENT_TOPICS => type in ORDER_EVENT_TOPICS;

export interface PlaceOrderInput {
  orderId: string;
  /** the client that placed it (its token's issuer and subject): only it, and operators, may see or cancel the order */
  placedBy: Identity;
  customerId: string;
  items: OrderLine[];
  payment: { token: string };
  shippingAddress: ShippingAddress;
  /** where the customer is emailed about the order: personal data, like the address (in the encrypted input and the orders database only) */
  email?: string;
  /** sha-256 of the placing request, kept with the order to refuse a reused key with another body */
  requestHash: string;
  /** how long the carrier has to confirm pickup before the order fails (default 48 hours) */
  pickupTimeout?: string;
  /** how long inventory holds a reservation before the order must renew it (default 24 hours) */
  reservationHold?: string;
  /** how long the provider honours an authorisation before the order must re-authorise (default 7 days) */
  authorisationValidity?: string;
  /** orders whose total (minor units) is above this wait for an operator's review; none: no review */
  reviewAbove?: number;
  /** how long an order waits for its review before it is rejected (default 24 hours) */
  reviewTimeout?: string;
}

/** The waits of an order, set per deployment and passed to each new order. */
export type OrderTimings = Pick<PlaceOrderInput, 'pickupTimeout' | 'reservationHold' | 'authorisationValidity' | 'reviewAbove' | 'reviewTimeout'>;

/**
 * The one place the order's waits default: the API's config reads its defaults from here, and a
 * workflow started without a value falls back to the same.
 */
export const ORDER_TIMING_DEFAULTS = {
  pickupTimeout: '48h',
  reservationHold: '24h',
  authorisationValidity: '7d',
  reviewTimeout: '24h',
  /** in currency units; 0 turns review off */
  reviewAbove: 1000,
} as const;

/** Custom search attributes: the Web UI's order list filters and sorts on these. */
export const OrderStatusAttribute = defineSearchAttributeKey('OrderStatus', SearchAttributeType.KEYWORD);
export const CustomerIdAttribute = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
/** in currency units (49.99), not minor units */
export const OrderTotalAttribute = defineSearchAttributeKey('OrderTotal', SearchAttributeType.DOUBLE);
export const ORDER_SEARCH_ATTRIBUTES = [OrderStatusAttribute, CustomerIdAttribute, OrderTotalAttribute] as const;

export interface OrderLineView extends OrderLine {
  unitPrice?: number;
}

/** One entry of the order's event log, as GET /orders/:id shows it. */
export interface OrderEventView {
  type: OrderEventType;
  /** when it happened (workflow time) */
  at: string;
  data: Record<string, unknown>;
}

export interface OrderState {
  orderId: string;
  placedBy: Identity;
  customerId: string;
  status: OrderStatus;
  items: OrderLineView[];
  total?: number;
  currency?: string;
  steps: OrderStep[];
  compensations: Compensation[];
  failureReason?: FailureReason;
  cancellationReason?: string;
  /** while NEEDS_ATTENTION: the undos still to run, in order, and why the first one is stuck */
  attention?: { pending: Compensation[]; error: string; since: string };
  /** undos an operator declared done by hand */
  resolvedByHand?: Compensation[];
  /** the reviewer as their token named them (subject, and the issuer that vouched for it); `system` for a review that timed out */
  review?: { decision: 'approve' | 'reject'; reviewer: string; reviewerIssuer?: string; reason?: string };
  /**
   * The order's event log so far. While the order runs this is the live log (the orders
   * database receives it when the order ends, or parks for an operator); once it has ended the
   * database holds the same entries.
   */
  events: OrderEventView[];
}

export interface OrderResult {
  orderId: string;
  status: Extract<OrderStatus, 'COMPLETED' | 'FAILED' | 'CANCELLED'>;
  failureReason?: FailureReason;
  compensations: Compensation[];
}

export interface RecordOrderInput {
  orderId: string;
  /** identityKey of the client that placed it */
  placedBy: string;
  customerId: string;
  requestHash: string;
  items: OrderLine[];
  shippingAddress: ShippingAddress;
  email?: string;
  idempotencyKey: string;
}

export interface RecordOrderEventInput {
  orderId: string;
  type: OrderEventType;
  idempotencyKey: string;
  /** the order's status once this event is recorded */
  status: OrderStatus;
  data?: Record<string, unknown>;
  failureReason?: FailureReason;
  /** set by StockReserved: the prices the order is charged at */
  pricing?: { lines: ReservedLine[]; total: number; currency: string };
  /** when it happened (workflow time); the write's own time when absent */
  at?: string;
}

export interface ReviewOrderRequest {
  decision: 'approve' | 'reject';
  /** who decides, as their verified token names them; never the client that placed the order */
  reviewer: Identity;
  reason?: string;
}

export interface ReviewResult {
  orderId: string;
  decision: 'approve' | 'reject';
}

export interface CancelOrderRequest {
  reason?: string;
  /**
   * Who asks, as their verified token names them: the client that placed the order, or an
   * operator (any order). The update's validator refuses anyone else.
   */
  requestedBy: Identity & { role: 'customer' | 'operator' };
}

export interface CancelOrderResult {
  orderId: string;
  status: OrderStatus;
  /** a cancel had been accepted before this one (which changed nothing: the first reason stands) */
  repeated?: boolean;
}

export interface RetryCompensationRequest {
  operator: string;
}

export interface ResolveCompensationRequest {
  operator: string;
  /** what was done by hand, for the audit trail */
  note: string;
}

export interface AttentionResult {
  orderId: string;
  pending: Compensation[];
}

export interface PickupConfirmation {
  carrierRef: string;
  pickedUpAt: string;
}

export const getOrderStateQuery = defineQuery<OrderState>('getOrderState');
export const cancelOrderUpdate = defineUpdate<CancelOrderResult, [CancelOrderRequest]>('cancelOrder');
export const confirmPickupSignal = defineSignal<[PickupConfirmation]>('confirmPickup');
/** Operator: approve or reject an order held for review. */
export const reviewOrderUpdate = defineUpdate<ReviewResult, [ReviewOrderRequest]>('reviewOrder');
/** Operator: run the stuck undos again (after fixing what made them fail). */
export const retryCompensationUpdate = defineUpdate<AttentionResult, [RetryCompensationRequest]>('retryCompensation');
/** Operator: the stuck undos were done by hand; end the order. */
export const resolveCompensationUpdate = defineUpdate<AttentionResult, [ResolveCompensationRequest]>('resolveCompensation');

export type { Product };

/** The periodic sweep that settles what the sagas could not: see workflows/reconciliation.ts. */
export const RECONCILIATION_SCHEDULE_ID = 'reconciliation';

export interface ReconciliationInput {
  /** only items untouched for this long are looked at, so in-flight orders are left alone */
  olderThanMs?: number;
}

export interface OpenItem {
  id: string;
  orderId: string;
  status: string;
}

export interface ReconciliationReport {
  reservationsChecked: number;
  paymentsChecked: number;
  reservationsReleased: string[];
  reservationsCommitted: string[];
  paymentsVoided: string[];
  /** shipments not yet verified against the carrier and untouched for `olderThanMs` (live orders' included) */
  shipmentsChecked: number;
  /** shipments of ended orders found in agreement with the carrier, now marked verified */
  shipmentsVerified: number;
  /** bookings cancelled at the carrier: their order did not complete, or we had them CANCELLED while the carrier did not */
  shipmentsCancelled: string[];
  /** shipments of completed orders the carrier had picked up while we had not heard */
  shipmentsMarkedPickedUp: string[];
  /** shipments the carrier had cancelled (or never booked) while we had them live */
  shipmentsMarkedCancelled: string[];
  /** left alone for a person to look at, with why */
  anomalies: Array<{ id: string; orderId: string; issue: string }>;
}
