import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { ensureChartTools, kubeconform, KUBERNETES_VERSIONS, parseManifests, run, type ChartTools, type Manifest } from './support/tools';

/**
 * The Helm chart (deploy/helm/order-platform) rendered with the example values, checked by
 * kubeconform against Kubernetes' and KEDA's own schemas, then for what makes it this platform's
 * deployment: probes, limits, disruption budgets, autoscaling on the right queues, secrets kept
 * secret, and the database connection budget, which must refuse a release that could exhaust a
 * database. The expectations are worked out here from the values, not read back from the chart.
 */

const CHART = join(PROJECT_ROOT, 'deploy', 'helm', 'order-platform');
const VALUES_DIR = join(PROJECT_ROOT, 'deploy', 'values');
const RELEASE = 'shop';
const NAMESPACE = 'orders';

type Values = Record<string, any>;

const POOLS = ['orders', 'inventory', 'payments', 'shipping'] as const;

/** Each process: where its values are, the port it serves, the databases it opens. What the code does, written down once here. */
const PROCESSES = {
  api: { values: ['api'], port: 3000, databases: ['orders'], temporal: true, keyring: true },
  auth: { values: ['auth'], port: 3100, databases: ['auth'], temporal: false, keyring: false },
  'codec-server': { values: ['codecServer'], port: 8234, databases: [], temporal: false, keyring: true },
  'orders-worker': { values: ['pools', 'orders'], port: 9464, databases: ['orders'], temporal: true, keyring: true },
  'inventory-worker': { values: ['pools', 'inventory'], port: 9464, databases: ['inventory'], temporal: true, keyring: true },
  'payments-worker': { values: ['pools', 'payments'], port: 9464, databases: ['payments', 'sandbox'], temporal: true, keyring: true },
  'shipping-worker': { values: ['pools', 'shipping'], port: 9464, databases: ['shipping', 'sandbox'], temporal: true, keyring: true },
} as const;
type ProcessName = keyof typeof PROCESSES;
const PROCESS_NAMES = Object.keys(PROCESSES) as ProcessName[];
const DATABASES = ['orders', 'inventory', 'payments', 'shipping', 'sandbox', 'auth'] as const;

/** Helm's merge of a values file over the chart's defaults: maps merge, everything else is replaced. */
function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)
        ? mergeValues(current, value)
        : value;
  }
  return out;
}

const at = (values: Values, path: readonly string[]): Values => path.reduce<Values>((v, key) => v[key], values);

const processValues = (values: Values, name: ProcessName): Values => at(values, PROCESSES[name].values);
const processEnabled = (values: Values, name: ProcessName): boolean => processValues(values, name).enabled !== false;

/** The most pods a process can run: its autoscaling ceiling or its count, plus what a rollout adds. */
function mostPods(values: Values, name: ProcessName): number {
  const v = processValues(values, name);
  return (v.autoscaling?.enabled ? v.autoscaling.maxReplicas : v.replicas) + v.rollout.maxSurge;
}

/** The budget, from the values alone: per database, the sum over its processes of most pods x pool size, and 1 for the migration Job. */
function expectedBudget(values: Values): Record<string, number> {
  const totals: Record<string, number> = Object.fromEntries(DATABASES.map((db) => [db, 0]));
  for (const name of PROCESS_NAMES) {
    if (!processEnabled(values, name)) continue;
    for (const db of PROCESSES[name].databases) totals[db]! += mostPods(values, name) * processValues(values, name).databasePools[db];
  }
  if (values.migrations.enabled) {
    for (const db of ['orders', 'inventory', 'payments', 'shipping', 'sandbox']) totals[db]! += 1;
    if (values.auth.enabled) totals.auth! += 1;
  }
  return totals;
}

interface Rendered {
  values: Values;
  text: string;
  manifests: Manifest[];
}

let tools: ChartTools;
let defaults: Values;
const rendered: Record<string, Rendered> = {};

function helmTemplate(args: string[]) {
  // As an operator would run it: no --kube-version, no cluster.
  return run(tools.helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, ...args]);
}

const valuesFile = (name: string) => join(VALUES_DIR, `${name}.yaml`);

function of(name: string): Rendered {
  const r = rendered[name];
  if (!r) throw new Error(`${name}.yaml was not rendered`);
  return r;
}

