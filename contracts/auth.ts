/**
 * The auth service's contract: the scopes a client can hold, and the identity of whoever acts on
 * an order, as the API passes it to the order's workflow.
 */
export const SCOPES = {
  /** place orders and cancel one's own */
  write: 'orders:write',
  /** read one's own orders */
  read: 'orders:read',
  /** approve or reject orders held for review (never one's own) */
  review: 'orders:review',
  /** read and cancel any order, decode payloads in the Web UI (codec server) */
  operate: 'orders:operate',
  /** scrape the API's Prometheus metrics */
  metrics: 'metrics:read',
  /** register, rotate, enable, replay and delete one's own webhook endpoints: where one's order events are sent */
  webhooks: 'webhooks:manage',
} as const;
export type Scope = (typeof SCOPES)[keyof typeof SCOPES];
export const ALL_SCOPES: readonly Scope[] = Object.values(SCOPES);

/** The audience the auth service issues access tokens for, and the API requires. */
export const API_AUDIENCE = 'order-platform-api';

/** Who acted: the token's verified issuer and subject (a client ID, or a person at a company identity provider). */
export interface Identity {
  issuer: string;
  subject: string;
}

/** One string for an identity, equal only for the same subject of the same issuer. */
export const identityKey = ({ issuer, subject }: Identity): string => `${issuer}#${subject}`;

export const sameIdentity = (a: Identity | undefined, b: Identity | undefined): boolean => !!a && !!b && identityKey(a) === identityKey(b);
