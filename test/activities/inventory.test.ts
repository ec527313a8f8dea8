import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInventoryActivities, type InventoryActivities } from '../../activities/inventory';
import { createInventoryDb, type InventoryDb } from '../../activities/inventory/db';
import type { OrderLine, ReserveStockInput } from '../../contracts/inventory';
import { createPool, type Pool } from '../../lib/db';
import { createTestDatabases } from '../support/databases';
import { failureOf, runActivity } from './helpers';

let pool: Pool;
let db: InventoryDb;
let acts: InventoryActivities;

beforeAll(async () => {
  const urls = await createTestDatabases('act_inventory');
  pool = createPool(urls.inventory, 3, 'test');
  db = createInventoryDb(pool);
  acts = createInventoryActivities({ db });
});

afterAll(async () => {
  await db?.$disconnect();
  await pool?.end();
});

const newOrder = (items: OrderLine[]): ReserveStockInput => {
  const orderId = randomUUID();
  return { reservationId: `order-${orderId}:reservation`, orderId, items };
};

async function stockOf(sku: string): Promise<number> {
  const { rows } = await pool.query<{ stock: number }>('SELECT stock FROM products WHERE sku = $1', [sku]);
  if (!rows[0]) throw new Error(`no product ${sku}`);
  return rows[0].stock;
}

async function reservationRows(reservationId: string) {
  const { rows } = await pool.query<{ id: string; order_id: string; status: string; currency: string | null }>(
    'SELECT id, order_id, status, currency FROM reservations WHERE id = $1',
    [reservationId],
  );
  return rows;
}

async function reservationLines(reservationId: string) {
  const { rows } = await pool.query<{ sku: string; quantity: number; unit_price: number }>(
    'SELECT sku, quantity, unit_price FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku',
    [reservationId],
  );
  return rows;
}

async function reservationsOfOrder(orderId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM reservations WHERE order_id = $1', [orderId]);
  return rows[0]?.n ?? -1;
}

