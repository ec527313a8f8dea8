import pg from 'pg';
import type { Logger } from './logger';
import { trackPool } from './metrics';

/**
 * One bounded connection pool per process and database. Its size comes from config; the
 * connect timeout turns an exhausted pool into an error the activity retries, not a hang.
 */
export function createPool(
  connectionString: string,
  max: number,
  applicationName: string,
  log?: Pick<Logger, 'warn'>,
  { statementTimeoutMs }: { statementTimeoutMs?: number } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    application_name: applicationName,
    // a request's deadline reaches its queries too: the server cancels a statement past it
    ...(statementTimeoutMs ? { statement_timeout: statementTimeoutMs } : {}),
  });
  // An idle connection dropped by the server (a restart, a failover) is replaced on next use;
  // unhandled, this event would crash the process.
  pool.on('error', (err) => log?.warn({ err, applicationName }, 'idle database connection lost'));
  // The same for a connection checked out between two queries (pg-pool drops its own listener
  // then): the next query fails and is retried, instead of the process dying on the event.
  pool.on('connect', (client) => client.on('error', (err) => log?.warn({ err, applicationName }, 'database connection lost')));
  return trackPool(new URL(connectionString).pathname.slice(1) || 'postgres', pool);
}
export type Pool = pg.Pool;
