import { NativeConnection, Runtime, Worker, bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';

/** One process of the floor: one task queue, the same worker settings as the platform's pools. */
const taskQueue = process.argv[2]!;
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: ['SIGINT', 'SIGTERM'] });
const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
const worker = await Worker.create({
  connection,
  namespace: process.env.TEMPORAL_NAMESPACE!,
  taskQueue,
  activities: { noop: async () => undefined },
  maxConcurrentActivityTaskExecutions: Number(process.env.WORKER_MAX_CONCURRENT_ACTIVITIES ?? 20),
  ...(taskQueue === ORDERS_TASK_QUEUE
    ? { workflowBundle: await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)), logger: new DefaultLogger('WARN') }) }
    : {}),
});
await worker.run();
await connection.close();
