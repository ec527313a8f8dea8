import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from '@temporalio/client';
import pg from 'pg';
import { orderWorkflowId, ORDER_TOPICS } from '../contracts/orders';
import { DATABASES, databaseUrlVar, prepareDatabases, type DatabaseName } from '../lib/infra/databases';
import { DATA_DIR, PROJECT_ROOT } from '../lib/infra/paths';
import { POOLS, buildWorkflowBundle, launchPlatform, stopProcess, waitForHttp, type PoolCounts } from '../lib/infra/platform';
import { postgresUrl, startEmbeddedPostgres } from '../lib/infra/postgres';
import { startTemporalDevServer } from '../lib/infra/temporal';
import { startTemporalCluster } from '../lib/infra/temporal-cluster';
import { ensureTemporalTools } from '../lib/infra/tools';
import { freeFixedPort } from '../lib/net';
import { connectClient, temporalConnectionSettings } from '../lib/temporal/connection';
import { SCOPES } from '../contracts/auth';
import { keyringJson, withNewKey } from '../lib/temporal/codec';
import { ensureClients, tokenSource } from '../lib/infra/clients';
import type { floorWorkflow } from './floor-workflow';
import { actionsBetween, scrapeActions, sumActions, type ActionCounts } from './actions';
import { renderChart } from './chart';
import { FLOOR_NAMESPACE, FLOOR_WORKFLOW_TASK_QUEUE } from './floor-contract';
import { startFloorWorkers } from './floor-workers';
import type { BenchResults, BenchTemporal, OpenLoopRow, SweepRow } from './results';
import { apiEnv } from '../api/config';
import { parseEnv } from '../lib/config';
import { inventoryPool } from '../workers/inventory';
import { ordersPool } from '../workers/orders';
import { paymentsPool } from '../workers/payments';
import { shippingPool } from '../workers/shipping';
import { notificationsPool } from '../workers/notifications';
import { cpuBetween, cpuSnapshot, rssSnapshot, stepLatencies } from './breakdown';
import { startWebhookProbe } from './webhooks';

/**
 * `npm run bench`: the platform's throughput and latency through its real API, and in the same
 * run the floor — the least Temporal work that reaches a completed order's outcome
 * (`bench/floor-workflow.ts`) on the same server and worker settings — so the ratio says how much
 * of the orchestrator's capacity the platform's own work leaves unused. For both sides it counts
 * Temporal's billable actions per order (the server's own `action` counter, the platform in its
 * namespace, the floor in `floor`) and the CPU per order of every process. Everything it starts is
 * its own, on free ports.
 *
 * Temporal is the dev server, as `npm start` runs it; with `--cluster`, the local multi-node cluster
 * (`npm start -- --cluster`: frontend, matching, worker and two history nodes, 16 shards, mTLS, its
 * state in the bench's PostgreSQL), which every process and the floor reach with the client
 * certificate from their environment; with `--compare-cluster`, the whole bench on the dev server
 * and then on the cluster, in one invocation, and the two side by side at the end.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
/** each level alternates platform and floor this many times (SECONDS split between the turns) */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,8,32,128').split(',').filter(Boolean).map(Number);
const RATES = (process.env.BENCH_RATES ?? '5,8,10,20').split(',').filter(Boolean).map(Number);
const BURST = Number(process.env.BENCH_BURST ?? 1000);
const counts: PoolCounts = {
  orders: Number(process.env.ORDERS_WORKERS ?? 1),
  inventory: Number(process.env.INVENTORY_WORKERS ?? 1),
  payments: Number(process.env.PAYMENTS_WORKERS ?? 1),
  shipping: Number(process.env.SHIPPING_WORKERS ?? 1),
  notifications: Number(process.env.NOTIFICATIONS_WORKERS ?? 1),
};

const ARGS = process.argv.slice(2);
const TEMPORAL_KINDS: Array<BenchTemporal['kind']> = ARGS.includes('--compare-cluster')
  ? ['dev-server', 'cluster']
  : ARGS.includes('--cluster')
    ? ['cluster']
    : ['dev-server'];

const say = (msg: string) => console.log(`[bench] ${msg}`);
const pct = (values: number[], p: number) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

interface Placed {
  sentAt: number;
  acceptMs: number;
  orderId: string;
}

