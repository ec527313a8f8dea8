import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { inject } from 'vitest';
import { DATABASES, prepareDatabases, type DatabaseName } from '../../lib/infra/databases';
import { postgresUrl } from '../../lib/infra/postgres';
import { createOrdersDb, type OrdersDb } from '../../activities/orders/db';
import { createPool } from '../../lib/db';

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

/**
 * An orders database client whose server is down: a pool (of the API's kind) to a port on this
 * machine that nothing listens on, so every statement meets a refused connection.
 */
export async function unreachableOrdersDb(): Promise<{ db: OrdersDb; close: () => Promise<void> }> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const pool = createPool(`postgresql://orders:orders@127.0.0.1:${port}/orders`, 2, 'test-unreachable');
  const db = createOrdersDb(pool);
  return {
    db,
    close: async () => {
      await db.$disconnect();
      await pool.end();
    },
  };
}
