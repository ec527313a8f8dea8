import { FAILURE_TEXT, STATUS_TEXT, STEP_TEXT, api, el, money, showErrors, time } from './common.js';

/**
 * The order page: the order's log as the saga writes it (the shop relays the API's event stream),
 * and its live state whenever it changes (the shop adds it to the same stream). Reconnects by
 * itself and picks up after the last entry it has.
 */
const $ = (id) => document.getElementById(id);
const orderId = location.pathname.split('/').pop().toLowerCase();
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const NOT_CANCELLABLE = new Set(['COMPENSATING', 'NEEDS_ATTENTION', 'COMPLETING']);
/** The step a status is working on. */
const WORKING_ON = {
  PENDING: 'OrderPlaced',
  RESERVING_STOCK: 'StockReserved',
  AUTHORISING_PAYMENT: 'PaymentAuthorised',
  CREATING_SHIPMENT: 'ShipmentCreated',
  AWAITING_PICKUP: 'PickupConfirmed',
  CAPTURING_PAYMENT: 'PaymentCaptured',
  COMPLETING: 'OrderCompleted',
};

const order = {
  status: undefined,
  failureReason: undefined,
  cancellationReason: undefined,
  items: [],
  total: null,
  currency: null,
  /** forward steps done, by the live state (the log has some of them only once they are published) */
  steps: new Set(),
  /** the log, each entry once: forward steps and undos by name, anything else by type and time */
  entries: new Map(),
  ended: false,
};
let steps = [];
/** sku → product name, from the catalogue */
let names = new Map();
let lastEventId;
let stream;

const entryKey = (e) =>
  steps.includes(e.type) || e.type === 'OrderFailed' || e.type === 'OrderCancelled'
    ? e.type
    : e.type === 'CompensationRan'
      ? `CompensationRan:${e.data?.compensation}`
      : `${e.type}@${e.at}`;

function remember(entry) {
  const key = entryKey(entry);
  // The stream's copy is the one with an id; the live state's copy of the same entry adds nothing.
  if (!order.entries.has(key) || entry.id) order.entries.set(key, entry);
}

/** Takes what the live state (GET /orders/{id}) says. */
function apply(view) {
  if (view.status && !(order.ended && !ENDED.has(view.status))) order.status = view.status;
  for (const name of ['failureReason', 'cancellationReason', 'total', 'currency']) if (view[name] !== undefined) order[name] = view[name];
  if (Array.isArray(view.items) && view.items.length) order.items = view.items;
  for (const step of view.steps ?? []) order.steps.add(step);
  for (const entry of view.events ?? []) remember(entry);
}

