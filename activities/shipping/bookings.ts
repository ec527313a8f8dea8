import { callWithKey } from '../outside-world';
import type { BookingResponse, Carrier, CarrierBookingStatus } from './carrier';

export const isLiveAtCarrier = (status: CarrierBookingStatus | undefined): status is 'BOOKED' | 'PICKED_UP' => status === 'BOOKED' || status === 'PICKED_UP';

/** How the shipping service names its calls to the carrier and asks after them: shared by the saga's activities and the sweep's. */
export function carrierBookings(carrier: Carrier) {
  const bookingKey = (shipmentId: string) => `${shipmentId}:book`;
  const cancelKey = (shipmentId: string) => `${shipmentId}:cancel`;

  /** The booking the carrier made under this shipment's key, for a row that never heard the booking's answer. */
  async function bookedRef(shipmentId: string): Promise<string | undefined> {
    const answer = await carrier.lookup<BookingResponse>(bookingKey(shipmentId));
    return answer?.outcome === 'booked' ? answer.carrierRef : undefined;
  }

  /**
   * Asks the carrier to cancel a booking. A refusal is checked with the carrier: a booking no longer
   * live there is as good as cancelled; `live` says the carrier still has it on its way.
   */
  async function cancelBooking(carrierRef: string, key: string): Promise<{ cancelled: boolean; live?: CarrierBookingStatus }> {
    const { cancelled } = await callWithKey(carrier.lookup, key, () => carrier.cancel({ idempotencyKey: key, carrierRef }));
    if (cancelled) return { cancelled };
    const now = await carrier.status({ carrierRef });
    return isLiveAtCarrier(now) ? { cancelled, live: now } : { cancelled };
  }

  return { bookingKey, cancelKey, bookedRef, cancelBooking };
}
