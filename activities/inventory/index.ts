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
    async listProducts(): Promise<Product[]> {
      const products = await db.product.findMany({ orderBy: { sku: 'asc' } });
      return products.map(({ sku, name, price, currency, stock }) => ({ sku, name, price, currency, available: stock }));
    },

    async reserveStock({ reservationId, orderId, items, holdMs }: ReserveStockInput): Promise<Reservation> {
      const created = await db.$transaction(async (tx) => {
        // The insert takes the key first: a concurrent retry waits here and then finds the row.
        const inserted = await tx.reservation.createMany({
          data: [{ id: reservationId, orderId, status: 'HELD' satisfies ReservationStatus }],
          skipDuplicates: true,
        });
        if (inserted.count === 0) return undefined;

        const lines: ReservedLine[] = [];
        const currencies = new Set<string>();
        // A fixed lock order (by SKU) keeps two orders for the same products from deadlocking.
        for (const { sku, quantity } of [...items].sort((a, b) => a.sku.localeCompare(b.sku))) {
          const product = await tx.product.findUnique({ where: { sku } });
          if (!product) {
            throw ApplicationFailure.create({ type: ErrorType.UnknownProduct, message: `unknown SKU ${sku}`, nonRetryable: true });
          }
          const taken = await tx.product.updateMany({
            where: { sku, stock: { gte: quantity } },
            data: { stock: { decrement: quantity } },
          });
          if (taken.count === 0) {
            throw ApplicationFailure.create({
              type: ErrorType.OutOfStock,
              message: `not enough stock for ${sku}: ${quantity} requested`,
              nonRetryable: true,
              details: [{ sku, requested: quantity }],
            });
          }
          currencies.add(product.currency);
          lines.push({ sku, quantity, unitPrice: product.price });
        }
        if (currencies.size > 1) {
          throw ApplicationFailure.create({
            type: ErrorType.MixedCurrency,
            message: `an order is charged in one currency, got ${[...currencies].join(', ')}`,
            nonRetryable: true,
          });
        }
        const currency = [...currencies][0] ?? '';
        await tx.reservation.update({ where: { id: reservationId }, data: { currency, expiresAt: holdMs ? new Date(Date.now() + holdMs) : null } });
        await tx.reservationLine.createMany({ data: lines.map((l) => ({ reservationId, ...l })) });
        return toReservation(reservationId, lines, currency);
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

    async checkInventoryHealth(): Promise<void> {
      await db.$queryRaw`SELECT 1`;
    },
  };
}

function toReservation(reservationId: string, lines: ReservedLine[], currency: string): Reservation {
  const sorted = lines
    .map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice }))
    .sort((a, b) => a.sku.localeCompare(b.sku));
  return { reservationId, lines: sorted, total: sorted.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0), currency };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
