import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { CompleteAsyncError, Context } from '@temporalio/activity';
import { Runtime, Worker, bundleWorkflowCode, DefaultLogger, type WorkerOptions } from '@temporalio/worker';
import { connectClient, connectWorker, temporalConnectionSettings } from '../lib/temporal/connection';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';
import { FLOOR_CALLS, FLOOR_WORKFLOW_TASK_QUEUE, confirmPickupSignal, type FloorService } from './floor-contract';

/**
 * One process of the floor: one task queue, the same worker settings as the platform's pools.
 * The workflow's queue runs the floor workflow and nothing else; a service's queue runs that
 * service's no-op calls.
 */
const taskQueue = process.argv[2]!;
// The floor is bare Temporal work: the platform's connection, without its payload codec.
const settings = temporalConnectionSettings();
const { namespace } = settings;
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGINT', 'SIGTERM'] });
const connection = await connectWorker(settings);

let role: Pick<WorkerOptions, 'workflowBundle' | 'activities'>;
let client: Client | undefined;
if (taskQueue === FLOOR_WORKFLOW_TASK_QUEUE) {
  role = {
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    }),
  };
} else if (taskQueue in FLOOR_CALLS) {
  const calls: readonly string[] = FLOOR_CALLS[taskQueue as FloorService];
  const activities: Record<string, () => Promise<void>> = Object.fromEntries(calls.map((name) => [name, async () => undefined]));
  if (taskQueue === SHIPPING_TASK_QUEUE) {
    // The pickup signal comes from this process, as the platform's comes from its shipping pool
    // (which relays the carrier's pickup to the order once the shipment exists). To send it only
    // once the server has recorded the shipment's completion, this process reports that completion
    // itself (the same RespondActivityTaskCompleted call the worker would make, on the client's
    // connection) and signals when it is acknowledged. Sent as soon as the no-op returned, the
    // signal overtook the completion in 28 of 80 workflows at 8 in flight.
    ({ client } = await connectClient(settings));
    const pickups = client;
    activities.createShipment = async () => {
      const { taskToken, workflowExecution } = Context.current().info;
      const workflowId = workflowExecution!.workflowId; // always run by the floor workflow
      pickups.activity
        .complete(taskToken, undefined)
        .then(() => pickups.workflow.getHandle(workflowId).signal(confirmPickupSignal))
        .catch((err: unknown) => console.error(`[floor] pickup of ${workflowId} failed:`, err));
      throw new CompleteAsyncError();
    };
  }
  role = { activities };
} else {
  throw new Error(`the floor has no worker for task queue ${taskQueue}`);
}

const worker = await Worker.create({
  connection,
  namespace,
  taskQueue,
  maxConcurrentActivityTaskExecutions: Number(process.env.WORKER_MAX_CONCURRENT_ACTIVITIES ?? 20),
  ...role,
});
await worker.run();
await client?.connection.close();
await connection.close();
