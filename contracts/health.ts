import { z } from 'zod';

/**
 * The health report every platform process answers on /healthz: the API for the whole platform,
 * each pool process for its own databases. The API reads the pools' reports, so both sides parse
 * the same schema.
 */
export const healthCheckSchema = z.object({
  service: z.string().meta({ description: 'what was checked: a service, or a database of a pool process' }),
  ok: z.boolean(),
  error: z.string().optional().meta({ description: 'why the check failed' }),
});
export type HealthCheck = z.infer<typeof healthCheckSchema>;

export const healthReportSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.array(healthCheckSchema),
});
export type HealthReport = z.infer<typeof healthReportSchema>;

export const healthReport = (checks: HealthCheck[]): HealthReport => ({ status: checks.every((c) => c.ok) ? 'ok' : 'unavailable', checks });

/** The outcome of one probe: ok, or the reason it failed. */
export async function probe(service: string, check: () => Promise<unknown>): Promise<HealthCheck> {
  try {
    await check();
    return { service, ok: true };
  } catch (err) {
    return { service, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Rejects when `work` takes longer than `ms`: a health check reports the state now, it does not wait for recovery. */
export function within<T>(ms: number, work: Promise<T>, what = 'the check'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
