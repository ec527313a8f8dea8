import { defineSignal, defineUpdate } from '@temporalio/workflow';
import { ORDER_EVENT_TOPICS, type OrderEventTopic } from './orders';

/**
 * The notifications service's contract: its task queue, its workflows' IDs and messages, the
 * order events it reads from the orders service, and the shapes of webhook endpoints and their
 * delivery log. It tells the outside world what happened to an order: storefronts by signed
 * webhooks (Standard Webhooks), customers by email.
 */
export const NOTIFICATIONS_TASK_QUEUE = 'notifications';

const WEBHOOK_WORKFLOW_PREFIX = 'webhook-';
/** One workflow per endpoint delivers its events, in order, one at a time. */
export const webhookWorkflowId = (endpointId: string): string => `${WEBHOOK_WORKFLOW_PREFIX}${endpointId}`;

const EMAIL_WORKFLOW_PREFIX = 'order-email-';
/** One workflow per customer email: the event names it, so an email is started at most once, however often the event is read. */
export const orderEmailWorkflowId = (eventId: string): string => `${EMAIL_WORKFLOW_PREFIX}${eventId}`;

const EVENT_ID_PREFIX = 'evt_';
/** The ID subscribers see for an order event (Standard Webhooks' `webhook-id`): the same on every retry and every replay. */
export const eventIdOf = (position: string): string => `${EVENT_ID_PREFIX}${position}`;
export const EVENT_ID_PATTERN = /^evt_[1-9][0-9]{0,18}$/;

/** Failure types of the notifications service (beside the order saga's, contracts/errors.ts): each is final, no retry changes it. */
export const NotificationErrorType = {
  /** no such endpoint, or it was deleted */
  EndpointNotFound: 'WebhookEndpointNotFound',
  /** a change to an endpoint asked by someone other than the client that owns it */
  NotEndpointOwner: 'NotWebhookEndpointOwner',
  /** a URL the platform will not send to (webhookUrlProblem) */
  InvalidUrl: 'InvalidWebhookUrl',
  /** the mail server refused the recipient or the message for good (a 5xx answer) */
  EmailRejected: 'EmailRejected',
} as const;
export type NotificationErrorType = (typeof NotificationErrorType)[keyof typeof NotificationErrorType];

/** The events a customer is emailed about (webhooks can subscribe to any of ORDER_TOPICS). */
export const EMAILED_TOPICS = [
  'order.placed',
  'order.shipped',
  'order.completed',
  'order.failed',
  'order.cancelled',
] as const satisfies readonly OrderEventTopic[];
export type EmailedTopic = (typeof EMAILED_TOPICS)[number];
export const isEmailed = (topic: string | undefined): topic is EmailedTopic => (EMAILED_TOPICS as readonly string[]).includes(topic ?? '');

/** The topic of an order event type (OrderPlaced → order.placed), or undefined for one subscribers do not hear. */
export const topicOf = (type: string): OrderEventTopic | undefined => (ORDER_EVENT_TOPICS as Record<string, OrderEventTopic>)[type];

/**
 * One entry of the orders service's event log as its pool's `GET /events` read serves it, in the
 * log's order. Every entry is listed (so a reader sees the positions in between), but only the
 * ones subscribers hear carry their data, and only the emailed ones the customer's address,
 * sealed with the payload keyring (lib/temporal/sealed.ts): it is personal data on a plain HTTP read.
 */
export interface OrderEventRecord {
  /** the entry's position in the log (a bigint, as text) */
  id: string;
  orderId: string;
  type: string;
  /** identity key of the client that placed the order */
  placedBy: string;
  /** when it happened (ISO 8601) */
  at: string;
  data?: Record<string, unknown>;
  /** the customer's email address, sealed */
  email?: string;
}

export interface OrderEventsPage {
  events: OrderEventRecord[];
  /** the last position in the log when this page was read ('0' when empty) */
  head: string;
}

/** Where a subscriber's interest in an order's event ends: what its webhook body carries, and nothing personal. */
export function webhookData(topic: OrderEventTopic, orderId: string, data: Record<string, unknown> = {}): Record<string, unknown> {
  const pick = (...keys: string[]) => Object.fromEntries(keys.filter((k) => data[k] !== undefined).map((k) => [k, data[k]]));
  switch (topic) {
    case 'order.placed':
      return { orderId, ...pick('items') };
    case 'order.stock_reserved':
    case 'order.completed':
      return { orderId, ...pick('total', 'currency') };
    case 'order.payment_authorised':
      return { orderId, ...pick('amount') };
    case 'order.shipped':
      return { orderId, ...pick('carrierRef', 'pickedUpAt') };
    case 'order.failed':
      // the reason code only: the failure's message may quote a service's own words
      return { orderId, ...pick('reason') };
    case 'order.cancelled':
      // a cancellation's reason is free text someone typed
      return { orderId };
    case 'order.needs_attention':
      return { orderId, ...pick('pending') };
  }
}

