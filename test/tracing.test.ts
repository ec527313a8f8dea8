import { randomUUID } from 'node:crypto';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMonitoringConfig } from '../lib/monitoring';
import { initTracing, type Tracing } from '../lib/tracing';
import { eventually, request, validOrder } from './support/http';
import { startInProcessApi } from './support/in-process-api';

/** One order, sampled at 1.0 into memory: its spans must form one tree from the HTTP request down. */
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
let baseUrl: string;

beforeAll(async () => {
  tracing = initTracing({ service: 'tracing-test', sampleRatio: 1, exporter });
  platform = await startInProcessApi({ prefix: 'tracing', namespace: 'tracing', tracing, env: { CARRIER_PICKUP_DELAY_MS: '0' } });
  baseUrl = platform.baseUrl;
});

afterAll(async () => {
  await platform?.stop();
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
    const auth = await platform.auth.as('storefront');
    const placed = await request(baseUrl, 'POST', '/orders', { body: validOrder(), headers: { ...auth, 'Idempotency-Key': randomUUID() } });
    expect(placed.status).toBe(202);
    await eventually(
      async () => ((await request(baseUrl, 'GET', `/orders/${placed.body.orderId}`, { headers: auth })).body.status === 'COMPLETED' ? true : undefined),
      'completion',
    );

    // The workflow's own span ends after its last step is recorded, and reaches the exporter through a sink.
    const spans = await eventually(
      async () => {
        const finished = exporter.getFinishedSpans();
        return finished.some((s) => s.name === 'RunWorkflow:orderWorkflow') ? finished : undefined;
      },
      'the workflow span',
      100,
      50,
    );
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
      expect(
        trace.some((s) => s.name.startsWith('prisma:') && ancestors(s).includes(`RunActivity:${activity}`)),
        `${activity} db spans`,
      ).toBe(true);
    }
  });
});
