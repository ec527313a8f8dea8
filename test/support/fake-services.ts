import { ApplicationFailure } from '@temporalio/common';
import type { InventoryActivities } from '../../activities/inventory';
import type { OrderActivities } from '../../activities/orders';
import type { PaymentActivities } from '../../activities/payments';
import type { ShippingActivities } from '../../activities/shipping';
import { ErrorType } from '../../contracts/errors';
import type { RecordOrderEventInput } from '../../contracts/orders';

/**
 * In-memory stand-ins for the four services, typed from the real activity factories so they
 * cannot drift from them. Each keeps just enough state to behave like its service: a release
 * only puts back what was reserved, a void only voids what was authorised.
 */
export interface FakeOptions {
  stock?: Record<string, number>;
  prices?: Record<string, number>;
  /** payment tokens that the fake provider declines */
  declinedTokens?: string[];
  /** countries the fake carrier refuses */
  refusedCountries?: string[];
  /** called when an activity starts; await in it to hold the activity (a gate) */
  onCall?: (activity: string) => Promise<void> | void;
  /** the fake provider declines every re-authorisation */
  declineReauthorisation?: boolean;
  /** make an activity throw a retryable infrastructure error on its first `n` attempts */
  failFirst?: Partial<Record<string, number>>;
  /** make an activity act, then lose its answer (a retryable error) on its first `n` attempts */
  loseAnswer?: Partial<Record<string, number>>;
}

