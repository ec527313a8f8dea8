/**
 * The payment provider is the outside world. Every call carries an idempotency key: the
 * provider applies a key once and answers repeats with the first answer.
 */
export type AuthoriseResponse = { outcome: 'approved'; authorisationId: string } | { outcome: 'declined'; reason: string };

export interface PaymentProvider {
  authorise(req: { idempotencyKey: string; amount: number; currency: string; token: string }): Promise<AuthoriseResponse>;
  capture(req: { idempotencyKey: string; authorisationId: string; amount: number }): Promise<{ captureId: string }>;
  void(req: { idempotencyKey: string; authorisationId: string }): Promise<{ voided: boolean }>;
  refund(req: { idempotencyKey: string; authorisationId: string; amount: number }): Promise<{ refundId: string }>;
  /** What the provider did with a key, if anything: settles an outcome lost in transit. */
  // A property, not a method: callers hand it to callWithKey detached, so it must not rely on `this`.
  lookup: <R>(idempotencyKey: string) => Promise<R | undefined>;
}

/** Test tokens of the simulated provider; any other token is declined as invalid. */
export const TEST_TOKENS = {
  tok_visa: 'approved',
  tok_mastercard: 'approved',
  tok_declined: 'card_declined',
  tok_insufficient_funds: 'insufficient_funds',
} as const;
