import { z } from 'zod';
import { localDatabaseUrl, parseEnv } from '../lib/config';
import { DATABASES, databaseUrlVar, prepareDatabases, type DatabaseName } from '../lib/infra/databases';

/**
 * The one-shot `migrate` step of docker-compose.yml: applies each service's migrations, creates the
 * sandbox ledger and seeds the catalogue, then exits 0 so the API and the worker pools may start.
 * The databases themselves must exist already (docker/postgres-init.sql creates them).
 */
const config = parseEnv(z.object(Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), z.string().url().default(localDatabaseUrl(db))]))));
const urls = Object.fromEntries(DATABASES.map((db) => [db, config[databaseUrlVar(db)]])) as Record<DatabaseName, string>;

try {
  await prepareDatabases(urls);
  console.log(`[migrate] ${DATABASES.join(', ')}: migrated and seeded`);
  process.exit(0);
} catch (err) {
  console.error('[migrate] failed:', err);
  process.exit(1);
}
