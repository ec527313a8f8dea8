import { Router } from 'express';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { OrdersDb } from '../activities/orders/db';
import { healthReport, healthReportSchema, probe, within, type HealthCheck, type HealthReport } from '../contracts/health';
import { NOTIFICATIONS_TASK_QUEUE } from '../contracts/notifications';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';
import { SERVICES, type Service } from '../contracts/services';
import { defineRoute, mount, type Guards } from './routes';
import { healthSchema, liveSchema } from './schemas';

// A CommonJS package: its namespaces come off the default export under Node's ESM loader.
const { TaskQueueType, TaskQueueKind } = proto.temporal.api.enums.v1;
type TaskQueueType = proto.temporal.api.enums.v1.TaskQueueType;

/** The orders and notifications queues are polled for workflow tasks (their pools run workflows); the other services' queues only run activities. */
const RUN_WORKFLOWS: ReadonlySet<Service> = new Set([ORDERS_TASK_QUEUE, NOTIFICATIONS_TASK_QUEUE]);
const polledFor = (service: Service) => (RUN_WORKFLOWS.has(service) ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY);

/** Base URLs of each pool's processes (their /healthz; inventory's also serve /products). */
export type WorkerUrls = Record<Service, string[]>;

// The server keeps a poller listed for minutes after its worker is gone; one seen within this is
// polling now (an idle worker's long poll is renewed about every minute).
const POLLER_FRESH_MS = 2 * 60_000;

export const healthRoute = defineRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'health',
  tag: 'operations',
  access: 'public',
  summary: 'Whether the whole platform can take orders',
  description:
    'Temporal answers; each task queue has workers polling it; the orders database answers; and every pool process answers its own /healthz (its databases). ' +
    `Checks are listed per service: temporal, ${SERVICES.join(', ')}. Starts no workflow.`,
  responses: {
    200: { description: 'every check passed', body: healthSchema },
    503: { description: 'a check failed; its `error` names what', body: healthSchema },
  },
});

export const liveRoute = defineRoute({
  method: 'get',
  path: '/livez',
  operationId: 'live',
  tag: 'operations',
  access: 'public',
  summary: 'Whether this API process is up (nothing else is checked)',
  responses: { 200: { description: 'the process answers', body: liveSchema } },
});

export const healthRoutes = [healthRoute, liveRoute];

export interface HealthDeps {
  client: Client;
  db: OrdersDb;
  workers: WorkerUrls;
  /** each probe answers within this or counts as failed */
  timeoutMs: number;
}

const describeError = (err: unknown): string => {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const message = err instanceof Error ? err.message : String(err);
  return cause ? `${message} (${cause.code ?? cause.message})` : message;
};

const millis = (ts: { seconds?: number | { toNumber(): number } | null; nanos?: number | null } | null | undefined): number =>
  ts ? (typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0)) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6) : 0;

/** Checks the platform without creating any workflow history: RPCs, a SELECT, and HTTP probes of the pools. */
export function createHealthCheck({ client, db, workers, timeoutMs }: HealthDeps) {
  const deadline = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + timeoutMs, fn);

  async function polled(taskQueue: string, type: TaskQueueType): Promise<void> {
    const { pollers } = await deadline(() =>
      client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: type,
      }),
    );
    const now = Date.now();
    if (!pollers.some((p) => now - millis(p.lastAccessTime) < POLLER_FRESH_MS)) throw new Error('no worker is polling it');
  }

  async function processHealthy(url: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new Error(describeError(err));
    }
    if (res.ok) return;
    const report = healthReportSchema.safeParse(await res.json().catch(() => undefined));
    const failing = report.success ? report.data.checks.filter((c) => !c.ok) : [];
    throw new Error(failing.length > 0 ? failing.map((c) => `${c.service}: ${c.error ?? 'failed'}`).join(', ') : `answered ${res.status}`);
  }

  /** One service: its queue is polled, each of its processes is healthy, and (orders) the API reaches its database. */
  async function service(service: Service): Promise<HealthCheck> {
    const parts = await Promise.all([
      probe(`task queue ${service}`, () => polled(service, polledFor(service))),
      ...(workers[service].length > 0
        ? workers[service].map((url) => probe(url, () => processHealthy(url)))
        : [{ service: 'processes', ok: false, error: 'none is configured' }]),
      // A gRPC deadline does not reach a database call: the query gets its own bound.
      ...(service === ORDERS_TASK_QUEUE ? [probe('database', () => within(timeoutMs, db.$queryRaw`SELECT 1`, 'the orders database'))] : []),
    ]);
    const failed = parts.filter((p) => !p.ok);
    return failed.length === 0 ? { service, ok: true } : { service, ok: false, error: failed.map((p) => `${p.service}: ${p.error}`).join('; ') };
  }

  return async () =>
    healthReport(await Promise.all([probe('temporal', () => deadline(() => client.workflowService.getSystemInfo({}))), ...SERVICES.map(service)]));
}

export function healthRouter(check: () => Promise<HealthReport>, guards: Guards): Router {
  const router = Router();
  mount(router, guards, healthRoute, async () => {
    const report = await check();
    return { status: report.status === 'ok' ? 200 : 503, body: report };
  });
  mount(router, guards, liveRoute, async () => ({ status: 200, body: { status: 'ok' } }));
  return router;
}