/** Watches the orders database for orders reaching an end, one query for all pending ones. */
function completionWatcher(pool: pg.Pool) {
  const pending = new Map<string, (end: { status: string; at: number }) => void>();
  let running = true;
  const loop = (async () => {
    while (running) {
      if (pending.size > 0) {
        const { rows } = await pool.query<{ id: string; status: string; updated_at: Date }>(
          `SELECT id, status, updated_at FROM orders WHERE id = ANY($1::uuid[]) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')`,
          [[...pending.keys()]],
        );
        for (const row of rows) {
          pending.get(row.id)?.({ status: row.status, at: row.updated_at.getTime() });
          pending.delete(row.id);
        }
      }
      // Often while few orders are pending (their end time comes from the row, not from this poll,
      // but the next order of a closed loop waits for it); less often under load, where a query
      // every 20 ms would be load of its own.
      await new Promise((r) => setTimeout(r, pending.size <= 8 ? 20 : 100));
    }
  })();
  return {
    wait: (orderId: string) => new Promise<{ status: string; at: number }>((resolve) => pending.set(orderId, resolve)),
    pendingCount: () => pending.size,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const orderBody = (i: number) =>
  JSON.stringify({
    customerId: `bench-${i % 50}`,
    items: [
      { sku: ['TSHIRT-BLK-M', 'MUG-LOGO', 'SOCKS-3PK', 'CAP-NAVY'][i % 4], quantity: 1 },
      { sku: 'POSTER-A2', quantity: 1 },
    ],
    payment: { token: 'tok_visa' },
    shippingAddress: { name: 'Bench', line1: '1 Load St', city: 'Leeds', postalCode: 'LS1', country: 'GB' },
  });

/** What a failed run must stop before it exits, last started first (Temporal and PostgreSQL run in their own process groups). */
const startedProcesses: Array<() => Promise<unknown>> = [];

/** The Temporal a run measures on: how its processes reach it, and its own count of billable actions. */
interface TemporalUnderBench {
  shape: BenchTemporal;
  /** TEMPORAL_ADDRESS, and for the cluster TEMPORAL_TLS_*: what every process and the floor get */
  env: Record<string, string>;
  actionCounts: () => Promise<ActionCounts>;
  stop: () => Promise<void>;
}

async function startTemporal(
  kind: BenchTemporal['kind'],
  { dir, postgresAdminUrl, namespaces }: { dir: string; postgresAdminUrl: string; namespaces: string[] },
): Promise<TemporalUnderBench> {
  if (kind === 'cluster') {
    const cluster = await startTemporalCluster({ postgresAdminUrl, dataDir: join(dir, 'cluster'), namespaces, log: say });
    // The `action` counter is the frontend's (its gRPC interceptor counts the WorkflowService calls and
    // the commands of each completed workflow task); every node is scraped and summed, so a count
    // never depends on which node happens to serve it.
    const metricsUrls = cluster.nodes.map((n) => n.metricsUrl);
    return {
      shape: {
        kind,
        history_nodes: cluster.nodes.filter((n) => n.service === 'history').length,
        shards: cluster.shards,
        mtls: !!cluster.tls,
        persistence: 'postgresql',
      },
      env: cluster.env,
      actionCounts: async () => sumActions(await Promise.all(metricsUrls.map((url) => scrapeActions(url)))),
      stop: () => cluster.stop(),
    };
  }
  // Like npm start, a file-backed server (BENCH_TEMPORAL_DB=memory measures the in-memory one).
  const memory = process.env.BENCH_TEMPORAL_DB === 'memory';
  const temporal = await startTemporalDevServer({
    cli: (await ensureTemporalTools(say)).cli,
    port: await freeFixedPort(),
    ...(memory ? {} : { dbFile: join(dir, 'temporal.db') }),
    namespaces,
    metricsPort: await freeFixedPort(),
  });
  return {
    shape: { kind, history_nodes: 1, shards: 1, mtls: false, persistence: memory ? 'memory' : 'sqlite' },
    env: { TEMPORAL_ADDRESS: temporal.address },
    actionCounts: () => scrapeActions(temporal.metricsUrl!),
    stop: () => temporal.stop(),
  };
}

async function main() {
  const runs: BenchResults[] = [];
  for (const kind of TEMPORAL_KINDS) runs.push(await bench(kind));
  if (runs.length > 1) console.log(`\n${compareRuns(runs)}`);
}

/** One whole run of the benchmark on one kind of Temporal; writes its results file and returns them. */
async function bench(kind: BenchTemporal['kind']): Promise<BenchResults> {
  const started = Date.now();
  say(`on the ${kind === 'cluster' ? 'multi-node Temporal cluster (mTLS)' : 'Temporal dev server'}`);
  const dir = join(DATA_DIR, 'bench', kind);
  await rm(dir, { recursive: true, force: true });
  const pgPort = await freeFixedPort();
  const postgres = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port: pgPort, fresh: true });
  startedProcesses.push(() => postgres.stop());
  const urls = Object.fromEntries(DATABASES.map((db) => [db, postgresUrl(pgPort, db)])) as Record<DatabaseName, string>;
  await prepareDatabases(urls, { adminUrl: postgres.url('postgres') });
  // Enough stock that the sweep never runs out: the benchmark measures completions, not refusals.
  const inventory = new pg.Client({ connectionString: urls.inventory });
  await inventory.connect();
  await inventory.query('UPDATE products SET stock = 10000000');
  await inventory.end();
  // The platform's namespace is the one its processes are configured with (TEMPORAL_NAMESPACE).
  const platformNamespace = temporalConnectionSettings().namespace;
  const temporal = await startTemporal(kind, { dir, postgresAdminUrl: postgres.url('postgres'), namespaces: [platformNamespace, FLOOR_NAMESPACE] });
  startedProcesses.push(() => temporal.stop());
  const { actionCounts } = temporal;
  const bundle = await buildWorkflowBundle();
  const apiPort = await freeFixedPort();
  const env = {
    // payloads are encrypted as in production: the codec's cost is part of the platform's
    PAYLOAD_KEYRING: keyringJson(withNewKey(undefined, 'bench')),
    ...process.env,
    ...temporal.env,
    WORKFLOW_BUNDLE_PATH: bundle,
    LOG_LEVEL: 'warn',
    REVIEW_ABOVE: '0',
    CARRIER_PICKUP_DELAY_MS: '0',
    // the benchmark's storefront hears every order event at a webhook endpoint on loopback
    WEBHOOKS_ALLOW_LOOPBACK_HTTP: 'true',
    ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
  };
  const platform = await launchPlatform({ env, counts, apiPort, authPort: await freeFixedPort(), logDir: join(dir, 'logs') });
  startedProcesses.push(() => platform.stop());
  await waitForHttp(`${platform.apiUrl}/healthz`);
  await waitForHttp(`${platform.authUrl}/healthz`);
  // The load generator is a storefront like any other, with a limit no run reaches; its token renews itself.
  const { bench: benchClient } = await ensureClients(urls.auth, {
    bench: { id: 'bench', name: 'Benchmark storefront', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks], rateLimitPerMinute: 100_000_000 },
  });
  const benchToken = tokenSource(platform.authUrl, benchClient);
  let authorization = `Bearer ${await benchToken()}`;
  const tokenRenewal = setInterval(() => void benchToken().then((t) => (authorization = `Bearer ${t}`)), 30_000);
  tokenRenewal.unref();
  // Every order event to a webhook endpoint, as a storefront subscribes: the time from the order's step to it is measured.
  const probe = await startWebhookProbe();
  startedProcesses.push(() => probe.stop());
  const endpoint = await fetch(`${platform.apiUrl}/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify({ url: probe.url, events: ORDER_TOPICS }),
  });
  if (endpoint.status !== 201) throw new Error(`registering the benchmark's webhook endpoint: ${endpoint.status} ${await endpoint.text()}`);
  const floorWorkers = startFloorWorkers(env);
  startedProcesses.push(() => Promise.all(floorWorkers.map(({ child }) => stopProcess(child))));
  const { client: floorClient, connection } = await connectClient(temporalConnectionSettings({ ...env, TEMPORAL_NAMESPACE: FLOOR_NAMESPACE }));
  const ordersClient = new Client({ connection, namespace: platformNamespace });
  /** Processes by name for the CPU breakdown (Temporal and PostgreSQL are found by command). */
  const namedPids = () =>
    new Map<number, string>([
      [process.pid, 'bench (load generator)'],
      ...platform.processes().map(({ name, child }) => [child.pid!, name] as [number, string]),
      ...floorWorkers.map(({ name, child }) => [child.pid!, name] as [number, string]),
    ]);
  const STEP_SAMPLE = 40;
  /** the server publishes its counters about once a second: wait this long before the last count of a level */
  const ACTIONS_SETTLE_MS = 2000;
  const ordersDb = new pg.Pool({ connectionString: urls.orders, max: 2, application_name: 'bench' });
  const admin = new pg.Pool({ connectionString: postgres.url('postgres'), max: 1, application_name: 'bench' });
  const watcher = completionWatcher(ordersDb);

  // Connections each database saw, and the RSS of every process, sampled through the whole run.
  let maxConnections = 0;
  let maxBackground = 0;
  const maxByDatabase: Record<string, number> = {};
  const rssMb: Record<string, number> = {};
  const sample = async () => {
    // Client connections only: autovacuum workers also show up in a database's rows, but they
    // have their own slots beside max_connections and no pool opens them.
    const { rows } = await admin.query<{ datname: string; n: string; background: string }>(
      `SELECT datname, count(*) FILTER (WHERE backend_type = 'client backend') AS n, count(*) FILTER (WHERE backend_type <> 'client backend') AS background
       FROM pg_stat_activity WHERE datname = ANY($1) AND application_name <> 'bench' GROUP BY datname`,
      [DATABASES.map((d) => d)],
    );
    maxBackground = Math.max(
      maxBackground,
      rows.reduce((s, r) => s + Number(r.background), 0),
    );
    const total = rows.reduce((s, r) => s + Number(r.n), 0);
    maxConnections = Math.max(maxConnections, total);
    for (const r of rows) maxByDatabase[r.datname] = Math.max(maxByDatabase[r.datname] ?? 0, Number(r.n));
    for (const [label, mb] of rssSnapshot(namedPids())) rssMb[label] = Math.max(rssMb[label] ?? 0, round(mb));
  };
  // A sample that fails (the server busy restarting) is skipped; the next one counts.
  const sampler = setInterval(() => void sample().catch(() => undefined), 250);

  let n = 0;
  async function place(key: string = randomUUID(), body: string = orderBody(n++)): Promise<Placed | undefined> {
    const sentAt = Date.now();
    const res = await fetch(`${platform.apiUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, authorization },
      body,
    });
    const answer = (await res.json()) as { orderId?: string };
    if (res.status !== 202 || !answer.orderId) return undefined;
    return { sentAt, acceptMs: Date.now() - sentAt, orderId: answer.orderId };
  }

  /** One timed run of a closed loop: what every finished iteration measured, and how long it all took. */
  interface Round {
    seconds: number;
    completed: number;
    errors: number;
    accept: number[];
    latency: number[];
    done: string[];
  }

  /** `concurrency` loops, each repeating `iteration` until `seconds` have passed, then finishing it. */
  async function timedLoop(concurrency: number, seconds: number, iteration: (round: Round) => Promise<void>): Promise<Round> {
    const round: Round = { seconds: 0, completed: 0, errors: 0, accept: [], latency: [], done: [] };
    const until = Date.now() + seconds * 1000;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < until) await iteration(round);
      }),
    );
    round.seconds = (Date.now() - t0) / 1000;
    return round;
  }

  /** C virtual customers, each placing an order and waiting for its end before the next. */
  const closedLoop = (concurrency: number, seconds: number) =>
    timedLoop(concurrency, seconds, async (round) => {
      const placed = await place().catch(() => undefined);
      if (!placed) {
        round.errors++;
        return;
      }
      round.accept.push(placed.acceptMs);
      const end = await watcher.wait(placed.orderId);
      if (end.status === 'COMPLETED') {
        round.completed++;
        round.done.push(orderWorkflowId(placed.orderId));
      } else round.errors++;
      round.latency.push(end.at - placed.sentAt);
    });

  /** The floor at the same concurrency: bare workflows started and awaited with the client. */
  const floorLoop = (concurrency: number, seconds: number) =>
    timedLoop(concurrency, seconds, async (round) => {
      const started = Date.now();
      const workflowId = `floor-${randomUUID()}`;
      await floorClient.workflow.execute<typeof floorWorkflow>('floorWorkflow', { taskQueue: FLOOR_WORKFLOW_TASK_QUEUE, workflowId });
      round.latency.push(Date.now() - started);
      round.done.push(workflowId);
      round.completed++;
    });

  /** Rounds of one side of a level, as one: counts and times added, samples pooled. */
  const merge = (rounds: Round[]): Round => ({
    seconds: rounds.reduce((s, r) => s + r.seconds, 0),
    completed: rounds.reduce((s, r) => s + r.completed, 0),
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    accept: rounds.flatMap((r) => r.accept),
    latency: rounds.flatMap((r) => r.latency),
    done: rounds.flatMap((r) => r.done),
  });

  /**
   * One level of the sweep: the platform and the floor in ROUNDS alternating turns of
   * SECONDS / ROUNDS each, so that the machine drifting in speed over minutes (it does, by up to a
   * third for the same floor) weighs on both sides alike. CPU is counted per side, across turns.
   *
   * Actions are counted per namespace, from the start of a side's turn to the start of its next
   * turn (or, after the last, to a count taken once the server has published what it counted):
   * the other side's turn in between runs in another namespace, and the window takes in the last
   * steps of workflows whose end the turn saw just before the server recorded them. All of the
   * platform's namespace is counted: what the API starts to take an order, and the reconciliation
   * schedule when it fires during the level.
   */
  async function level(concurrency: number): Promise<SweepRow> {
    const platformRounds: Round[] = [];
    const floorRounds: Round[] = [];
    const platformCpu = new Map<string, number>();
    const floorCpu = new Map<string, number>();
    const platformActionMarks: ActionCounts[] = [];
    const floorActionMarks: ActionCounts[] = [];
    const addCpu = (into: Map<string, number>, spent: Record<string, number>) => {
      for (const [k, v] of Object.entries(spent)) into.set(k, (into.get(k) ?? 0) + v);
    };
    for (let i = 0; i < ROUNDS; i++) {
      platformActionMarks.push(await actionCounts());
      const cpu0 = cpuSnapshot(namedPids());
      platformRounds.push(await closedLoop(concurrency, SECONDS / ROUNDS));
      const cpu1 = cpuSnapshot(namedPids());
      floorActionMarks.push(await actionCounts());
      floorRounds.push(await floorLoop(concurrency, SECONDS / ROUNDS));
      const cpu2 = cpuSnapshot(namedPids());
      addCpu(platformCpu, cpuBetween(cpu0, cpu1));
      addCpu(floorCpu, cpuBetween(cpu1, cpu2));
    }
    await new Promise((r) => setTimeout(r, ACTIONS_SETTLE_MS));
    const settled = await actionCounts();
    platformActionMarks.push(settled);
    floorActionMarks.push(settled);
    const actionsOf = (marks: ActionCounts[], namespace: string, i: number) => actionsBetween(marks[i]!, marks[i + 1]!, namespace);
    const platformActions = actionsBetween(platformActionMarks[0]!, settled, platformNamespace);
    const floorActions = actionsBetween(floorActionMarks[0]!, settled, FLOOR_NAMESPACE);
    const p = merge(platformRounds);
    const f = merge(floorRounds);
    const ordersPerS = round(p.completed / p.seconds, 2);
    const floorPerS = round(f.completed / f.seconds, 2);
    const cpu = (m: Map<string, number>) => Object.fromEntries([...m].map(([k, v]) => [k, round(v, 2)] as const).sort((a, b) => b[1] - a[1]));
    /** A count per completed order (or floor workflow), by key, largest first. */
    const perOrder = (spent: Record<string, number>, n: number, scale = 1, digits = 2) =>
      Object.fromEntries(
        Object.entries(spent)
          .map(([k, v]) => [k, n > 0 ? round((v * scale) / n, digits) : 0] as const)
          .sort((a, b) => b[1] - a[1]),
      );
    const total = (spent: Record<string, number>) => Object.values(spent).reduce((sum, v) => sum + v, 0);
    const perOrderTotal = (spent: Record<string, number>, n: number, scale = 1, digits = 2) => (n > 0 ? round((total(spent) * scale) / n, digits) : 0);
    return {
      concurrency,
      orders_per_s: ordersPerS,
      accepted_per_s: round(p.accept.length / p.seconds, 2),
      accept_p50_ms: pct(p.accept, 50),
      accept_p95_ms: pct(p.accept, 95),
      accept_p99_ms: pct(p.accept, 99),
      e2e_p50_ms: pct(p.latency, 50),
      e2e_p95_ms: pct(p.latency, 95),
      e2e_p99_ms: pct(p.latency, 99),
      completed: p.completed,
      errors: p.errors,
      floor_orders_per_s: floorPerS,
      floor_completed: f.completed,
      floor_p50_ms: pct(f.latency, 50),
      floor_p99_ms: pct(f.latency, 99),
      floor_ratio: round(ordersPerS / floorPerS, 2),
      // Temporal's billable actions per completed order (platform) and per floor workflow
      actions_per_order: perOrderTotal(platformActions, p.completed),
      floor_actions_per_order: perOrderTotal(floorActions, f.completed),
      actions_per_order_by_type: perOrder(platformActions, p.completed),
      floor_actions_per_order_by_type: perOrder(floorActions, f.completed),
      // CPU seconds by process while each side ran, and the same in ms per completed order
      cpu_s: cpu(platformCpu),
      floor_cpu_s: cpu(floorCpu),
      cpu_ms_per_order: perOrderTotal(Object.fromEntries(platformCpu), p.completed, 1000, 0),
      floor_cpu_ms_per_order: perOrderTotal(Object.fromEntries(floorCpu), f.completed, 1000, 0),
      cpu_ms_per_order_by_process: perOrder(Object.fromEntries(platformCpu), p.completed, 1000, 1),
      floor_cpu_ms_per_order_by_process: perOrder(Object.fromEntries(floorCpu), f.completed, 1000, 1),
      // from the last workflows of each side: the steady state, not the ramp-up
      steps: await stepLatencies(ordersClient, p.done.slice(-STEP_SAMPLE), pct),
      floor_steps: await stepLatencies(floorClient, f.done.slice(-STEP_SAMPLE), pct),
      rounds: platformRounds.map((r, i) => {
        const fr = floorRounds[i]!;
        return {
          orders_per_s: round(r.completed / r.seconds, 2),
          floor_orders_per_s: round(fr.completed / fr.seconds, 2),
          actions_per_order: perOrderTotal(actionsOf(platformActionMarks, platformNamespace, i), r.completed),
          floor_actions_per_order: perOrderTotal(actionsOf(floorActionMarks, FLOOR_NAMESPACE, i), fr.completed),
        };
      }),
    };
  }

  /** Orders arriving at a fixed rate whatever the platform's state (autocannon's overallRate). */
  async function openLoop(rate: number): Promise<OpenLoopRow> {
    const ids: Array<{ orderId: string; sentAt: number }> = [];
    const sends = new Map<object, number>();
    const result = await autocannon({
      url: `${platform.apiUrl}/orders`,
      method: 'POST',
      connections: Math.min(128, Math.max(8, rate)),
      overallRate: rate,
      duration: SECONDS,
      requests: [
        {
          // A connection sends one request at a time, so its context names the request in flight.
          setupRequest: (req: autocannon.Request, context: object) => {
            sends.set(context, Date.now());
            return { ...req, headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), authorization }, body: orderBody(n++) };
          },
          onResponse: (status: number, body: string, context: object) => {
            if (status === 202) ids.push({ orderId: (JSON.parse(body) as { orderId: string }).orderId, sentAt: sends.get(context) ?? Date.now() });
          },
        },
      ],
    });
    const ends = await Promise.all(ids.map(async ({ orderId, sentAt }) => ({ sentAt, end: await watcher.wait(orderId) })));
    const first = Math.min(...ends.map((e) => e.sentAt));
    const last = Math.max(...ends.map((e) => e.end.at));
    const e2e = ends.map((e) => e.end.at - e.sentAt);
    return {
      offered_per_s: rate,
      accepted_per_s: round(ids.length / SECONDS, 2),
      orders_per_s: round(ends.filter((e) => e.end.status === 'COMPLETED').length / ((last - first) / 1000), 2),
      accept_p50_ms: result.latency.p50,
      accept_p99_ms: result.latency.p99,
      e2e_p50_ms: pct(e2e, 50),
      e2e_p99_ms: pct(e2e, 99),
      errors: result.errors + result.non2xx,
    };
  }

  // Warm up before measuring: the floor workers have bundled their workflow and are polling, and
  // every process of the platform has run each step once (module loading, JIT, connections).
  await floorClient.workflow.execute<typeof floorWorkflow>('floorWorkflow', {
    taskQueue: FLOOR_WORKFLOW_TASK_QUEUE,
    workflowId: `floor-warm-up-${randomUUID()}`,
  });
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 5; i++) {
        const placed = await place();
        if (placed) await watcher.wait(placed.orderId);
      }
    }),
  );

  say(`closed loop at ${LEVELS.join(', ')} orders in flight, ${SECONDS}s each, platform and floor alternating in ${ROUNDS} turns`);
  const sweep = [];
  const levelWindows: Array<[number, number]> = [];
  for (const c of LEVELS) {
    const from = Date.now();
    const row = await level(c);
    levelWindows.push([from, Date.now()]);
    say(JSON.stringify({ ...row, steps: undefined, floor_steps: undefined, cpu_s: undefined, floor_cpu_s: undefined }));
    sweep.push(row);
  }
  // The webhooks of each level's orders, once the last of them has arrived (the count stops growing).
  for (let last = -1; probe.received() !== last;) {
    last = probe.received();
    await new Promise((r) => setTimeout(r, 2000));
  }
  sweep.forEach((row, i) => (row.webhook = probe.latency(...levelWindows[i]!, pct)));
  const webhookSweep = probe.latency(levelWindows[0]![0], levelWindows.at(-1)![1], pct);
  say(
    `webhooks, from the order's step to the storefront's endpoint: ${sweep.map((r) => `${r.concurrency} in flight p50 ${r.webhook?.p50_ms} ms p99 ${r.webhook?.p99_ms} ms`).join('; ')}; ` +
      `${webhookSweep.events} events, ${webhookSweep.repeats} repeats`,
  );

  say(`open loop at ${RATES.join(', ')} orders/s`);
  const open = [];
  for (const rate of RATES) {
    const row = await openLoop(rate);
    say(JSON.stringify(row));
    open.push(row);
    if (row.orders_per_s < 0.9 * rate) break; // saturated: higher rates only queue
  }

  say(`burst of ${BURST} orders`);
  const burstStart = Date.now();
  const burstIds: string[] = [];
  let next = 0;
  let burstRejected = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < BURST) {
        next++;
        // A storefront retries with the same key and body, so a retry can never place a second order.
        const key = randomUUID();
        const body = orderBody(n++);
        let placed: Placed | undefined;
        for (let attempt = 0; attempt < 5 && !placed; attempt++) placed = await place(key, body).catch(() => undefined);
        if (placed) burstIds.push(placed.orderId);
        else burstRejected++;
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 600_000)));
  await Promise.race([Promise.all(burstIds.map((id) => watcher.wait(id))), timeout]);
  clearTimeout(timer);
  const burstDrainS = round((Date.now() - burstStart) / 1000, 1);
  const { rows: endedRows } = await ordersDb.query<{ n: string }>(
    `SELECT count(*) AS n FROM orders WHERE id = ANY($1::uuid[]) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')`,
    [burstIds],
  );
  // Lost: accepted (202) but never ended. Refused requests are counted apart: they were never orders.
  const burstLost = burstIds.length - Number(endedRows[0]!.n);
  say(`burst: ${burstIds.length} accepted, ${burstRejected} refused, every accepted order ended after ${burstDrainS}s, lost ${burstLost}`);

  clearInterval(sampler);
  // The budget from the processes' own configuration: every *_DB_POOL_MAX of each pool process
  // (its database and, for payments and shipping, the simulation's), times its processes, and the API's.
  const poolMaxima = (config: object) => Object.entries(config).reduce((sum, [key, value]) => sum + (key.endsWith('_DB_POOL_MAX') ? Number(value) : 0), 0);
  const specs = { orders: ordersPool, inventory: inventoryPool, payments: paymentsPool, shipping: shippingPool, notifications: notificationsPool };
  const budget = POOLS.reduce((sum, pool) => sum + counts[pool] * poolMaxima(parseEnv(specs[pool].env, env)), 0) + parseEnv(apiEnv, env).API_DB_POOL_MAX;
  const saturated = sweep.reduce<(typeof sweep)[number] | undefined>((best, r) => (!best || r.orders_per_s > best.orders_per_s ? r : best), undefined);
  const results: BenchResults = {
    at: new Date().toISOString(),
    temporal: temporal.shape,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: round(totalmem() / 2 ** 30), node: process.version },
    settings: {
      seconds_per_level: SECONDS,
      rounds_per_level: ROUNDS,
      pools: counts,
      worker_max_concurrent_activities: Number(process.env.WORKER_MAX_CONCURRENT_ACTIVITIES ?? 20),
      worker_max_cached_workflows: process.env.WORKER_MAX_CACHED_WORKFLOWS ?? 'default',
    },
    orders_per_s: saturated?.orders_per_s ?? null,
    accept_p99_ms: saturated?.accept_p99_ms ?? null,
    e2e_p50_ms: saturated?.e2e_p50_ms ?? null,
    e2e_p99_ms: saturated?.e2e_p99_ms ?? null,
    floor_orders_per_s: saturated?.floor_orders_per_s ?? null,
    webhook_p50_ms: saturated?.webhook?.p50_ms ?? null,
    webhook_p99_ms: saturated?.webhook?.p99_ms ?? null,
    webhook_sweep: webhookSweep,
    floor_ratio: saturated?.floor_ratio ?? null,
    actions_per_order: saturated?.actions_per_order ?? null,
    floor_actions_per_order: saturated?.floor_actions_per_order ?? null,
    cpu_ms_per_order: saturated?.cpu_ms_per_order ?? null,
    floor_cpu_ms_per_order: saturated?.floor_cpu_ms_per_order ?? null,
    saturation_concurrency: saturated?.concurrency ?? null,
    burst_drain_s: burstDrainS,
    burst_lost: burstLost,
    burst_refused: burstRejected,
    pg_max_connections: maxConnections,
    pg_max_connections_by_database: maxByDatabase,
    pg_pool_budget: budget,
    pg_max_background_backends: maxBackground,
    rss_mb: rssMb,
    sweep,
    open_loop: open,
    duration_s: round((Date.now() - started) / 1000),
  };
  const stamp = results.at.replace(/[:.]/g, '-');
  await mkdir(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  const file = join(PROJECT_ROOT, 'bench', 'results', `${stamp}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(PROJECT_ROOT, 'bench', 'results', `${stamp}.html`), renderChart(results));
  say(`results: ${file}`);
  console.log(JSON.stringify({ ...results, sweep: undefined, open_loop: undefined }, null, 2));

  await watcher.stop();
  await probe.stop();
  await Promise.all([ordersDb.end(), admin.end()]);
  await connection.close();
  await Promise.all(floorWorkers.map(({ child }) => stopProcess(child)));
  await platform.stop();
  await temporal.stop();
  await postgres.stop();
  startedProcesses.length = 0;
  return results;
}

/** The runs of one invocation side by side: the saturated level's figures of each (the first run is the reference). */
function compareRuns(runs: BenchResults[]): string {
  const label = (r: BenchResults) =>
    r.temporal?.kind === 'cluster' ? `cluster (${r.temporal.history_nodes} history nodes, ${r.temporal.shards} shards, mTLS)` : 'dev server';
  const rows: Array<[string, (r: BenchResults) => string | number | null | undefined]> = [
    ['orders in flight (saturation)', (r) => r.saturation_concurrency],
    ['platform orders/s', (r) => r.orders_per_s],
    ['end-to-end p50 / p99 ms', (r) => `${r.e2e_p50_ms} / ${r.e2e_p99_ms}`],
    ['webhook p50 / p99 ms', (r) => `${r.webhook_p50_ms ?? '-'} / ${r.webhook_p99_ms ?? '-'}`],
    ['accept p99 ms', (r) => r.accept_p99_ms],
    ['floor workflows/s', (r) => r.floor_orders_per_s],
    ['floor_ratio', (r) => r.floor_ratio],
    ['actions / order (floor)', (r) => `${r.actions_per_order} (${r.floor_actions_per_order})`],
    ['CPU ms / order (floor)', (r) => `${r.cpu_ms_per_order} (${r.floor_cpu_ms_per_order})`],
    [
      'CPU ms / order: Temporal, PostgreSQL',
      (r) => {
        const level = r.sweep.find((s) => s.concurrency === r.saturation_concurrency);
        const of = (name: string) => level?.cpu_ms_per_order_by_process?.[name] ?? 0;
        return `${of('temporal server')}, ${of('postgres')}`;
      },
    ],
    ['burst: drained s, lost', (r) => `${r.burst_drain_s}, ${r.burst_lost}`],
    ['errors', (r) => r.sweep.reduce((n, s) => n + s.errors, 0)],
  ];
  const head = ['', ...runs.map(label)];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map(([name, of]) => `| ${[name, ...runs.map((r) => String(of(r) ?? '—'))].join(' | ')} |`),
  ];
  const [reference, ...others] = runs;
  for (const r of others) {
    if (reference?.orders_per_s && r.orders_per_s)
      lines.push('', `${label(r)}: ${round(r.orders_per_s / reference.orders_per_s, 2)}× the ${label(reference)}'s orders/s in the same invocation`);
  }
  return lines.join('\n');
}

main().catch(async (err) => {
  console.error('[bench] failed:', err);
  for (const stop of startedProcesses.reverse()) await stop().catch(() => undefined);
  process.exit(1);
});
