import { createHash } from 'node:crypto';
import { z } from 'zod';

const text = (max: number) => z.string().trim().min(1).max(max);

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
  })
  .superRefine((order, ctx) => {
    const seen = new Set<string>();
    order.items.forEach((item, index) => {
      if (seen.has(item.sku)) ctx.addIssue({ code: 'custom', path: ['items', index, 'sku'], message: `duplicate SKU ${item.sku}: combine the quantities` });
      seen.add(item.sku);
    });
  });
export type PlaceOrderBody = z.infer<typeof placeOrderSchema>;

export const idempotencyKeySchema = z
  .string({ error: 'the Idempotency-Key header is required' })
  .trim()
  .min(1, 'the Idempotency-Key header is required')
  .max(255);

export const cancelOrderSchema = z.strictObject({ reason: text(500).optional() });

export const orderIdSchema = z.uuid();

export const reviewOrderSchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  reason: text(500).optional(),
});

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
        ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canonical(x)]))
        : v;
  return createHash('sha256').update(JSON.stringify(canonical(value))).digest('hex');
}

/**
 * The order ID is derived from the Idempotency-Key, so every repeat of a request, however many
 * arrive at once, names the same workflow ID, and Temporal lets only one of them start.
 */
export function orderIdFromKey(idempotencyKey: string): string {
  const h = createHash('sha256').update(`order:${idempotencyKey}`).digest('hex');
  // RFC 9562 UUIDv8 layout: custom bits with the version and variant set
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
