import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { postgresUrl } from '../../lib/infra/postgres';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../lib/infra/temporal';
import { clusterDynamicConfig, nodeServerConfig, renderDynamicConfig, renderServerConfig } from '../../lib/infra/temporal-cluster/server-config';
import { ensureTemporalServerTools, TEMPORAL_SERVER_VERSION, type TemporalServerTools } from '../../lib/infra/temporal-cluster/tools';
import {
  command,
  compose,
  composeText,
  environment,
  imageVersion,
  mountedProjectFile,
  replicas,
  service,
  shellScript,
  temporalNodes,
} from '../support/compose';

/**
 * The Temporal server configs this repository ships or writes, checked by the real server binary
 * (built once into .tools/, a few minutes the first time): the containerised cluster's template
 * (docker/temporal/config.yaml.tmpl) rendered with `render-config`, which also validates it, and
 * every dynamic config file through `validate-dynamic-config`, which knows each key and its type;
 * then docker-compose.yml's nodes as the server sees them (the file each mounts, with the environment
 * compose and the image's entrypoint give it), and its schema job run against a real PostgreSQL.
 */
const run = promisify(execFile);
const TEMPLATE = join(PROJECT_ROOT, 'docker', 'temporal', 'config.yaml.tmpl');
const DOCKER_DYNAMIC_CONFIG = join(PROJECT_ROOT, 'docker', 'temporal', 'dynamicconfig.yaml');

let tools: TemporalServerTools;
let server: string;
let dir: string;

beforeAll(async () => {
  tools = await ensureTemporalServerTools((msg) => console.log(`[temporal-config] ${msg}`));
  server = tools.server;
  dir = await mkdtemp(join(tmpdir(), 'temporal-config-'));
}, 900_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The config as the server loads it, with nothing from this machine's environment but PATH. */
async function renderConfig(file: string, env: Record<string, string> = {}): Promise<any> {
  // render-config reads <config dir>/<env>.yaml, as the server's legacy loader does.
  const configDir = await mkdtemp(join(dir, 'render-'));
  await copyFile(file, join(configDir, 'docker.yaml'));
  try {
    const { stdout } = await run(server, ['--config', configDir, '--env', 'docker', 'render-config'], { env: { PATH: process.env.PATH ?? '', ...env } });
    return parse(stdout);
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`render-config failed: ${(stderr || stdout || String(err)).trim()}`);
  }
}

/** validate-dynamic-config's findings: errors fail the command, unknown keys and wrong types are only warned about. */
async function validateDynamicConfig(file: string): Promise<string[]> {
  const { stdout } = await run(server, ['validate-dynamic-config', file]).catch((err: Error & { stdout?: string }) => ({ stdout: err.stdout ?? err.message }));
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('error:') || line.startsWith('warning:'));
}

const TLS_ENV = {
  TEMPORAL_TLS_ENABLED: 'true',
  TEMPORAL_TLS_CA: '/etc/temporal/tls/ca.pem',
  TEMPORAL_TLS_FRONTEND_CERT: '/etc/temporal/tls/frontend.pem',
  TEMPORAL_TLS_FRONTEND_KEY: '/etc/temporal/tls/frontend.key',
  TEMPORAL_TLS_FRONTEND_SERVER_NAME: 'temporal',
  TEMPORAL_TLS_INTERNODE_CERT: '/etc/temporal/tls/internode.pem',
  TEMPORAL_TLS_INTERNODE_KEY: '/etc/temporal/tls/internode.key',
  TEMPORAL_TLS_INTERNODE_SERVER_NAME: 'internode.temporal',
};
const DB_ENV = { POSTGRES_SEEDS: 'temporal-db', POSTGRES_USER: 'temporal', POSTGRES_PWD: 'not-a-real-password' };

