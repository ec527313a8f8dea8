import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startTemporalDevServer } from '../lib/infra/temporal';
import { ensureTemporalTools } from '../lib/infra/tools';
import { DATA_DIR } from '../lib/infra/paths';
import { freeFixedPort } from '../lib/net';
import { connectClient, temporalConnectionSettings } from '../lib/temporal/connection';
import { cpuBetween, cpuSnapshot } from './breakdown';
import { FLOOR_NAMESPACE, FLOOR_WORKFLOW_TASK_QUEUE } from './floor-contract';
import { startFloorWorkers } from './floor-workers';
import type { floorWorkflow } from './floor-workflow';

/**
 * The floor alone, for comparing dev server settings (BENCHMARKS.md, "Dev server"): a file-backed
 * dev server started with TEMPORAL_DYNAMIC_CONFIG and TEMPORAL_SQLITE_PRAGMAS (or the platform's defaults), the floor's
 * worker processes, and the floor workflow at each level of LEVELS (1,64) for SECS (8) seconds.
 *
 *   TEMPORAL_DYNAMIC_CONFIG=history.transferProcessorMaxPollRPS=20 node --import tsx bench/probe-dev-server.ts
 */
const tools = await ensureTemporalTools();
const dir = join(DATA_DIR, 'probe-dev-server');
await rm(dir, { recursive: true, force: true });
const temporal = await startTemporalDevServer({ cli: tools.cli, port: await freeFixedPort(), namespaces: [FLOOR_NAMESPACE], dbFile: join(dir, 'temporal.db') });
const workers = startFloorWorkers({ ...process.env, TEMPORAL_ADDRESS: temporal.address });
const named = () => new Map(workers.map(({ name, child }) => [child.pid!, name]));
const { client } = await connectClient(temporalConnectionSettings({ ...process.env, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: FLOOR_NAMESPACE }));
await client.workflow.execute<typeof floorWorkflow>('floorWorkflow', { taskQueue: FLOOR_WORKFLOW_TASK_QUEUE, workflowId: `warm-up-${randomUUID()}` });
for (const concurrency of (process.env.LEVELS ?? '1,64').split(',').map(Number)) {
  const seconds = Number(process.env.SECS ?? 8);
  const until = Date.now() + seconds * 1000;
  const t0 = Date.now();
  const cpu0 = cpuSnapshot(named());
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        await client.workflow.execute<typeof floorWorkflow>('floorWorkflow', { taskQueue: FLOOR_WORKFLOW_TASK_QUEUE, workflowId: randomUUID() });
        done++;
      }
    }),
  );
  const perSecond = done / ((Date.now() - t0) / 1000);
  console.log(JSON.stringify({ concurrency, floor_per_s: Math.round(perSecond * 100) / 100, cpu_s: cpuBetween(cpu0, cpuSnapshot(named())) }));
}
workers.forEach(({ child }) => child.kill('SIGTERM'));
await temporal.stop();
process.exit(0);
