import type { ShippingAddress } from '../../contracts/shipping';

/**
 * The carrier is the outside world. Bookings carry an idempotency key; the carrier applies a
 * key once. It confirms pickup later, on its own schedule, as an event the shipping service polls.
 */
export type BookingResponse = { outcome: 'booked'; carrierRef: string; trackingNumber: string } | { outcome: 'refused'; reason: string };

/** Where a booking stands at the carrier: live (booked, or picked up and on its way) or cancelled. */
export type CarrierBookingStatus = 'BOOKED' | 'PICKED_UP' | 'CANCELLED';

export interface PickupEvent {
  carrierRef: string;
  pickedUpAt: string;
}

export interface Carrier {
  book(req: { idempotencyKey: string; address: ShippingAddress; parcels: number }): Promise<BookingResponse>;
  /** After pickup a cancel is a return to sender. `cancelled: false`: the carrier did not cancel (nothing live, or it refused). */
  cancel(req: { idempotencyKey: string; carrierRef: string }): Promise<{ cancelled: boolean }>;
  /** The carrier's own view of a booking (a read, safe to repeat); undefined when it knows no such booking. */
  status(req: { carrierRef: string }): Promise<CarrierBookingStatus | undefined>;
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
