import { join } from 'node:path';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDERS_TASK_QUEUE, confirmPickupSignal, getOrderStateQuery, orderWorkflowId } from '../contracts/orders';
import { SERVICES } from '../contracts/services';
import { PROJECT_ROOT } from '../lib/infra/paths';
import {
  DEFAULT_DEPLOYMENT_NAME,
  describeDeployment,
  describeVersion,
  openPinnedCount,
  setCurrentVersion,
  setRampingVersion,
  waitUntilDrained,
  type DeploymentTarget,
} from '../lib/temporal/versioning';
import { bundleOrderWorkflows } from '../lib/workflow-bundle';
import type { orderWorkflow } from '../workflows/orders';
import type { reconciliationWorkflow } from '../workflows/reconciliation';
import { createFakeServices } from './support/fake-services';
import { orderInput } from './support/saga';
import { quietRuntime, testClient } from './support/temporal';
import { startBuild, type ActivityRun, type RunningBuild } from './support/versioning';

/**
 * Worker Versioning on the dev server: two builds of the platform in one Worker Deployment, A with
 * today's saga and B with a saga that writes a memo first (test/support/versioning-workflows.ts),
 * each running all four pools through the pools' own wiring. Orders started on A finish on A while
 * B takes new ones; a ramp sends its share to B; a rollback sends new orders to A again; A's
 * workers stop only once no open order is pinned to A; no order ever meets a build it did not start on.
 */
const NAMESPACE = 'versioning';
const A = '1.0.0+aaaaaaa';
const B = '1.1.0+bbbbbbb';
const RAMP_PERCENT = 30;
const RAMPED_ORDERS = 40;
const { EventType, VersioningBehavior, WorkflowTaskFailedCause } = proto.temporal.api.enums.v1;

let client: Client;
let connection: Connection;
let bundles: { A: WorkflowBundle; B: WorkflowBundle };
const runs: ActivityRun[] = [];
const builds: Partial<Record<string, RunningBuild>> = {};
const target = (): DeploymentTarget => ({ connection, namespace: NAMESPACE, deploymentName: DEFAULT_DEPLOYMENT_NAME, identity: 'versioning-test' });

type OrderHandle = WorkflowHandle<typeof orderWorkflow>;
interface Placed {
  handle: OrderHandle;
  orderId: string;
  /** when it was started: which routing it met */
  phase: string;
  /** the build the routing sends it to; for ramped orders, the one it was seen on */
  build?: string;
}
const placed: Placed[] = [];

beforeAll(async () => {
  quietRuntime();
  ({ client, connection } = await testClient(NAMESPACE));
  const [a, b] = await Promise.all([bundleOrderWorkflows(), bundleOrderWorkflows(join(PROJECT_ROOT, 'test', 'support', 'versioning-workflows.ts'))]);
  bundles = { A: a, B: b };
}, 180_000);

afterAll(async () => {
  await Promise.all(Object.values(builds).flatMap((b) => (b ? [b.stop()] : [])));
  await connection?.close();
});

// Plenty of stock: each build's in-memory services are its own.
const fakes = () => createFakeServices({ stock: { 'MUG-LOGO': 100_000, 'CAP-NAVY': 100_000 } });

/** Order IDs fixed by position: the ramp hashes the workflow ID, so every run sees the same share. */
let sequence = 0;
const nextOrderId = () => `00000000-0000-4000-8000-${(++sequence).toString().padStart(12, '0')}`;

async function placeOrders(phase: string, n: number, build?: string, { pickup = true } = {}): Promise<Placed[]> {
  const ids = Array.from({ length: n }, nextOrderId);
  const batch = await Promise.all(
    ids.map(async (orderId) => {
      const input = orderInput({ orderId });
      const handle = await client.workflow.start<typeof orderWorkflow>('orderWorkflow', {
        taskQueue: ORDERS_TASK_QUEUE,
        workflowId: orderWorkflowId(input.orderId),
        args: [input],
      });
      // The carrier's pickup may arrive before the order waits for it: the order keeps it.
      if (pickup) await handle.signal(confirmPickupSignal, { carrierRef: 'ref', pickedUpAt: new Date(0).toISOString() });
      return { handle, orderId: input.orderId, phase, ...(build ? { build } : {}) };
    }),
  );
  placed.push(...batch);
  return batch;
}

