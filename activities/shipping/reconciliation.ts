import type { ShipmentReconciliation, ShipmentStatus, ShipmentToReconcile, UnreconciledShipment } from '../../contracts/shipping';
import { carrierBookings, isLiveAtCarrier } from './bookings';
import type { ShippingDeps } from './index';

/**
 * The reconciliation sweep's side of the shipping service: shipments of ended orders compared with
 * the carrier, each once. Kept apart from the saga's activities (createShippingActivities), which
 * the order workflow proxies; the shipping pool registers both.
 */
export function createShippingReconciliationActivities({ db, carrier }: ShippingDeps) {
  const { bookedRef, cancelBooking, cancelKey } = carrierBookings(carrier);
  // The sweep cancels under a key of its own: whatever the carrier answered the saga's key is that key's answer for good.
  const sweepCancelKey = (shipmentId: string) => `${cancelKey(shipmentId)}:reconciliation`;

  /**
   * Compares one shipment of an ended order with the carrier and brings us and the carrier into
   * agreement with the order's end, or reports why it cannot. The verdict is written once, with
   * `reconciled_at`: of two sweeps at once only the one whose write lands reports it, and a
   * verified shipment is never looked at again.
   */
  async function reconcileShipment({ shipmentId, orderId, orderStatus }: ShipmentToReconcile): Promise<ShipmentReconciliation> {
    const outcome = (action: ShipmentReconciliation['action'], issue?: string): ShipmentReconciliation => ({
      shipmentId,
      orderId,
      action,
      ...(issue ? { issue } : {}),
    });
    const settle = async (action: ShipmentReconciliation['action'], change: { status?: ShipmentStatus; carrierRef?: string; issue?: string } = {}) => {
      const { count } = await db.shipment.updateMany({
        where: { id: shipmentId, reconciledAt: null },
        data: {
          ...(change.status ? { status: change.status } : {}),
          ...(change.carrierRef ? { carrierRef: change.carrierRef } : {}),
          reconciledAt: new Date(),
          reconciliationIssue: change.issue ?? null,
        },
      });
      return count === 1 ? outcome(action, change.issue) : outcome('NONE');
    };

    const row = await db.shipment.findUnique({ where: { id: shipmentId } });
    if (!row || row.reconciledAt) return outcome('NONE');
    const status = row.status as ShipmentStatus;
    // The carrier refused the booking: it holds nothing.
    if (status === 'REFUSED') return settle('VERIFIED');
    const carrierRef = row.carrierRef ?? (await bookedRef(shipmentId));
    const atCarrier = carrierRef ? await carrier.status({ carrierRef }) : undefined;
    const ref = carrierRef ? { carrierRef } : {};

    if (orderStatus !== 'COMPLETED') {
      if (isLiveAtCarrier(atCarrier)) {
        const { live } = await cancelBooking(carrierRef!, sweepCancelKey(shipmentId));
        if (live)
          return settle('ANOMALY', { issue: `order ${orderStatus ?? 'never recorded'}, but the carrier refused to cancel its ${live} booking ${carrierRef}` });
        return settle('CANCELLED_AT_CARRIER', { status: 'CANCELLED', ...ref });
      }
      if (carrierRef && !atCarrier) return settle('ANOMALY', { issue: `the carrier knows no booking ${carrierRef}` });
      if (status === 'CANCELLED') return settle('VERIFIED');
      // The carrier cancelled (or never booked): we follow. A cancel a sweep sent is reported as one, whichever sweep records it.
      const sweptAlready = carrierRef ? await carrier.lookup<{ cancelled: boolean }>(sweepCancelKey(shipmentId)) : undefined;
      return settle(sweptAlready?.cancelled ? 'CANCELLED_AT_CARRIER' : 'MARKED_CANCELLED', { status: 'CANCELLED', ...ref });
    }
    if (atCarrier === 'PICKED_UP') return status === 'PICKED_UP' ? settle('VERIFIED') : settle('MARKED_PICKED_UP', { status: 'PICKED_UP', ...ref });
    if (atCarrier === 'CANCELLED') {
      return settle('ANOMALY', { status: 'CANCELLED', ...ref, issue: `order COMPLETED, but the carrier cancelled its parcel ${carrierRef}` });
    }
    // Not settled: the carrier's pickup event may still be on its way, so the next sweep looks again.
    if (atCarrier === 'BOOKED') return outcome('ANOMALY', `order COMPLETED, but the carrier has not picked up ${carrierRef}`);
    return settle('ANOMALY', {
      issue: carrierRef ? `order COMPLETED, but the carrier knows no booking ${carrierRef}` : 'order COMPLETED without a booking at the carrier',
    });
  }

  return {
    /** Shipments not yet verified against the carrier and untouched for `olderThanMs`, oldest first, from after `after` (a page's last). */
    async findUnreconciledShipments({
      olderThanMs,
      limit,
      after,
    }: {
      olderThanMs: number;
      limit: number;
      after?: Pick<UnreconciledShipment, 'updatedAt' | 'id'>;
    }): Promise<UnreconciledShipment[]> {
      const page = after ? { OR: [{ updatedAt: { gt: new Date(after.updatedAt) } }, { updatedAt: new Date(after.updatedAt), id: { gt: after.id } }] } : {};
      const rows = await db.shipment.findMany({
        where: { reconciledAt: null, updatedAt: { lt: new Date(Date.now() - olderThanMs) }, ...page },
        orderBy: [{ updatedAt: 'asc' }, { id: 'asc' }],
        take: limit,
        select: { id: true, orderId: true, status: true, updatedAt: true },
      });
      return rows.map((r) => ({ ...r, updatedAt: r.updatedAt.toISOString() }));
    },

    /** For the sweep: each shipment of an ended order compared with the carrier, and what was done about it. */
    async reconcileShipments({ shipments }: { shipments: ShipmentToReconcile[] }): Promise<ShipmentReconciliation[]> {
      const results: ShipmentReconciliation[] = [];
      for (const shipment of shipments) results.push(await reconcileShipment(shipment));
      return results;
    },
  };
}

export type ShippingReconciliationActivities = ReturnType<typeof createShippingReconciliationActivities>;
