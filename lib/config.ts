import { z } from 'zod';

/**
 * Parses process.env once, at start, and fails with a message that names each bad variable.
 * Every process has its own schema built from these pieces; defaults serve the local setup.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${problems}`);
  }
  return parsed.data;
}

export const LOCAL_PG_PORT = 54329;
export const LOCAL_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export const localDatabaseUrl = (database: string, port = LOCAL_PG_PORT): string => `postgresql://postgres:postgres@127.0.0.1:${port}/${database}`;

/** A pool size: bounded on purpose, because every process opening unbounded pools once took the database down. */
export const poolSize = (fallback: number) => z.coerce.number().int().min(1).max(50).default(fallback);

export const logLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info');

export const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as 48h or 7d');

/** A comma-separated list of URLs (a trailing slash dropped from each); empty by default. */
export const urlList = (fallback = '') =>
  z
    .string()
    .default(fallback)
    .transform((list) =>
      list
        .split(',')
        .map((url) => url.trim().replace(/\/+$/, ''))
        .filter(Boolean),
    )
    .pipe(z.array(z.url()));

/** An issuer's URL as tokens carry it in `iss`: no trailing slash. */
export const issuerUrl = (fallback: string) =>
  z
    .string()
    .url()
    .default(fallback)
    .transform((url) => url.replace(/\/+$/, ''));

/** A setting given as JSON, parsed, then checked by `schema`; the message names what is wrong. */
export const jsonSetting = <S extends z.ZodType>(schema: S) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
