import type { OrderLine } from './inventory';

/** The shipping service's contract: its task queue and the shapes its activities exchange. */
export const SHIPPING_TASK_QUEUE = 'shipping';

export interface ShippingAddress {
  name: string;
  line1: string;
  city: string;
  postalCode: string;
  /** ISO 3166-1 alpha-2 */
  country: string;
}

export interface CreateShipmentInput {
  /** idempotency key of the shipment: workflow ID + step */
  shipmentId: string;
  orderId: string;
  address: ShippingAddress;
  items: OrderLine[];
}

export interface Shipment {
  shipmentId: string;
  carrierRef: string;
  trackingNumber: string;
}

export interface ShipmentRef {
  shipmentId: string;
  orderId: string;
}

export interface ShipmentCancellation {
  shipmentId: string;
  cancelled: boolean;
}

export type ShipmentStatus = 'PENDING' | 'CREATED' | 'PICKED_UP' | 'CANCELLED' | 'REFUSED';

/** A shipment the reconciliation sweep has not verified yet; `updatedAt` (ISO 8601) and `id` page through them. */
export interface UnreconciledShipment {
  id: string;
  orderId: string;
  status: string;
  updatedAt: string;
}

/** One shipment for the sweep to compare with the carrier, with how its order ended (null: never recorded). */
export interface ShipmentToReconcile {
  shipmentId: string;
  orderId: string;
  orderStatus: string | null;
}

/**
 * What the sweep did with one shipment: VERIFIED (we and the carrier already agreed), CANCELLED_AT_CARRIER,
 * MARKED_PICKED_UP / MARKED_CANCELLED (our status set from the carrier's), ANOMALY (left for a person,
 * with `issue`), NONE (another sweep got there first, or nothing to decide yet).
 */
export interface ShipmentReconciliation {
  shipmentId: string;
  orderId: string;
  action: 'VERIFIED' | 'CANCELLED_AT_CARRIER' | 'MARKED_PICKED_UP' | 'MARKED_CANCELLED' | 'ANOMALY' | 'NONE';
  issue?: string;
}
