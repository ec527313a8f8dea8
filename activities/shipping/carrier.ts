import type { ShippingAddress } from '../../contracts/shipping';

/**
 * The carrier is the outside world. Bookings carry an idempotency key; the carrier applies a
 * key once. It confirms pickup later, on its own schedule, as an event the shipping service polls.
 */
export type BookingResponse = { outcome: 'booked'; carrierRef: string; trackingNumber: string } | { outcome: 'refused'; reason: string };

export interface PickupEvent {
  carrierRef: string;
  pickedUpAt: string;
}

export interface Carrier {
  book(req: { idempotencyKey: string; address: ShippingAddress; parcels: number }): Promise<BookingResponse>;
  cancel(req: { idempotencyKey: string; carrierRef: string }): Promise<{ cancelled: boolean }>;
  // A property, not a method: callers hand it to callWithKey detached, so it must not rely on `this`.
  lookup: <R>(idempotencyKey: string) => Promise<R | undefined>;
  /**
   * Hands due pickup events to `deliver`, one at a time; an event counts as delivered only when
   * `deliver` resolves, so a crash mid-delivery means the event comes again (at least once).
   */
  deliverDuePickups(deliver: (event: PickupEvent) => Promise<void>, limit: number): Promise<number>;
}

/** Countries the simulated carrier serves; an address anywhere else is refused. */
// prettier-ignore
export const SERVED_COUNTRIES = [
  'AT', 'AU', 'BE', 'CA', 'CH', 'CZ', 'DE', 'DK', 'ES', 'FI', 'FR', 'GB', 'IE', 'IT', 'JP', 'LU', 'NL', 'NO', 'NZ', 'PL', 'PT', 'SE', 'US',
] as const;
