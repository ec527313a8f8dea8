import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { ORDERS_TASK_QUEUE, confirmPickupSignal, getOrderStateQuery, orderWorkflowId, type OrderStatus, type PlaceOrderInput } from '../../contracts/orders';
import type { orderWorkflow } from '../../workflows/orders';
import type { Identity } from '../../contracts/auth';
import type { FakeOptions, FakeServices } from './fake-services';
import { withPlatformWorkers } from './workers';

/** The client that places the test orders, a customer of it, a reviewer and an operator: identities as the API passes them. */
export const STOREFRONT: Identity = { issuer: 'https://auth.test', subject: 'storefront-1' };
export const CUSTOMER = { ...STOREFRONT, role: 'customer' as const };
export const REVIEWER: Identity = { issuer: 'https://auth.test', subject: 'risk@example.com' };
export const OPERATOR = { issuer: 'https://auth.test', subject: 'ops@example.com', role: 'operator' as const };

/** A default order: two lines, a good card, a served country. */
export function orderInput(overrides: Partial<PlaceOrderInput> = {}): PlaceOrderInput {
  return {
    orderId: randomUUID(),
    placedBy: STOREFRONT,
    customerId: 'customer-1',
    items: [
      { sku: 'MUG-LOGO', quantity: 2 },
      { sku: 'CAP-NAVY', quantity: 1 },
    ],
    payment: { token: 'tok_visa' },
    shippingAddress: { name: 'Ada Lovelace', line1: '12 St James Sq', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' },
    requestHash: 'test',
    ...overrides,
  };
}

/** Holds the named activity when it starts, until `open()`. */
export function gate(activity: string): { onCall: FakeOptions['onCall']; entered: Promise<void>; open: () => void } {
  let entered!: () => void;
  let open!: () => void;
  const enteredP = new Promise<void>((r) => (entered = r));
  const opened = new Promise<void>((r) => (open = r));
  return {
    onCall: async (name) => {
      if (name === activity) {
        entered();
        await opened;
      }
    },
    entered: enteredP,
    open,
  };
}

/** Drives orders on a test environment, with the four task queues served by fakes. */
export function sagaHarness(getEnv: () => TestWorkflowEnvironment, getBundle: () => WorkflowBundle, dataConverter?: DataConverter) {
  const startOrder = (input: PlaceOrderInput) =>
    getEnv().client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
      taskQueue: ORDERS_TASK_QUEUE,
      workflowId: orderWorkflowId(input.orderId),
      args: [input],
    });
  type Handle = Awaited<ReturnType<typeof startOrder>>;

  /** Polls the order's state until `status`, for up to 30 s of wall-clock time (a busy machine answers queries slowly). */
  async function waitForStatus(handle: Handle, status: OrderStatus): Promise<void> {
    const deadline = Date.now() + 30_000;
    let last: OrderStatus | undefined;
    while (Date.now() < deadline) {
      last = (await handle.query(getOrderStateQuery)).status;
      if (last === status) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`order never reached ${status} (still ${last} after 30 s)`);
  }

  /** The carrier's pickup arrives once the order waits for it. */
  async function confirmPickup(handle: Handle): Promise<void> {
    await waitForStatus(handle, 'AWAITING_PICKUP');
    await handle.signal(confirmPickupSignal, { carrierRef: 'ref', pickedUpAt: new Date(0).toISOString() });
  }

  /** Runs `drive` with workers whose activities are `fakes`. */
  const run = <T>(fakes: FakeServices, drive: () => Promise<T>): Promise<T> =>
    withPlatformWorkers(getEnv().nativeConnection, 'default', getBundle(), fakes, drive, dataConverter);

  /** Skips workflow time forward (the time-skipping server moves its clock, not the wall clock). */
  const sleep = (duration: string) => getEnv().sleep(duration as Parameters<TestWorkflowEnvironment['sleep']>[0]);

  return { startOrder, waitForStatus, confirmPickup, run, sleep };
}
export type SagaHarness = ReturnType<typeof sagaHarness>;
export type OrderHandle = Awaited<ReturnType<SagaHarness['startOrder']>>;