// ---- webhook endpoints --------------------------------------------------------------------------

export type WebhookEndpointStatus = 'ENABLED' | 'DISABLED';

export interface WebhookEndpointView {
  id: string;
  url: string;
  events: OrderEventTopic[];
  status: WebhookEndpointStatus;
  createdAt: string;
  /** why and when it was disabled (repeated failures), while DISABLED */
  disabledAt?: string;
  disabledReason?: string;
  /** during a rotation: until when the previous secret still signs too */
  previousSecretExpiresAt?: string;
}

/** A new endpoint, with its signing secret: shown this once. */
export interface CreatedWebhookEndpoint extends WebhookEndpointView {
  secret: string;
}

export interface RotatedWebhookSecret {
  id: string;
  /** the new secret, shown this once */
  secret: string;
  /** deliveries carry a signature with the previous secret too until then */
  previousSecretExpiresAt: string;
}

export type WebhookDeliveryOutcome =
  /** the endpoint answered 2xx */
  | 'DELIVERED'
  /** an error or a non-2xx answer; it will be tried again */
  | 'FAILED'
  /** the last failure of an event past its retry budget: it is not tried again (unless replayed) */
  | 'EXPIRED'
  /** the endpoint failed too often for too long and was disabled; its events wait */
  | 'ENDPOINT_DISABLED'
  /** re-enabled by its client: its waiting events are delivered */
  | 'ENDPOINT_ENABLED'
  /** its client asked for the event again */
  | 'REPLAY_REQUESTED';

/** One line of an endpoint's delivery log. */
export interface WebhookDelivery {
  /** the event attempted (none for an enabling) */
  eventId?: string;
  type?: string;
  orderId?: string;
  outcome: WebhookDeliveryOutcome;
  /** the attempt's number for this event (1 for the first) */
  attempt?: number;
  statusCode?: number;
  error?: string;
  durationMs?: number;
  at: string;
}

export interface WebhookEndpointWorkflowInput {
  endpointId: string;
  /** identity key of the client that owns it: only it may change it */
  owner: string;
  /** carried across continue-as-new: it waits for its client to enable it */
  disabled?: boolean;
  /** delivery rounds before it continues as new (default 500; tests make it small) */
  roundsPerRun?: number;
}

/** Who asks for a change to an endpoint: the identity key of the caller's token. */
export interface WebhookChangeRequest {
  requestedBy: string;
}

export interface CreateWebhookEndpointRequest extends WebhookChangeRequest {
  url: string;
  events: OrderEventTopic[];
}

export interface ReplayWebhookEventRequest extends WebhookChangeRequest {
  eventId: string;
}

export interface ReplayedWebhookEvent {
  eventId: string;
  status: 'QUEUED';
}

/** The relay found new events for the endpoint (no payload: the events wait in the notifications database, in order). */
export const webhookEventsSignal = defineSignal('webhookEvents');
export const createWebhookEndpointUpdate = defineUpdate<CreatedWebhookEndpoint, [CreateWebhookEndpointRequest]>('createWebhookEndpoint');
export const rotateWebhookSecretUpdate = defineUpdate<RotatedWebhookSecret, [WebhookChangeRequest]>('rotateWebhookSecret');
export const enableWebhookEndpointUpdate = defineUpdate<WebhookEndpointView, [WebhookChangeRequest]>('enableWebhookEndpoint');
export const deleteWebhookEndpointUpdate = defineUpdate<{ id: string; deleted: true }, [WebhookChangeRequest]>('deleteWebhookEndpoint');
/** null: this endpoint never had that event */
export const replayWebhookEventUpdate = defineUpdate<ReplayedWebhookEvent | null, [ReplayWebhookEventRequest]>('replayWebhookEvent');

/** What one delivery activity did, and what the endpoint's workflow does next. */
export type DeliveryRound =
  /** nothing waits */
  | { state: 'idle'; delivered: number }
  /** its time budget ran out with events still waiting: go on at once */
  | { state: 'more'; delivered: number }
  /** the first waiting event failed: try again after `retryInMs` */
  | { state: 'retry'; delivered: number; retryInMs: number }
  /** the endpoint is disabled: its events wait for it to be enabled */
  | { state: 'disabled'; delivered: number }
  /** the endpoint was deleted */
  | { state: 'gone'; delivered: number };

// ---- customer emails ----------------------------------------------------------------------------

export interface OrderEmailInput {
  eventId: string;
  orderId: string;
  topic: EmailedTopic;
  /** the customer's address, sealed with the payload keyring (and the whole input by the payload codec) */
  to: string;
  at: string;
  data: Record<string, unknown>;
}

export interface OrderEmailResult {
  eventId: string;
  /** false: it had been sent before (a retry or a second start) */
  sent: boolean;
  messageId: string;
}
