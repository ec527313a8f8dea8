import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, Worker, type NativeConnection, type WorkerOptions, type WorkflowBundle } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { z } from 'zod';
import { logLevel, parseEnv } from '../lib/config';
import { createLogger, type Logger } from '../lib/logger';
import { healthReport, probe, within } from '../contracts/health';
import type { Pool } from '../lib/db';
import { ActivityMetricsInterceptor, serveWorkerHttp, type WorkerRoutes } from '../lib/metrics';
import { loadMonitoringConfig } from '../lib/monitoring';
import { initTracing, type Tracing } from '../lib/tracing';
import { connectWorker, temporalSettings, type TemporalSettings } from '../lib/temporal/connection';
import { bundleOrderWorkflows } from '../lib/workflow-bundle';
import { setCurrentPolicy, takeOverIfDue, versionKey, versioningEnv, workerVersion } from '../lib/temporal/versioning';
import { SERVICES } from '../contracts/services';
import { classifyDatabaseErrors } from '../activities/database-errors';
import { freePort } from '../lib/net';

export const workerEnv = z.object({
  LOG_LEVEL: logLevel,
  // Enough parallel activities to keep the pool busy, few enough that they rarely queue for a connection.
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(20),
  // Workflow tasks a process holds at once (pools that run workflows). They queue for one workflow
  // thread and each must end within its 10 s timeout: on a CPU-starved process the SDK's 40 timed
  // out together (100+ a run in the crash test on the cluster; 2 with 10), and while a task retries
  // its workflow refuses Updates (a cancel). Left on the server, a task waits without a deadline.
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(1000).default(10),
  // Workflows kept in memory between their tasks (orders pool). BENCHMARKS.md has the figures.
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).optional(),
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
  // this process's HTTP server (/metrics, /livez, /healthz, the pool's reads); 0 picks a free port
  // (several processes of a pool on one host)
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  METRICS_HOST: z.string().default('127.0.0.1'),
  // Worker Versioning: WORKER_DEPLOYMENT_NAME, WORKER_BUILD_ID, WORKER_SET_CURRENT (lib/temporal/versioning.ts)
  ...versioningEnv,
});
export type WorkerEnv = z.infer<typeof workerEnv>;

export interface PoolResources {
  activities?: object;
  /** runs beside the worker until `signal` aborts (the shipping pool's pickup relay) */
  background?: (signal: AbortSignal) => Promise<void>;
  /** what this pool's /healthz probes, by name: its own databases (`databaseCheck(pool)`), nothing of other services */
  health?: Record<string, () => Promise<unknown>>;
  /** read-only JSON endpoints served beside /metrics: how the API reads a service without a workflow or its database */
  reads?: Record<`/${string}`, (query: URLSearchParams) => Promise<unknown>>;
  close: () => Promise<void>;
}

/** A /healthz probe of one database pool. */
export const databaseCheck = (pool: Pool) => () => pool.query('SELECT 1');

// Below the API's own deadline for a pool's /healthz, so the pool answers 503 with the reason rather than not at all.
const HEALTH_CHECK_TIMEOUT_MS = 1_500;

export interface PoolSpec<E extends WorkerEnv> {
  service: string;
  taskQueue: string;
  env: z.ZodType<E>;
  runsWorkflows?: boolean;
  /** a pool whose workflows are its own (not the orders bundle): how to build its bundle, and where a prebuilt one is */
  workflowBundle?: { build: () => Promise<WorkflowBundle>; prebuilt: (config: E) => string | undefined };
  /** the pool's resources; `temporal` connects any client it needs (the orders pool's schedule, shipping's pickup signals) */
  build: (config: E, log: Logger, temporal: TemporalSettings) => Promise<PoolResources>;
}

/** Keeps a pool's config type tied to its env schema. */
export const definePool = <E extends WorkerEnv>(spec: PoolSpec<E>): PoolSpec<E> => spec;

/** True when this module is the process's entry point (node workers/x.ts), false when imported. */
export const isEntryPoint = (moduleUrl: string): boolean => process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(moduleUrl);

