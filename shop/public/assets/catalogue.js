import { api, el, money, showErrors, time } from './common.js';

const CART_KEY = 'shop.cart';
const CHECKOUT_KEY = 'shop.checkout';

const $ = (id) => document.getElementById(id);
/** sku → quantity, kept for this tab */
const cart = new Map(JSON.parse(sessionStorage.getItem(CART_KEY) ?? '[]'));
let products = new Map();

const saveCart = () => sessionStorage.setItem(CART_KEY, JSON.stringify([...cart]));

async function loadOptions() {
  const { ok, data } = await api('/options');
  if (!ok) return;
  const regions = new Intl.DisplayNames(['en'], { type: 'region' });
  $('country').replaceChildren(
    ...data.countries.map(({ code, served }) =>
      el('option', { value: code, selected: code === 'GB' }, `${regions.of(code) ?? code} (${code})${served ? '' : ' – the carrier refuses'}`),
    ),
  );
  $('card').replaceChildren(...data.cards.map(({ token, outcome }) => el('option', { value: token }, `${token} – ${outcome.replaceAll('_', ' ')}`)));
}

async function loadCatalogue() {
  const status = $('catalogue-status');
  const { ok, data } = await api('/products');
  if (!ok) {
    status.textContent = `The catalogue cannot be read right now (${data.message ?? 'no answer'}).`;
    return;
  }
  products = new Map(data.map((p) => [p.sku, p]));
  $('catalogue')
    .querySelector('tbody')
    .replaceChildren(
      ...data.map((p) =>
        el(
          'tr',
          { 'data-sku': p.sku },
          el('th', { scope: 'row' }, el('span', { class: 'product' }, p.name), el('code', { class: 'sku' }, p.sku)),
          el('td', { class: 'num' }, money(p.price, p.currency)),
          el('td', { class: 'num stock', 'data-stock': p.available }, p.available > 0 ? String(p.available) : 'Sold out'),
          el('td', {}, el('button', { type: 'button', class: 'add', 'aria-label': `Add ${p.name} to the cart`, onclick: () => add(p.sku) }, 'Add to cart')),
        ),
      ),
    );
  $('catalogue').hidden = false;
  status.textContent = `${data.length} products.`;
  renderCart();
}

function add(sku) {
  cart.set(sku, (cart.get(sku) ?? 0) + 1);
  saveCart();
  renderCart();
}

function renderCart() {
  const lines = [...cart].filter(([sku]) => products.has(sku));
  $('cart-empty').hidden = lines.length > 0;
  $('cart').hidden = lines.length === 0;
  $('cart')
    .querySelector('tbody')
    .replaceChildren(
      ...lines.map(([sku, quantity]) => {
        const p = products.get(sku);
        const input = el('input', { id: `qty-${sku}`, type: 'number', min: 1, max: 1000, value: quantity, inputmode: 'numeric' });
        input.addEventListener('change', () => {
          const n = Math.floor(Number(input.value));
          if (n >= 1) cart.set(sku, Math.min(n, 1000));
          saveCart();
          renderCart();
        });
        return el(
          'tr',
          { 'data-sku': sku },
          el('th', { scope: 'row' }, p.name),
          el('td', {}, el('label', { for: `qty-${sku}`, class: 'visually-hidden' }, `Quantity of ${p.name}`), input),
          el('td', { class: 'num' }, money(p.price * quantity, p.currency)),
          el(
            'td',
            {},
            el(
              'button',
              {
                type: 'button',
                class: 'link',
                'aria-label': `Remove ${p.name}`,
                onclick: () => {
                  cart.delete(sku);
                  saveCart();
                  renderCart();
                },
              },
              'Remove',
            ),
          ),
        );
      }),
    );
  const first = products.get(lines[0]?.[0]);
  $('cart-total').textContent = first
    ? money(
        lines.reduce((sum, [sku, q]) => sum + products.get(sku).price * q, 0),
        first.currency,
      )
    : '–';
}

/** Which form field an API problem is about (`body.shippingAddress.city` → city). */
function fieldOf(apiField) {
  const path = apiField.replace(/^body\./, '');
  if (path.startsWith('shippingAddress.')) return path.slice('shippingAddress.'.length);
  if (path.startsWith('payment.')) return 'card';
  return path.split('.')[0];
}

async function checkout(event) {
  event.preventDefault();
  const form = $('checkout');
  const errors = $('checkout-errors');
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  if (cart.size === 0) return showErrors(errors, 'Add something to the cart first.');
  const fields = Object.fromEntries(new FormData(form));
  const body = { items: [...cart].map(([sku, quantity]) => ({ sku, quantity })), ...fields };
  if (!body.email) delete body.email;
  // One key per order: the same request again (a double click, a retry after a lost answer) names the same order.
  const request = JSON.stringify(body);
  const saved = JSON.parse(sessionStorage.getItem(CHECKOUT_KEY) ?? 'null');
  const key = saved?.request === request ? saved.key : crypto.randomUUID();
  sessionStorage.setItem(CHECKOUT_KEY, JSON.stringify({ request, key }));

  const button = $('place-order');
  button.disabled = true;
  button.textContent = 'Placing the order…';
  try {
    const { ok, data } = await api('/orders', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
    if (ok) {
      cart.clear();
      saveCart();
      sessionStorage.removeItem(CHECKOUT_KEY);
      location.assign(`/shop/orders/${data.orderId}`);
      return;
    }
    const problems = (data.fields ?? []).map((f) => {
      const field = form.elements.namedItem(fieldOf(f.field));
      if (field) field.setAttribute('aria-invalid', 'true');
      return `${field?.labels?.[0]?.textContent ?? f.field}: ${f.message}`;
    });
    showErrors(errors, data.message ?? 'The order was not placed.', problems);
  } catch {
    showErrors(errors, 'The shop did not answer: try again (the same order is not placed twice).');
  } finally {
    button.disabled = false;
    button.textContent = 'Place order';
  }
}

async function loadMyOrders() {
  const { ok, data } = await api('/orders');
  if (!ok || data.orders.length === 0) return;
  $('mine-empty').hidden = true;
  $('my-orders').replaceChildren(
    ...data.orders.map((o) => el('li', {}, el('a', { href: `/shop/orders/${o.orderId}` }, `Order ${o.orderId.slice(0, 8)}`), ' placed at ', time(o.placedAt))),
  );
}

$('checkout').addEventListener('submit', checkout);
await Promise.all([loadOptions(), loadCatalogue(), loadMyOrders()]);
