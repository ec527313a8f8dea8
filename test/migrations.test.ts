import { createHash, randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postgresUrl } from '../lib/infra/postgres';
import { migrate, migrationsDir } from '../prisma/migrate';
import { queryDatabase } from './support/databases';

const INIT = '20261125000000_init';
const port = inject('pgPort');
const created: string[] = [];
let admin: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl(port, 'postgres') });
  await admin.connect();
});

afterAll(async () => {
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin?.end();
});

/** A brand-new, empty database; returns its URL. */
async function freshDatabase(): Promise<string> {
  const name = `migrate_${randomUUID().replace(/-/g, '')}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  created.push(name);
  return postgresUrl(port, name);
}

const migrationRows = (url: string) =>
  queryDatabase<{ id: string; migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null; applied_steps_count: number }>(
    url,
    'SELECT id, migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY started_at',
  );

const tables = (url: string) =>
  queryDatabase<{ table_name: string }>(url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`).then(
    (rows) => rows.map((r) => r.table_name),
  );

describe('migrate', () => {
  it('applies the init migration to a brand-new database and records it as prisma does', async () => {
    const url = await freshDatabase();
    const sql = await readFile(join(migrationsDir('payments'), INIT, 'migration.sql'));
    const checksum = createHash('sha256').update(sql).digest('hex');

    const result = await migrate(url, migrationsDir('payments'));

    expect(result).toEqual({ applied: [INIT], alreadyApplied: [] });
    const rows = await migrationRows(url);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ migration_name: INIT, checksum, rolled_back_at: null, applied_steps_count: 1 });
    expect(rows[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]?.finished_at).toBeInstanceOf(Date);
    expect(await tables(url)).toEqual(['_prisma_migrations', 'payment_operations', 'payments']);
  });

  it('applies nothing the second time', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir('payments'));
    const before = await migrationRows(url);

    const again = await migrate(url, migrationsDir('payments'));

    expect(again).toEqual({ applied: [], alreadyApplied: [INIT] });
    expect(await migrationRows(url)).toEqual(before);
  });

  it('two processes migrating at once apply each migration once, in order', async () => {
    const url = await freshDatabase();
    // inventory has two migrations: the init and the reservation expiry added later
    const all = (await readdir(migrationsDir('inventory'), { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(all).toEqual([INIT, '20261125120000_reservation_expiry']);

    const results = await Promise.all([migrate(url, migrationsDir('inventory')), migrate(url, migrationsDir('inventory'))]);

    expect(results.map((r) => r.applied).flat()).toEqual(all);
    expect(results.map((r) => r.alreadyApplied).flat()).toEqual(all);
    expect((await migrationRows(url)).map((r) => r.migration_name)).toEqual(all);
    expect(
      await queryDatabase(url, `SELECT column_name FROM information_schema.columns WHERE table_name = 'reservations' AND column_name = 'expires_at'`),
    ).toHaveLength(1);
  });

  it('refuses to go on when an applied migration was edited', async () => {
    const url = await freshDatabase();
    await migrate(url, migrationsDir('payments'));
    // Same effect as editing migration.sql after it ran: the recorded checksum no longer matches.
    await queryDatabase(url, `UPDATE "_prisma_migrations" SET checksum = $1 WHERE migration_name = $2`, ['0'.repeat(64), INIT]);

    await expect(migrate(url, migrationsDir('payments'))).rejects.toThrow(/20261125000000_init was edited after it was applied/);
    expect((await migrationRows(url)).map((r) => r.checksum)).toEqual(['0'.repeat(64)]);
  });
});
