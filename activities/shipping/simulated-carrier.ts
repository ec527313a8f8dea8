import type pg from 'pg';
import { NO_FAULTS, createLedger, deterministicId, type FaultConfig } from '../../lib/sandbox';
import { SERVED_COUNTRIES, type BookingResponse, type Carrier, type CarrierBookingStatus, type PickupEvent } from './carrier';

const SYSTEM = 'carrier';

export interface SimulatedCarrierOptions {
  /** how long after booking the carrier picks a parcel up */
  pickupDelayMs: number;
  faults?: FaultConfig;
}

/** A deterministic carrier whose ledger lives in the sandbox database. */
export function createSimulatedCarrier(pool: pg.Pool, { pickupDelayMs, faults = NO_FAULTS }: SimulatedCarrierOptions): Carrier {
  const ledger = createLedger(pool, SYSTEM, faults);
  return {
    book: ({ idempotencyKey, address }) =>
      ledger.once<BookingResponse>(idempotencyKey, async (client) => {
        if (!(SERVED_COUNTRIES as readonly string[]).includes(address.country)) {
          return { kind: 'book', response: { outcome: 'refused', reason: `no service to ${address.country}` } };
        }
        const carrierRef = deterministicId('shp', idempotencyKey);
        const trackingNumber = `TRK${carrierRef.slice(4, 16).toUpperCase()}`;
        await client.query(`INSERT INTO sim_shipments (ref, country, status, pickup_at) VALUES ($1, $2, 'BOOKED', now() + make_interval(secs => $3))`, [
          carrierRef,
          address.country,
          pickupDelayMs / 1000,
        ]);
        return { kind: 'book', subject: carrierRef, response: { outcome: 'booked', carrierRef, trackingNumber } };
      }),

    cancel: ({ idempotencyKey, carrierRef }) =>
      ledger.once(idempotencyKey, async (client) => {
        // After pickup a cancellation is a return to sender, which this carrier always accepts.
        const changed = await client.query(`UPDATE sim_shipments SET status = 'CANCELLED' WHERE ref = $1 AND status IN ('BOOKED', 'PICKED_UP')`, [carrierRef]);
        return { kind: 'cancel', subject: carrierRef, response: { cancelled: (changed.rowCount ?? 0) > 0 } };
      }),

    status: ({ carrierRef }) =>
      ledger.read(`status:${carrierRef}`, async (client) => {
        const found = await client.query<{ status: CarrierBookingStatus }>('SELECT status FROM sim_shipments WHERE ref = $1', [carrierRef]);
        return found.rows[0]?.status;
      }),

    lookup: (idempotencyKey) => ledger.lookup(idempotencyKey),

    async deliverDuePickups(deliver: (event: PickupEvent) => Promise<void>, limit: number): Promise<number> {
      const client = await pool.connect();
      // An event that cannot be delivered stays due and comes again; it does not hold back the others.
      const failures: unknown[] = [];
      let delivered = 0;
      try {
        await client.query('BEGIN');
        // SKIP LOCKED lets every shipping process poll at once without handing out an event twice.
        const due = await client.query<{ ref: string; pickup_at: Date }>(
          `SELECT ref, pickup_at FROM sim_shipments
            WHERE status = 'BOOKED' AND pickup_notified_at IS NULL AND pickup_at <= now()
            ORDER BY pickup_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit],
        );
        for (const row of due.rows) {
          try {
            await deliver({ carrierRef: row.ref, pickedUpAt: row.pickup_at.toISOString() });
          } catch (err) {
            failures.push(err);
            continue;
          }
          await client.query(`UPDATE sim_shipments SET pickup_notified_at = now(), status = 'PICKED_UP' WHERE ref = $1`, [row.ref]);
          delivered += 1;
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
      if (failures.length > 0) throw new AggregateError(failures, `${failures.length} pickup events not delivered (${delivered} delivered)`);
      return delivered;
    },
  };
}
