import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../contracts/errors';
import type { CreateShipmentInput, Shipment, ShipmentCancellation, ShipmentRef, ShipmentStatus } from '../../contracts/shipping';
import type { ShippingDb } from './db';
import type { BookingResponse, Carrier } from './carrier';
import { callWithKey } from '../outside-world';

export interface ShippingDeps {
  db: ShippingDb;
  carrier: Carrier;
}

/** Shipping activities, idempotent on the shipment ID (the workflow ID + step). */
export function createShippingActivities({ db, carrier }: ShippingDeps) {
  const bookingKey = (shipmentId: string) => `${shipmentId}:book`;
  const cancelKey = (shipmentId: string) => `${shipmentId}:cancel`;

  const refused = (reason: string) =>
    ApplicationFailure.create({ type: ErrorType.ShippingUnavailable, message: `carrier refused: ${reason}`, nonRetryable: true });

  /** Cancels at the carrier, and here only if the carrier agreed. */
  async function cancelAtCarrier(shipmentId: string, carrierRef: string, from: ShipmentStatus): Promise<boolean> {
    const key = cancelKey(shipmentId);
    const { cancelled } = await callWithKey(carrier.lookup, key, () => carrier.cancel({ idempotencyKey: key, carrierRef }));
    if (cancelled) await db.shipment.updateMany({ where: { id: shipmentId, status: from }, data: { status: 'CANCELLED', carrierRef } });
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
        await cancelAtCarrier(shipmentId, carrierRef, 'CANCELLED');
        throw ApplicationFailure.create({ type: ErrorType.AlreadyCompensated, message: `shipment ${shipmentId} was cancelled`, nonRetryable: true });
      }
      return { shipmentId, carrierRef, trackingNumber };
    },

    /** Compensation for createShipment. Cancelling a shipment never booked leaves a CANCELLED marker. */
    async cancelShipment({ shipmentId, orderId }: ShipmentRef): Promise<ShipmentCancellation> {
      const marker = await db.shipment.createMany({
        data: [{ id: shipmentId, orderId, status: 'CANCELLED' satisfies ShipmentStatus, country: '', address: {} }],
        skipDuplicates: true,
      });
      if (marker.count === 1) return { shipmentId, cancelled: false };
      const shipment = await db.shipment.findUniqueOrThrow({ where: { id: shipmentId } });
      const status = shipment.status as ShipmentStatus;
      if ((status === 'CREATED' || status === 'PICKED_UP') && shipment.carrierRef) {
        return { shipmentId, cancelled: await cancelAtCarrier(shipmentId, shipment.carrierRef, status) };
      }
      if (status === 'PENDING') {
        // The booking's answer was lost: ask the carrier what it did with the key.
        const answer = await carrier.lookup<BookingResponse>(bookingKey(shipmentId));
        if (answer?.outcome === 'booked') {
          return { shipmentId, cancelled: await cancelAtCarrier(shipmentId, answer.carrierRef, 'PENDING') };
        }
        await db.shipment.updateMany({ where: { id: shipmentId, status: 'PENDING' }, data: { status: 'CANCELLED' } });
      }
      return { shipmentId, cancelled: false };
    },
  };
}

export type ShippingActivities = ReturnType<typeof createShippingActivities>;