describe('docker/temporal/config.yaml.tmpl', () => {
  it('renders a valid PostgreSQL cluster config with mutual TLS from the environment', async () => {
    const config = await renderConfig(TEMPLATE, { ...DB_ENV, ...TLS_ENV });
    const { persistence, global, services, dynamicConfigClient } = config;
    expect(persistence.numHistoryShards).toBe(16);
    expect(persistence.datastores.default.sql).toMatchObject({
      pluginName: 'postgres12',
      databaseName: 'temporal',
      connectAddr: 'temporal-db:5432',
      user: 'temporal',
    });
    expect(persistence.datastores.visibility.sql).toMatchObject({
      pluginName: 'postgres12',
      databaseName: 'temporal_visibility',
      connectAddr: 'temporal-db:5432',
    });
    // render-config masks secrets; the password was there to mask.
    expect(JSON.stringify(config)).not.toContain(DB_ENV.POSTGRES_PWD);
    expect(global.tls.frontend.server).toMatchObject({
      certFile: TLS_ENV.TEMPORAL_TLS_FRONTEND_CERT,
      requireClientAuth: true,
      clientCaFiles: [TLS_ENV.TEMPORAL_TLS_CA],
    });
    expect(global.tls.internode.server).toMatchObject({ certFile: TLS_ENV.TEMPORAL_TLS_INTERNODE_CERT, requireClientAuth: true });
    expect(global.tls.internode.client.serverName).toBe('internode.temporal');
    expect(global.tls.systemWorker).toMatchObject({
      certFile: TLS_ENV.TEMPORAL_TLS_INTERNODE_CERT,
      client: { serverName: 'temporal', rootCaFiles: [TLS_ENV.TEMPORAL_TLS_CA] },
    });
    expect(Object.fromEntries(Object.entries(services).map(([name, s]: [string, any]) => [name, s.rpc.grpcPort]))).toEqual({
      frontend: 7233,
      history: 7234,
      matching: 7235,
      worker: 7239,
    });
    expect(dynamicConfigClient.filepath).toBe('/etc/temporal/config/dynamicconfig/platform.yaml');
  });

  it('renders without TLS unless asked, and takes the shard count, ports and database names from the environment', async () => {
    const config = await renderConfig(TEMPLATE, { ...DB_ENV, NUM_HISTORY_SHARDS: '64', FRONTEND_GRPC_PORT: '17233', DBNAME: 'orders_temporal' });
    expect(config.persistence.numHistoryShards).toBe(64);
    expect(config.persistence.datastores.default.sql.databaseName).toBe('orders_temporal');
    expect(config.services.frontend.rpc.grpcPort).toBe(17233);
    expect(config.global.tls.frontend.server.certFile ?? '').toBe('');
    expect(config.global.tls.internode.server.requireClientAuth ?? false).toBe(false);
  });

  it('refuses to render without a database host, or with TLS on and a certificate missing, naming the variable', async () => {
    await expect(renderConfig(TEMPLATE, {})).rejects.toThrow(/POSTGRES_SEEDS/);
    const { TEMPORAL_TLS_FRONTEND_KEY: _missing, ...withoutKey } = TLS_ENV;
    await expect(renderConfig(TEMPLATE, { ...DB_ENV, ...withoutKey })).rejects.toThrow(/TEMPORAL_TLS_FRONTEND_KEY/);
  });
});