/** The SDK's own logs, as JSON lines through the same logger as ours. */
function temporalLogger(log: Logger): TemporalLogger {
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) => log[levels[level]]({ ...meta }, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

/** The prebuilt bundle when there is one (npm start, the image); else this process builds it. */
async function workflowSource<E extends WorkerEnv>(spec: PoolSpec<E>, config: E): Promise<Pick<WorkerOptions, 'workflowBundle'>> {
  const prebuilt = spec.workflowBundle ? spec.workflowBundle.prebuilt(config) : config.WORKFLOW_BUNDLE_PATH;
  if (prebuilt && existsSync(prebuilt)) return { workflowBundle: { codePath: prebuilt } };
  return { workflowBundle: await (spec.workflowBundle?.build ?? bundleOrderWorkflows)() };
}

export interface StartedPool {
  /** where this process's HTTP server (/metrics, /livez, /healthz, the pool's reads) listens */
  url: string;
  /** resolves when the worker has drained and its resources are closed */
  finished: Promise<void>;
  /** stops polling, lets in-flight tasks finish, then closes the pool's resources */
  stop: () => void;
}

export interface PoolRuntime {
  connection: NativeConnection;
  /** the namespace and the data converter (the payload codec) the connection was made for */
  temporal: TemporalSettings;
  log: Logger;
  tracing: Tracing;
  /** a prebuilt workflow bundle (tests build one for all their pools) */
  bundle?: WorkflowBundle;
  /** the SDK core's own metrics, appended to /metrics */
  coreMetricsUrl?: string;
}

/** The pool's HTTP routes besides /metrics: liveness, its own health, and its reads. */
function poolRoutes(resources: PoolResources, worker: Worker): WorkerRoutes {
  const routes: WorkerRoutes = {
    '/livez': async () => ({ status: 200, body: { status: 'ok' } }),
    '/healthz': async () => {
      const state = worker.getState();
      const report = healthReport([
        // A draining or failed worker takes no new tasks, however well its databases answer.
        { service: 'worker', ok: state === 'RUNNING', ...(state === 'RUNNING' ? {} : { error: `the worker is ${state}` }) },
        ...(await Promise.all(
          Object.entries(resources.health ?? {}).map(([name, check]) => probe(name, () => within(HEALTH_CHECK_TIMEOUT_MS, check(), name))),
        )),
      ]);
      return { status: report.status === 'ok' ? 200 : 503, body: report };
    },
  };
  for (const [path, read] of Object.entries(resources.reads ?? {})) {
    routes[path as `/${string}`] = async (query) => ({ status: 200, body: await read(query) });
  }
  return routes;
}

/**
 * Starts one pool's worker, its background task and its HTTP server on an open connection. The
 * worker main and the in-process tests both start pools through here, so they run the same wiring.
 */
export async function startPool<E extends WorkerEnv>(
  spec: PoolSpec<E>,
  config: E,
  { connection, temporal, log, tracing, bundle, coreMetricsUrl }: PoolRuntime,
): Promise<StartedPool> {
  const workflows = spec.runsWorkflows ? (bundle ? { workflowBundle: bundle } : await workflowSource(spec, config)) : {};
  const version = workerVersion(config);
  const resources = await spec.build(config, log, temporal);
  const stopBackground = new AbortController();
  try {
    const worker = await Worker.create({
      connection,
      namespace: temporal.namespace,
      dataConverter: temporal.dataConverter,
      taskQueue: spec.taskQueue,
      // Every activity of every pool: a row the database refuses fails at once, with a reason, instead of retrying forever.
      activities: resources.activities && classifyDatabaseErrors(resources.activities),
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      interceptors: { activity: [...tracing.activityInterceptors, (ctx) => ({ inbound: new ActivityMetricsInterceptor(ctx) })] },
      sinks: tracing.sinks,
      ...workflows,
      ...(spec.runsWorkflows ? { maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS } : {}),
      ...(spec.runsWorkflows && config.WORKER_MAX_CACHED_WORKFLOWS !== undefined ? { maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS } : {}),
      // Every pool is a version of one Worker Deployment. An order stays on the build it started on (PINNED, declared on
      // orderWorkflow itself), and so do its activities: each build runs every pool.
      workerDeploymentOptions: { useWorkerVersioning: true, version, defaultVersioningBehavior: 'PINNED' },
    });
    const server = await serveWorkerHttp(config.METRICS_PORT, config.METRICS_HOST, { coreMetricsUrl, routes: poolRoutes(resources, worker) });
    const { port } = server.address() as AddressInfo;
    const url = `http://${config.METRICS_HOST === '0.0.0.0' ? '127.0.0.1' : config.METRICS_HOST}:${port}`;
    log.info({ taskQueue: spec.taskQueue, temporal: temporal.summary, url, version: versionKey(version) }, 'worker started');
    let settled = false;
    const finished = Promise.all([
      worker.run().finally(() => {
        stopBackground.abort();
        // Gone from the network as soon as it stops taking tasks: the API's /healthz names this pool at once.
        server.close();
      }),
      resources.background?.(stopBackground.signal),
    ]).finally(() => {
      settled = true;
      return resources.close();
    });
    // Observed by the caller once returned; until then a failure of the worker only ends the wait below.
    finished.catch(() => undefined);
    await takeOverIfDue(
      { connection, namespace: temporal.namespace, deploymentName: version.deploymentName, identity: `${spec.service}-worker ${versionKey(version)}` },
      version.buildId,
      setCurrentPolicy(config),
      SERVICES,
      {
        stopped: () => settled,
        onMissing: (queues) => log.warn({ version: versionKey(version), missing: queues }, 'made current with no pool polling these task queues'),
      },
    ).then(
      (outcome) => log.info({ version: versionKey(version), outcome }, 'worker deployment version'),
      // The pool still serves the orders pinned to its build; new ones reach it once an operator promotes it.
      (err: unknown) => log.error({ err, version: versionKey(version) }, 'could not make this build current'),
    );
    return {
      url,
      finished: finished.then(() => undefined),
      stop: () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      },
    };
  } catch (err) {
    await resources.close();
    throw err;
  }
}

