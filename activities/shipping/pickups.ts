import { setTimeout as sleep } from 'node:timers/promises';
import type { PickupConfirmation } from '../../contracts/orders';
import type { Logger } from '../../lib/logger';
import type { Carrier } from './carrier';
import type { ShippingDb } from './db';

export interface PickupRelayDeps {
  db: ShippingDb;
  carrier: Carrier;
  /** tells the order that its parcel left; resolves once the order has it */
  notifyOrder: (orderId: string, confirmation: PickupConfirmation) => Promise<void>;
  log: Logger;
}

/**
 * The shipping service's receiver for the carrier's pickup events: it records the pickup and
 * passes it on to the order. Delivery is at least once; the order ignores a repeat.
 */
export function createPickupRelay({ db, carrier, notifyOrder, log }: PickupRelayDeps) {
  async function pollOnce(limit = 50): Promise<number> {
    return carrier.deliverDuePickups(async (event) => {
      const shipment = await db.shipment.findUnique({ where: { carrierRef: event.carrierRef } });
      if (!shipment) {
        // Booked at the carrier but not yet recorded here: leave the event for the next poll.
        throw new Error(`pickup for unknown shipment ${event.carrierRef}`);
      }
      await db.shipment.updateMany({
        where: { id: shipment.id, status: 'CREATED' },
        data: { status: 'PICKED_UP', pickedUpAt: new Date(event.pickedUpAt) },
      });
      await notifyOrder(shipment.orderId, event);
      log.info({ orderId: shipment.orderId, carrierRef: event.carrierRef }, 'pickup confirmed');
    }, limit);
  }

  /** Polls until the signal aborts; an error is logged and the next poll tries again. */
  async function run(signal: AbortSignal, intervalMs: number): Promise<void> {
    while (!signal.aborted) {
      let delivered = 0;
      try {
        delivered = await pollOnce();
      } catch (err) {
        log.warn({ err }, 'pickup relay poll failed');
      }
      if (delivered === 0) await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  return { pollOnce, run };
}
