import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FailureReason } from '../contracts/errors';
import { healthReportSchema } from '../contracts/health';
import { EVENT_ID_PATTERN } from '../contracts/notifications';
import { COMPENSATIONS, ORDER_EVENT_TOPICS, ORDER_STATUSES, ORDER_STEPS, ORDER_TOPICS } from '../contracts/orders';

/*
 * The API's request and response shapes. Requests are validated with these at the edge, handlers
 * are typed by them, and the OpenAPI document (/openapi.json) is generated from them; `id` in
 * `.meta()` names a schema in the document's components.
 */

/**
 * A text field: no control characters (NUL above all: PostgreSQL cannot store it, so an order
 * carrying one could never be recorded) and no lone surrogate (not valid Unicode, refused by
 * PostgreSQL's JSON). Refused here, at the edge, with the field named.
 */
export function cleanText(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return false;
    if (c >= 0xdc00 && c <= 0xdfff) return false; // a low surrogate with no high one before it
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    }
  }
  return true;
}
const CLEAN_TEXT_MESSAGE = 'must not contain control characters (such as NUL) or invalid Unicode (a lone surrogate)';
const text = (max: number) => z.string().refine(cleanText, CLEAN_TEXT_MESSAGE).trim().min(1).max(max);

export const orderLineSchema = z.strictObject({
  sku: text(64),
  quantity: z.number().int().positive().max(1000),
});

export const placeOrderSchema = z
  .strictObject({
    customerId: text(128),
    items: z.array(orderLineSchema).min(1).max(100),
    payment: z.strictObject({
      // a provider token; raw card numbers never reach this platform
      token: z.string().regex(/^tok_[A-Za-z0-9_]{1,64}$/, 'must be a payment token such as tok_visa'),
    }),
    shippingAddress: z.strictObject({
      name: text(200),
      line1: text(200),
      city: text(100),
      postalCode: text(20),
      country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as GB'),
    }),
    // personal data: kept with the order, never logged, shown in the Web UI's summary or sent in a webhook
    email: z
      .email('must be an email address')
      .max(254)
      .optional()
      .meta({ description: 'where the customer is emailed when the order is placed, shipped, completed, failed or cancelled' }),
  })
  .superRefine((order, ctx) => {
    const seen = new Set<string>();
    order.items.forEach((item, index) => {
      if (seen.has(item.sku)) ctx.addIssue({ code: 'custom', path: ['items', index, 'sku'], message: `duplicate SKU ${item.sku}: combine the quantities` });
      seen.add(item.sku);
    });
  })
  .meta({ id: 'PlaceOrder' });
export type PlaceOrderBody = z.infer<typeof placeOrderSchema>;

const IDEMPOTENCY_KEY_REQUIRED = 'the Idempotency-Key header is required';
export const idempotencyKeySchema = z
  .string({ error: (issue) => (issue.input === undefined ? IDEMPOTENCY_KEY_REQUIRED : 'the Idempotency-Key header must be text') })
  .trim()
  .min(1, IDEMPOTENCY_KEY_REQUIRED)
  .max(255, 'the Idempotency-Key header must be at most 255 characters')
  .regex(/^[\x20-\x7e]*$/, 'the Idempotency-Key header must be printable ASCII')
  .meta({ description: 'names the order (for this client): the same key again answers with the same order', example: '7d0c6f9e-first-order' });

export const placeOrderHeaders = z.object({ 'idempotency-key': idempotencyKeySchema });

export const cancelOrderSchema = z.strictObject({ reason: text(500).optional() }).meta({ id: 'CancelOrder' });

/** Order IDs are UUIDs, matched whatever their case: the same order in every state, upper or lower case. */
export const orderIdSchema = z.uuid().transform((id) => id.toLowerCase());

/** A path that names an order; an id that cannot be one answers 404, like an unknown one. */
export const orderParams = z.object({ id: orderIdSchema.meta({ description: 'the order ID (from the Location of POST /orders), in any case' }) });

export const reviewOrderSchema = z
  .strictObject({
    decision: z.enum(['approve', 'reject']),
    reason: text(500).optional(),
  })
  .meta({ id: 'ReviewOrder' });

/** A webhook topic: one of ORDER_TOPICS. */
export const webhookTopicSchema = z.enum(ORDER_EVENT_TOPICS).meta({ id: 'WebhookTopic' });

/** The URL's own rules (https:, public, no credentials) depend on the deployment: the router refines this with them. */
export const createWebhookSchema = z
  .strictObject({
    url: z
      .string()
      .refine(cleanText, CLEAN_TEXT_MESSAGE)
      .trim()
      .min(1)
      .max(2000)
      .meta({ description: 'where events are POSTed: https: to a public address, no credentials in it', example: 'https://shop.example/hooks/orders' }),
    events: z
      .array(webhookTopicSchema)
      .min(1)
      .max(ORDER_TOPICS.length)
      .refine((topics) => new Set(topics).size === topics.length, 'each topic once')
      .meta({ description: 'the topics this endpoint receives (its client’s orders only)' }),
  })
  .meta({ id: 'CreateWebhook' });