describe('dynamic config', () => {
  it('docker/temporal/dynamicconfig.yaml has only known keys with valid values: the local cluster’s, which has every dev server setting', async () => {
    expect(await validateDynamicConfig(DOCKER_DYNAMIC_CONFIG)).toEqual([]);
    const docker = parse(await readFile(DOCKER_DYNAMIC_CONFIG, 'utf8')) as Record<string, Array<{ value: unknown }>>;
    const cluster = clusterDynamicConfig();
    expect(Object.fromEntries(Object.entries(docker).map(([key, [setting]]) => [key, setting?.value]))).toEqual(cluster);
    const dev = Object.fromEntries(DEV_SERVER_DYNAMIC_CONFIG.map((s) => s.split('=')));
    for (const [key, value] of Object.entries(dev)) expect(String(cluster[key]), key).toBe(value);
  });

  it('a mistyped key or a value of the wrong type is caught', async () => {
    const file = join(dir, 'bad-dynamicconfig.yaml');
    await writeFile(file, 'history.transferProcessorMaxPollRPZ:\n  - value: 100\nhistory.timerProcessorMaxPollRPS:\n  - value: lots\n');
    const findings = await validateDynamicConfig(file);
    expect(findings.join('\n')).toMatch(/unregistered key "history.transferprocessormaxpollrpz"/i);
    expect(findings.join('\n')).toMatch(/timerprocessormaxpollrps.*not int/i);
  });
});

describe('the local cluster’s config (lib/infra/temporal-cluster)', () => {
  it('writes a dynamic config the server accepts without a warning', async () => {
    const file = join(dir, 'cluster-dynamicconfig.yaml');
    await writeFile(file, renderDynamicConfig(clusterDynamicConfig()));
    expect(await validateDynamicConfig(file)).toEqual([]);
  });

  it('writes node configs the server loads and validates: every service named, the node’s own with its ports, mTLS throughout', async () => {
    const certs = (name: string) => ({ cert: `/certs/${name}.pem`, key: `/certs/${name}.key` });
    const node = { name: 'history-1', service: 'history' as const, ports: { grpc: 20001, membership: 20002, metrics: 20003 } };
    const file = join(dir, 'history-1.yaml');
    const other = (n: number) => ({ grpc: n, membership: n + 1, metrics: n + 2 });
    const layout = {
      shards: 16,
      services: { frontend: other(20000), matching: other(20010), worker: other(20020), history: other(20030) },
      postgres: { host: '127.0.0.1', port: 54329, user: 'postgres', password: 'postgres' },
      databases: { persistence: 'temporal_x', visibility: 'temporal_x_visibility' },
      certificates: { ca: '/certs/ca.pem', frontend: certs('frontend'), internode: certs('internode'), client: certs('client') },
      frontendPort: 20000,
      dynamicConfigFile: '/cluster/dynamicconfig.yaml',
      logLevel: 'info',
    };
    await writeFile(file, renderServerConfig(node, nodeServerConfig(layout, node)));
    const config = await renderConfig(file);
    expect(Object.keys(config.services).sort()).toEqual(['frontend', 'history', 'matching', 'worker']);
    expect(config.services.history.rpc).toMatchObject({ grpcPort: 20001, membershipPort: 20002, bindOnIP: '127.0.0.1' });
    expect(config.services.matching.rpc).toMatchObject({ grpcPort: 20010, membershipPort: 20011 });
    expect(config.global.membership.broadcastAddress).toBe('127.0.0.1');
    expect(config.persistence.numHistoryShards).toBe(16);
    expect(config.global.tls.frontend.server).toMatchObject({ requireClientAuth: true, clientCaFiles: ['/certs/ca.pem'] });
    expect(config.global.tls.internode.server).toMatchObject({ certFile: '/certs/internode.pem', requireClientAuth: true });
    expect(config.global.tls.systemWorker.certFile).toBe('/certs/internode.pem');
    expect(config.clusterMetadata.clusterInformation.active.rpcAddress).toBe('127.0.0.1:20000');
  });
});

// ---- docker-compose.yml ------------------------------------------------------------------------------

/** What a container's `hostname` answers, and the address Docker's DNS gives it (the entrypoint looks it up). */
const CONTAINER = { hostname: 'a1b2c3d4e5f6', ip: '172.18.0.7' };

