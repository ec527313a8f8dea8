import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { startTemporalDevServer } from '../lib/infra/temporal';
import { ensureTemporalTools } from '../lib/infra/tools';
import { freePort } from '../lib/net';

Runtime.install({ logger: new DefaultLogger('WARN') });
const tools = await ensureTemporalTools();
const temporal = await startTemporalDevServer({ cli: tools.cli, port: await freePort(), namespaces: ['default'] });
const nc = await NativeConnection.connect({ address: temporal.address });
const bundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)) });
const workers = await Promise.all(['orders', 'inventory', 'payments', 'shipping'].map((taskQueue) =>
  Worker.create({ connection: nc, taskQueue, activities: { noop: async () => undefined }, ...(taskQueue === 'orders' ? { workflowBundle: bundle, ...(process.env.PROBE_OPTS ? JSON.parse(process.env.PROBE_OPTS) : {}) } : {}) })));
const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
const run = async () => {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    await client.workflow.execute('floorWorkflow', { taskQueue: 'orders', workflowId: `p-${i}-${Date.now()}` });
    times.push(Date.now() - t);
  }
  console.log('floor workflow ms (in-process workers):', times);
};
const done = run();
await Promise.all(workers.map((w) => w.runUntil(done)));
await temporal.stop();
