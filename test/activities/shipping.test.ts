import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShippingActivities, type ShippingActivities } from '../../activities/shipping';
import type { Carrier } from '../../activities/shipping/carrier';
import { createShippingDb, type ShippingDb } from '../../activities/shipping/db';
import { createPickupRelay } from '../../activities/shipping/pickups';
import { createSimulatedCarrier } from '../../activities/shipping/simulated-carrier';
import { ErrorType } from '../../contracts/errors';
import { type CreateShipmentInput } from '../../contracts/shipping';
import { createPool, type Pool } from '../../lib/db';
import { createLogger } from '../../lib/logger';
import { deterministicId } from '../../lib/sandbox';
import { createTestDatabases } from '../support/databases';
import { barrier, failureOf, runActivity } from './helpers';

let pool: Pool;
let sandbox: Pool;
let db: ShippingDb;
let carrier: Carrier;
let acts: ShippingActivities;

beforeAll(async () => {
  const urls = await createTestDatabases('act_shipping');
  pool = createPool(urls.shipping, 3, 'test');
  sandbox = createPool(urls.sandbox, 3, 'test');
  db = createShippingDb(pool);
  // Parcels are picked up only when a test says so (pickupDue): the carrier's clock is the test's.
  carrier = createSimulatedCarrier(sandbox, { pickupDelayMs: 3_600_000 });
  acts = createShippingActivities({ db, carrier });
});

afterAll(async () => {
  await db?.$disconnect();
  await Promise.all([pool?.end(), sandbox?.end()]);
});

const newShipment = (country = 'DE'): CreateShipmentInput => {
  const orderId = randomUUID();
  return {
    shipmentId: `order-${orderId}:shipment`,
    orderId,
    address: { name: 'Ada Lovelace', line1: 'Hauptstrasse 1', city: 'Berlin', postalCode: '10115', country },
    items: [
      { sku: 'MUG-LOGO', quantity: 2 },
      { sku: 'CAP-NAVY', quantity: 1 },
    ],
  };
};
const refOf = ({ shipmentId, orderId }: CreateShipmentInput) => ({ shipmentId, orderId });
const expectedRef = (shipmentId: string) => deterministicId('shp', `${shipmentId}:book`);

async function carrierOperations(shipmentId: string) {
  const { rows } = await sandbox.query<{ idempotency_key: string; kind: string; subject: string | null; response: unknown }>(
    `SELECT idempotency_key, kind, subject, response FROM sim_operations
      WHERE starts_with(idempotency_key, $1) ORDER BY created_at, idempotency_key`,
    [`${shipmentId}:`],
  );
  return rows;
}

async function carrierShipments(ref: string) {
  const { rows } = await sandbox.query<{ country: string; status: string }>('SELECT country, status FROM sim_shipments WHERE ref = $1', [ref]);
  return rows;
}

async function shipmentRows(shipmentId: string) {
  const { rows } = await pool.query<{ order_id: string; status: string; carrier_ref: string | null; tracking_number: string | null; country: string }>(
    'SELECT order_id, status, carrier_ref, tracking_number, country FROM shipments WHERE id = $1',
    [shipmentId],
  );
  return rows;
}

/** The carrier's clock reaches this parcel's pickup: the next poll of the relay hands the event out. */
const pickupDue = (ref: string) => sandbox.query('UPDATE sim_shipments SET pickup_at = now() WHERE ref = $1', [ref]);

/** The shipping service's pickup relay, with what it tells the orders. */
function relay(notifyOrder: (orderId: string) => Promise<void> = async () => undefined) {
  return createPickupRelay({ db, carrier, log: createLogger('test-relay', 'silent'), notifyOrder: (orderId) => notifyOrder(orderId) });
}

