import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../contracts/errors';
import type { OpenItem } from '../../contracts/orders';
import type {
  Product,
  ReleaseStockInput,
  RenewReservationInput,
  Reservation,
  ReservationStatus,
  ReserveStockInput,
  ReservedLine,
} from '../../contracts/inventory';
import type { InventoryDb } from './db';

export interface InventoryDeps {
  db: InventoryDb;
}

/**
 * Inventory activities. Each is idempotent on its reservation ID: the reservation row and the
 * stock it moves commit in one transaction, and the row's status makes a repeat a no-op.
 */
export function createInventoryActivities({ db }: InventoryDeps) {
  return {
    /** The catalogue with live stock; the inventory pool serves it on GET /products (no workflow calls it). */
    async listProducts(): Promise<Product[]> {
      const products = await db.product.findMany({ orderBy: { sku: 'asc' } });
      return products.map(({ sku, name, price, currency, stock }) => ({ sku, name, price, currency, available: stock }));
    },

    async reserveStock({ reservationId, orderId, items, holdMs }: ReserveStockInput): Promise<Reservation> {
      const created = await db.$transaction(async (tx) => {
        // The insert takes the key first: a concurrent retry waits here and then finds the row.
        const inserted = await tx.reservation.createMany({
          data: [{ id: reservationId, orderId, status: 'HELD' satisfies ReservationStatus, expiresAt: holdMs ? new Date(Date.now() + holdMs) : null }],
          skipDuplicates: true,
        });
        if (inserted.count === 0) return undefined;

        // One statement for every line: it locks the products in SKU order (so two orders for the
        // same products cannot deadlock) and takes the units, writes the lines and the currency
        // only if every line can be had, in one currency. Otherwise it takes nothing and its rows
        // say why; the error below then rolls the reservation back too.
        const wanted = JSON.stringify(items.map(({ sku, quantity }) => ({ sku, quantity })));
        const rows = await tx.$queryRaw<
          Array<{ sku: string; quantity: number; price: number | null; currency: string | null; stock: number | null; ok: boolean }>
        >`
          WITH wanted AS (
            SELECT sku, quantity FROM jsonb_to_recordset(${wanted}::jsonb) AS w(sku text, quantity int)
          ), locked AS (
            SELECT sku, stock, price, currency FROM products WHERE sku IN (SELECT sku FROM wanted) ORDER BY sku FOR UPDATE
          ), verdict AS (
            SELECT count(*) = (SELECT count(*) FROM wanted) AND bool_and(l.stock >= w.quantity) AND count(DISTINCT l.currency) = 1 AS ok
            FROM wanted w JOIN locked l USING (sku)
          ), taken AS (
            UPDATE products p SET stock = p.stock - w.quantity, updated_at = now()
            FROM wanted w, verdict WHERE verdict.ok AND p.sku = w.sku
          ), lines AS (
            INSERT INTO reservation_lines (reservation_id, sku, quantity, unit_price)
            SELECT ${reservationId}, w.sku, w.quantity, l.price FROM wanted w JOIN locked l USING (sku), verdict WHERE verdict.ok
          ), held AS (
            UPDATE reservations SET currency = (SELECT min(currency) FROM locked), updated_at = now()
            FROM verdict WHERE verdict.ok AND id = ${reservationId}
          )
          SELECT w.sku, w.quantity, l.price, l.currency, l.stock, (SELECT ok FROM verdict) AS ok
          FROM wanted w LEFT JOIN locked l USING (sku) ORDER BY w.sku`;

        if (rows[0]?.ok) {
          const lines: ReservedLine[] = rows.map(({ sku, quantity, price }) => ({ sku, quantity, unitPrice: price! }));
          return toReservation(reservationId, lines, rows[0].currency!);
        }
        const unknown = rows.find((r) => r.price === null);
        if (unknown) {
          throw ApplicationFailure.create({ type: ErrorType.UnknownProduct, message: `unknown SKU ${unknown.sku}`, nonRetryable: true });
        }
        const short = rows.find((r) => r.stock! < r.quantity);
        if (short) {
          throw ApplicationFailure.create({
            type: ErrorType.OutOfStock,
            message: `not enough stock for ${short.sku}: ${short.quantity} requested`,
            nonRetryable: true,
            details: [{ sku: short.sku, requested: short.quantity }],
          });
        }
        throw ApplicationFailure.create({
          type: ErrorType.MixedCurrency,
          message: `an order is charged in one currency, got ${[...new Set(rows.map((r) => r.currency))].join(', ')}`,
          nonRetryable: true,
        });
      });
      if (created) return created;

      const existing = await db.reservation.findUniqueOrThrow({ where: { id: reservationId }, include: { lines: true } });
      if (existing.status === 'RELEASED') {
        throw ApplicationFailure.create({
          type: ErrorType.AlreadyCompensated,
          message: `reservation ${reservationId} was released before it was made`,
          nonRetryable: true,
        });
      }
      return toReservation(reservationId, existing.lines, existing.currency ?? '');
    },

    /**
     * Puts the reserved units back. Releasing a reservation that does not exist yet leaves a
     * RELEASED marker, so a late attempt of reserveStock cannot take stock for an ended order.
     */
    async releaseStock({ reservationId, orderId }: ReleaseStockInput): Promise<{ released: boolean }> {
      for (let attempt = 0; attempt < 2; attempt++) {
        const released = await db.$transaction(async (tx) => {
          const changed = await tx.reservation.updateMany({
            where: { id: reservationId, status: 'HELD' },
            data: { status: 'RELEASED' satisfies ReservationStatus },
          });
          if (changed.count === 0) return false;
          const lines = await tx.reservationLine.findMany({ where: { reservationId }, orderBy: { sku: 'asc' } });
          for (const { sku, quantity } of lines) {
            await tx.product.update({ where: { sku }, data: { stock: { increment: quantity } } });
          }
          return true;
        });
        if (released) return { released: true };
        const marker = await db.reservation.createMany({
          data: [{ id: reservationId, orderId, status: 'RELEASED' satisfies ReservationStatus }],
          skipDuplicates: true,
        });
        if (marker.count === 1) return { released: false };
        const existing = await db.reservation.findUniqueOrThrow({ where: { id: reservationId } });
        // HELD here means a reservation committed between our two statements: release it now.
        if (existing.status !== 'HELD') return { released: false };
      }
      throw new Error(`reservation ${reservationId} kept changing while being released`);
    },

    /** Extends the hold of a reservation the order still needs. */
    async renewReservation({ reservationId, holdMs }: RenewReservationInput): Promise<{ expiresAt: string }> {
      const expiresAt = new Date(Date.now() + holdMs);
      const renewed = await db.reservation.updateMany({ where: { id: reservationId, status: 'HELD' }, data: { expiresAt } });
      if (renewed.count === 1) return { expiresAt: expiresAt.toISOString() };
      const existing = await db.reservation.findUnique({ where: { id: reservationId } });
      throw ApplicationFailure.create({
        type: ErrorType.AlreadyCompensated,
        message: `reservation ${reservationId} is ${existing?.status ?? 'missing'} and cannot be renewed`,
        nonRetryable: true,
      });
    },

    /** The order completed: the reserved units have left the warehouse for good. */
    async commitStock({ reservationId }: ReleaseStockInput): Promise<{ committed: boolean }> {
      const changed = await db.reservation.updateMany({
        where: { id: reservationId, status: 'HELD' },
        data: { status: 'COMMITTED' satisfies ReservationStatus },
      });
      if (changed.count === 1) return { committed: true };
      const existing = await db.reservation.findUnique({ where: { id: reservationId } });
      if (existing?.status === 'COMMITTED') return { committed: false };
      throw ApplicationFailure.create({
        type: ErrorType.AlreadyCompensated,
        message: `reservation ${reservationId} is ${existing?.status ?? 'missing'} and cannot be committed`,
        nonRetryable: true,
      });
    },

    /** Reservations still HELD and untouched for `olderThanMs`: candidates for the reconciliation sweep. */
    async findHeldReservations({ olderThanMs, limit }: { olderThanMs: number; limit: number }): Promise<OpenItem[]> {
      const rows = await db.reservation.findMany({
        where: { status: 'HELD', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
        orderBy: { updatedAt: 'asc' },
        take: limit,
        select: { id: true, orderId: true, status: true },
      });
      return rows;
    },
  };
}

function toReservation(reservationId: string, lines: ReservedLine[], currency: string): Reservation {
  const sorted = lines.map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice })).sort((a, b) => a.sku.localeCompare(b.sku));
  return { reservationId, lines: sorted, total: sorted.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0), currency };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
