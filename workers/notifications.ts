import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { WorkflowIdReusePolicy, type Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { createNotificationsDb } from '../activities/notifications/db';
import { createMailer } from '../activities/notifications/email';
import { createNotificationActivities } from '../activities/notifications';
import { createWebhookReads } from '../activities/notifications/reads';
import { createRelay, orderEventsReader } from '../activities/notifications/relay';
import { LOCAL_WORKER_BASE_PORT } from '../api/config';
import { NOTIFICATIONS_TASK_QUEUE, orderEmailWorkflowId, webhookEventsSignal, webhookWorkflowId } from '../contracts/notifications';
import { duration, localDatabaseUrl, poolSize, urlList } from '../lib/config';
import { createPool } from '../lib/db';
import { keyringFromEnv } from '../lib/temporal/codec';
import { connectClient } from '../lib/temporal/connection';
import { bundleNotificationWorkflows } from '../lib/workflow-bundle';
import type { orderEmailWorkflow, webhookEndpointWorkflow } from '../workflows/notifications';
import { databaseCheck, definePool, isEntryPoint, runPool, workerEnv } from './run';

const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
const ms = (fallback: string) => duration.default(fallback).transform((d) => msToNumber(d as Duration));
const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

export const notificationsEnv = workerEnv.extend({
  // Each delivery round and each email holds a database connection while it sends: no more at once than the pool has.
  WORKER_MAX_CONCURRENT_ACTIVITIES: int(8, 1, 1000),
  NOTIFICATIONS_DATABASE_URL: z.string().url().default(localDatabaseUrl('notifications')),
  NOTIFICATIONS_DB_POOL_MAX: poolSize(10),
  // this pool's own workflow bundle, prebuilt (npm start); WORKFLOW_BUNDLE_PATH is the orders pool's
  NOTIFICATIONS_WORKFLOW_BUNDLE_PATH: z.string().optional(),
  // where the orders pool's processes serve GET /events (comma-separated)
  ORDERS_WORKER_URLS: urlList(`http://127.0.0.1:${LOCAL_WORKER_BASE_PORT}`).refine((urls) => urls.length > 0, 'at least one URL'),
  RELAY_POLL_INTERVAL_MS: int(250, 10, 60_000),
  RELAY_BATCH: int(200, 1, 1000),
  // a position of the order log not filled after this is one that never will be (a rolled-back or repeated insert)
  RELAY_GAP_TIMEOUT_MS: int(60_000, 1_000, 3_600_000),
  RELAY_START_AT: z.enum(['beginning', 'end']).default('beginning'),
  WEBHOOKS_ALLOW_LOOPBACK_HTTP: flag(false),
  WEBHOOK_TIMEOUT_MS: int(10_000, 100, 30_000),
  WEBHOOK_RETRY_INITIAL: ms('5s'),
  WEBHOOK_RETRY_MAX_INTERVAL: ms('1h'),
  WEBHOOK_RETRY_FOR: ms('3d'),
  WEBHOOK_DISABLE_AFTER_FAILURES: int(20, 1, 100_000),
  WEBHOOK_DISABLE_AFTER: ms('24h'),
  WEBHOOK_SECRET_GRACE: ms('24h'),
  // smtp://host:port, or smtps://user:pass@host:465 for a real relay; none: no customer emails
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL')
    .pipe(z.url())
    .optional(),
  MAIL_FROM: z.string().min(3).default('Order platform <orders@localhost>'),
});

/**
 * The notifications pool: its own database, queue and workflows. It follows the orders service's
 * event log (the relay, in the background) and delivers each event to the webhook endpoints that
 * subscribed to it and, by email, to the customer.
 */
export const notificationsPool = definePool({
  service: 'notifications',
  taskQueue: NOTIFICATIONS_TASK_QUEUE,
  runsWorkflows: true,
  workflowBundle: { build: bundleNotificationWorkflows, prebuilt: (config) => config.NOTIFICATIONS_WORKFLOW_BUNDLE_PATH },
  env: notificationsEnv,
  async build(config, log, temporal) {
    const pool = createPool(config.NOTIFICATIONS_DATABASE_URL, config.NOTIFICATIONS_DB_POOL_MAX, 'notifications-worker', log);
    const db = createNotificationsDb(pool);
    const keyring = keyringFromEnv();
    const mailer = config.SMTP_URL ? createMailer(config.SMTP_URL) : undefined;
    if (!mailer) log.info('customer emails are off: SMTP_URL is not set');
    const { client, connection } = await connectClient(temporal);
    const relay = createRelay({
      pool,
      databaseUrl: config.NOTIFICATIONS_DATABASE_URL,
      readEvents: orderEventsReader(config.ORDERS_WORKER_URLS),
      log,
      settings: {
        pollIntervalMs: config.RELAY_POLL_INTERVAL_MS,
        batch: config.RELAY_BATCH,
        gapTimeoutMs: config.RELAY_GAP_TIMEOUT_MS,
        startAt: config.RELAY_START_AT,
        emails: mailer !== undefined,
      },
      temporal: {
        async wakeEndpoint({ id, owner }) {
          await client.workflow.signalWithStart<typeof webhookEndpointWorkflow, []>('webhookEndpointWorkflow', {
            workflowId: webhookWorkflowId(id),
            taskQueue: NOTIFICATIONS_TASK_QUEUE,
            args: [{ endpointId: id, owner }],
            signal: webhookEventsSignal,
            signalArgs: [],
          });
        },
        async startEmail(input) {
          try {
            await client.workflow.start<typeof orderEmailWorkflow>('orderEmailWorkflow', {
              workflowId: orderEmailWorkflowId(input.eventId),
              taskQueue: NOTIFICATIONS_TASK_QUEUE,
              args: [input],
              // One email per event, ever: a second start (the relay reading the event again) is refused.
              workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            });
          } catch (err) {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          }
        },
      },
    });
    return {
      activities: createNotificationActivities({
        pool,
        keyring,
        log,
        mailer,
        from: config.MAIL_FROM,
        settings: {
          allowLoopbackHttp: config.WEBHOOKS_ALLOW_LOOPBACK_HTTP,
          requestTimeoutMs: config.WEBHOOK_TIMEOUT_MS,
          retryInitialMs: config.WEBHOOK_RETRY_INITIAL,
          retryMaxIntervalMs: config.WEBHOOK_RETRY_MAX_INTERVAL,
          retryForMs: config.WEBHOOK_RETRY_FOR,
          disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
          disableAfterMs: config.WEBHOOK_DISABLE_AFTER,
          secretGraceMs: config.WEBHOOK_SECRET_GRACE,
        },
      }),
      health: { database: databaseCheck(pool) },
      reads: createWebhookReads({ db }),
      background: (signal) => relay.run(signal),
      close: async () => {
        mailer?.close();
        await connection.close();
        await db.$disconnect();
        await pool.end();
      },
    };
  },
});

if (isEntryPoint(import.meta.url)) await runPool(notificationsPool);