/** A path that names an endpoint; an id that cannot be one answers 404, like an unknown one. */
export const webhookParams = z.object({
  id: z
    .uuid()
    .transform((id) => id.toLowerCase())
    .meta({ description: 'the endpoint ID' }),
});
export const webhookEventParams = webhookParams.extend({
  eventId: z.string().regex(EVENT_ID_PATTERN).meta({ description: 'the event ID (webhook-id), as the delivery log shows it', example: 'evt_1042' }),
});

// ---- responses ----------------------------------------------------------------------------------

/** Lists that mirror the contract's unions; the checks below stop the two from drifting apart. */
export const orderStatusSchema = z.enum(ORDER_STATUSES).meta({ id: 'OrderStatus' });
const compensationSchema = z.enum(COMPENSATIONS);

export const errorSchema = z
  .object({
    error: z.string().meta({ description: 'a stable code, e.g. validation_failed, not_found, not_cancellable' }),
    message: z.string(),
    fields: z
      .array(z.object({ field: z.string().meta({ example: 'body.items.0.quantity' }), message: z.string() }))
      .optional()
      .meta({ description: 'with validation_failed: every field at fault (headers.*, body.*)' }),
  })
  .meta({ id: 'Error' });

export const productSchema = z
  .object({
    sku: z.string(),
    name: z.string(),
    price: z.number().int().meta({ description: 'minor units (cents)' }),
    currency: z.string(),
    available: z.number().int().meta({ description: 'units in stock now' }),
  })
  .meta({ id: 'Product' });
export const productsSchema = z.array(productSchema);

export const acceptedOrderSchema = z.object({ orderId: z.uuid(), status: orderStatusSchema }).meta({ id: 'AcceptedOrder' });

export const orderEventSchema = z
  .object({
    type: z.string().meta({ description: 'OrderPlaced, StockReserved, …, OrderCompleted, CompensationRan, OrderFailed, …' }),
    at: z.string().meta({ description: 'when it happened (ISO 8601)', format: 'date-time' }),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'OrderEvent' });
export type OrderEventView = z.infer<typeof orderEventSchema>;

export const orderViewSchema = z
  .object({
    orderId: z.uuid(),
    customerId: z.string(),
    status: orderStatusSchema,
    items: z.array(
      z.object({
        sku: z.string(),
        quantity: z.number().int(),
        unitPrice: z.number().int().nullable().optional().meta({ description: 'minor units, once the stock is priced' }),
      }),
    ),
    total: z.number().int().nullable().meta({ description: 'minor units; null until the stock is priced' }),
    currency: z.string().nullable(),
    steps: z.array(z.enum(ORDER_STEPS)).meta({ description: 'the forward steps done, in order' }),
    compensations: z.array(compensationSchema).meta({ description: 'the undos run, in order' }),
    failureReason: z.enum(FailureReason).optional(),
    cancellationReason: z.string().optional(),
    attention: z
      .object({ pending: z.array(compensationSchema), error: z.string(), since: z.string() })
      .optional()
      .meta({ description: 'while NEEDS_ATTENTION: the undos still to run and why the first is stuck' }),
    resolvedByHand: z.array(compensationSchema).optional(),
    review: z
      .object({
        decision: z.enum(['approve', 'reject']),
        reviewer: z.string().meta({ description: 'the reviewer’s verified identity (token subject); `system` when nobody reviewed in time' }),
        reviewerIssuer: z.string().optional().meta({ description: 'the issuer that vouched for the reviewer' }),
        reason: z.string().optional(),
      })
      .optional(),
    placedBy: z.string().optional().meta({ description: 'the client that placed the order (its token’s subject)' }),
    events: z.array(orderEventSchema),
  })
  .meta({ id: 'Order' });
export type OrderView = z.infer<typeof orderViewSchema>;

/** Where a page of GET /orders ends: the last order's creation time and ID, opaque to callers (base64url). */
export interface OrderCursor {
  createdAt: Date;
  id: string;
}
export const encodeOrderCursor = ({ createdAt, id }: OrderCursor): string => Buffer.from(`${createdAt.toISOString()}|${id}`).toString('base64url');
const CURSOR_MESSAGE = 'must be a nextCursor from an earlier page';
const orderCursorSchema = z
  .string()
  .max(200)
  .transform((text, ctx): OrderCursor => {
    const [at = '', id = ''] = Buffer.from(text, 'base64url').toString('utf8').split('|');
    const createdAt = new Date(at);
    if (!/^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(at) || Number.isNaN(createdAt.getTime()) || !z.uuid().safeParse(id).success) {
      ctx.addIssue({ code: 'custom', message: CURSOR_MESSAGE });
      return z.NEVER;
    }
    return { createdAt, id: id.toLowerCase() };
  });

export const listOrdersQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).meta({ description: 'orders on this page, 1 to 100' }),
  cursor: orderCursorSchema.optional().meta({ description: 'the `nextCursor` of the previous page; none for the newest orders' }),
});

