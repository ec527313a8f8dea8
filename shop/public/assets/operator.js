import { api, el, money } from './common.js';

const $ = (id) => document.getElementById(id);
const when = new Intl.DateTimeFormat('en-GB', { dateStyle: 'short', timeStyle: 'medium' });
let nextCursor = null;

function row(o) {
  return el(
    'tr',
    { 'data-order-id': o.orderId },
    el('td', {}, el('time', { datetime: o.createdAt }, when.format(new Date(o.createdAt)))),
    el('td', {}, el('code', { title: o.orderId }, o.orderId.slice(0, 8))),
    el('td', {}, o.customerId),
    el('td', {}, o.placedBy),
    el('td', {}, el('span', { class: 'badge', 'data-status': o.status }, o.status), o.failureReason ? ` ${o.failureReason}` : ''),
    el('td', { class: 'num' }, money(o.total, o.currency)),
    el(
      'td',
      {},
      o.workflowUrl
        ? el(
            'a',
            { href: o.workflowUrl, target: '_blank', rel: 'noopener', 'aria-label': `Workflow of order ${o.orderId.slice(0, 8)} in the Temporal Web UI` },
            'Temporal Web UI',
          )
        : '–',
    ),
  );
}

async function load(more) {
  const status = $('orders-status');
  status.textContent = 'Loading the orders…';
  const { ok, data } = await api(`/operator/orders${more && nextCursor ? `?cursor=${encodeURIComponent(nextCursor)}` : ''}`);
  if (!ok) {
    status.textContent = `The orders cannot be read (${data.message ?? 'no answer'}).`;
    return;
  }
  const body = $('orders').querySelector('tbody');
  if (more) body.append(...data.orders.map(row));
  else body.replaceChildren(...data.orders.map(row));
  nextCursor = data.nextCursor;
  $('orders').hidden = body.children.length === 0;
  $('more').hidden = !nextCursor;
  status.textContent = body.children.length === 0 ? 'No orders yet.' : `${body.children.length} orders, newest first.`;
}

$('refresh').addEventListener('click', () => void load(false));
$('more').addEventListener('click', () => void load(true));
await load(false);
