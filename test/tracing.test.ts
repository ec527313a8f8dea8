import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createOrdersDb, type OrdersDb } from '../activities/orders/db';
import { createApp } from '../api/app';
import { createPool, type Pool } from '../lib/db';
import { createLogger } from '../lib/logger';
import { loadMonitoringConfig } from '../lib/monitoring';
import { initTracing, type Tracing } from '../lib/tracing';
import { createTestDatabases } from './support/databases';
import { eventually, request, validOrder } from './support/http';
import { startInProcessPools } from './support/in-process-pools';
import { bundleWorkflows, quietRuntime } from './support/temporal';

/** One order, sampled at 1.0 into memory: its spans must form one tree from the HTTP request down. */
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let pools: Awaited<ReturnType<typeof startInProcessPools>>;
let connection: Connection;
let pool: Pool;
let db: OrdersDb;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  quietRuntime();
  tracing = initTracing({ service: 'tracing-test', sampleRatio: 1, exporter });
  const urls = await createTestDatabases('tracing');
  pools = await startInProcessPools({ urls, namespace: 'tracing', bundle: await bundleWorkflows(), tracing, env: { CARRIER_PICKUP_DELAY_MS: '0' } });
  connection = await Connection.connect({ address: inject('temporalAddress') });
  const client = new Client({ connection, namespace: 'tracing', interceptors: tracing.clientInterceptors });
  pool = createPool(urls.orders, 2, 'tracing-test');
  db = createOrdersDb(pool);
  server = await new Promise<Server>((resolve) => {
    const s = createApp({ client, db, log: createLogger('tracing-test', 'silent') }).listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  await pools?.stop();
  await db?.$disconnect();
  await pool?.end();
  await connection?.close();
  await tracing?.shutdown();
});

describe('tracing', () => {
  it('defaults to sampling 10% of traces, kept 7 days, from the validated monitoring config', () => {
    const config = loadMonitoringConfig({});
    expect(config.tracing).toMatchObject({ sampleRatio: 0.1, retention: '7d' });
    expect(config.logs).toEqual({ format: 'json', level: 'info' });
    expect(loadMonitoringConfig({ TRACING_SAMPLE_RATIO: '1' }).tracing.sampleRatio).toBe(1);
    expect(() => loadMonitoringConfig({ TRACING_SAMPLE_RATIO: '2' })).toThrow(/TRACING_SAMPLE_RATIO/);
  });

  it('follows one order from POST /orders through the workflow to every activity and its database calls', async () => {
    const placed = await request(baseUrl, 'POST', '/orders', { body: validOrder(), headers: { 'Idempotency-Key': randomUUID() } });
    expect(placed.status).toBe(202);
    await eventually(async () => ((await request(baseUrl, 'GET', `/orders/${placed.body.orderId}`)).body.status === 'COMPLETED' ? true : undefined), 'completion');

    // The workflow's own span ends after its last step is recorded, and reaches the exporter through a sink.
    const spans = await eventually(async () => {
      const finished = exporter.getFinishedSpans();
      return finished.some((s) => s.name === 'RunWorkflow:orderWorkflow') ? finished : undefined;
    }, 'the workflow span', 100, 50);
    const root = spans.find((s) => s.name === 'POST /orders' && !s.parentSpanId);
    expect(root).toBeDefined();
    const trace = spans.filter((s) => s.spanContext().traceId === root!.spanContext().traceId);
    const byId = new Map(trace.map((s) => [s.spanContext().spanId, s]));
    const ancestors = (s: ReadableSpan): string[] => {
      const chain: string[] = [];
      for (let p = s.parentSpanId ? byId.get(s.parentSpanId) : undefined; p; p = p.parentSpanId ? byId.get(p.parentSpanId) : undefined) chain.push(p.name);
      return chain;
    };
    const names = new Set(trace.map((s) => s.name));
    expect(names).toContain('StartWorkflow:orderWorkflow');
    expect(names).toContain('RunWorkflow:orderWorkflow');
    for (const activity of ['recordOrderPlaced', 'reserveStock', 'authorisePayment', 'createShipment', 'capturePayment', 'commitStock']) {
      const run = trace.find((s) => s.name === `RunActivity:${activity}`);
      expect(run, activity).toBeDefined();
      // each activity hangs off the workflow, which hangs off the request
      expect(ancestors(run!)).toEqual(expect.arrayContaining(['RunWorkflow:orderWorkflow', 'POST /orders']));
      // and the database work it did is inside it
      expect(trace.some((s) => s.name.startsWith('prisma:') && ancestors(s).includes(`RunActivity:${activity}`)), `${activity} db spans`).toBe(true);
    }
  });
});
