import pg from 'pg';
import { inject } from 'vitest';
import { DATABASES, prepareDatabases, type DatabaseName } from '../../lib/infra/databases';
import { postgresUrl } from '../../lib/infra/postgres';

/**
 * A fresh set of the platform's databases on the test PostgreSQL, migrated and seeded, named
 * with `prefix` so that test files running side by side never share a row.
 */
export async function createTestDatabases(prefix: string): Promise<Record<DatabaseName, string>> {
  const port = inject('pgPort');
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const urls = Object.fromEntries(DATABASES.map((db) => [db, postgresUrl(port, `${safe}_${db}`)])) as Record<DatabaseName, string>;
  await prepareDatabases(urls, { adminUrl: postgresUrl(port, 'postgres') });
  return urls;
}

/** One query on one of the platform's databases, on a connection of its own. */
export async function queryDatabase<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
