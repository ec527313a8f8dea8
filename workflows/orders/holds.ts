import type { Order } from './order';
import { inventory, payments } from './services';

/** Renew this long before a hold runs out: an hour, or a tenth of a short hold. */
const renewalMargin = (holdMs: number) => Math.min(3_600_000, holdMs / 10);

/**
 * What the order holds while it waits for the carrier: the stock reservation (inventory holds it
 * `reservationHold`) and the payment authorisation (the provider honours it
 * `authorisationValidity`). Each is renewed shortly before it would run out.
 */
export class Holds {
  private reservationRenewAt: number;
  private authorisationRenewAt: number;
  private renewals = 0;
  private reauthorisations = 0;

  /** `reservedAt` and `authorisedAt`: workflow time when each hold was taken. */
  constructor(
    private readonly order: Order,
    reservedAt: number,
    authorisedAt: number,
  ) {
    this.reservationRenewAt = reservedAt + this.nextIn('reservationHold');
    this.authorisationRenewAt = authorisedAt + this.nextIn('authorisationValidity');
  }

  /** When the next hold needs renewing. */
  get nextRenewal(): number {
    return Math.min(this.reservationRenewAt, this.authorisationRenewAt);
  }

  /** Renews every hold that is due now: the reservation for another hold, the payment with a fresh authorisation. */
  async renewDue(): Promise<void> {
    const { order } = this;
    if (Date.now() >= this.reservationRenewAt) {
      const holdMs = order.timing('reservationHold');
      const { expiresAt } = await inventory.renewReservation({ reservationId: order.key('reservation'), holdMs });
      this.reservationRenewAt = Date.now() + this.nextIn('reservationHold');
      order.record('ReservationRenewed', { suffix: String(++this.renewals), data: { expiresAt } });
    }
    if (Date.now() >= this.authorisationRenewAt) {
      const round = ++this.reauthorisations;
      const { authorisationId } = await payments.reauthorisePayment({
        paymentId: order.key('payment'),
        orderId: order.orderId,
        token: order.input.payment.token,
        round,
      });
      this.authorisationRenewAt = Date.now() + this.nextIn('authorisationValidity');
      order.record('PaymentReauthorised', { suffix: String(round), data: { authorisationId, round } });
    }
  }

  private nextIn(hold: 'reservationHold' | 'authorisationValidity'): number {
    const ms = this.order.timing(hold);
    return ms - renewalMargin(ms);
  }
}
