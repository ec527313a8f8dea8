import { cancelOrderUpdate, resolveCompensationUpdate, retryCompensationUpdate, reviewOrderUpdate } from '../../contracts/orders';
import { createFakeServices, type FakeOptions } from './fake-services';
import { CUSTOMER, REVIEWER, gate, orderInput, type OrderHandle, type SagaHarness } from './saga';

/**
 * Named runs of the order saga, one per path through it. The history recorder runs each and
 * commits its event history; the replay test replays every committed history.
 */
export interface Scenario {
  name: string;
  fakes?: FakeOptions;
  input?: Parameters<typeof orderInput>[0];
  /** what happens after the start, from outside the workflow; resolves when the run has ended */
  drive: (h: SagaHarness, handle: OrderHandle, held?: ReturnType<typeof gate>) => Promise<unknown>;
  /** an activity to hold when it starts, so that `drive` can act while it runs */
  hold?: string;
}

const settle = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    () => undefined,
  );

export const SCENARIOS: Scenario[] = [
  {
    name: 'completed',
    drive: async (h, handle) => {
      await h.confirmPickup(handle);
      return handle.result();
    },
  },
  { name: 'out-of-stock', fakes: { stock: { 'MUG-LOGO': 0, 'CAP-NAVY': 10 } }, drive: (_h, handle) => handle.result() },
  {
    name: 'payment-declined',
    fakes: { declinedTokens: ['tok_declined'] },
    input: { payment: { token: 'tok_declined' } },
    drive: (_h, handle) => handle.result(),
  },
  {
    name: 'carrier-refused',
    fakes: { refusedCountries: ['AQ'] },
    input: { shippingAddress: { name: 'A', line1: 'B', city: 'C', postalCode: 'D', country: 'AQ' } },
    drive: (_h, handle) => handle.result(),
  },
  { name: 'pickup-timeout', drive: (_h, handle) => handle.result() },
  {
    // the reservation is renewed and the payment re-authorised while waiting
    name: 'holds-renewed',
    input: { pickupTimeout: '10d' },
    drive: async (h, handle) => {
      await h.waitForStatus(handle, 'AWAITING_PICKUP');
      await h.sleep('8 days');
      await h.confirmPickup(handle);
      return handle.result();
    },
  },
  {
    name: 'reauthorisation-declined',
    fakes: { declineReauthorisation: true },
    input: { pickupTimeout: '10d' },
    drive: (_h, handle) => handle.result(),
  },
  {
    name: 'cancelled-awaiting-pickup',
    drive: async (h, handle) => {
      await h.waitForStatus(handle, 'AWAITING_PICKUP');
      await handle.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'changed my mind', requestedBy: CUSTOMER }] });
      return handle.result();
    },
  },
  {
    name: 'cancelled-while-capturing',
    hold: 'capturePayment',
    drive: async (h, handle, held) => {
      await h.confirmPickup(handle);
      await held!.entered;
      await handle.executeUpdate(cancelOrderUpdate, { args: [{ requestedBy: CUSTOMER }] });
      // Sent again (its answer lost, say): accepted as a repeat, nothing changes.
      await handle.executeUpdate(cancelOrderUpdate, { args: [{ reason: 'sent twice', requestedBy: CUSTOMER }] });
      held!.open();
      return handle.result();
    },
  },
  {
    name: 'needs-attention-retried',
    fakes: { declinedTokens: ['tok_declined'], failFirst: { releaseStock: 40 } },
    input: { payment: { token: 'tok_declined' } },
    drive: async (h, handle) => {
      await h.sleep('31 minutes');
      await h.waitForStatus(handle, 'NEEDS_ATTENTION');
      await handle.executeUpdate(retryCompensationUpdate, { args: [{ operator: 'ops' }] });
      return handle.result();
    },
  },
  {
    name: 'needs-attention-resolved-by-hand',
    fakes: { declinedTokens: ['tok_declined'], failFirst: { releaseStock: Number.MAX_SAFE_INTEGER } },
    input: { payment: { token: 'tok_declined' } },
    drive: async (h, handle) => {
      await h.sleep('31 minutes');
      await h.waitForStatus(handle, 'NEEDS_ATTENTION');
      await handle.executeUpdate(resolveCompensationUpdate, { args: [{ operator: 'ops', note: 'released by hand' }] });
      return handle.result();
    },
  },
  {
    name: 'review-approved',
    input: { reviewAbove: 1000 },
    drive: async (h, handle) => {
      await h.waitForStatus(handle, 'AWAITING_REVIEW');
      await handle.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'approve', reviewer: REVIEWER }] });
      await h.confirmPickup(handle);
      return handle.result();
    },
  },
  { name: 'review-timed-out', input: { reviewAbove: 1000 }, drive: (_h, handle) => handle.result() },
  {
    name: 'review-rejected',
    input: { reviewAbove: 1000 },
    drive: async (h, handle) => {
      await h.waitForStatus(handle, 'AWAITING_REVIEW');
      await handle.executeUpdate(reviewOrderUpdate, { args: [{ decision: 'reject', reviewer: REVIEWER, reason: 'address mismatch' }] });
      return handle.result();
    },
  },
  // inventory down past the step's five-minute deadline: INVENTORY_UNAVAILABLE
  { name: 'inventory-unavailable', fakes: { failFirst: { reserveStock: Number.MAX_SAFE_INTEGER } }, drive: (_h, handle) => handle.result() },
  {
    name: 'cancelled-by-temporal',
    drive: async (h, handle) => {
      await h.waitForStatus(handle, 'AWAITING_PICKUP');
      await handle.cancel();
      return settle(handle.result());
    },
  },
];

/** Runs one scenario to its end and returns its handle. */
export async function runScenario(h: SagaHarness, scenario: Scenario): Promise<OrderHandle> {
  const held = scenario.hold ? gate(scenario.hold) : undefined;
  const fakes = createFakeServices({ ...scenario.fakes, ...(held ? { onCall: held.onCall } : {}) });
  return h.run(fakes, async () => {
    const handle = await h.startOrder(orderInput(scenario.input));
    await scenario.drive(h, handle, held);
    return handle;
  });
}
