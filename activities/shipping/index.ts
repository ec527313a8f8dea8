import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../contracts/errors';
import { type CreateShipmentInput, type Shipment, type ShipmentCancellation, type ShipmentRef, type ShipmentStatus } from '../../contracts/shipping';
import type { ShippingDb } from './db';
import type { Carrier } from './carrier';
import { carrierBookings } from './bookings';
import { callWithKey } from '../outside-world';

export interface ShippingDeps {
  db: ShippingDb;
  carrier: Carrier;
}

/** Shipping activities, idempotent on the shipment ID (the workflow ID + step). */
export function createShippingActivities({ db, carrier }: ShippingDeps) {
  const { bookingKey, cancelKey, bookedRef, cancelBooking } = carrierBookings(carrier);

  const refused = (reason: string) =>
    ApplicationFailure.create({ type: ErrorType.ShippingUnavailable, message: `carrier refused: ${reason}`, nonRetryable: true });

  /**
   * Cancels at the carrier, then here. Once the carrier has cancelled, the row is CANCELLED whatever
   * it says by then: the pickup relay may have moved it CREATED → PICKED_UP while this cancel waited
   * at the carrier behind that same pickup, which the carrier then cancels as a return to sender.
   * A refusal for a booking still live fails for good (a retry gets the same answer), so the order
   * waits for a person instead of ending CANCELLED with its parcel on the way.
   */
  async function cancelAtCarrier(shipmentId: string, carrierRef: string): Promise<boolean> {
    const { cancelled, live } = await cancelBooking(carrierRef, cancelKey(shipmentId));
    if (live) {
      throw ApplicationFailure.create({
        type: ErrorType.ShipmentCancelRefused,
        message: `carrier refused to cancel shipment ${shipmentId} (${carrierRef}), which is ${live} there`,
        nonRetryable: true,
      });
    }
    await db.shipment.updateMany({ where: { id: shipmentId, status: { not: 'REFUSED' satisfies ShipmentStatus } }, data: { status: 'CANCELLED', carrierRef } });
    return cancelled;
  }

  return {
    async createShipment({ shipmentId, orderId, address, items }: CreateShipmentInput): Promise<Shipment> {
      const created = await db.shipment.createMany({
        data: [{ id: shipmentId, orderId, status: 'PENDING' satisfies ShipmentStatus, country: address.country, address: { ...address } }],
        skipDuplicates: true,
      });
      // A row that was already there belongs to an earlier attempt, or to a cancel that came first.
      if (created.count === 0) {
        const shipment = await db.shipment.findUniqueOrThrow({ where: { id: shipmentId } });
        if (shipment.status === 'REFUSED') throw refused(`no service to ${shipment.country}`);
        if (shipment.carrierRef && shipment.trackingNumber && shipment.status !== 'CANCELLED') {
          return { shipmentId, carrierRef: shipment.carrierRef, trackingNumber: shipment.trackingNumber };
        }
        if (shipment.status !== 'PENDING') {
          // A cancel came first. An earlier attempt may still have booked, its own cancel lost with it: that booking goes too.
          const lateRef = shipment.status === 'CANCELLED' && !shipment.carrierRef ? await bookedRef(shipmentId) : undefined;
          if (lateRef) await cancelAtCarrier(shipmentId, lateRef);
          throw ApplicationFailure.create({ type: ErrorType.AlreadyCompensated, message: `shipment ${shipmentId} is ${shipment.status}`, nonRetryable: true });
        }
      }
      const parcels = items.reduce((n, i) => n + i.quantity, 0);
      const key = bookingKey(shipmentId);
      const answer = await callWithKey(carrier.lookup, key, () => carrier.book({ idempotencyKey: key, address, parcels }));
      if (answer.outcome === 'refused') {
        await db.shipment.updateMany({ where: { id: shipmentId, status: 'PENDING' }, data: { status: 'REFUSED' } });
        throw refused(answer.reason);
      }
      const { carrierRef, trackingNumber } = answer;
      const moved = await db.shipment.updateMany({
        where: { id: shipmentId, status: 'PENDING' },
        data: { status: 'CREATED', carrierRef, trackingNumber },
      });
      if (moved.count === 0) {
        const now = await db.shipment.findUniqueOrThrow({ where: { id: shipmentId } });
        // An overlapping attempt recorded this same booking (the carrier answers a key once).
        if (now.status !== 'CANCELLED') return { shipmentId, carrierRef, trackingNumber };
        // Compensation ran while this attempt was at the carrier: cancel what it just booked.
        await cancelAtCarrier(shipmentId, carrierRef);
        throw ApplicationFailure.create({ type: ErrorType.AlreadyCompensated, message: `shipment ${shipmentId} was cancelled`, nonRetryable: true });
      }
      return { shipmentId, carrierRef, trackingNumber };
    },

    /**
     * Compensation for createShipment. Cancelling a shipment never booked leaves a CANCELLED marker;
     * one whose booking's answer was lost (PENDING) is looked up at the carrier by its key.
     */
    async cancelShipment({ shipmentId, orderId }: ShipmentRef): Promise<ShipmentCancellation> {
      const marker = await db.shipment.createMany({
        data: [{ id: shipmentId, orderId, status: 'CANCELLED' satisfies ShipmentStatus, country: '', address: {} }],
        skipDuplicates: true,
      });
      if (marker.count === 1) return { shipmentId, cancelled: false };
      const shipment = await db.shipment.findUniqueOrThrow({ where: { id: shipmentId } });
      const status = shipment.status as ShipmentStatus;
      if (status === 'CANCELLED' || status === 'REFUSED') return { shipmentId, cancelled: false };
      const carrierRef = shipment.carrierRef ?? (await bookedRef(shipmentId));
      if (carrierRef) return { shipmentId, cancelled: await cancelAtCarrier(shipmentId, carrierRef) };
      await db.shipment.updateMany({ where: { id: shipmentId, status: 'PENDING' }, data: { status: 'CANCELLED' } });
      return { shipmentId, cancelled: false };
    },
  };
}

export type ShippingActivities = ReturnType<typeof createShippingActivities>;
