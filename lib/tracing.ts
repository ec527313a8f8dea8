import { createRequire } from 'node:module';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { PrismaInstrumentation } from '@prisma/instrumentation';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { RequestHandler } from 'express';

/** Bundled into the workflow code so workflow spans join the trace of the request that started them. */
export const WORKFLOW_TRACING_MODULES = [createRequire(import.meta.url).resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')];

export interface TracingOptions {
  service: string;
  /** share of new traces kept; a trace continued from a caller keeps the caller's decision */
  sampleRatio: number;
  otlpEndpoint?: string;
  /** tests pass an in-memory exporter; spans are then exported at once */
  exporter?: SpanExporter;
}

export interface Tracing {
  /** for Client({ interceptors }) */
  clientInterceptors: { workflow: OpenTelemetryWorkflowClientInterceptor[] };
  /** for Worker.create: activity interceptors and the sink that exports workflow spans */
  activityInterceptors: Array<
    (ctx: ConstructorParameters<typeof OpenTelemetryActivityInboundInterceptor>[0]) => {
      inbound: OpenTelemetryActivityInboundInterceptor;
      outbound: OpenTelemetryActivityOutboundInterceptor;
    }
  >;
  sinks: { exporter: ReturnType<typeof makeWorkflowExporter> };
  shutdown: () => Promise<void>;
}

/**
 * OpenTelemetry for one process: parent-based sampling at `sampleRatio`, OTLP export when an
 * endpoint is configured, Prisma's query spans, and Temporal's interceptors so that one trace
 * runs from POST /orders through the workflow to every activity and its database calls.
 */
export function initTracing({ service, sampleRatio, otlpEndpoint, exporter }: TracingOptions): Tracing {
  const resource = new Resource({ 'service.name': service });
  const spanProcessor: SpanProcessor = exporter
    ? new SimpleSpanProcessor(exporter)
    : otlpEndpoint
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpEndpoint.replace(/\/$/, '')}/v1/traces` }))
      : new NoopSpanProcessor();
  const provider = new NodeTracerProvider({
    resource,
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) }),
    spanProcessors: [spanProcessor],
  });
  provider.register();
  const unregister = registerInstrumentations({ tracerProvider: provider, instrumentations: [new PrismaInstrumentation()] });
  return {
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    activityInterceptors: [
      (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
    ],
    sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
    shutdown: async () => {
      unregister();
      await provider.shutdown();
    },
  };
}

/**
 * The API's server span for each request, named by route, continuing a caller's trace when it
 * sends `traceparent`. Written here rather than with the HTTP auto-instrumentation, which must
 * patch `http` before anything imports it — fragile under ESM.
 */
export const httpTracing: RequestHandler = (req, res, next) => {
  const parent = propagation.extract(context.active(), req.headers);
  const tracer = trace.getTracer('order-platform-api');
  const span = tracer.startSpan(
    `${req.method} ${req.path}`,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
    parent,
  );
  res.on('finish', () => {
    // Express types `req.route` as any; it is the matched layer's route, with the pattern as `path`.
    const routePath = (req.route as { path?: unknown } | undefined)?.path;
    const route = typeof routePath === 'string' ? `${req.baseUrl}${routePath}` : undefined;
    if (route) span.updateName(`${req.method} ${route}`).setAttribute('http.route', route);
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), next);
};
