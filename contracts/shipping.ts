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
