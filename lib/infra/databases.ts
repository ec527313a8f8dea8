import pg from 'pg';
import { SERVICES, type Service } from '../../contracts/services';
import { migrate, migrationsDir } from '../../prisma/migrate';
import { seedInventory } from '../../prisma/inventory/seed';
import { ensureSandboxSchema } from '../sandbox';
import { ensureDatabases } from './postgres';

export type DatabaseName = Service | 'sandbox';
export const DATABASES: readonly DatabaseName[] = [...SERVICES, 'sandbox'];

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
  for (const service of SERVICES) await migrate(urls[service], migrationsDir(service));
  await seedInventory(urls.inventory);
  const sandbox = new pg.Pool({ connectionString: urls.sandbox, max: 1 });
  try {
    await ensureSandboxSchema(sandbox);
  } finally {
    await sandbox.end();
  }
}
