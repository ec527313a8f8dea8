import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { ensureChartTools, kubeconform, KUBERNETES_VERSIONS, parseManifests, run, type ChartTools, type Manifest } from './support/tools';

/**
 * The Helm chart (deploy/helm/order-platform) rendered with the example values, checked by
 * kubeconform against Kubernetes' and KEDA's own schemas, then for what makes it this platform's
 * deployment: probes, limits, disruption budgets, autoscaling on the right queues, secrets kept
 * secret, every listed build's pools running side by side (Worker Versioning pins an order to its
 * build), and the database connection budget, which must refuse a release that could exhaust a
 * database. The expectations are worked out here from the values, not read back from the chart.
 */

const CHART = join(PROJECT_ROOT, 'deploy', 'helm', 'order-platform');
const VALUES_DIR = join(PROJECT_ROOT, 'deploy', 'values');
const RELEASE = 'shop';
const NAMESPACE = 'orders';

type Values = Record<string, any>;

const POOLS = ['orders', 'inventory', 'payments', 'shipping'] as const;
type Pool = (typeof POOLS)[number];
const DATABASES = ['orders', 'inventory', 'payments', 'shipping', 'sandbox', 'auth'] as const;

/** The unversioned processes, once each: where their values are, the port they serve, the databases they open. What the code does, written down once here. */
const HTTP_PROCESSES = {
  api: { values: 'api', port: 3000, databases: ['orders'], temporal: true, keyring: true },
  auth: { values: 'auth', port: 3100, databases: ['auth'], temporal: false, keyring: false },
  'codec-server': { values: 'codecServer', port: 8234, databases: [], temporal: false, keyring: true },
} as const;
/** The pools, once per listed build. */
const POOL_DATABASES: Record<Pool, readonly string[]> = {
  orders: ['orders'],
  inventory: ['inventory'],
  payments: ['payments', 'sandbox'],
  shipping: ['shipping', 'sandbox'],
};
const POOL_PORT = 9464;

/** Helm's merge of a values file over the chart's defaults (and a build's pools over `pools`): maps merge, everything else is replaced. */
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

/** How names and labels spell a build ID: lower case, each run of characters other than a-z and 0-9 one '-'. */
const slugOf = (id: string) =>
  id
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

interface Build {
  id: string;
  slug: string;
  image: string;
}

/** One Deployment's worth: an unversioned process, or one build's pool. */
interface Process {
  /** <release>-order-platform-<key> names its resources */
  key: string;
  kind: 'http' | 'pool';
  /** app.kubernetes.io/component */
  component: string;
  command: string;
  port: number;
  databases: readonly string[];
  temporal: boolean;
  keyring: boolean;
  /** its values: the process's own, or pools.<pool> with the build's overrides */
  values: Values;
  pool?: Pool;
  build?: Build;
}

function buildsOf(values: Values): Build[] {
  return (values.builds as Values[]).map((b) => {
    const image = `${b.image.repository ?? values.image.repository}:${b.image.tag}${b.image.digest ? `@${b.image.digest}` : ''}`;
    return { id: b.id, slug: slugOf(b.id), image };
  });
}

/** Every process the values ask for: the enabled unversioned ones, and every pool of every listed build. */
function processesOf(values: Values): Process[] {
  const out: Process[] = [];
  for (const [name, spec] of Object.entries(HTTP_PROCESSES)) {
    const v = values[spec.values];
    if (v.enabled === false) continue;
    out.push({ key: name, kind: 'http', component: name, command: `${name}/main.ts`, ...spec, values: v });
  }
  for (const [i, build] of buildsOf(values).entries()) {
    for (const pool of POOLS) {
      out.push({
        key: `${pool}-${build.slug}`,
        kind: 'pool',
        component: `${pool}-worker`,
        command: `workers/${pool}.ts`,
        port: POOL_PORT,
        databases: POOL_DATABASES[pool],
        temporal: true,
        keyring: true,
        values: mergeValues(values.pools[pool], values.builds[i].pools?.[pool] ?? {}),
        pool,
        build,
      });
    }
  }
  return out;
}

