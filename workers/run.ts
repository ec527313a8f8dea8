import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { z } from 'zod';
import { logLevel, parseEnv, temporalEnv } from '../lib/config';
import { createLogger, type Logger } from '../lib/logger';

export const workerEnv = z.object({
  ...temporalEnv,
  LOG_LEVEL: logLevel,
  // Enough parallel activities to keep the pool busy, few enough that they rarely queue for a connection.
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(20),
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
});
export type WorkerEnv = z.infer<typeof workerEnv>;

export interface PoolResources {
  activities?: object;
  /** runs beside the worker until `signal` aborts (the shipping pool's pickup relay) */
  background?: (signal: AbortSignal) => Promise<void>;
  close: () => Promise<void>;
}

export interface PoolSpec<E extends WorkerEnv> {
  service: string;
  taskQueue: string;
  env: z.ZodType<E>;
  runsWorkflows?: boolean;
  build: (config: E, log: Logger) => Promise<PoolResources>;
}

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

function workflowSource(config: WorkerEnv): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (config.WORKFLOW_BUNDLE_PATH && existsSync(config.WORKFLOW_BUNDLE_PATH)) {
    return { workflowBundle: { codePath: config.WORKFLOW_BUNDLE_PATH } };
  }
  return { workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)) };
}

/**
 * One worker process of one pool: one task queue, one bounded database pool. SIGTERM or SIGINT
 * stops polling, lets in-flight tasks finish, closes the pool and exits 0; a failure exits 1.
 */
export async function runPool<E extends WorkerEnv>(spec: PoolSpec<E>): Promise<void> {
  const log = createLogger(`${spec.service}-worker`);
  try {
    const config = parseEnv(spec.env);
    Runtime.install({ logger: temporalLogger(log), shutdownSignals: ['SIGINT', 'SIGTERM'] });
    const stop = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());

    const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
    const resources = await spec.build(config, log);
    try {
      const worker = await Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: spec.taskQueue,
        activities: resources.activities,
        maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
        ...(spec.runsWorkflows ? workflowSource(config) : {}),
      });
      log.info({ taskQueue: spec.taskQueue, namespace: config.TEMPORAL_NAMESPACE }, 'worker started');
      await Promise.all([worker.run().finally(() => stop.abort()), resources.background?.(stop.signal)]);
    } finally {
      await resources.close();
      await connection.close();
    }
    log.info('worker stopped');
  } catch (err) {
    log.fatal({ err }, 'worker failed');
    process.exit(1);
  }
}
