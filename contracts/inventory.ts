/** The inventory service's contract: its task queue and the shapes its activities exchange. */
export const INVENTORY_TASK_QUEUE = 'inventory';

export interface Product {
  sku: string;
  name: string;
  /** minor units (cents) */
  price: number;
  currency: string;
  available: number;
}

export interface OrderLine {
  sku: string;
  quantity: number;
}

export interface ReserveStockInput {
  /** idempotency key: workflow ID + step */
  reservationId: string;
  orderId: string;
  items: OrderLine[];
  /** how long the units are held; the order renews the hold if it needs them longer */
  holdMs?: number;
}

export interface RenewReservationInput {
  reservationId: string;
  holdMs: number;
}

export interface ReservedLine extends OrderLine {
  unitPrice: number;
}

export interface Reservation {
  reservationId: string;
  lines: ReservedLine[];
  total: number;
  currency: string;
}

export interface ReleaseStockInput {
  reservationId: string;
  orderId: string;
}

export type ReservationStatus = 'HELD' | 'RELEASED' | 'COMMITTED';