export const orderSummarySchema = z
  .object({
    orderId: z.uuid(),
    customerId: z.string(),
    status: orderStatusSchema,
    total: z.number().int().nullable().meta({ description: 'minor units; null until the stock is priced' }),
    currency: z.string().nullable(),
    failureReason: z.enum(FailureReason).optional(),
    placedBy: z.string().meta({ description: 'the client that placed the order (its token’s subject)' }),
    createdAt: z.string().meta({ description: 'when the order was placed (ISO 8601)', format: 'date-time' }),
    updatedAt: z.string().meta({ description: 'when the orders database last recorded a step of it (ISO 8601)', format: 'date-time' }),
  })
  .meta({ id: 'OrderSummary' });

export const orderPageSchema = z
  .object({
    orders: z.array(orderSummarySchema).meta({ description: 'newest first' }),
    nextCursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last page' }),
  })
  .meta({ id: 'OrderPage' });

export const cancellingSchema = z
  .object({
    orderId: z.uuid(),
    status: z.enum(['CANCELLING', 'CANCELLED']).meta({ description: 'CANCELLED once a repeated cancel finds the order unwound' }),
    previousStatus: orderStatusSchema.meta({ description: "the order's status when this request reached it" }),
  })
  .meta({ id: 'Cancelling' });

export const reviewResultSchema = z.object({ orderId: z.uuid(), decision: z.enum(['approve', 'reject']) }).meta({ id: 'ReviewResult' });

export const webhookSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(webhookTopicSchema),
    status: z.enum(['ENABLED', 'DISABLED']).meta({ description: 'DISABLED after failing repeatedly: its events wait until it is enabled again' }),
    createdAt: z.string().meta({ format: 'date-time' }),
    disabledAt: z.string().optional().meta({ format: 'date-time' }),
    disabledReason: z.string().optional(),
    previousSecretExpiresAt: z
      .string()
      .optional()
      .meta({ format: 'date-time', description: 'after a rotation: deliveries carry a signature with the previous secret too until then' }),
  })
  .meta({ id: 'Webhook' });
export const createdWebhookSchema = webhookSchema
  .extend({ secret: z.string().meta({ description: 'the signing secret (whsec_…, Standard Webhooks): shown this once' }) })
  .meta({ id: 'CreatedWebhook' });
export const webhookListSchema = z.object({ webhooks: z.array(webhookSchema) }).meta({ id: 'Webhooks' });
export const rotatedWebhookSecretSchema = z
  .object({
    id: z.uuid(),
    secret: z.string().meta({ description: 'the new signing secret: shown this once' }),
    previousSecretExpiresAt: z.string().meta({ format: 'date-time', description: 'the previous secret signs too until then' }),
  })
  .meta({ id: 'RotatedWebhookSecret' });
export const deletedWebhookSchema = z.object({ id: z.uuid(), deleted: z.literal(true) }).meta({ id: 'DeletedWebhook' });
export const webhookDeliverySchema = z
  .object({
    eventId: z.string().optional(),
    type: webhookTopicSchema.optional(),
    orderId: z.uuid().optional(),
    outcome: z.enum(['DELIVERED', 'FAILED', 'EXPIRED', 'ENDPOINT_DISABLED', 'ENDPOINT_ENABLED', 'REPLAY_REQUESTED']),
    attempt: z.number().int().optional().meta({ description: 'the attempt’s number for its event' }),
    statusCode: z.number().int().optional().meta({ description: 'the endpoint’s HTTP status' }),
    error: z.string().optional().meta({ description: 'what went wrong: an error, a timeout, a non-2xx status, a refused address' }),
    durationMs: z.number().int().optional(),
    at: z.string().meta({ format: 'date-time' }),
  })
  .meta({ id: 'WebhookDelivery' });
export const webhookDeliveriesSchema = z
  .object({ deliveries: z.array(webhookDeliverySchema).meta({ description: 'the latest 100 lines, newest first' }) })
  .meta({ id: 'WebhookDeliveries' });
export const replayedWebhookEventSchema = z.object({ eventId: z.string(), status: z.literal('QUEUED') }).meta({ id: 'ReplayedWebhookEvent' });

export const healthSchema = healthReportSchema.meta({ id: 'Health' });
export const liveSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Live' });

/** Field-level problems, as the 400 body lists them. */
export interface FieldError {
  field: string;
  message: string;
}

export const fieldErrors = (error: z.ZodError, prefix: string[] = []): FieldError[] =>
  error.issues.map((issue) => ({ field: [...prefix, ...issue.path.map(String)].join('.') || prefix.join('.') || 'body', message: issue.message }));

/** A stable digest of a request: object keys sorted, so key order in the JSON does not matter. */
export function requestHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, canonical(x)]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

/**
 * The order ID is derived from the client (its identity key) and its Idempotency-Key, so every
 * repeat of a request, however many arrive at once, names the same workflow ID, and Temporal lets
 * only one of them start; another client's identical key names another order.
 */
export function orderIdFromKey(placedBy: string, idempotencyKey: string): string {
  const h = createHash('sha256').update(`order:${placedBy}\n${idempotencyKey}`).digest('hex');
  // RFC 9562 UUIDv8 layout: custom bits with the version and variant set
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