/**
 * The environment `temporal-server start` gets in a node's container: compose's, plus what the
 * image's own entrypoint (the server module's docker/scripts/sh/entrypoint.sh, the script the
 * server image runs) adds: BIND_ON_IP when unset, and the broadcast address when it binds 0.0.0.0.
 * The script runs here with `hostname` and `getent` answering as in a container, and a stand-in
 * `temporal-server` that records its arguments and environment.
 */
async function containerEnv(composeEnv: Record<string, string>): Promise<{ env: Record<string, string>; args: string[] }> {
  const bin = await mkdtemp(join(dir, 'entrypoint-'));
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  await writeFile(join(bin, 'hostname'), script(`echo ${CONTAINER.hostname}`), { mode: 0o755 });
  await writeFile(join(bin, 'getent'), script(`[ "$1" = hosts ] && [ "$2" = ${CONTAINER.hostname} ] && echo "${CONTAINER.ip}      ${CONTAINER.hostname}"`), {
    mode: 0o755,
  });
  await writeFile(join(bin, 'temporal-server'), script(`printf '%s\\n' "$@" > '${bin}/args'\nenv -0 > '${bin}/env'`), { mode: 0o755 });
  // The image's /bin/sh is busybox ash; here bash runs it (dash has no `set -o pipefail`).
  await run('bash', [join(tools.moduleDir, 'docker', 'scripts', 'sh', 'entrypoint.sh')], { env: { ...composeEnv, PATH: `${bin}:${process.env.PATH ?? ''}` } });
  const recorded = (await readFile(join(bin, 'env'), 'utf8')).split('\0').filter(Boolean);
  const shell = new Set(['PATH', 'PWD', 'OLDPWD', 'SHLVL', '_']);
  const env = Object.fromEntries(
    recorded.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const).filter(([key]) => !shell.has(key)),
  );
  return { env, args: (await readFile(join(bin, 'args'), 'utf8')).split('\n').filter(Boolean) };
}

const healthcheckUrl = (name: string): URL => {
  const test = service(name).healthcheck?.test;
  const url = Array.isArray(test) ? test.find((arg) => arg.startsWith('http://')) : undefined;
  if (!url) throw new Error(`${name}: no health check URL`);
  return new URL(url);
};

/** The databases the schema job sets up, in its order: `--db <name>` of each temporal-sql-tool line. */
const schemaJobDatabases = () => [...new Set([...shellScript('temporal-schema').matchAll(/temporal-sql-tool --db (\S+)/g)].map((m) => m[1]!))];