const resourceName = (process: string) => `${RELEASE}-order-platform-${process}`;

function find(r: Rendered, kind: string, name: string): Manifest {
  const found = r.manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${r.manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
  return found;
}

const deployments = (r: Rendered) => r.manifests.filter((m) => m.kind === 'Deployment');

function container(deployment: Manifest) {
  const containers = deployment.spec.template.spec.containers;
  expect(containers, `${deployment.metadata.name}: one container`).toHaveLength(1);
  return containers[0];
}

function env(deployment: Manifest): Map<string, { value?: string; valueFrom?: any }> {
  return new Map((container(deployment).env ?? []).map((e: any) => [e.name, e]));
}

const envValue = (deployment: Manifest, name: string): string | undefined => env(deployment).get(name)?.value;

/** The Secret (name, key) a file path in the container comes from, through its volume mounts. */
function secretFileSource(deployment: Manifest, path: string): { secretName: string; key: string } | undefined {
  const pod = deployment.spec.template.spec;
  for (const mount of container(deployment).volumeMounts ?? []) {
    if (!path.startsWith(`${mount.mountPath}/`)) continue;
    const volume = pod.volumes.find((v: any) => v.name === mount.name);
    if (!volume?.secret) continue;
    const file = path.slice(mount.mountPath.length + 1);
    const item = (volume.secret.items as { key: string; path: string }[] | undefined)?.find((i) => i.path === file);
    return { secretName: volume.secret.secretName, key: item ? item.key : file };
  }
  return undefined;
}

beforeAll(async () => {
  const started = Date.now();
  tools = await ensureChartTools((msg) => console.log(`[chart test] ${msg}`));
  defaults = parse(await readFile(join(CHART, 'values.yaml'), 'utf8')) as Values;
  for (const name of ['small', 'large']) {
    const result = await helmTemplate(['-f', valuesFile(name)]);
    expect(result.stderr, `helm template -f ${name}.yaml`).toBe('');
    expect(result.code, `helm template -f ${name}.yaml`).toBe(0);
    rendered[name] = {
      values: mergeValues(defaults, parse(await readFile(valuesFile(name), 'utf8')) as Values),
      text: result.stdout,
      manifests: parseManifests(result.stdout),
    };
  }
  console.log(`[chart test] tools ready and charts rendered in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The first run builds helm and kubeconform with `go install`: minutes. Later runs take seconds.
}, 30 * 60_000);

describe.each(['small', 'large'])('the chart with deploy/values/%s.yaml', (name) => {
  it.each(KUBERNETES_VERSIONS)('is valid for Kubernetes %s and KEDA: kubeconform -strict accepts every resource, none skipped', async (version) => {
    const r = of(name);
    const result = await kubeconform(tools, r.text, version);
    const problems = result.resources.filter((res) => res.status !== 'statusValid');
    expect(problems, result.output).toEqual([]);
    expect(result.code, result.output).toBe(0);
    expect(result.summary).toMatchObject({ invalid: 0, errors: 0, skipped: 0 });
    expect(result.summary.valid).toBe(r.manifests.length);
    expect(result.resources.map((res) => res.kind).sort()).toEqual(r.manifests.map((m) => m.kind).sort());
  });

  it('has one Deployment per enabled process, each with the right command', () => {
    const r = of(name);
    const expected = PROCESS_NAMES.filter((p) => processEnabled(r.values, p));
    expect(expected.length).toBeGreaterThan(0);
    expect(
      deployments(r)
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(expected.map(resourceName).sort());
    for (const p of expected) {
      const command = p.endsWith('-worker') ? `workers/${p.replace('-worker', '')}.ts` : `${p}/main.ts`;
      expect(container(find(r, 'Deployment', resourceName(p))).command).toEqual(['node', '--import', 'tsx', command]);
    }
  });

  it('probes readiness on /healthz and liveness on /livez on each process port, and sets requests and limits', () => {
    const r = of(name);
    for (const d of deployments(r)) {
      const process = d.metadata.name.slice(`${RELEASE}-order-platform-`.length) as ProcessName;
      const c = container(d);
      const port = PROCESSES[process].port;
      const portOf = (probe: any) => {
        const p = probe?.httpGet?.port;
        return typeof p === 'number' ? p : c.ports.find((cp: any) => cp.name === p)?.containerPort;
      };
      expect(c.readinessProbe?.httpGet?.path, `${process} readiness`).toBe('/healthz');
      expect(portOf(c.readinessProbe), `${process} readiness port`).toBe(port);
      expect(c.livenessProbe?.httpGet?.path, `${process} liveness`).toBe('/livez');
      expect(portOf(c.livenessProbe), `${process} liveness port`).toBe(port);
      // and the process is told to listen there
      expect(envValue(d, PROCESSES[process].port === 9464 ? 'METRICS_PORT' : 'PORT'), `${process} port variable`).toBe(String(port));
      for (const kind of ['requests', 'limits']) {
        expect(c.resources?.[kind]?.cpu, `${process} ${kind}.cpu`).toBeTruthy();
        expect(c.resources?.[kind]?.memory, `${process} ${kind}.memory`).toBeTruthy();
      }
      expect(c.resources).toEqual(processValues(r.values, process).resources);
    }
  });

  it('gives every Deployment a PodDisruptionBudget that selects exactly its pods', () => {
    const r = of(name);
    const pdbs = r.manifests.filter((m) => m.kind === 'PodDisruptionBudget');
    expect(pdbs).toHaveLength(deployments(r).length);
    for (const d of deployments(r)) {
      const selector = d.spec.selector.matchLabels;
      const matching = pdbs.filter((p) => JSON.stringify(p.spec.selector.matchLabels) === JSON.stringify(selector));
      expect(matching, `${d.metadata.name}'s PDB`).toHaveLength(1);
      // the pods carry the labels the PDB selects
      expect(d.spec.template.metadata.labels).toMatchObject(selector);
      // maxUnavailable, so that a one-pod Deployment does not block a node drain for ever
      expect(matching[0]!.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
    }
    // selectors differ between Deployments: no PDB covers two
    expect(new Set(pdbs.map((p) => JSON.stringify(p.spec.selector.matchLabels))).size).toBe(pdbs.length);
  });

  it('scales each autoscaled pool with a KEDA temporal trigger on its own task queue, and leaves the others at their count', () => {
    const r = of(name);
    let autoscaled = 0;
    for (const pool of POOLS) {
      const v = r.values.pools[pool];
      const deployment = find(r, 'Deployment', resourceName(`${pool}-worker`));
      const scaledObject = r.manifests.find((m) => m.kind === 'ScaledObject' && m.spec.scaleTargetRef.name === deployment.metadata.name);
      if (!v.autoscaling.enabled) {
        expect(scaledObject, `${pool}: not autoscaled`).toBeUndefined();
        expect(deployment.spec.replicas).toBe(v.replicas);
        continue;
      }
      autoscaled++;
      expect(scaledObject, `${pool}: a ScaledObject`).toBeDefined();
      // KEDA owns the count: a replicas field would fight it on every upgrade
      expect(deployment.spec).not.toHaveProperty('replicas');
      expect(scaledObject!.spec.minReplicaCount).toBe(v.autoscaling.minReplicas);
      expect(scaledObject!.spec.maxReplicaCount).toBe(v.autoscaling.maxReplicas);
      expect(scaledObject!.spec.triggers).toHaveLength(1);
      const trigger = scaledObject!.spec.triggers[0];
      expect(trigger.type).toBe('temporal');
      expect(trigger.metadata).toMatchObject({
        taskQueue: pool,
        namespace: r.values.temporal.namespace,
        endpoint: r.values.temporal.address,
        targetQueueSize: String(v.autoscaling.targetQueueSize),
      });
      // the backlog of the build these pods run
      if (r.values.keda.versionedBacklog) {
        expect(trigger.metadata.workerDeploymentBuildId).toBe(envValue(deployment, 'WORKER_BUILD_ID'));
        expect(trigger.metadata.workerDeploymentName).toBe(envValue(deployment, 'WORKER_DEPLOYMENT_NAME'));
      }
      if (r.values.temporal.auth !== 'none') {
        const auth = find(r, 'TriggerAuthentication', trigger.authenticationRef?.name);
        const params = Object.fromEntries(auth.spec.secretTargetRef.map((s: any) => [s.parameter, s]));
        if (r.values.temporal.auth === 'apiKey') {
          expect(params.apiKey).toMatchObject({ name: r.values.temporal.apiKey.secretName, key: r.values.temporal.apiKey.key });
        } else {
          expect(params.cert).toMatchObject({ name: r.values.temporal.tls.secretName, key: r.values.temporal.tls.certKey });
          expect(params.key).toMatchObject({ name: r.values.temporal.tls.secretName, key: r.values.temporal.tls.keyKey });
        }
      }
    }
    expect(r.manifests.filter((m) => m.kind === 'ScaledObject')).toHaveLength(autoscaled);
    expect(autoscaled).toBe(name === 'large' ? POOLS.length : 0);
  });

  it('lets every pool drain its in-flight activities on SIGTERM (a grace period of 60 s or more)', () => {
    const r = of(name);
    for (const pool of POOLS) {
      const spec = find(r, 'Deployment', resourceName(`${pool}-worker`)).spec.template.spec;
      expect(spec.terminationGracePeriodSeconds, pool).toBeGreaterThanOrEqual(60);
    }
  });

  it('keeps secrets in Secrets: URLs, the API key and the keyring come by reference, and no ConfigMap holds one', () => {
    const r = of(name);
    // The chart creates no Secret: it names the ones the operator made.
    expect(r.manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    const secretish = /(_DATABASE_URL|API_KEY|PASSWORD|^PAYLOAD_KEYRING)$/;
    let referenced = 0;
    for (const d of deployments(r)) {
      for (const [envName, e] of env(d)) {
        if (!secretish.test(envName)) continue;
        expect(e.value, `${d.metadata.name} ${envName} in plain text`).toBeUndefined();
        expect(e.valueFrom?.secretKeyRef?.name, `${d.metadata.name} ${envName}`).toBeTruthy();
        referenced++;
      }
    }
    expect(referenced).toBeGreaterThan(0);
    const configMaps = r.manifests.filter((m) => m.kind === 'ConfigMap');
    expect(configMaps.length).toBeGreaterThan(0);
    for (const cm of configMaps) {
      const data = JSON.stringify(cm.data ?? {});
      expect(data, `${cm.metadata.name}: a database URL`).not.toMatch(/postgres(ql)?:\/\//);
      expect(data, `${cm.metadata.name}: a PEM`).not.toMatch(/-----BEGIN/);
      expect(data, `${cm.metadata.name}: a keyring`).not.toMatch(/"current"|"keys"/);
      // a 32-byte key in base64
      expect(data, `${cm.metadata.name}: a key`).not.toMatch(/[A-Za-z0-9+/]{43}=/);
    }
  });

  it('gives each process its own database URLs and pool sizes, the Temporal connection and the keyring as files', () => {
    const r = of(name);
    const v = r.values;
    for (const d of deployments(r)) {
      const process = d.metadata.name.slice(`${RELEASE}-order-platform-`.length) as ProcessName;
      const spec = PROCESSES[process];
      const e = env(d);
      // exactly its databases, each from the one Secret
      const urls = [...e.keys()].filter((k) => k.endsWith('_DATABASE_URL')).sort();
      expect(urls, process).toEqual(spec.databases.map((db) => `${db.toUpperCase()}_DATABASE_URL`).sort());
      for (const url of urls) expect(e.get(url)?.valueFrom?.secretKeyRef).toEqual({ name: v.databases.secretName, key: url });
      for (const db of spec.databases) {
        const poolVar = process === 'api' ? 'API_DB_POOL_MAX' : `${db.toUpperCase()}_DB_POOL_MAX`;
        expect(envValue(d, poolVar), `${process} ${poolVar}`).toBe(String(processValues(v, process).databasePools[db]));
      }
      // Temporal, as the CLI's variables
      if (spec.temporal) {
        expect(envValue(d, 'TEMPORAL_ADDRESS')).toBe(v.temporal.address);
        expect(envValue(d, 'TEMPORAL_NAMESPACE')).toBe(v.temporal.namespace);
        expect(envValue(d, 'TEMPORAL_TLS')).toBe('true');
        if (v.temporal.auth === 'apiKey') {
          expect(e.get('TEMPORAL_API_KEY')?.valueFrom?.secretKeyRef).toEqual({ name: v.temporal.apiKey.secretName, key: v.temporal.apiKey.key });
          expect(e.has('TEMPORAL_TLS_CLIENT_CERT_PATH')).toBe(false);
        } else {
          expect(e.has('TEMPORAL_API_KEY')).toBe(false);
          const files = {
            TEMPORAL_TLS_CLIENT_CERT_PATH: v.temporal.tls.certKey,
            TEMPORAL_TLS_CLIENT_KEY_PATH: v.temporal.tls.keyKey,
            TEMPORAL_TLS_SERVER_CA_CERT_PATH: v.temporal.tls.caKey,
          };
          for (const [variable, key] of Object.entries(files)) {
            const path = envValue(d, variable);
            expect(path, `${process} ${variable}`).toBeTruthy();
            expect(secretFileSource(d, path!), `${process} ${variable}=${path}`).toEqual({ secretName: v.temporal.tls.secretName, key });
          }
        }
      } else {
        expect(
          [...e.keys()].filter((k) => k.startsWith('TEMPORAL_')),
          process,
        ).toEqual([]);
      }
      const keyring = envValue(d, 'PAYLOAD_KEYRING_FILE');
      if (spec.keyring) {
        expect(secretFileSource(d, keyring ?? ''), `${process} PAYLOAD_KEYRING_FILE=${keyring}`).toEqual({
          secretName: v.payloadKeyring.secretName,
          key: v.payloadKeyring.key,
        });
      } else {
        expect(keyring, process).toBeUndefined();
      }
      // pools: a release is a build
      if (process.endsWith('-worker')) {
        expect(envValue(d, 'WORKER_BUILD_ID')).toBe(v.image.tag);
        expect(envValue(d, 'WORKER_DEPLOYMENT_NAME')).toBe(v.workerVersioning.deploymentName);
        expect(envValue(d, 'METRICS_HOST')).toBe('0.0.0.0');
      }
    }
    // the API finds each pool's processes through its Service
    const api = find(r, 'Deployment', resourceName('api'));
    for (const pool of POOLS) {
      const service = find(r, 'Service', resourceName(`${pool}-worker`));
      expect(envValue(api, `${pool.toUpperCase()}_WORKER_URLS`)).toBe(`http://${service.metadata.name}:${service.spec.ports[0].port}`);
    }
    expect(envValue(find(r, 'Deployment', resourceName('auth')), 'AUTH_ISSUER')).toBe(v.auth.issuer);
    // the API trusts the auth service's tokens and reads its keys over the cluster's network
    const auth = find(r, 'Service', resourceName('auth'));
    expect(envValue(api, 'AUTH_ISSUER')).toBe(v.auth.issuer);
    expect(envValue(api, 'AUTH_JWKS_URL')).toBe(`http://${auth.metadata.name}:${auth.spec.ports[0].port}/.well-known/jwks.json`);
    expect(envValue(find(r, 'Deployment', resourceName('codec-server')), 'CODEC_CORS_ORIGINS')).toBe(v.codecServer.corsOrigins);
  });

  it('runs as the node user on a read-only root filesystem, with /tmp writable for tsx', () => {
    const r = of(name);
    const pods = [...deployments(r), ...r.manifests.filter((m) => m.kind === 'Job')].map((m) => ({ name: m.metadata.name, spec: m.spec.template.spec }));
    for (const { name: podName, spec } of pods) {
      expect(spec.securityContext, podName).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      const c = spec.containers[0];
      expect(c.securityContext, podName).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      const tmp = c.volumeMounts.find((m: any) => m.mountPath === '/tmp');
      expect(tmp, `${podName}: /tmp mounted`).toBeDefined();
      expect(spec.volumes.find((v: any) => v.name === tmp.name).emptyDir, `${podName}: /tmp an emptyDir`).toBeDefined();
      const e = new Map(c.env.map((x: any) => [x.name, x.value]));
      expect(e.get('TMPDIR'), podName).toBe('/tmp');
      expect(e.get('HOME'), podName).toBe('/tmp');
    }
  });

  it('publishes the connection budget, equal to the sum worked out from the values, and within each limit', () => {
    const r = of(name);
    const budget = JSON.parse(find(r, 'ConfigMap', `${RELEASE}-order-platform-connection-budget`).data['budget.json']);
    const expected = expectedBudget(r.values);
    for (const db of DATABASES) {
      expect(budget.databases[db].total, db).toBe(expected[db]);
      expect(budget.databases[db].allowed, db).toBe(r.values.databases[db].maxConnections - r.values.databases[db].reserve);
      expect(expected[db], `${db} within its limit`).toBeLessThanOrEqual(budget.databases[db].allowed);
    }
    // and each Deployment states its own share
    for (const p of PROCESS_NAMES) {
      const annotation = find(r, 'Deployment', resourceName(p)).metadata.annotations?.['order-platform.io/max-db-connections'];
      const share = PROCESSES[p].databases.map((db) => `${db}=${mostPods(r.values, p) * processValues(r.values, p).databasePools[db]}`);
      expect(annotation === 'none' ? [] : annotation?.split(',').sort(), p).toEqual(share.sort());
    }
    // a server shared by several databases is checked on their sum
    for (const [server, limits] of Object.entries<any>(r.values.servers ?? {})) {
      const dbs = DATABASES.filter((db) => r.values.databases[db].server === server);
      const total = dbs.reduce((sum, db) => sum + expected[db]!, 0);
      expect(budget.servers[server].total, server).toBe(total);
      expect(total, `${server} within its limit`).toBeLessThanOrEqual(limits.maxConnections - limits.reserve);
    }
  });
});

describe('the connection budget refuses a release', () => {
  it('deploy/values/over-budget.yaml fails helm template, naming the database and its figures', async () => {
    const values = mergeValues(defaults, parse(await readFile(valuesFile('over-budget'), 'utf8')) as Values);
    const expected = expectedBudget(values);
    const allowed = values.databases.payments.maxConnections - values.databases.payments.reserve;
    // the example is over on payments alone
    expect(expected.payments).toBeGreaterThan(allowed);
    for (const db of DATABASES.filter((d) => d !== 'payments')) {
      expect(expected[db], db).toBeLessThanOrEqual(values.databases[db].maxConnections - values.databases[db].reserve);
    }
    const result = await helmTemplate(['-f', valuesFile('over-budget')]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`connection budget exceeded for database "payments"`);
    expect(result.stderr).toContain(`could open ${expected.payments} connections`);
    expect(result.stderr).toContain(`maxConnections ${values.databases.payments.maxConnections} - reserve ${values.databases.payments.reserve} = ${allowed}`);
    expect(result.stderr).toContain(`payments-worker ${mostPods(values, 'payments-worker')} pods x 5`);
    expect(result.stderr).not.toMatch(/database "(orders|inventory|shipping|sandbox|auth)"/);
  });

  it('over a server shared by several databases, even when each database is within its own limit', async () => {
    // small.yaml puts all six on one server of 100 - 10; eight orders pods add 9 x 5 to the orders database
    const result = await helmTemplate(['-f', valuesFile('small'), '--set', 'pools.orders.replicas=8']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/connection budget exceeded for server "main" \(databases [a-z, ]+\): their processes could open \d+ connections/);
    expect(result.stderr).not.toContain('for database');
  });

  it('and one that puts a database URL in a plain environment variable', async () => {
    const result = await helmTemplate(['-f', valuesFile('small'), '--set', 'api.env.ORDERS_DATABASE_URL=postgresql://u:p@db/orders']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`values don't meet the specifications`);
    expect(result.stderr).toContain(`invalid propertyName 'ORDERS_DATABASE_URL'`);
  });

  it('and one without the settings it cannot guess, naming them', async () => {
    const result = await helmTemplate([]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('temporal.address is required');
  });
});

describe('the schemas kubeconform checks against', () => {
  // Without these, a schema that accepted anything would pass every test above.
  it.each([
    ['a misspelt ScaledObject field', 'maxReplicaCount:', 'maxReplicas:'],
    ['a trigger metadata value that is not a string', 'targetQueueSize: "50"', 'targetQueueSize: 50'],
    ['a misspelt Deployment field', 'terminationGracePeriodSeconds:', 'terminationGracePeriod:'],
    ['a probe with no handler field it knows', 'httpGet: { path: /healthz', 'httpGett: { path: /healthz'],
  ])('refuse %s', async (_, from, to) => {
    const text = of('large').text;
    const first = text.indexOf(from);
    expect(first, `"${from}" appears in the rendered chart`).toBeGreaterThanOrEqual(0);
    // the first occurrence only, so that exactly one resource is broken
    const broken = text.slice(0, first) + to + text.slice(first + from.length);
    const result = await kubeconform(tools, broken, KUBERNETES_VERSIONS.at(-1)!);
    expect(result.code).not.toBe(0);
    expect(result.summary.invalid).toBe(1);
  });
});