/** The most pods a process can run: its autoscaling ceiling or its count, plus what a rollout adds. */
const mostPods = (p: Process): number => (p.values.autoscaling?.enabled ? p.values.autoscaling.maxReplicas : p.values.replicas) + p.values.rollout.maxSurge;
const poolSize = (p: Process, db: string): number => p.values.databasePools[db];

/** The budget, from the values alone: per database, the sum over its processes (every build's pools) of most pods x pool size, and 1 for the migration Job. */
function expectedBudget(values: Values): Record<string, number> {
  const totals: Record<string, number> = Object.fromEntries(DATABASES.map((db) => [db, 0]));
  for (const p of processesOf(values)) {
    for (const db of p.databases) totals[db]! += mostPods(p) * poolSize(p, db);
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
let scratch: string;
const rendered: Record<string, Rendered> = {};

function helmTemplate(args: string[]) {
  // As an operator would run it: no --kube-version, no cluster.
  return run(tools.helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, ...args]);
}

const valuesFile = (name: string) => join(VALUES_DIR, `${name}.yaml`);
const readValues = async (file: string) => parse(await readFile(file, 'utf8')) as Values;

/** A values file of the test's own (in a scratch directory), to layer over an example with -f. */
let scratchFiles = 0;
async function scratchValues(values: Values): Promise<string> {
  const file = join(scratch, `values-${++scratchFiles}.yaml`);
  await writeFile(file, stringify(values));
  return file;
}

/** Renders the example `name` with more values files over it; fails the test if helm does. */
async function renderWith(name: string, ...over: Values[]): Promise<Rendered> {
  const files = [valuesFile(name), ...(await Promise.all(over.map(scratchValues)))];
  const result = await helmTemplate(files.flatMap((f) => ['-f', f]));
  expect(result.stderr, `helm template ${name} + ${JSON.stringify(over)}`).toBe('');
  expect(result.code).toBe(0);
  let values = mergeValues(defaults, await readValues(valuesFile(name)));
  for (const o of over) values = mergeValues(values, o);
  return { values, text: result.stdout, manifests: parseManifests(result.stdout) };
}

function of(name: string): Rendered {
  const r = rendered[name];
  if (!r) throw new Error(`${name}.yaml was not rendered`);
  return r;
}

const resourceName = (key: string) => `${RELEASE}-order-platform-${key}`;

function find(r: Rendered, kind: string, name: string): Manifest {
  const found = r.manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${r.manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
  return found;
}

const deployments = (r: Rendered) => r.manifests.filter((m) => m.kind === 'Deployment');
const deploymentOf = (r: Rendered, p: Process) => find(r, 'Deployment', resourceName(p.key));

function container(deployment: Manifest) {
  const containers = deployment.spec.template.spec.containers;
  expect(containers, `${deployment.metadata.name}: one container`).toHaveLength(1);
  return containers[0];
}

function env(deployment: Manifest): Map<string, { value?: string; valueFrom?: any }> {
  return new Map((container(deployment).env ?? []).map((e: any) => [e.name, e]));
}

const envValue = (deployment: Manifest, name: string): string | undefined => env(deployment).get(name)?.value;

/** Whether a selector's labels are all on a pod template's. */
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * What the API server would refuse in names and labels, which kubeconform's schemas do not check: a
 * Service's name is a DNS-1035 label, other names DNS-1123 subdomains, and every label value (a build
 * ID's '+' included) at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends.
 */
function nameAndLabelProblems(manifests: Manifest[]): string[] {
  const problems: string[] = [];
  const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
  const checkLabels = (where: string, labels: Record<string, string> | undefined) => {
    for (const [key, value] of Object.entries(labels ?? {})) {
      if (typeof value !== 'string' || value.length > 63 || !labelValue.test(value)) problems.push(`${where}: label ${key}=${String(value)}`);
    }
  };
  for (const m of manifests) {
    const where = `${m.kind}/${m.metadata.name}`;
    const name = m.kind === 'Service' ? /^[a-z]([-a-z0-9]*[a-z0-9])?$/ : /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
    if (!name.test(m.metadata.name) || m.metadata.name.length > (m.kind === 'Service' ? 63 : 253)) problems.push(`${where}: name`);
    checkLabels(where, m.metadata.labels);
    checkLabels(`${where} pods`, m.spec?.template?.metadata?.labels);
    checkLabels(`${where} selector`, m.spec?.selector?.matchLabels ?? (m.kind === 'Service' ? m.spec?.selector : undefined));
  }
  return problems;
}

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
  defaults = await readValues(join(CHART, 'values.yaml'));
  scratch = await mkdtemp(join(tmpdir(), 'chart-test-'));
  for (const name of ['small', 'large']) {
    const result = await helmTemplate(['-f', valuesFile(name)]);
    expect(result.stderr, `helm template -f ${name}.yaml`).toBe('');
    expect(result.code, `helm template -f ${name}.yaml`).toBe(0);
    rendered[name] = {
      values: mergeValues(defaults, await readValues(valuesFile(name))),
      text: result.stdout,
      manifests: parseManifests(result.stdout),
    };
  }
  console.log(`[chart test] tools ready and charts rendered in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The first run builds helm and kubeconform with `go install`: minutes. Later runs take seconds.
}, 30 * 60_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

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

  it('names and labels everything as the API server requires (kubeconform does not check names and label values)', () => {
    expect(nameAndLabelProblems(of(name).manifests)).toEqual([]);
  });

  it('has one Deployment per enabled process and per pool of every build, each with the right command and image', () => {
    const r = of(name);
    const expected = processesOf(r.values);
    expect(expected.filter((p) => p.kind === 'pool')).toHaveLength(POOLS.length * r.values.builds.length);
    expect(
      deployments(r)
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(expected.map((p) => resourceName(p.key)).sort());
    // the unversioned processes run the newest build's image (the last listed) unless image.tag says otherwise
    const newest = buildsOf(r.values).at(-1)!.image;
    for (const p of expected) {
      const c = container(deploymentOf(r, p));
      expect(c.command).toEqual(['node', '--import', 'tsx', p.command]);
      expect(c.image, p.key).toBe(p.build ? p.build.image : r.values.image.tag ? `${r.values.image.repository}:${r.values.image.tag}` : newest);
    }
  });

  it('probes readiness on /healthz and liveness on /livez on each process port, and sets requests and limits', () => {
    const r = of(name);
    for (const p of processesOf(r.values)) {
      const d = deploymentOf(r, p);
      const c = container(d);
      const portOf = (probe: any) => {
        const port = probe?.httpGet?.port;
        return typeof port === 'number' ? port : c.ports.find((cp: any) => cp.name === port)?.containerPort;
      };
      expect(c.readinessProbe?.httpGet?.path, `${p.key} readiness`).toBe('/healthz');
      expect(portOf(c.readinessProbe), `${p.key} readiness port`).toBe(p.port);
      expect(c.livenessProbe?.httpGet?.path, `${p.key} liveness`).toBe('/livez');
      expect(portOf(c.livenessProbe), `${p.key} liveness port`).toBe(p.port);
      // and the process is told to listen there
      expect(envValue(d, p.kind === 'pool' ? 'METRICS_PORT' : 'PORT'), `${p.key} port variable`).toBe(String(p.port));
      for (const kind of ['requests', 'limits']) {
        expect(c.resources?.[kind]?.cpu, `${p.key} ${kind}.cpu`).toBeTruthy();
        expect(c.resources?.[kind]?.memory, `${p.key} ${kind}.memory`).toBeTruthy();
      }
      expect(c.resources).toEqual(p.values.resources);
    }
  });

  it("gives every Deployment a PodDisruptionBudget that selects exactly its pods (a build's pool: its pods, no other build's)", () => {
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
      // no PDB selects another Deployment's pods: a pod two PDBs cover cannot be evicted at all
      for (const other of deployments(r)) {
        if (other !== d) expect(selects(selector, other.spec.template.metadata.labels), `${d.metadata.name}'s PDB on ${other.metadata.name}`).toBe(false);
      }
    }
    // selectors differ between Deployments: no PDB covers two
    expect(new Set(pdbs.map((p) => JSON.stringify(p.spec.selector.matchLabels))).size).toBe(pdbs.length);
  });

  it("scales each autoscaled pool of each build with a KEDA temporal trigger on that build's backlog of its own task queue, never below 1 pod, and leaves the others at their count", () => {
    const r = of(name);
    let autoscaled = 0;
    for (const p of processesOf(r.values).filter((x) => x.kind === 'pool')) {
      const v = p.values;
      const deployment = deploymentOf(r, p);
      const scaledObject = r.manifests.find((m) => m.kind === 'ScaledObject' && m.spec.scaleTargetRef.name === deployment.metadata.name);
      if (!v.autoscaling.enabled) {
        expect(scaledObject, `${p.key}: not autoscaled`).toBeUndefined();
        expect(deployment.spec.replicas).toBe(v.replicas);
        expect(deployment.spec.replicas).toBeGreaterThanOrEqual(1);
        continue;
      }
      autoscaled++;
      expect(scaledObject, `${p.key}: a ScaledObject`).toBeDefined();
      expect(scaledObject!.metadata.name).toBe(deployment.metadata.name);
      // KEDA owns the count: a replicas field would fight it on every upgrade
      expect(deployment.spec).not.toHaveProperty('replicas');
      expect(scaledObject!.spec.minReplicaCount).toBe(v.autoscaling.minReplicas);
      expect(scaledObject!.spec.maxReplicaCount).toBe(v.autoscaling.maxReplicas);
      // a draining build's pools wait days for a carrier with no backlog: never scaled to zero while listed
      expect(scaledObject!.spec.minReplicaCount, `${p.key} min`).toBeGreaterThanOrEqual(1);
      expect(scaledObject!.spec).not.toHaveProperty('idleReplicaCount');
      expect(scaledObject!.spec.triggers).toHaveLength(1);
      const trigger = scaledObject!.spec.triggers[0];
      expect(trigger.type).toBe('temporal');
      expect(trigger.metadata).toMatchObject({
        taskQueue: p.pool,
        namespace: r.values.temporal.namespace,
        endpoint: r.values.temporal.address,
        targetQueueSize: String(v.autoscaling.targetQueueSize),
        // the backlog of the build these pods run, not the queue's (another build's orders)
        workerDeploymentName: r.values.workerVersioning.deploymentName,
        workerDeploymentBuildId: p.build!.id,
      });
      expect(trigger.metadata.workerDeploymentBuildId).toBe(envValue(deployment, 'WORKER_BUILD_ID'));
      expect(trigger.metadata.workerDeploymentName).toBe(envValue(deployment, 'WORKER_DEPLOYMENT_NAME'));
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
    expect(autoscaled).toBe(name === 'large' ? POOLS.length * r.values.builds.length : 0);
  });

  it('lets every pool of every build drain its in-flight activities on SIGTERM (a grace period of 60 s or more)', () => {
    const r = of(name);
    for (const p of processesOf(r.values).filter((x) => x.kind === 'pool')) {
      expect(deploymentOf(r, p).spec.template.spec.terminationGracePeriodSeconds, p.key).toBeGreaterThanOrEqual(60);
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

  it('gives each process its own database URLs and pool sizes, the Temporal connection, the keyring as files, and each pool its build', () => {
    const r = of(name);
    const v = r.values;
    for (const p of processesOf(v)) {
      const d = deploymentOf(r, p);
      const e = env(d);
      // exactly its databases, each from the one Secret
      const urls = [...e.keys()].filter((k) => k.endsWith('_DATABASE_URL')).sort();
      expect(urls, p.key).toEqual(p.databases.map((db) => `${db.toUpperCase()}_DATABASE_URL`).sort());
      for (const url of urls) expect(e.get(url)?.valueFrom?.secretKeyRef).toEqual({ name: v.databases.secretName, key: url });
      for (const db of p.databases) {
        const poolVar = p.key === 'api' ? 'API_DB_POOL_MAX' : `${db.toUpperCase()}_DB_POOL_MAX`;
        expect(envValue(d, poolVar), `${p.key} ${poolVar}`).toBe(String(poolSize(p, db)));
      }
      // Temporal, as the CLI's variables
      if (p.temporal) {
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
            expect(path, `${p.key} ${variable}`).toBeTruthy();
            expect(secretFileSource(d, path!), `${p.key} ${variable}=${path}`).toEqual({ secretName: v.temporal.tls.secretName, key });
          }
        }
      } else {
        expect(
          [...e.keys()].filter((k) => k.startsWith('TEMPORAL_')),
          p.key,
        ).toEqual([]);
      }
      const keyring = envValue(d, 'PAYLOAD_KEYRING_FILE');
      if (p.keyring) {
        expect(secretFileSource(d, keyring ?? ''), `${p.key} PAYLOAD_KEYRING_FILE=${keyring}`).toEqual({
          secretName: v.payloadKeyring.secretName,
          key: v.payloadKeyring.key,
        });
      } else {
        expect(keyring, p.key).toBeUndefined();
      }
      // pools: a version of the Worker Deployment, its build's id as written, never promoting itself
      if (p.build) {
        expect(envValue(d, 'WORKER_BUILD_ID'), p.key).toBe(p.build.id);
        expect(envValue(d, 'WORKER_SET_CURRENT'), p.key).toBe('never');
        expect(envValue(d, 'WORKER_DEPLOYMENT_NAME')).toBe(v.workerVersioning.deploymentName);
        expect(envValue(d, 'METRICS_HOST')).toBe('0.0.0.0');
        expect(d.metadata.annotations?.['order-platform.io/build-id']).toBe(p.build.id);
        expect(d.spec.template.metadata.labels['order-platform.io/build']).toBe(p.build.slug);
        expect(d.spec.template.metadata.labels['app.kubernetes.io/component']).toBe(p.component);
      } else {
        expect(
          [...e.keys()].filter((k) => k.startsWith('WORKER_')),
          p.key,
        ).toEqual([]);
      }
    }
    // the API finds each pool's processes through one Service per pool, across builds: a build
    // listed or removed leaves the API's environment (and pods) alone
    const api = find(r, 'Deployment', resourceName('api'));
    for (const pool of POOLS) {
      const service = find(r, 'Service', resourceName(`${pool}-worker`));
      expect(envValue(api, `${pool.toUpperCase()}_WORKER_URLS`)).toBe(`http://${service.metadata.name}:${service.spec.ports[0].port}`);
      expect(service.spec.selector).not.toHaveProperty('order-platform.io/build');
      for (const p of processesOf(v).filter((x) => x.pool === pool)) {
        expect(selects(service.spec.selector, deploymentOf(r, p).spec.template.metadata.labels), `${service.metadata.name} selects ${p.key}`).toBe(true);
      }
      for (const p of processesOf(v).filter((x) => x.pool !== pool)) {
        expect(selects(service.spec.selector, deploymentOf(r, p).spec.template.metadata.labels), `${service.metadata.name} selects ${p.key}`).toBe(false);
      }
    }
    // and each build's pool has its own Service, over its pods alone
    for (const p of processesOf(v).filter((x) => x.build)) {
      const service = find(r, 'Service', resourceName(p.key));
      expect(service.spec.selector).toEqual(deploymentOf(r, p).spec.selector.matchLabels);
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

  it('publishes the connection budget, equal to the sum worked out from the values over every build, and within each limit', () => {
    const r = of(name);
    const budget = JSON.parse(find(r, 'ConfigMap', `${RELEASE}-order-platform-connection-budget`).data['budget.json']);
    const expected = expectedBudget(r.values);
    for (const db of DATABASES) {
      expect(budget.databases[db].total, db).toBe(expected[db]);
      expect(budget.databases[db].allowed, db).toBe(r.values.databases[db].maxConnections - r.values.databases[db].reserve);
      expect(expected[db], `${db} within its limit`).toBeLessThanOrEqual(budget.databases[db].allowed);
    }
    // and each Deployment states its own share
    for (const p of processesOf(r.values)) {
      const annotation = deploymentOf(r, p).metadata.annotations?.['order-platform.io/max-db-connections'];
      const share = p.databases.map((db) => `${db}=${mostPods(p) * poolSize(p, db)}`);
      expect(annotation === 'none' ? [] : annotation?.split(',').sort(), p.key).toEqual(share.sort());
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

describe('builds: every pool of every listed build runs, each a version of the Worker Deployment', () => {
  it('large.yaml runs two builds side by side: all four pools each, with their own WORKER_BUILD_ID, image and ceilings, none promoting itself', () => {
    const r = of('large');
    const builds = buildsOf(r.values);
    expect(builds).toHaveLength(2);
    expect(new Set(builds.map((b) => b.image)).size).toBe(2);
    for (const build of builds) {
      const pools = deployments(r).filter((d) => d.spec.template.metadata.labels['order-platform.io/build'] === build.slug);
      expect(pools.map((d) => d.metadata.name).sort(), build.id).toEqual(POOLS.map((pool) => resourceName(`${pool}-${build.slug}`)).sort());
      for (const d of pools) {
        expect(envValue(d, 'WORKER_BUILD_ID'), d.metadata.name).toBe(build.id);
        expect(envValue(d, 'WORKER_SET_CURRENT'), d.metadata.name).toBe('never');
        expect(container(d).image, d.metadata.name).toBe(build.image);
      }
    }
    // the draining build's own ceilings apply to it alone; the current one has the pools' defaults
    const [draining, current] = builds;
    for (const pool of POOLS) {
      const maxOf = (b: Build) => find(r, 'ScaledObject', resourceName(`${pool}-${b.slug}`)).spec.maxReplicaCount;
      expect(maxOf(draining!), pool).toBe(r.values.builds[0].pools[pool].autoscaling.maxReplicas);
      expect(maxOf(current!), pool).toBe(r.values.pools[pool].autoscaling.maxReplicas);
      expect(maxOf(draining!), pool).toBeLessThan(maxOf(current!));
    }
  });

  it('runs the API, auth, the codec server and the migration Job on the newest build (the last listed), or on image.tag when set', async () => {
    const r = of('large');
    const newest = buildsOf(r.values).at(-1)!.image;
    const unversioned = [...deployments(r).filter((d) => !d.spec.template.metadata.labels['order-platform.io/build']), find(r, 'Job', resourceName('migrate'))];
    expect(unversioned.map((m) => m.metadata.name).sort()).toEqual(['api', 'auth', 'codec-server', 'migrate'].map(resourceName).sort());
    for (const m of unversioned) expect(container(m).image, m.metadata.name).toBe(newest);
    const pinned = await renderWith('large', { image: { tag: '0.4.0-hotfix' } });
    for (const m of pinned.manifests.filter(
      (x) => (x.kind === 'Deployment' || x.kind === 'Job') && !x.spec.template.metadata.labels['order-platform.io/build'],
    )) {
      expect(container(m).image, m.metadata.name).toBe(`${pinned.values.image.repository}:0.4.0-hotfix`);
    }
  });

  it("applies a build's overrides to that build alone, false and 0 included (a pool not autoscaled, a pool of 1 database connection)", async () => {
    const large = await readValues(valuesFile('large'));
    const [draining, current] = large.builds;
    const r = await renderWith('large', {
      builds: [mergeValues(draining, { pools: { payments: { replicas: 1, autoscaling: { enabled: false }, databasePools: { sandbox: 1 } } } }), current],
    });
    const [a, b] = buildsOf(r.values);
    expect(r.manifests.find((m) => m.kind === 'ScaledObject' && m.metadata.name === resourceName(`payments-${a!.slug}`))).toBeUndefined();
    expect(find(r, 'Deployment', resourceName(`payments-${a!.slug}`)).spec.replicas).toBe(1);
    expect(envValue(find(r, 'Deployment', resourceName(`payments-${a!.slug}`)), 'SANDBOX_DB_POOL_MAX')).toBe('1');
    expect(find(r, 'ScaledObject', resourceName(`payments-${b!.slug}`)).spec.maxReplicaCount).toBe(r.values.pools.payments.autoscaling.maxReplicas);
    expect(envValue(find(r, 'Deployment', resourceName(`payments-${b!.slug}`)), 'SANDBOX_DB_POOL_MAX')).toBe(
      String(r.values.pools.payments.databasePools.sandbox),
    );
  });

  it("keeps a '+' of the app's own build IDs (<version>+<commit>) in WORKER_BUILD_ID and KEDA, and slugs it for names and labels, which Kubernetes accepts", async () => {
    // large.yaml's builds (the draining one's smaller ceilings keep both within the budget), in the app's own form
    const large = await readValues(valuesFile('large'));
    const ids = ['0.3.0+4f2c1aa', '0.4.0+9D81E07'];
    const r = await renderWith('large', { builds: large.builds.map((b: Values, i: number) => ({ ...b, id: ids[i] })) });
    for (const [id, slug] of [
      ['0.3.0+4f2c1aa', '0-3-0-4f2c1aa'],
      ['0.4.0+9D81E07', '0-4-0-9d81e07'],
    ] as const) {
      for (const pool of POOLS) {
        const d = find(r, 'Deployment', resourceName(`${pool}-${slug}`));
        expect(envValue(d, 'WORKER_BUILD_ID')).toBe(id);
        expect(d.spec.selector.matchLabels['order-platform.io/build']).toBe(slug);
        expect(find(r, 'ScaledObject', resourceName(`${pool}-${slug}`)).spec.triggers[0].metadata.workerDeploymentBuildId).toBe(id);
      }
    }
    expect(nameAndLabelProblems(r.manifests)).toEqual([]);
    const result = await kubeconform(tools, r.text, KUBERNETES_VERSIONS.at(-1)!);
    expect(result.summary, result.output).toMatchObject({ invalid: 0, errors: 0, skipped: 0, valid: r.manifests.length });
  });

  it.each([
    ['a build without an id', [{ image: { tag: '0.3.0-4f2c1aa' } }], 'builds[0] has no id'],
    [
      'two builds with one id',
      [
        { id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' } },
        { id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa-rebuilt' } },
      ],
      'builds[0] and builds[1] both have id "0.3.0-4f2c1aa"',
    ],
    ['an image tag for an id', [{ id: '1.4.0', image: { tag: '1.4.0' } }], 'builds[0].id "1.4.0" is not <version>-<something>'],
    ['a commit alone for an id', [{ id: '4f2c1aa', image: { tag: '4f2c1aa' } }], 'builds[0].id "4f2c1aa" is not <version>-<something>'],
    [
      'two ids one slug apart',
      [
        { id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' } },
        { id: '0.3.0+4f2c1aa', image: { tag: '0.3.0-4f2c1aa-plus' } },
      ],
      'builds[0] ("0.3.0-4f2c1aa") and builds[1] ("0.3.0+4f2c1aa") would have the same Kubernetes names and labels, 0-3-0-4f2c1aa',
    ],
    [
      'two builds of one image',
      [
        { id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' } },
        { id: '0.4.0-9d81e07', image: { tag: '0.3.0-4f2c1aa' } },
      ],
      'builds[1] ("0.4.0-9d81e07") runs the same image as builds[0]',
    ],
    ['a build without an image tag', [{ id: '0.3.0-4f2c1aa' }], 'builds[0] ("0.3.0-4f2c1aa") has no image.tag'],
    ['a build on latest', [{ id: '0.3.0-4f2c1aa', image: { tag: 'latest' } }], 'runs image tag latest'],
    ['no build at all', [], 'builds is empty'],
    [
      'an id too long for the names of its resources',
      [{ id: `0.3.0-${'4f2c1aa'.repeat(6)}`, image: { tag: '0.3.0-4f2c1aa' } }],
      'longer than the 63 characters Kubernetes allows',
    ],
    [
      'a build whose pool KEDA could scale to zero (a draining build waits days with no backlog)',
      [{ id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' }, pools: { orders: { autoscaling: { enabled: true, minReplicas: 0 } } } }],
      "at '/builds/0/pools/orders/autoscaling/minReplicas': minimum: got 0, want 1",
    ],
    [
      'a build with fewer than one pod of a pool',
      [{ id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' }, pools: { shipping: { replicas: 0 } } }],
      "at '/builds/0/pools/shipping/replicas'",
    ],
    [
      'a build with a pool the platform does not have',
      [{ id: '0.3.0-4f2c1aa', image: { tag: '0.3.0-4f2c1aa' }, pools: { billing: { replicas: 1 } } }],
      "at '/builds/0/pools': additional properties 'billing' not allowed",
    ],
  ])('refuses %s, naming it', async (_, builds, message) => {
    const result = await helmTemplate(['-f', valuesFile('small'), '-f', await scratchValues({ builds })]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
  });
});

describe('the connection budget', () => {
  it("counts every build's pools: small.yaml has room for a second build during a rollout, exactly as worked out", async () => {
    const [first] = (await readValues(valuesFile('small'))).builds;
    const r = await renderWith('small', { builds: [first, { id: '0.4.0-9d81e07', image: { tag: '0.4.0-9d81e07' } }] });
    const budget = JSON.parse(find(r, 'ConfigMap', `${RELEASE}-order-platform-connection-budget`).data['budget.json']);
    const expected = expectedBudget(r.values);
    for (const db of DATABASES) expect(budget.databases[db].total, db).toBe(expected[db]);
    // one set of pools per build, both counted
    expect(Object.keys(budget.databases.payments.processes).sort()).toEqual(['migrations', 'payments-0-3-0-4f2c1aa', 'payments-0-4-0-9d81e07']);
    const server = DATABASES.reduce((sum, db) => sum + expected[db]!, 0);
    expect(budget.servers.main.total).toBe(server);
    expect(server).toBeLessThanOrEqual(r.values.servers.main.maxConnections - r.values.servers.main.reserve);
  });

  it('refuses deploy/values/over-budget.yaml: two builds that each fit, and not together, naming the database, both builds and the figures', async () => {
    const values = mergeValues(defaults, await readValues(valuesFile('over-budget')));
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
    for (const p of processesOf(values).filter((x) => x.pool === 'payments')) {
      expect(result.stderr).toContain(`payments-worker (build ${p.build!.id}) ${mostPods(p)} pods x 5`);
    }
    expect(result.stderr).not.toMatch(/database "(orders|inventory|shipping|sandbox|auth)"/);
    // and either build alone fits
    for (const build of values.builds) {
      const alone = await helmTemplate(['-f', valuesFile('over-budget'), '-f', await scratchValues({ builds: [build] })]);
      expect(alone.stderr, build.id).toBe('');
      expect(alone.code, build.id).toBe(0);
    }
  });

  it('refuses a second build that does not fit beside the first: small.yaml with a surge pod per pool', async () => {
    const [first] = (await readValues(valuesFile('small'))).builds;
    const surge = Object.fromEntries(POOLS.map((pool) => [pool, { rollout: { maxSurge: 1, maxUnavailable: 0 } }]));
    // one build with surge pods fits the server...
    const one = await helmTemplate(['-f', valuesFile('small'), '-f', await scratchValues({ pools: surge })]);
    expect(one.stderr).toBe('');
    // ...two do not
    const two = await helmTemplate([
      '-f',
      valuesFile('small'),
      '-f',
      await scratchValues({ pools: surge, builds: [first, { id: '0.4.0-9d81e07', image: { tag: '0.4.0-9d81e07' } }] }),
    ]);
    expect(two.code).not.toBe(0);
    expect(two.stderr).toMatch(/connection budget exceeded for server "main" \(databases [a-z, ]+\): their processes could open \d+ connections/);
  });

  it('refuses a server shared by several databases over its limit, even when each database is within its own', async () => {
    // small.yaml puts all six on one server of 100 - 10; nine orders pods add 9 x 5 to the orders database
    const result = await helmTemplate(['-f', valuesFile('small'), '--set', 'pools.orders.replicas=9']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/connection budget exceeded for server "main" \(databases [a-z, ]+\): their processes could open \d+ connections/);
    expect(result.stderr).not.toContain('for database');
  });
});

describe('the chart refuses a release', () => {
  it('that puts a database URL in a plain environment variable', async () => {
    const result = await helmTemplate(['-f', valuesFile('small'), '--set', 'api.env.ORDERS_DATABASE_URL=postgresql://u:p@db/orders']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`values don't meet the specifications`);
    expect(result.stderr).toContain(`invalid propertyName 'ORDERS_DATABASE_URL'`);
  });

  it('without the settings it cannot guess, naming them', async () => {
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
