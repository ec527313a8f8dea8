import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../lib/infra/temporal';
import { clusterDynamicConfig, nodeServerConfig, renderDynamicConfig, renderServerConfig } from '../../lib/infra/temporal-cluster/server-config';
import { ensureTemporalServerBinary } from '../../lib/infra/temporal-cluster/tools';

/**
 * The Temporal server configs this repository ships or writes, checked by the real server binary
 * (built once into .tools/, a few minutes the first time): the containerised cluster's template
 * (docker/temporal/config.yaml.tmpl) rendered with `render-config`, which also validates it, and
 * every dynamic config file through `validate-dynamic-config`, which knows each key and its type.
 */
const run = promisify(execFile);
const TEMPLATE = join(PROJECT_ROOT, 'docker', 'temporal', 'config.yaml.tmpl');
const DOCKER_DYNAMIC_CONFIG = join(PROJECT_ROOT, 'docker', 'temporal', 'dynamicconfig.yaml');

let server: string;
let dir: string;

beforeAll(async () => {
  server = await ensureTemporalServerBinary((msg) => console.log(`[temporal-config] ${msg}`));
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
  it('docker/temporal/dynamicconfig.yaml has only known keys with valid values, the same as the dev server’s', async () => {
    expect(await validateDynamicConfig(DOCKER_DYNAMIC_CONFIG)).toEqual([]);
    const docker = parse(await readFile(DOCKER_DYNAMIC_CONFIG, 'utf8')) as Record<string, Array<{ value: unknown }>>;
    const dev = Object.fromEntries(DEV_SERVER_DYNAMIC_CONFIG.map((s) => s.split('=')));
    for (const [key, [setting]] of Object.entries(docker)) expect(String(setting?.value), key).toBe(dev[key]);
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