export function createFakeServices(options: FakeOptions = {}) {
  const stock: Record<string, number> = { ...(options.stock ?? { 'MUG-LOGO': 100, 'CAP-NAVY': 100 }) };
  const prices: Record<string, number> = options.prices ?? { 'MUG-LOGO': 1299, 'CAP-NAVY': 1799 };
  const calls: string[] = [];
  const attempts: Record<string, number> = {};
  const events: RecordOrderEventInput[] = [];
  const reservations = new Map<string, { status: 'HELD' | 'RELEASED' | 'COMMITTED'; lines: { sku: string; quantity: number }[] }>();
  const payments = new Map<string, { status: 'AUTHORISED' | 'CAPTURED' | 'VOIDED' | 'REFUNDED'; amount: number }>();
  const shipments = new Map<string, 'CREATED' | 'CANCELLED'>();
  /** the fake provider's captures: like a real one it remembers each key and charges it once */
  const charges: string[] = [];

  async function enter(activity: string): Promise<void> {
    calls.push(activity);
    attempts[activity] = (attempts[activity] ?? 0) + 1;
    if ((attempts[activity] ?? 0) <= (options.failFirst?.[activity] ?? 0)) {
      throw new Error(`${activity}: simulated infrastructure failure (attempt ${attempts[activity]})`);
    }
    await options.onCall?.(activity);
  }

  /** After the activity acted: its answer is lost on the first `n` attempts. */
  function leave(activity: string): void {
    if ((attempts[activity] ?? 0) <= (options.loseAnswer?.[activity] ?? 0)) {
      throw new Error(`${activity}: answer lost after it acted (attempt ${attempts[activity]})`);
    }
  }

  const orders: OrderActivities = {
    async recordOrderPlaced() {
      await enter('recordOrderPlaced');
    },
    async getOrderStatuses({ orderIds }) {
      return Object.fromEntries(orderIds.map((id) => [id, null]));
    },
    async recordOrderEvent(input) {
      await enter('recordOrderEvent');
      if (!events.some((e) => e.idempotencyKey === input.idempotencyKey)) events.push(input);
    },
    async recordOrderEvents({ events: batch }) {
      await enter('recordOrderEvents');
      for (const input of batch) if (!events.some((e) => e.idempotencyKey === input.idempotencyKey)) events.push(input);
    },
  };

  const inventory: InventoryActivities = {
    async listProducts() {
      return Object.entries(stock).map(([sku, available]) => ({ sku, name: sku, price: prices[sku] ?? 0, currency: 'EUR', available }));
    },
    async reserveStock({ reservationId, items }) {
      await enter('reserveStock');
      for (const { sku, quantity } of items) {
        if ((stock[sku] ?? 0) < quantity) {
          throw ApplicationFailure.create({ type: ErrorType.OutOfStock, message: `no stock for ${sku}`, nonRetryable: true });
        }
      }
      for (const { sku, quantity } of items) stock[sku] = (stock[sku] ?? 0) - quantity;
      reservations.set(reservationId, { status: 'HELD', lines: items });
      const lines = items.map((i) => ({ ...i, unitPrice: prices[i.sku] ?? 0 }));
      return { reservationId, lines, total: lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0), currency: 'EUR' };
    },
    async releaseStock({ reservationId }) {
      await enter('releaseStock');
      const reservation = reservations.get(reservationId);
      if (reservation?.status !== 'HELD') return { released: false };
      for (const { sku, quantity } of reservation.lines) stock[sku] = (stock[sku] ?? 0) + quantity;
      reservation.status = 'RELEASED';
      return { released: true };
    },
    async renewReservation({ reservationId }) {
      await enter('renewReservation');
      if (reservations.get(reservationId)?.status !== 'HELD') {
        throw ApplicationFailure.create({ type: ErrorType.AlreadyCompensated, message: 'not held', nonRetryable: true });
      }
      return { expiresAt: new Date(0).toISOString() };
    },
    async commitStock({ reservationId }) {
      await enter('commitStock');
      const reservation = reservations.get(reservationId);
      if (reservation) reservation.status = 'COMMITTED';
      return { committed: true };
    },
    async findHeldReservations() {
      return [...reservations].filter(([, r]) => r.status === 'HELD').map(([id]) => ({ id, orderId: id, status: 'HELD' }));
    },
  };

  const paymentActivities: PaymentActivities = {
    async authorisePayment({ paymentId, amount, currency, token }) {
      await enter('authorisePayment');
      if (options.declinedTokens?.includes(token)) {
        throw ApplicationFailure.create({ type: ErrorType.PaymentDeclined, message: 'declined', nonRetryable: true });
      }
      payments.set(paymentId, { status: 'AUTHORISED', amount });
      return { paymentId, authorisationId: `auth-${paymentId}`, amount, currency };
    },
    async reauthorisePayment({ paymentId, round }) {
      await enter('reauthorisePayment');
      const payment = payments.get(paymentId)!;
      if (options.declineReauthorisation) {
        throw ApplicationFailure.create({ type: ErrorType.PaymentDeclined, message: 'declined', nonRetryable: true });
      }
      return { paymentId, authorisationId: `auth-${paymentId}-${round}`, amount: payment.amount, currency: 'EUR' };
    },
    async capturePayment({ paymentId }) {
      await enter('capturePayment');
      const payment = payments.get(paymentId)!;
      if (!charges.includes(paymentId)) charges.push(paymentId);
      payment.status = 'CAPTURED';
      leave('capturePayment');
      return { paymentId, captureId: `cap-${paymentId}`, amount: payment.amount };
    },
    async voidPayment({ paymentId }) {
      await enter('voidPayment');
      const payment = payments.get(paymentId);
      if (payment?.status !== 'AUTHORISED') return { paymentId, action: 'NONE', amount: 0 };
      payment.status = 'VOIDED';
      return { paymentId, action: 'VOIDED', amount: payment.amount };
    },
    async refundPayment({ paymentId }) {
      await enter('refundPayment');
      const payment = payments.get(paymentId);
      if (payment?.status !== 'CAPTURED') return { paymentId, action: 'NONE', amount: 0 };
      payment.status = 'REFUNDED';
      return { paymentId, action: 'REFUNDED', amount: payment.amount };
    },
    async findOpenPayments() {
      return [...payments].filter(([, p]) => p.status === 'AUTHORISED').map(([id]) => ({ id, orderId: id, status: 'AUTHORISED' }));
    },
  };

  const shipping: ShippingActivities = {
    async createShipment({ shipmentId, address }) {
      await enter('createShipment');
      if (options.refusedCountries?.includes(address.country)) {
        throw ApplicationFailure.create({ type: ErrorType.ShippingUnavailable, message: 'refused', nonRetryable: true });
      }
      shipments.set(shipmentId, 'CREATED');
      return { shipmentId, carrierRef: `ref-${shipmentId}`, trackingNumber: 'TRK1' };
    },
    async cancelShipment({ shipmentId }) {
      await enter('cancelShipment');
      if (shipments.get(shipmentId) !== 'CREATED') return { shipmentId, cancelled: false };
      shipments.set(shipmentId, 'CANCELLED');
      return { shipmentId, cancelled: true };
    },
  };

  return { orders, inventory, payments: paymentActivities, shipping, calls, attempts, events, stock, paymentStates: payments, shipments, charges };
}
export type FakeServices = ReturnType<typeof createFakeServices>;
