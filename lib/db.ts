import pg from 'pg';

/**
 * One bounded connection pool per process and database. Its size comes from config; the
 * connect timeout turns an exhausted pool into an error the activity retries, not a hang.
 */
export function createPool(connectionString: string, max: number, applicationName: string): pg.Pool {
  return new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
    application_name: applicationName,
  });
}
export type Pool = pg.Pool;