describe('docker-compose.yml: the Temporal nodes as the server sees them', () => {
  const nodes = temporalNodes();
  let rendered: Record<string, any>;

  beforeAll(async () => {
    rendered = {};
    for (const name of nodes) {
      const s = service(name);
      const { env, args } = await containerEnv(environment(s, name));
      expect(args, `${name}: what the entrypoint runs`).toEqual(['start']);
      // `start` reads the file at TEMPORAL_SERVER_CONFIG_FILE_PATH (render-config only a config dir): that file is the one rendered here.
      const file = mountedProjectFile(s, env.TEMPORAL_SERVER_CONFIG_FILE_PATH ?? '');
      if (!file) throw new Error(`${name}: nothing of this project is mounted at TEMPORAL_SERVER_CONFIG_FILE_PATH=${env.TEMPORAL_SERVER_CONFIG_FILE_PATH}`);
      rendered[name] = { env, config: await renderConfig(file, env) };
    }
  }, 120_000);

  it('runs the server release the binary here was built from (same minor version)', () => {
    const minor = (version: string | undefined) => version?.replace(/^v/, '').split('.').slice(0, 2).join('.');
    for (const name of [...nodes, 'temporal-schema', 'temporal-namespace'])
      expect(minor(imageVersion(service(name))), name).toBe(minor(TEMPORAL_SERVER_VERSION));
  });

  it('renders a valid config for every node: its own service, one shard count, one database, each announcing its container’s address', () => {
    expect(nodes.length).toBe(4);
    const [persistence, visibility] = schemaJobDatabases();
    const shards = new Set<number>();
    for (const name of nodes) {
      const { env, config } = rendered[name];
      const own = env.TEMPORAL_SERVICES as string;
      expect(Object.keys(config.services), name).toContain(own);
      shards.add(config.persistence.numHistoryShards);
      const stores = config.persistence.datastores;
      for (const [store, database] of [
        [config.persistence.defaultStore, persistence],
        [config.persistence.visibilityStore, visibility],
      ]) {
        expect(stores[store].sql, `${name} ${store}`).toMatchObject({
          pluginName: 'postgres12',
          connectAddr: 'temporal-db:5432',
          databaseName: database,
          user: 'temporal',
        });
      }
      expect(compose.services).toHaveProperty('temporal-db');
      // render-config masks secrets: the password was there to mask.
      expect(env.POSTGRES_PWD, name).toBeTruthy();
      for (const store of Object.values(stores as Record<string, { sql: { password: string } }>)) expect(store.sql.password, name).toBe('******');
      // It listens on every interface and tells the others its own address, as the entrypoint found it.
      expect(config.services[own].rpc.bindOnIP, name).toBe('0.0.0.0');
      expect(config.global.membership.broadcastAddress, name).toBe(CONTAINER.ip);
      // The cluster's address in its metadata: the frontend, as compose names it, on its gRPC port.
      expect(config.clusterMetadata.clusterInformation.active.rpcAddress, name).toBe(`temporal-frontend:${config.services.frontend.rpc.grpcPort}`);
      // Plaintext: no certificates in compose.
      expect(config.global.tls?.frontend?.server?.certFile ?? '', name).toBe('');
    }
    expect(shards.size).toBe(1);
    expect([...shards][0]).toBeGreaterThanOrEqual(16);
  });

  it('the health checks ask each node where the config makes it answer', () => {
    const frontend = rendered['temporal-frontend'].config;
    expect(Number(healthcheckUrl('temporal-frontend').port)).toBe(frontend.services.frontend.rpc.httpPort);
    expect(service('temporal-frontend').ports).toContain(`127.0.0.1:${frontend.services.frontend.rpc.grpcPort}:${frontend.services.frontend.rpc.grpcPort}`);
    for (const name of nodes.filter((n) => n !== 'temporal-frontend')) {
      const listen = String(rendered[name].config.global.metrics.prometheus.listenAddress);
      expect(listen.startsWith('0.0.0.0:'), name).toBe(true);
      expect(healthcheckUrl(name).port, name).toBe(listen.split(':')[1]);
      expect(healthcheckUrl(name).pathname, name).toBe('/metrics');
    }
  });

  it('every node reads the dynamic config compose mounts, and the server accepts it without a warning', async () => {
    const files = new Set<string>();
    for (const name of nodes) {
      const { filepath } = rendered[name].config.dynamicConfigClient;
      const file = mountedProjectFile(service(name), filepath);
      expect(file, `${name}: nothing of this project is mounted at ${filepath}`).toBeDefined();
      files.add(file!);
    }
    expect([...files]).toEqual([DOCKER_DYNAMIC_CONFIG]);
    expect(await validateDynamicConfig(DOCKER_DYNAMIC_CONFIG)).toEqual([]);
  });

  it('the nodes’ database connections, every replica counted, fit temporal-db’s max_connections, as its comment says', () => {
    const budget = nodes.reduce((sum, name) => {
      const { datastores } = rendered[name].config.persistence;
      const perNode = Object.values(datastores as Record<string, { sql: { maxConns: number } }>).reduce((n, store) => n + store.sql.maxConns, 0);
      return sum + perNode * replicas(service(name));
    }, 0);
    const max = Number(/max_connections=(\d+)/.exec(command(service('temporal-db'))?.join(' ') ?? '')?.[1]);
    // room for the one-shot jobs, and PostgreSQL's 3 connections reserved for superusers
    expect(budget + 10).toBeLessThan(max);
    const from = composeText.indexOf('\n  temporal-db:\n');
    const comment = composeText.slice(from, composeText.indexOf('max_connections=', from)).replace(/\s*#\s*/g, ' ');
    expect(Number(/(\d+) as configured below/.exec(comment)?.[1])).toBe(budget);
  });

  it('a node given another shard count renders it: the check above reads what compose sets', async () => {
    const { env } = rendered['temporal-history'];
    const config = await renderConfig(mountedProjectFile(service('temporal-history'), env.TEMPORAL_SERVER_CONFIG_FILE_PATH)!, {
      ...env,
      NUM_HISTORY_SHARDS: '4',
    });
    expect(config.persistence.numHistoryShards).toBe(4);
  });
});

describe('docker-compose.yml: the schema job', () => {
  const pgPort = inject('pgPort');

  /** The schema job's script, run here by the same tool against this suite's PostgreSQL; /etc/temporal/schema is the module's schema/. */
  async function runSchemaJob(): Promise<void> {
    // admin-tools.Dockerfile: the release's schema/ folder is the image's /etc/temporal/schema.
    expect(await readFile(join(tools.moduleDir, 'docker', 'targets', 'admin-tools.Dockerfile'), 'utf8')).toMatch(/^COPY \S*schema \/etc\/temporal\/schema$/m);
    const script = shellScript('temporal-schema').replaceAll('/etc/temporal/schema/', `${join(tools.moduleDir, 'schema')}/`);
    const env = {
      ...environment(service('temporal-schema')),
      SQL_HOST: '127.0.0.1',
      SQL_PORT: String(pgPort),
      SQL_USER: new URL(postgresUrl(pgPort, 'postgres')).username,
      SQL_PASSWORD: new URL(postgresUrl(pgPort, 'postgres')).password,
      PATH: `${dirname(tools.sqlTool)}:${process.env.PATH ?? ''}`,
    };
    await run('sh', ['-ec', script], { env, maxBuffer: 16 * 1024 * 1024 }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`the schema job failed: ${(err.stderr ?? err.message).trim().slice(-2000)}`);
    });
  }

  const latest = async (store: string) => {
    const versions = (await readdir(join(tools.moduleDir, 'schema', 'postgresql', 'v12', store, 'versioned'))).map((v) => v.replace(/^v/, ''));
    return versions.sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).at(-1);
  };

  async function schemaVersion(database: string): Promise<string> {
    const client = new pg.Client({ connectionString: postgresUrl(pgPort, database) });
    await client.connect();
    try {
      const { rows } = await client.query<{ curr_version: string }>('SELECT curr_version FROM schema_version');
      return rows[0]?.curr_version ?? '';
    } finally {
      await client.end();
    }
  }

  afterAll(async () => {
    const admin = new pg.Client({ connectionString: postgresUrl(pgPort, 'postgres') });
    await admin.connect();
    try {
      for (const database of schemaJobDatabases()) await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  it('creates both databases and brings each schema to this release, and running it again changes nothing', async () => {
    const [persistence, visibility] = schemaJobDatabases();
    expect([persistence, visibility]).toEqual([expect.any(String), expect.any(String)]);
    await runSchemaJob();
    expect(await schemaVersion(persistence!)).toBe(await latest('temporal'));
    expect(await schemaVersion(visibility!)).toBe(await latest('visibility'));
    // The persistence schema's own tables are there, the visibility store's too.
    const client = new pg.Client({ connectionString: postgresUrl(pgPort, persistence!) });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN ('shards', 'executions', 'cluster_membership')",
      );
      expect(Number(rows[0]!.n)).toBe(3);
    } finally {
      await client.end();
    }
    await runSchemaJob();
    expect(await schemaVersion(persistence!)).toBe(await latest('temporal'));
  }, 120_000);
});
