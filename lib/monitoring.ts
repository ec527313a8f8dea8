import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { duration, logLevel, parseEnv } from './config';
import { PROJECT_ROOT } from './infra/paths';

/**
 * The one monitoring config (monitoring.json), validated at start by every process. The
 * environment may override what differs per deployment: the sampling ratio, the OTLP endpoint,
 * the log level.
 */
export const monitoringSchema = z.strictObject({
  metrics: z.strictObject({
    business: z.array(z.string().regex(/^[a-z_]+$/)).min(1),
    technical: z.array(z.string().regex(/^[a-z_]+$/)).min(1),
  }),
  tracing: z.strictObject({
    sampleRatio: z.number().min(0).max(1),
    retention: duration,
    otlpEndpoint: z.string().url().optional(),
  }),
  logs: z.strictObject({ format: z.literal('json'), level: logLevel }),
});
export type MonitoringConfig = z.infer<typeof monitoringSchema>;

const overrides = z.object({
  MONITORING_CONFIG: z.string().default(join(PROJECT_ROOT, 'monitoring.json')),
  TRACING_SAMPLE_RATIO: z.coerce.number().min(0).max(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  LOG_LEVEL: logLevel.optional(),
});

export function loadMonitoringConfig(env: NodeJS.ProcessEnv = process.env): MonitoringConfig {
  const o = parseEnv(overrides, env);
  let file: unknown;
  try {
    file = JSON.parse(readFileSync(o.MONITORING_CONFIG, 'utf8'));
  } catch (err) {
    throw new Error(`monitoring config ${o.MONITORING_CONFIG}: ${(err as Error).message}`);
  }
  const parsed = monitoringSchema.safeParse(file);
  if (!parsed.success) {
    throw new Error(`monitoring config ${o.MONITORING_CONFIG}:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  const config = parsed.data;
  return {
    ...config,
    tracing: {
      ...config.tracing,
      ...(o.TRACING_SAMPLE_RATIO !== undefined ? { sampleRatio: o.TRACING_SAMPLE_RATIO } : {}),
      ...(o.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: o.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
    },
    logs: { ...config.logs, ...(o.LOG_LEVEL ? { level: o.LOG_LEVEL } : {}) },
  };
}
