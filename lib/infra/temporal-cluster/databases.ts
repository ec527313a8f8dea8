import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ensureDatabases } from '../postgres';
import { postgresSchemaDir } from './tools';

const run = promisify(execFile);

/** The two databases of one cluster: its state (histories, shards, queues, membership) and its visibility store. */
export interface ClusterDatabases {
  persistence: string;
  visibility: string;
}

/** Where the server reaches PostgreSQL, read from the admin URL it was given. */
export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export function postgresEndpoint(adminUrl: string): PostgresEndpoint {
  const url = new URL(adminUrl);
  return {
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

/**
 * Database names for a cluster kept in `dataDir`: the folder's name, for whoever lists the
 * databases, plus a hash of its full path, so two checkouts (or two test runs) sharing one
 * PostgreSQL never share a cluster's state.
 */
export function clusterDatabaseNames(dataDir: string): ClusterDatabases {
  const path = resolve(dataDir);
  const slug = basename(path)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 30);
  const hash = createHash('sha256').update(path).digest('hex').slice(0, 8);
  const base = `temporal_${slug ? `${slug}_` : ''}${hash}`;
  return { persistence: base, visibility: `${base}_visibility` };
}

/**
 * Creates the cluster's databases when missing and brings both schemas to the server's version with
 * its own SQL tool and the schema files shipped in its module: `setup-schema -v 0.0` makes the
 * version tables (and does nothing once they exist), `update-schema` applies each versioned update
 * the database has not had yet. A second start on the same databases therefore only updates.
 */
export async function prepareClusterDatabases({
  adminUrl,
  databases,
  sqlTool,
  moduleDir,
  log = () => undefined,
}: {
  adminUrl: string;
  databases: ClusterDatabases;
  sqlTool: string;
  moduleDir: string;
  log?: (msg: string) => void;
}): Promise<void> {
  await ensureDatabases(adminUrl, [databases.persistence, databases.visibility]);
  const pg = postgresEndpoint(adminUrl);
  const schema = async (database: string, store: 'temporal' | 'visibility') => {
    // The tool reads its connection from SQL_* variables: the password stays out of the process list.
    const env = {
      ...process.env,
      SQL_PLUGIN: 'postgres12',
      SQL_HOST: pg.host,
      SQL_PORT: String(pg.port),
      SQL_USER: pg.user,
      SQL_PASSWORD: pg.password,
      SQL_DATABASE: database,
    };
    const tool = async (args: string[]) => {
      try {
        await run(sqlTool, args, { env, maxBuffer: 16 * 1024 * 1024 });
      } catch (err) {
        const { stderr, stdout } = err as { stderr?: string; stdout?: string };
        throw new Error(`temporal-sql-tool ${args.join(' ')} on ${database} failed:\n${(stderr || stdout || String(err)).trim().slice(-2000)}`);
      }
    };
    await tool(['setup-schema', '-v', '0.0']);
    await tool(['update-schema', '-d', `${postgresSchemaDir(moduleDir, store)}/versioned`]);
    log(`database ${database}: ${store} schema up to date`);
  };
  await Promise.all([schema(databases.persistence, 'temporal'), schema(databases.visibility, 'visibility')]);
}

/**
 * Empties the membership table of a cluster none of whose nodes runs. A node bootstraps its ring
 * from the hosts that heartbeated in the last 20 s; after a restart those are the previous run's
 * nodes, now gone, and joining them costs the 30 s join timeout before the node gives up on them.
 */
export async function forgetClusterMembers(adminUrl: string, database: string): Promise<void> {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query('DELETE FROM cluster_membership');
  } finally {
    await client.end();
  }
}
