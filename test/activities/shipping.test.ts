import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShippingActivities, type ShippingActivities } from '../../activities/shipping';
import type { Carrier } from '../../activities/shipping/carrier';
import { createShippingDb, type ShippingDb } from '../../activities/shipping/db';
import { createSimulatedCarrier } from '../../activities/shipping/simulated-carrier';
import type { CreateShipmentInput } from '../../contracts/shipping';
import { createPool, type Pool } from '../../lib/db';
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
  carrier = createSimulatedCarrier(sandbox, { pickupDelayMs: 0 });
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
});