/**
 * One worker process of one pool: one task queue, one bounded database pool. SIGTERM or SIGINT
 * stops polling, lets in-flight tasks finish, closes the pool and exits 0; a failure exits 1.
 */
export async function runPool<E extends WorkerEnv>(spec: PoolSpec<E>): Promise<void> {
  let log = createLogger(`${spec.service}-worker`);
  try {
    const config = parseEnv(spec.env);
    const monitoring = loadMonitoringConfig();
    log = createLogger(`${spec.service}-worker`, monitoring.logs.level);
    const tracing = initTracing({ service: `${spec.service}-worker`, ...monitoring.tracing });
    // The SDK core serves its own metrics on a loopback port; our /metrics appends them to ours.
    const corePort = await freePort();
    Runtime.install({
      logger: temporalLogger(log),
      // The Runtime turns SIGINT/SIGTERM into a graceful worker shutdown.
      shutdownSignals: ['SIGINT', 'SIGTERM'],
      telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${corePort}`, useSecondsForDurations: true } } },
    });
    const temporal = temporalSettings();
    let waiting = false;
    const connection = await connectWorker(temporal, {
      onWait: (err) => {
        if (!waiting) log.warn({ temporal: temporal.summary, err: err.message }, 'Temporal is not answering yet; waiting for it');
        waiting = true;
      },
    });
    try {
      const pool = await startPool(spec, config, { connection, temporal, log, tracing, coreMetricsUrl: `http://127.0.0.1:${corePort}/metrics` });
      await pool.finished;
    } finally {
      // After a failed start, a worker created in it still holds the connection: closing it would
      // throw over the error that says why (a port taken, a database refused).
      await connection.close().catch((err: unknown) => log.warn({ err }, 'could not close the Temporal connection'));
      await tracing.shutdown();
    }
    log.info('worker stopped');
  } catch (err) {
    log.fatal({ err }, 'worker failed');
    process.exit(1);
  }
}