describe('shipping activities against PostgreSQL and the simulated carrier', () => {
  it('createShipment called twice books once with the carrier', async () => {
    const input = newShipment();

    const first = await runActivity(acts.createShipment, input);
    const second = await runActivity(acts.createShipment, input, 2);

    const carrierRef = expectedRef(input.shipmentId);
    expect(first).toEqual({ shipmentId: input.shipmentId, carrierRef, trackingNumber: expect.stringMatching(/^TRK[0-9A-F]{12}$/) });
    expect(second).toEqual(first);
    expect(await carrierOperations(input.shipmentId)).toEqual([
      {
        idempotency_key: `${input.shipmentId}:book`,
        kind: 'book',
        subject: carrierRef,
        response: { outcome: 'booked', carrierRef, trackingNumber: first.trackingNumber },
      },
    ]);
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'DE', status: 'BOOKED' }]);
    expect(await shipmentRows(input.shipmentId)).toEqual([
      { order_id: input.orderId, status: 'CREATED', carrier_ref: carrierRef, tracking_number: first.trackingNumber, country: 'DE' },
    ]);
  });

  // A retry that overlaps a stuck attempt (after a start-to-close timeout) books the same key twice.
  it('an attempt overlapping another at the carrier neither fails nor cancels the booking', async () => {
    const input = newShipment('BE');
    const together = barrier(2);
    const overlapping = createShippingActivities({
      db,
      carrier: {
        ...carrier,
        book: async (req) => {
          await together();
          return carrier.book(req);
        },
      },
    });

    const outcomes = await Promise.allSettled([runActivity(overlapping.createShipment, input), runActivity(overlapping.createShipment, input, 2)]);

    const carrierRef = expectedRef(input.shipmentId);
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'BE', status: 'BOOKED' }]);
    expect((await carrierOperations(input.shipmentId)).map((o) => o.kind)).toEqual(['book']);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CREATED', carrier_ref: carrierRef }]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
  });

  it('an address the carrier does not serve is a non-retryable ShippingUnavailable', async () => {
    const input = newShipment('AQ');

    const first = await failureOf(runActivity(acts.createShipment, input));
    const second = await failureOf(runActivity(acts.createShipment, input, 2));

    for (const failure of [first, second]) {
      expect(failure.type).toBe('ShippingUnavailable');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('AQ');
    }
    expect(await carrierOperations(input.shipmentId)).toEqual([
      {
        idempotency_key: `${input.shipmentId}:book`,
        kind: 'book',
        subject: null,
        response: { outcome: 'refused', reason: 'no service to AQ' },
      },
    ]);
    expect(await carrierShipments(expectedRef(input.shipmentId))).toEqual([]);
    expect(await shipmentRows(input.shipmentId)).toEqual([
      { order_id: input.orderId, status: 'REFUSED', carrier_ref: null, tracking_number: null, country: 'AQ' },
    ]);
  });

  it('cancelShipment called twice cancels once with the carrier', async () => {
    const input = newShipment('NL');
    const { carrierRef } = await runActivity(acts.createShipment, input);

    const first = await runActivity(acts.cancelShipment, refOf(input));
    const second = await runActivity(acts.cancelShipment, refOf(input), 2);

    expect(first).toEqual({ shipmentId: input.shipmentId, cancelled: true });
    expect(second).toEqual({ shipmentId: input.shipmentId, cancelled: false });
    const cancels = (await carrierOperations(input.shipmentId)).filter((o) => o.kind === 'cancel');
    expect(cancels).toEqual([{ idempotency_key: `${input.shipmentId}:cancel`, kind: 'cancel', subject: carrierRef, response: { cancelled: true } }]);
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'NL', status: 'CANCELLED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED', carrier_ref: carrierRef }]);

    // a late retry of the booking does not book again
    const failure = await failureOf(runActivity(acts.createShipment, input, 3));
    expect(failure.type).toBe('AlreadyCompensated');
    expect((await carrierOperations(input.shipmentId)).map((o) => o.kind)).toEqual(['book', 'cancel']);
  });

  it('cancelShipment before createShipment leaves a marker; the late booking is refused without reaching the carrier', async () => {
    const input = newShipment('GB');

    const cancelled = await runActivity(acts.cancelShipment, refOf(input));
    expect(cancelled).toEqual({ shipmentId: input.shipmentId, cancelled: false });
    expect(await shipmentRows(input.shipmentId)).toEqual([
      { order_id: input.orderId, status: 'CANCELLED', carrier_ref: null, tracking_number: null, country: '' },
    ]);

    const failure = await failureOf(runActivity(acts.createShipment, input, 3));

    expect(failure.type).toBe('AlreadyCompensated');
    expect(failure.nonRetryable).toBe(true);
    expect(await carrierOperations(input.shipmentId)).toEqual([]);
    expect(await carrierShipments(expectedRef(input.shipmentId))).toEqual([]);
    expect((await shipmentRows(input.shipmentId)).map((s) => s.status)).toEqual(['CANCELLED']);
  });

  it('cancelShipment cancels a booking whose answer was lost', async () => {
    const input = newShipment('SE');
    const lossy = createShippingActivities({
      db,
      carrier: {
        ...carrier,
        book: async (req) => {
          await carrier.book(req);
          throw new Error('connection reset by peer');
        },
      },
    });

    await expect(runActivity(lossy.createShipment, input)).rejects.toThrow('connection reset');
    const carrierRef = expectedRef(input.shipmentId);
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'SE', status: 'BOOKED' }]);
    expect((await shipmentRows(input.shipmentId)).map((s) => s.status)).toEqual(['PENDING']);

    const cancelled = await runActivity(acts.cancelShipment, refOf(input));

    expect(cancelled).toEqual({ shipmentId: input.shipmentId, cancelled: true });
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'SE', status: 'CANCELLED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED', carrier_ref: carrierRef }]);
    const failure = await failureOf(runActivity(acts.createShipment, input, 2));
    expect(failure.type).toBe('AlreadyCompensated');
    expect((await carrierOperations(input.shipmentId)).map((o) => o.kind)).toEqual(['book', 'cancel']);
  });

  it("the carrier's status of a booking: booked, picked up, cancelled, and none for a booking it never made", async () => {
    const input = newShipment('FR');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    expect(await carrier.status({ carrierRef })).toBe('BOOKED');

    await pickupDue(carrierRef);
    expect(await relay().pollOnce()).toBe(1);
    expect(await carrier.status({ carrierRef })).toBe('PICKED_UP');
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'PICKED_UP' }]);

    await runActivity(acts.cancelShipment, refOf(input));
    expect(await carrier.status({ carrierRef })).toBe('CANCELLED');
    expect(await carrier.status({ carrierRef: expectedRef(`order-${randomUUID()}:shipment`) })).toBeUndefined();
    // a question, not an operation: nothing in the carrier's ledger of keys
    expect((await carrierOperations(input.shipmentId)).map((o) => o.kind)).toEqual(['book', 'cancel']);
  });

  // The race of issue 11: the cancel read CREATED, the relay moved the row to PICKED_UP inside the
  // carrier's pickup transaction, the carrier's cancel waited for that row and then cancelled the
  // parcel as a return to sender, and our row stayed PICKED_UP.
  it('a cancel that races the pickup leaves the shipment CANCELLED here as at the carrier', async () => {
    const input = newShipment('DK');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    let cancelAtCarrier!: () => void;
    const relayMovedTheRow = new Promise<void>((resolve) => {
      cancelAtCarrier = resolve;
    });
    let cancelArrived!: () => void;
    const arrived = new Promise<void>((resolve) => {
      cancelArrived = resolve;
    });
    // the cancel has read the row (CREATED) and is on its way to the carrier when the pickup comes
    const racing = createShippingActivities({
      db,
      carrier: {
        ...carrier,
        cancel: async (req) => {
          cancelArrived();
          await relayMovedTheRow;
          return carrier.cancel(req);
        },
      },
    });
    const cancelling = runActivity(racing.cancelShipment, refOf(input));
    await arrived;
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CREATED' }]);

    await pickupDue(carrierRef);
    const delivered = relay(async (orderId) => {
      if (orderId !== input.orderId) return;
      // the row is PICKED_UP here; the carrier's cancel now waits behind the pickup's lock
      cancelAtCarrier();
      await new Promise((r) => setTimeout(r, 200));
    }).pollOnce();

    expect(await delivered).toBe(1);
    expect(await cancelling).toEqual({ shipmentId: input.shipmentId, cancelled: true });
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'DK', status: 'CANCELLED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED', carrier_ref: carrierRef }]);
    // the relay's late pickup does not bring it back
    expect(await relay().pollOnce()).toBe(0);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED' }]);
  });

  it('a cancel after the pickup is a return to sender, CANCELLED in both', async () => {
    const input = newShipment('AT');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    await pickupDue(carrierRef);
    await relay().pollOnce();
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'PICKED_UP' }]);

    expect(await runActivity(acts.cancelShipment, refOf(input))).toEqual({ shipmentId: input.shipmentId, cancelled: true });
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'AT', status: 'CANCELLED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED' }]);
  });

  it('a cancel the carrier refuses while the parcel is live fails for good and leaves the shipment live', async () => {
    const input = newShipment('CH');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    const refusing = createShippingActivities({ db, carrier: { ...carrier, cancel: async () => ({ cancelled: false }) } });

    const failure = await failureOf(runActivity(refusing.cancelShipment, refOf(input)));

    expect(failure.type).toBe(ErrorType.ShipmentCancelRefused);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('BOOKED');
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'CH', status: 'BOOKED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CREATED' }]);
  });

  it('a cancel the carrier answers "nothing to cancel" for a booking no longer live there is CANCELLED here', async () => {
    const input = newShipment('CZ');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    // cancelled at the carrier under another key (by the sweep, or by hand in the carrier's console)
    await carrier.cancel({ idempotencyKey: `${input.shipmentId}:cancel:elsewhere`, carrierRef });

    expect(await runActivity(acts.cancelShipment, refOf(input))).toEqual({ shipmentId: input.shipmentId, cancelled: false });
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED', carrier_ref: carrierRef }]);
  });

  it('a late retry of the booking finds the cancel came first and cancels the booking an earlier attempt made', async () => {
    const input = newShipment('PL');
    // the saga's undo ran first and left its marker ...
    await runActivity(acts.cancelShipment, refOf(input));
    // ... while an overlapping attempt reached the carrier and then lost everything after
    await carrier.book({ idempotencyKey: `${input.shipmentId}:book`, address: input.address, parcels: 3 });
    const carrierRef = expectedRef(input.shipmentId);

    const failure = await failureOf(runActivity(acts.createShipment, input, 2));

    expect(failure.type).toBe('AlreadyCompensated');
    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'PL', status: 'CANCELLED' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'CANCELLED', carrier_ref: carrierRef }]);
    expect((await carrierOperations(input.shipmentId)).map((o) => o.kind)).toEqual(['book', 'cancel']);
  });

  it('a pickup event the relay cannot deliver stays due and does not hold back the others', async () => {
    const input = newShipment('IT');
    const { carrierRef } = await runActivity(acts.createShipment, input);
    // a booking this service has no row for sorts first among the due events
    const stranger = expectedRef(`order-${randomUUID()}:shipment`);
    await sandbox.query(`INSERT INTO sim_shipments (ref, country, status, pickup_at) VALUES ($1, 'IT', 'BOOKED', now() - interval '1 minute')`, [stranger]);
    await pickupDue(carrierRef);

    await expect(relay().pollOnce()).rejects.toThrow('1 pickup events not delivered (1 delivered)');

    expect(await carrierShipments(carrierRef)).toEqual([{ country: 'IT', status: 'PICKED_UP' }]);
    expect(await shipmentRows(input.shipmentId)).toMatchObject([{ status: 'PICKED_UP' }]);
    const [left] = (
      await sandbox.query<{ status: string; pickup_notified_at: Date | null }>('SELECT status, pickup_notified_at FROM sim_shipments WHERE ref = $1', [
        stranger,
      ])
    ).rows;
    expect(left).toEqual({ status: 'BOOKED', pickup_notified_at: null });
    await sandbox.query(`UPDATE sim_shipments SET status = 'CANCELLED' WHERE ref = $1`, [stranger]);
  });
});
