import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startTemporalDevServer } from '../lib/infra/temporal';
import { ensureTemporalTools } from '../lib/infra/tools';
import { PROJECT_ROOT, DATA_DIR } from '../lib/infra/paths';
import { freePort } from '../lib/net';
import { rm } from 'node:fs/promises';
import { cpuSnapshot, cpuBetween } from './breakdown';
const tools = await ensureTemporalTools();
const dir = join(DATA_DIR, 'floorprobe');
await rm(dir, { recursive: true, force: true });
const temporal = await startTemporalDevServer({ cli: tools.cli, port: await freePort(), namespaces: ['floor'], dbFile: join(dir, 't.db') });
const workers = ['orders', 'inventory', 'payments', 'shipping'].map((q) => spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'floor-worker.ts'), q], { cwd: PROJECT_ROOT, env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: 'floor' }, stdio: 'inherit' }));
const client = new Client({ connection: await Connection.connect({ address: temporal.address }), namespace: 'floor' });
await client.workflow.execute('floorWorkflow', { taskQueue: 'orders', workflowId: 'warm' });
for (const c of (process.env.LEVELS ?? '1,64').split(',').map(Number)) {
  const secs = Number(process.env.SECS ?? 8);
  const until = Date.now() + secs * 1000; let n = 0; const t0 = Date.now();
  const c0 = cpuSnapshot(new Map(workers.map((w, i) => [w.pid!, 'w' + i])));
  await Promise.all(Array.from({ length: c }, async () => { while (Date.now() < until) { await client.workflow.execute('floorWorkflow', { taskQueue: 'orders', workflowId: randomUUID() }); n++; } }));
  const c1 = cpuSnapshot(new Map(workers.map((w, i) => [w.pid!, 'w' + i])));
  console.log(JSON.stringify({ dc: process.env.TEMPORAL_DYNAMIC_CONFIG, c, per_s: +(n / ((Date.now() - t0) / 1000)).toFixed(2), cpu: cpuBetween(c0, c1) }));
}
workers.forEach((w) => w.kill('SIGTERM'));
await temporal.stop();
process.exit(0);
