import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WebhookActivities } from '../../activities/notifications/webhooks';
import {
  NOTIFICATIONS_TASK_QUEUE,
  NotificationErrorType,
  deleteWebhookEndpointUpdate,
  enableWebhookEndpointUpdate,
  rotateWebhookSecretUpdate,
  webhookEventsSignal,
  webhookWorkflowId,
  type DeliveryRound,
} from '../../contracts/notifications';
import { bundleNotificationWorkflows } from '../../lib/workflow-bundle';
import { quietRuntime } from '../support/temporal';

/**
 * The webhook endpoint's workflow on the time-skipping test server, with fake activities typed
 * from the real ones: the backoff a failing endpoint asked for, in workflow time; a disabled
 * endpoint that waits, however many events arrive, until its client enables it; changes only from
 * its owner; continue-as-new that keeps it disabled; a delete that ends it.
 */
let env: TestWorkflowEnvironment;
let bundle: WorkflowBundle;
const OWNER = 'https://auth.test#shop';

beforeAll(async () => {
  quietRuntime();
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: inject('testServerPath') } } });
  bundle = await bundleNotificationWorkflows();
});

afterAll(async () => {
  await env?.teardown();
});

/** Fakes of the endpoint's activities: delivery rounds answer as scripted (then idle), and every call is noted with its workflow time. */
function fakeActivities(rounds: DeliveryRound[]) {
  const calls: Array<{ name: string; at: number }> = [];
  const note = (name: string) => calls.push({ name, at: Context.current().info.currentAttemptScheduledTimestampMs });
  const view = { id: 'e', url: 'https://shop.example/h', events: ['order.placed' as const], status: 'ENABLED' as const, createdAt: new Date(0).toISOString() };
  const activities: Pick<WebhookActivities, 'deliverPendingWebhooks' | 'enableWebhookEndpoint' | 'rotateWebhookSecret' | 'deleteWebhookEndpoint'> = {
    deliverPendingWebhooks: async () => {
      note('deliver');
      return rounds.shift() ?? { state: 'idle', delivered: 0 };
    },
    enableWebhookEndpoint: async () => {
      note('enable');
      return view;
    },
    rotateWebhookSecret: async ({ endpointId }) => {
      note('rotate');
      return { id: endpointId, secret: 'whsec_x', previousSecretExpiresAt: new Date(0).toISOString() };
    },
    deleteWebhookEndpoint: async ({ endpointId }) => {
      note('delete');
      return { id: endpointId, deleted: true };
    },
  };
  return { calls, activities };
}

async function withWorker<T>(activities: object, fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: NOTIFICATIONS_TASK_QUEUE, workflowBundle: bundle, activities });
  return worker.runUntil(fn());
}

const start = (endpointId: string, roundsPerRun?: number) =>
  env.client.workflow.start('webhookEndpointWorkflow', {
    workflowId: webhookWorkflowId(endpointId),
    taskQueue: NOTIFICATIONS_TASK_QUEUE,
    args: [{ endpointId, owner: OWNER, ...(roundsPerRun ? { roundsPerRun } : {}) }],
  });

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(check()).toBe(true);
};

describe('webhookEndpointWorkflow', () => {
  it('waits the backoff a failed round asked for, in workflow time, before the next round', async () => {
    const { calls, activities } = fakeActivities([
      { state: 'retry', delivered: 0, retryInMs: 30 * 60_000 },
      { state: 'retry', delivered: 0, retryInMs: 2 * 3_600_000 },
    ]);
    await withWorker(activities, async () => {
      const handle = await start(randomUUID());
      await env.sleep('3h');
      await until(() => calls.length >= 3);
      await handle.executeUpdate(deleteWebhookEndpointUpdate, { args: [{ requestedBy: OWNER }] });
      await handle.result();
    });
    const rounds = calls.filter((c) => c.name === 'deliver').map((c) => c.at);
    expect(rounds[1]! - rounds[0]!).toBeGreaterThanOrEqual(30 * 60_000);
    expect(rounds[1]! - rounds[0]!).toBeLessThan(31 * 60_000);
    expect(rounds[2]! - rounds[1]!).toBeGreaterThanOrEqual(2 * 3_600_000);
  });

  it('once disabled, runs no round however many events arrive, until its owner enables it; no one else may change it', async () => {
    const { calls, activities } = fakeActivities([{ state: 'disabled', delivered: 0 }]);
    await withWorker(activities, async () => {
      const handle = await start(randomUUID());
      await until(() => calls.length === 1);
      for (let i = 0; i < 5; i++) await handle.signal(webhookEventsSignal);
      await env.sleep('1d');
      expect(calls.map((c) => c.name)).toEqual(['deliver']);
      const refused = await handle
        .executeUpdate(rotateWebhookSecretUpdate, { args: [{ requestedBy: 'https://auth.test#someone-else' }] })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((refused as WorkflowUpdateFailedError).cause).toMatchObject({ type: NotificationErrorType.NotEndpointOwner });
      await handle.executeUpdate(enableWebhookEndpointUpdate, { args: [{ requestedBy: OWNER }] });
      await until(() => calls.length === 3);
      await handle.executeUpdate(deleteWebhookEndpointUpdate, { args: [{ requestedBy: OWNER }] });
      await handle.result();
    });
    expect(calls.map((c) => c.name)).toEqual(['deliver', 'enable', 'deliver', 'delete']);
  });

  it('continues as new after its rounds, still disabled; a delete ends it', async () => {
    const { calls, activities } = fakeActivities([
      { state: 'idle', delivered: 1 },
      { state: 'disabled', delivered: 0 },
    ]);
    const endpointId = randomUUID();
    await withWorker(activities, async () => {
      const first = await start(endpointId, 2);
      await until(() => calls.length === 1);
      await first.signal(webhookEventsSignal);
      const firstRun = (await first.describe()).runId;
      await until(() => calls.length === 2);
      const latest = env.client.workflow.getHandle(webhookWorkflowId(endpointId));
      for (let i = 0; i < 100 && (await latest.describe()).runId === firstRun; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await latest.describe()).runId).not.toBe(firstRun);
      await latest.signal(webhookEventsSignal);
      await env.sleep('1h');
      // The new run started disabled: no round, whatever arrives.
      expect(calls.map((c) => c.name)).toEqual(['deliver', 'deliver']);
      await latest.executeUpdate(deleteWebhookEndpointUpdate, { args: [{ requestedBy: OWNER }] });
      await latest.result();
    });
  });
});
