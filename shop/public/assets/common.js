/** What every page of the shop shares: JSON calls to the shop's own backend, money, and safe DOM building. */

/** A JSON call to the shop's backend (same origin: the session cookie goes with it). */
export async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const res = await fetch(`/shop/api${path}`, {
    method,
    headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  return { ok: res.ok, status: res.status, data };
}

const formats = new Map();
/** Minor units (cents) as money, in the shop's own locale. */
export function money(minor, currency) {
  if (typeof minor !== 'number' || !currency) return '–';
  if (!formats.has(currency)) formats.set(currency, new Intl.NumberFormat('en-GB', { style: 'currency', currency }));
  return formats.get(currency).format(minor / 100);
}

const timeFormat = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
/** A `<time>` for an ISO timestamp. */
export function time(iso) {
  const at = new Date(iso);
  return el('time', { datetime: iso }, Number.isNaN(at.getTime()) ? '' : timeFormat.format(at));
}

/** An element with attributes and children; text is always text, never markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false || value === null) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

/** Shows an error list in a role="alert" region. */
export function showErrors(region, message, problems = []) {
  region.replaceChildren(
    ...(message ? [el('p', {}, message)] : []),
    ...(problems.length
      ? [
          el(
            'ul',
            {},
            problems.map((p) => el('li', {}, p)),
          ),
        ]
      : []),
  );
}

/** What each status means to a customer. */
export const STATUS_TEXT = {
  PENDING: 'Order received',
  RESERVING_STOCK: 'Reserving the stock',
  AUTHORISING_PAYMENT: 'Authorising the payment',
  AWAITING_REVIEW: 'Waiting for a reviewer (a large order)',
  CREATING_SHIPMENT: 'Booking the carrier',
  AWAITING_PICKUP: 'Waiting for the carrier to pick the parcel up',
  CAPTURING_PAYMENT: 'Taking the payment',
  COMPLETING: 'Completing the order',
  COMPENSATING: 'Undoing the steps done so far',
  NEEDS_ATTENTION: 'An undo is stuck: an operator has been told',
  COMPLETED: 'Completed: the parcel is on its way',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

/** Human names of the saga's steps and undos; anything new shows under its own name. */
export const STEP_TEXT = {
  OrderPlaced: 'Order placed',
  StockReserved: 'Stock reserved',
  PaymentAuthorised: 'Payment authorised',
  ShipmentCreated: 'Shipment booked with the carrier',
  PickupConfirmed: 'Picked up by the carrier',
  PaymentCaptured: 'Payment captured',
  OrderCompleted: 'Order completed',
  StockReleased: 'Stock released',
  PaymentVoided: 'Payment authorisation voided',
  PaymentRefunded: 'Payment refunded',
  ShipmentCancelled: 'Shipment cancelled',
  ReviewRequested: 'Review requested',
  OrderReviewed: 'Reviewed',
  NeedsAttention: 'Needs an operator',
  CompensationRetried: 'Undo retried',
  CompensationResolvedByHand: 'Resolved by hand',
  ReservationRenewed: 'Reservation renewed',
  PaymentReauthorised: 'Payment re-authorised',
  OrderFailed: 'Order failed',
  OrderCancelled: 'Order cancelled',
};

/** Why an order failed, as a customer would put it. */
export const FAILURE_TEXT = {
  OUT_OF_STOCK: 'not enough stock',
  UNKNOWN_PRODUCT: 'a product is no longer sold',
  PAYMENT_DECLINED: 'the card was declined',
  SHIPPING_UNAVAILABLE: 'the carrier does not deliver to this address',
  SHIPPING_TIMEOUT: 'the carrier never picked the parcel up',
  REVIEW_REJECTED: 'the order was not approved',
};