describe('inventory activities against PostgreSQL', () => {
  it('seeds the catalogue the tests rely on', async () => {
    expect(await stockOf('VINYL-LTD')).toBe(5);
    expect(await stockOf('TOUR-TEE-SOLD-OUT')).toBe(0);
    const products = await runActivity(acts.listProducts, undefined as void);
    expect(products.find((p) => p.sku === 'MUG-LOGO')).toMatchObject({ price: 1299, currency: 'EUR' });
  });

  it('reserveStock called twice with the same input takes the stock once', async () => {
    const input = newOrder([
      { sku: 'SOCKS-3PK', quantity: 2 },
      { sku: 'MUG-LOGO', quantity: 3 },
    ]);
    const mugs = await stockOf('MUG-LOGO');
    const socks = await stockOf('SOCKS-3PK');

    const first = await runActivity(acts.reserveStock, input);
    const second = await runActivity(acts.reserveStock, input, 2);

    expect(first).toEqual({
      reservationId: input.reservationId,
      lines: [
        { sku: 'MUG-LOGO', quantity: 3, unitPrice: 1299 },
        { sku: 'SOCKS-3PK', quantity: 2, unitPrice: 999 },
      ],
      total: 3 * 1299 + 2 * 999,
      currency: 'EUR',
    });
    expect(second).toEqual(first);
    expect(await stockOf('MUG-LOGO')).toBe(mugs - 3);
    expect(await stockOf('SOCKS-3PK')).toBe(socks - 2);
    expect(await reservationRows(input.reservationId)).toEqual([{ id: input.reservationId, order_id: input.orderId, status: 'HELD', currency: 'EUR' }]);
    expect(await reservationLines(input.reservationId)).toEqual([
      { sku: 'MUG-LOGO', quantity: 3, unit_price: 1299 },
      { sku: 'SOCKS-3PK', quantity: 2, unit_price: 999 },
    ]);
  });

  it('two concurrent reserveStock attempts with the same ID take the stock once', async () => {
    const input = newOrder([{ sku: 'CAP-NAVY', quantity: 7 }]);
    const caps = await stockOf('CAP-NAVY');

    const [a, b] = await Promise.all([runActivity(acts.reserveStock, input), runActivity(acts.reserveStock, input, 2)]);

    expect(a).toEqual({ reservationId: input.reservationId, lines: [{ sku: 'CAP-NAVY', quantity: 7, unitPrice: 1799 }], total: 7 * 1799, currency: 'EUR' });
    expect(b).toEqual(a);
    expect(await stockOf('CAP-NAVY')).toBe(caps - 7);
    expect(await reservationRows(input.reservationId)).toHaveLength(1);
    expect(await reservationLines(input.reservationId)).toEqual([{ sku: 'CAP-NAVY', quantity: 7, unit_price: 1799 }]);
  });

  it('refuses more than is on the shelf as a non-retryable OutOfStock, changing nothing', async () => {
    const input = newOrder([{ sku: 'VINYL-LTD', quantity: 6 }]);
    const vinyl = await stockOf('VINYL-LTD');
    expect(vinyl).toBeLessThan(6);

    for (const attempt of [1, 2]) {
      const failure = await failureOf(runActivity(acts.reserveStock, input, attempt));
      expect(failure.type).toBe('OutOfStock');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.details).toEqual([{ sku: 'VINYL-LTD', requested: 6 }]);
    }
    expect(await stockOf('VINYL-LTD')).toBe(vinyl);
    expect(await reservationRows(input.reservationId)).toEqual([]);
    expect(await reservationLines(input.reservationId)).toEqual([]);
    expect(await reservationsOfOrder(input.orderId)).toBe(0);
  });

  it('refuses a sold-out product as OutOfStock without a reservation', async () => {
    const input = newOrder([{ sku: 'TOUR-TEE-SOLD-OUT', quantity: 1 }]);

    const failure = await failureOf(runActivity(acts.reserveStock, input));

    expect(failure.type).toBe('OutOfStock');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf('TOUR-TEE-SOLD-OUT')).toBe(0);
    expect(await reservationsOfOrder(input.orderId)).toBe(0);
  });

  it('rolls back the lines already taken when a later line is short', async () => {
    // Lines are taken in SKU order: MUG-LOGO is decremented before VINYL-LTD comes up short.
    const input = newOrder([
      { sku: 'VINYL-LTD', quantity: 6 },
      { sku: 'MUG-LOGO', quantity: 2 },
    ]);
    const mugs = await stockOf('MUG-LOGO');
    const vinyl = await stockOf('VINYL-LTD');

    const failure = await failureOf(runActivity(acts.reserveStock, input));

    expect(failure.type).toBe('OutOfStock');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf('MUG-LOGO')).toBe(mugs);
    expect(await stockOf('VINYL-LTD')).toBe(vinyl);
    expect(await reservationRows(input.reservationId)).toEqual([]);
    expect(await reservationLines(input.reservationId)).toEqual([]);
  });

  it('refuses an unknown SKU as non-retryable UnknownProduct, rolling back earlier lines', async () => {
    const input = newOrder([
      { sku: 'MUG-LOGO', quantity: 1 },
      { sku: 'NO-SUCH-SKU', quantity: 1 },
    ]);
    const mugs = await stockOf('MUG-LOGO');

    const failure = await failureOf(runActivity(acts.reserveStock, input));

    expect(failure.type).toBe('UnknownProduct');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf('MUG-LOGO')).toBe(mugs);
    expect(await reservationsOfOrder(input.orderId)).toBe(0);
  });

  it('sells the last units to one of two orders competing for them', async () => {
    const vinyl = await stockOf('VINYL-LTD');
    expect(vinyl).toBe(5);
    const one = newOrder([{ sku: 'VINYL-LTD', quantity: 3 }]);
    const two = newOrder([{ sku: 'VINYL-LTD', quantity: 3 }]);

    const outcomes = await Promise.allSettled([runActivity(acts.reserveStock, one), runActivity(acts.reserveStock, two)]);

    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]?.reason as { type?: string }).type).toBe('OutOfStock');
    expect(await stockOf('VINYL-LTD')).toBe(vinyl - 3);

    // put them back for the other tests
    const winner = outcomes[0]?.status === 'fulfilled' ? one : two;
    await runActivity(acts.releaseStock, { reservationId: winner.reservationId, orderId: winner.orderId });
    expect(await stockOf('VINYL-LTD')).toBe(vinyl);
  });

  it('many orders for the same products at once, in every line order: no deadlock, nothing oversold, every unit accounted for', async () => {
    // VINYL-LTD has 5 units; every order wants one with two other products, listed in a different order each time.
    const skus = ['VINYL-LTD', 'CAP-NAVY', 'POSTER-A2'];
    const before = Object.fromEntries(await Promise.all(skus.map(async (sku) => [sku, await stockOf(sku)] as const)));
    const inputs = Array.from({ length: 16 }, (_, i) => {
      const rotated = [...skus.slice(i % 3), ...skus.slice(0, i % 3)];
      return newOrder((i % 2 ? rotated.reverse() : rotated).map((sku) => ({ sku, quantity: 1 })));
    });

    const outcomes = await Promise.allSettled(inputs.map((input) => runActivity(acts.reserveStock, input)));

    const won = inputs.filter((_, i) => outcomes[i]?.status === 'fulfilled');
    const reasons = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as { type?: string }).type ?? String(o.reason)] : []));
    expect(won).toHaveLength(before['VINYL-LTD']!);
    expect(reasons).toEqual(Array(inputs.length - won.length).fill('OutOfStock'));
    for (const sku of skus) expect(await stockOf(sku)).toBe(before[sku]! - won.length);
    for (const input of inputs) {
      expect(await reservationLines(input.reservationId)).toHaveLength(won.includes(input) ? 3 : 0);
    }

    await Promise.all(won.map((input) => runActivity(acts.releaseStock, { reservationId: input.reservationId, orderId: input.orderId })));
    for (const sku of skus) expect(await stockOf(sku)).toBe(before[sku]);
  });

  it('releaseStock called twice puts the stock back once', async () => {
    const input = newOrder([{ sku: 'MUG-LOGO', quantity: 4 }]);
    const mugs = await stockOf('MUG-LOGO');
    await runActivity(acts.reserveStock, input);
    expect(await stockOf('MUG-LOGO')).toBe(mugs - 4);

    const ref = { reservationId: input.reservationId, orderId: input.orderId };
    const first = await runActivity(acts.releaseStock, ref);
    const second = await runActivity(acts.releaseStock, ref, 2);

    expect(first).toEqual({ released: true });
    expect(second).toEqual({ released: false });
    expect(await stockOf('MUG-LOGO')).toBe(mugs);
    expect(await reservationRows(input.reservationId)).toEqual([{ id: input.reservationId, order_id: input.orderId, status: 'RELEASED', currency: 'EUR' }]);
  });

  it('releaseStock before reserveStock leaves a RELEASED marker that refuses the late reservation', async () => {
    const input = newOrder([{ sku: 'MUG-LOGO', quantity: 5 }]);
    const mugs = await stockOf('MUG-LOGO');

    const released = await runActivity(acts.releaseStock, { reservationId: input.reservationId, orderId: input.orderId });
    expect(released).toEqual({ released: false });
    expect(await reservationRows(input.reservationId)).toEqual([{ id: input.reservationId, order_id: input.orderId, status: 'RELEASED', currency: null }]);

    const failure = await failureOf(runActivity(acts.reserveStock, input, 3));

    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
    expect(await stockOf('MUG-LOGO')).toBe(mugs);
    expect(await reservationRows(input.reservationId)).toEqual([{ id: input.reservationId, order_id: input.orderId, status: 'RELEASED', currency: null }]);
    expect(await reservationLines(input.reservationId)).toEqual([]);
  });

  it('a release racing its reservation always ends with the stock back on the shelf', async () => {
    const input = newOrder([{ sku: 'HOODIE-GRY-L', quantity: 2 }]);
    const hoodies = await stockOf('HOODIE-GRY-L');

    const [reserved, released] = await Promise.allSettled([
      runActivity(acts.reserveStock, input),
      runActivity(acts.releaseStock, { reservationId: input.reservationId, orderId: input.orderId }),
    ]);

    expect(released.status).toBe('fulfilled');
    if (reserved.status === 'rejected') expect((reserved.reason as { type?: string }).type).toBe('AlreadyCompensated');
    expect(await stockOf('HOODIE-GRY-L')).toBe(hoodies);
    expect((await reservationRows(input.reservationId)).map((r) => r.status)).toEqual(['RELEASED']);
  });

  it('commitStock called twice commits the reservation once and keeps the units out', async () => {
    const input = newOrder([{ sku: 'POSTER-A2', quantity: 2 }]);
    const posters = await stockOf('POSTER-A2');
    await runActivity(acts.reserveStock, input);
    const ref = { reservationId: input.reservationId, orderId: input.orderId };

    const first = await runActivity(acts.commitStock, ref);
    const second = await runActivity(acts.commitStock, ref, 2);

    expect(first).toEqual({ committed: true });
    expect(second).toEqual({ committed: false });
    expect(await reservationRows(input.reservationId)).toEqual([{ id: input.reservationId, order_id: input.orderId, status: 'COMMITTED', currency: 'EUR' }]);
    expect(await stockOf('POSTER-A2')).toBe(posters - 2);

    // a late release of a committed reservation puts nothing back
    expect(await runActivity(acts.releaseStock, ref)).toEqual({ released: false });
    expect(await stockOf('POSTER-A2')).toBe(posters - 2);
  });

  it('commitStock refuses a released reservation as AlreadyCompensated', async () => {
    const input = newOrder([{ sku: 'POSTER-A2', quantity: 1 }]);
    const ref = { reservationId: input.reservationId, orderId: input.orderId };
    await runActivity(acts.reserveStock, input);
    await runActivity(acts.releaseStock, ref);

    const failure = await failureOf(runActivity(acts.commitStock, ref));

    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
    expect((await reservationRows(input.reservationId)).map((r) => r.status)).toEqual(['RELEASED']);
  });

  it('reserveStock sets the hold; renewReservation twice extends it without touching stock; a released one cannot be renewed', async () => {
    const input = { ...newOrder([{ sku: 'POSTER-A2', quantity: 1 }]), holdMs: 60_000 };
    const before = Date.now();
    await runActivity(acts.reserveStock, input);
    const held = await pool.query<{ expires_at: Date }>('SELECT expires_at FROM reservations WHERE id = $1', [input.reservationId]);
    expect(held.rows[0]!.expires_at.getTime()).toBeGreaterThanOrEqual(before + 60_000 - 1000);
    expect(held.rows[0]!.expires_at.getTime()).toBeLessThan(before + 120_000);

    const stock = await stockOf('POSTER-A2');
    await runActivity(acts.renewReservation, { reservationId: input.reservationId, holdMs: 3_600_000 });
    const renewed = await runActivity(acts.renewReservation, { reservationId: input.reservationId, holdMs: 3_600_000 });
    expect(new Date(renewed.expiresAt).getTime()).toBeGreaterThan(before + 3_000_000);
    expect(await stockOf('POSTER-A2')).toBe(stock);

    await runActivity(acts.releaseStock, { reservationId: input.reservationId, orderId: input.orderId });
    const failure = await failureOf(runActivity(acts.renewReservation, { reservationId: input.reservationId, holdMs: 1000 }));
    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
  });
});