let announced = '';
function render() {
  const status = order.status;
  // The ending's own log entry says why, whichever source told the page first.
  const failureReason = order.failureReason ?? order.entries.get('OrderFailed')?.data?.reason;
  const cancellationReason = order.cancellationReason ?? order.entries.get('OrderCancelled')?.data?.reason;
  const reason =
    status === 'FAILED' && failureReason
      ? `: ${FAILURE_TEXT[failureReason] ?? failureReason.toLowerCase().replaceAll('_', ' ')}`
      : status === 'CANCELLED' && cancellationReason
        ? `: ${cancellationReason}`
        : '';
  const text = status ? `${STATUS_TEXT[status] ?? status}${reason}` : 'Loading the order…';
  // The status region is a live region: it changes only when the status does, so it is read out once.
  if (text !== announced) {
    announced = text;
    $('status-badge').textContent = status ?? '…';
    $('status-badge').dataset.status = status ?? '';
    $('status-text').textContent = text;
    $('status').dataset.status = status ?? '';
  }
  $('cancel').hidden = !status || ENDED.has(status) || NOT_CANCELLABLE.has(status);

  $('items')
    .querySelector('tbody')
    .replaceChildren(
      ...order.items.map((i) =>
        el(
          'tr',
          {},
          el('th', { scope: 'row' }, el('span', { class: 'product' }, names.get(i.sku) ?? i.sku), el('code', { class: 'sku' }, i.sku)),
          el('td', { class: 'num' }, String(i.quantity)),
          el('td', { class: 'num' }, typeof i.unitPrice === 'number' ? money(i.unitPrice * i.quantity, order.currency) : '–'),
        ),
      ),
    );
  $('total').textContent = money(order.total, order.currency);

  const working = ENDED.has(status) ? undefined : WORKING_ON[status];
  $('steps').replaceChildren(
    ...steps.map((step) => {
      const entry = order.entries.get(step);
      const done = Boolean(entry) || order.steps.has(step);
      const state = done ? 'done' : step === working ? 'current' : order.ended || status === 'COMPENSATING' ? 'not-reached' : 'pending';
      const said = { done: 'done', current: 'in progress', 'not-reached': 'not reached', pending: 'to come' }[state];
      return el(
        'li',
        { 'data-step': step, 'data-state': state, 'aria-current': state === 'current' ? 'step' : undefined },
        el('span', { class: 'step-name' }, STEP_TEXT[step] ?? step),
        el('span', { class: 'visually-hidden' }, `: ${said}`),
        entry ? time(entry.at) : state === 'current' ? el('span', { class: 'now', 'aria-hidden': 'true' }, 'in progress…') : undefined,
      );
    }),
  );

  const undos = [...order.entries.values()].filter((e) => e.type === 'CompensationRan');
  $('undo').hidden = undos.length === 0;
  $('compensations').replaceChildren(
    ...undos.map((e) =>
      el(
        'li',
        { 'data-compensation': e.data?.compensation, 'data-state': 'done' },
        el('span', { class: 'step-name' }, STEP_TEXT[e.data?.compensation] ?? e.data?.compensation),
        time(e.at),
      ),
    ),
  );

  const outcome = $('outcome');
  outcome.hidden = !order.ended;
  if (order.ended) {
    outcome.dataset.status = status;
    outcome.textContent =
      status === 'COMPLETED'
        ? 'The order is complete: every step is done.'
        : `The order ${status === 'FAILED' ? 'failed' : 'was cancelled'}${reason}. ${undos.length ? 'What it had done was undone, in reverse.' : 'Nothing had to be undone.'}`;
  }

  const ordered = [...order.entries.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  $('log').replaceChildren(
    ...ordered.map((e) =>
      el(
        'li',
        { 'data-event': e.type, 'data-event-id': e.id },
        time(e.at),
        ' ',
        STEP_TEXT[e.type] ?? e.type,
        e.type === 'CompensationRan' ? `: ${STEP_TEXT[e.data?.compensation] ?? e.data?.compensation}` : '',
      ),
    ),
  );
}

function connection(state, text) {
  $('connection').dataset.state = state;
  $('connection').textContent = text;
}

function listen() {
  stream = new EventSource(`/shop/api/orders/${orderId}/events${lastEventId ? `?after=${lastEventId}` : ''}`);
  stream.addEventListener('open', () => connection('live', 'Live: each step shows as it happens.'));
  stream.addEventListener('log', (message) => {
    const entry = JSON.parse(message.data);
    lastEventId = message.lastEventId;
    remember({ ...entry, id: message.lastEventId });
    if (steps.includes(entry.type)) order.steps.add(entry.type);
    render();
  });
  stream.addEventListener('live', (message) => {
    apply(JSON.parse(message.data));
    if ($('connection').dataset.state === 'delayed') connection('live', 'Live: each step shows as it happens.');
    render();
  });
  stream.addEventListener('live-unavailable', () => {
    if (!order.ended) connection('delayed', 'Live, but the order service is not answering right now: steps still show as they are recorded.');
  });
  stream.addEventListener('status', (message) => {
    // The log's own status is the one recorded with its last entry: it only ever settles an ending.
    const { status } = JSON.parse(message.data);
    if (ENDED.has(status)) order.status = status;
    render();
  });
  stream.addEventListener('end', (message) => {
    const { status } = JSON.parse(message.data);
    order.status = status;
    order.ended = true;
    stream.close();
    $('notice').textContent = '';
    connection('ended', 'The order has ended.');
    render();
    // The final details (failure reason, totals) from the order itself.
    void api(`/orders/${orderId}`).then(({ ok, data }) => {
      if (ok) apply(data);
      render();
    });
  });
  stream.addEventListener('error', () => {
    if (order.ended) return;
    connection('reconnecting', 'Reconnecting to the live updates…');
    // EventSource retries by itself after a dropped connection; after a refusal it gives up, so start again.
    if (stream.readyState === EventSource.CLOSED) setTimeout(listen, 2000);
  });
}

$('cancel').addEventListener('click', async () => {
  const button = $('cancel');
  button.disabled = true;
  button.textContent = 'Cancelling…';
  const { ok, data } = await api(`/orders/${orderId}/cancel`, { method: 'POST', body: {} }).catch(() => ({ ok: false, data: {} }));
  button.disabled = false;
  button.textContent = 'Cancel this order';
  if (ok) {
    showErrors($('order-errors'), '');
    button.hidden = true;
    $('notice').textContent = 'Cancellation accepted: the steps done so far are being undone.';
  } else {
    showErrors($('order-errors'), data.message ?? 'The order could not be cancelled.');
  }
});

async function start() {
  $('order-id').textContent = orderId.slice(0, 8);
  $('order-id').title = orderId;
  const [meta, first, products] = await Promise.all([api('/options'), api(`/orders/${orderId}`), api('/products')]);
  steps = meta.ok ? meta.data.steps : Object.keys(WORKING_ON);
  if (products.ok) names = new Map(products.data.map((p) => [p.sku, p.name]));
  if (!first.ok) {
    const text = first.status === 404 ? 'This browser placed no such order.' : (first.data.message ?? 'The order cannot be read right now.');
    $('status-text').textContent = text;
    connection('ended', '');
    if (first.status === 404) return;
  } else {
    apply(first.data);
    render();
  }
  listen();
}

void start();