async function awaitingPickup(handle: OrderHandle): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await handle.query(getOrderStateQuery)).status === 'AWAITING_PICKUP') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${handle.workflowId} never waited for its pickup`);
}

const pickUp = (orders: Placed[]) =>
  Promise.all(orders.map((o) => o.handle.signal(confirmPickupSignal, { carrierRef: 'ref', pickedUpAt: new Date(0).toISOString() })));

/** The version an execution is on, and how, as `describe` shows it. */
async function versionOf(handle: { describe: OrderHandle['describe'] }): Promise<{ buildId?: string; behavior?: number }> {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { ...(info?.deploymentVersion?.buildId ? { buildId: info.deploymentVersion.buildId } : {}), ...(info?.behavior ? { behavior: info.behavior } : {}) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const counts = { onA: 0, onB: 0, ramped: { onB: 0, of: 0 }, rollbacks: 0 };

describe('worker versioning: one deployment, builds A and B', () => {
  let waitingOnA: Placed[] = [];

  it('A, the first build, becomes current as its pools start; B, started beside it, waits for an operator', async () => {
    builds.A = await startBuild({ namespace: NAMESPACE, buildId: A, bundle: bundles.A, fakes: fakes(), runs, setCurrent: 'if-none' });
    const first = await describeDeployment(target());
    expect(first?.current).toBe(A);
    expect((await describeVersion(target(), A))?.taskQueues).toEqual([...SERVICES].sort());

    // Orders that will wait for their carrier across the whole rollout.
    waitingOnA = await placeOrders('waiting on A', 6, A, { pickup: false });
    await Promise.all(waitingOnA.map((o) => awaitingPickup(o.handle)));

    builds.B = await startBuild({ namespace: NAMESPACE, buildId: B, bundle: bundles.B, fakes: fakes(), runs, setCurrent: 'if-none' });
    const beside = await describeDeployment(target());
    expect(beside?.current).toBe(A);
    expect((await describeVersion(target(), B))?.status).toBe('INACTIVE');
    // An operator ramps a build once it polls every queue the current one does (the server refuses
    // otherwise); each pool's first poll registers its queue, the five of them in any order.
    await waitFor("B's five task queues", async () => {
      const queues = (await describeVersion(target(), B))?.taskQueues ?? [];
      return queues.length === SERVICES.length ? queues : undefined;
    });
    expect((await describeVersion(target(), B))?.taskQueues).toEqual([...SERVICES].sort());
    for (const o of waitingOnA) expect(await versionOf(o.handle)).toEqual({ buildId: A, behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED });
  }, 90_000);

  it(`a ramp of ${RAMP_PERCENT}% sends about that share of new orders to B`, async () => {
    const routing = await setRampingVersion(target(), B, RAMP_PERCENT);
    expect(routing.ramping).toEqual({ buildId: B, percentage: RAMP_PERCENT });
    const ramped = await placeOrders('ramped', RAMPED_ORDERS);
    const results = await Promise.all(ramped.map((o) => o.handle.result()));
    expect(results.map((r) => r.status)).toEqual(ramped.map(() => 'COMPLETED'));
    for (const o of ramped) o.build = (await versionOf(o.handle)).buildId;
    const onB = ramped.filter((o) => o.build === B).length;
    expect(ramped.filter((o) => o.build !== A && o.build !== B)).toEqual([]);
    counts.ramped = { onB, of: ramped.length };
    // The share is a hash of each workflow ID, so a sample of 40 lands near 30%, not on it.
    expect(onB / ramped.length).toBeGreaterThanOrEqual(0.15);
    expect(onB / ramped.length).toBeLessThanOrEqual(0.45);
  }, 90_000);

  it('promoted, B takes every new order, while the orders A started finish on A', async () => {
    const routing = await setCurrentVersion(target(), B);
    expect(routing.current).toBe(B);
    expect(routing.ramping).toBeUndefined();
    const onB = await placeOrders('B current', 6, B);
    // A takes no new orders now, but still has open ones pinned to it.
    await waitFor('A draining', async () => ((await describeVersion(target(), A))?.drainage === 'DRAINING' ? true : undefined));
    await waitFor(`${waitingOnA.length} open orders pinned to A`, async () => ((await openPinnedCount(target(), A)) === waitingOnA.length ? true : undefined));

    await pickUp(waitingOnA);
    for (const o of [...waitingOnA, ...onB]) expect((await o.handle.result()).status).toBe('COMPLETED');
  }, 90_000);

  it('rolled back, new orders go to A again', async () => {
    const routing = await setCurrentVersion(target(), A);
    expect(routing.current).toBe(A);
    counts.rollbacks++;
    const back = await placeOrders('rolled back to A', 6, A, { pickup: false });
    await Promise.all(back.map((o) => awaitingPickup(o.handle)));
    await pickUp(back.slice(2));
    for (const o of back.slice(2)) expect((await o.handle.result()).status).toBe('COMPLETED');
    // Two of them stay open, waiting for their carrier, for the next step.
    waitingOnA = back.slice(0, 2);
  }, 90_000);

  it("promoted again, A's workers stop only once no open order is pinned to A", async () => {
    await setCurrentVersion(target(), B);
    const drained = waitUntilDrained(target(), A, { timeoutMs: 60_000, pollMs: 500 });
    let drainedAt = 0;
    void drained.then(
      () => (drainedAt = Date.now()),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 6_000));
    // Well past the server's grace period and refresh interval: still draining, with its two orders open.
    expect(drainedAt).toBe(0);
    expect((await describeVersion(target(), A))?.drainage).toBe('DRAINING');
    expect(await openPinnedCount(target(), A)).toBe(2);

    const pickedUpAt = Date.now();
    await pickUp(waitingOnA);
    const { version, openPinned } = await drained;
    expect(drainedAt).toBeGreaterThan(pickedUpAt);
    expect({ drainage: version.drainage, openPinned }).toEqual({ drainage: 'DRAINED', openPinned: 0 });
    for (const o of waitingOnA) expect((await o.handle.result()).status).toBe('COMPLETED');
    await builds.A!.stop();
    delete builds.A;

    // B alone now serves the platform.
    const [last] = await placeOrders('after A stopped', 1, B);
    expect((await last!.handle.result()).status).toBe('COMPLETED');
  }, 120_000);

  it('the reconciliation sweep is AUTO_UPGRADE: it runs on the current build', async () => {
    const handle = await client.workflow.start<typeof reconciliationWorkflow>('reconciliationWorkflow', {
      taskQueue: ORDERS_TASK_QUEUE,
      workflowId: 'reconciliation-versioning-test',
      args: [{ olderThanMs: 0 }],
    });
    await handle.result();
    expect(await versionOf(handle)).toEqual({ buildId: B, behavior: VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE });
  }, 60_000);

  it('where one build runs at a time (npm start), a new build takes over as its pools start, and a restarted old one does not take back', async () => {
    const C = '1.1.0+ccccccc';
    builds.C = await startBuild({ namespace: NAMESPACE, buildId: C, bundle: bundles.B, fakes: fakes(), runs, setCurrent: 'if-new' });
    expect((await describeDeployment(target()))?.current).toBe(C);
    // A, drained and stopped, started again from its old image: it has been current before, so it stays out of the way.
    builds.A = await startBuild({ namespace: NAMESPACE, buildId: A, bundle: bundles.A, fakes: fakes(), runs, setCurrent: 'if-new' });
    expect((await describeDeployment(target()))?.current).toBe(C);
    await Promise.all([builds.A.stop(), builds.C.stop()]);
    delete builds.A;
    delete builds.C;
  }, 60_000);

  it("every order ran on its one build from start to end, with that build's saga and activities, and no workflow task failed", async () => {
    const failures: string[] = [];
    let nondeterminism = 0;
    for (const o of placed) {
      const { buildId, behavior } = await versionOf(o.handle);
      expect({ order: o.phase, buildId, behavior }).toEqual({ order: o.phase, buildId: o.build, behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED });
      const events = (await o.handle.fetchHistory()).events ?? [];
      const taskBuilds = new Set(
        events
          .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
          .map((e) => e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId),
      );
      expect([...taskBuilds]).toEqual([o.build]);
      const memo = events.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED);
      expect({ order: o.phase, sagaB: memo }).toEqual({ order: o.phase, sagaB: o.build === B });
      const activityBuilds = new Set(runs.filter((r) => r.orderId === o.orderId).map((r) => r.build));
      expect([...activityBuilds]).toEqual([o.build]);
      for (const e of events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)) {
        const cause = e.workflowTaskFailedEventAttributes?.cause;
        if (cause === WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR) nondeterminism++;
        failures.push(`${o.handle.workflowId}: ${WorkflowTaskFailedCause[cause ?? 0]} ${e.workflowTaskFailedEventAttributes?.failure?.message ?? ''}`);
      }
      if (o.build === A) counts.onA++;
      else counts.onB++;
    }
    expect(nondeterminism).toBe(0);
    expect(failures).toEqual([]);
    console.log(
      `[versioning] ${placed.length} orders: ${counts.onA} on A (${A}), ${counts.onB} on B (${B}); ramp ${RAMP_PERCENT}%: ` +
        `${counts.ramped.onB} of ${counts.ramped.of} on B (${Math.round((100 * counts.ramped.onB) / counts.ramped.of)}%); ` +
        `${counts.rollbacks} rollback; 0 workflow task failures, 0 nondeterminism errors`,
    );
  }, 90_000);
});
