import pg from 'pg';
import { SERVICES, type Service } from '../../contracts/services';
import { migrate, migrationsDir } from '../../prisma/migrate';
import { seedInventory } from '../../prisma/inventory/seed';
import { ensureSandboxSchema } from '../sandbox';
import { ensureDatabases } from './postgres';

/** The auth service owns a database too, though it runs no task queue. */
export const AUTH_DATABASE = 'auth';
/** Databases with committed migrations: each service's, and the auth service's. */
export type MigratedDatabase = Service | typeof AUTH_DATABASE;
export const MIGRATED_DATABASES: readonly MigratedDatabase[] = [...SERVICES, AUTH_DATABASE];
export type DatabaseName = MigratedDatabase | 'sandbox';
export const DATABASES: readonly DatabaseName[] = [...MIGRATED_DATABASES, 'sandbox'];

/** The environment variable that carries each database's URL to the processes. */
export const databaseUrlVar = (db: DatabaseName): string => `${db.toUpperCase()}_DATABASE_URL`;

/**
 * Brings every database to the committed schema: creates those missing (when given a server to
 * create them on), applies each service's migrations, creates the sandbox ledger, seeds the catalogue.
 */
export async function prepareDatabases(urls: Record<DatabaseName, string>, create?: { adminUrl: string }): Promise<void> {
  if (create) {
    await ensureDatabases(
      create.adminUrl,
      DATABASES.map((db) => new URL(urls[db]).pathname.slice(1)),
    );
  }
  for (const db of MIGRATED_DATABASES) await migrate(urls[db], migrationsDir(db));
  await seedInventory(urls.inventory);
  const sandbox = new pg.Pool({ connectionString: urls.sandbox, max: 1 });
  try {
    await ensureSandboxSchema(sandbox);
  } finally {
    await sandbox.end();
  }
}
