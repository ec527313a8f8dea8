import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVICES } from '../../contracts/services';
import { freeFixedPort } from '../net';
import { NOTIFICATIONS_TASK_QUEUE } from '../../contracts/notifications';
import { ORDERS_TASK_QUEUE } from '../../contracts/orders';
import { bundleNotificationWorkflows, bundleOrderWorkflows } from '../workflow-bundle';
import { BUILD_DIR, PROJECT_ROOT } from './paths';

/** One worker pool per service, each started from `workers/<service>.ts`. */
export const POOLS = SERVICES;
export type PoolName = (typeof POOLS)[number];

/** The API's variable listing a pool's process URLs (api/config.ts). */
export const workerUrlsVar = (pool: PoolName) => `${pool.toUpperCase()}_WORKER_URLS`;

/** How many worker processes each pool runs. */
export type PoolCounts = Record<PoolName, number>;

export interface PlatformOptions {
  env: NodeJS.ProcessEnv;
  /** processes per pool; a pool not named runs one */
  counts: Partial<PoolCounts>;
  apiPort: number;
  /** the auth service's port; its URL is the issuer of the platform's tokens */
  authPort: number;
  /** the codec server's port (the Web UI decodes payloads there); none runs no codec server */
  codecPort?: number;
  /** a Web UI without sign-in of its own, served through the codec server to signed-in operators */
  uiUpstream?: string;
  /** the demo shop (shop/: /shop, /shop/operator) on this port, acting as these clients, whose secrets go to its process alone; none runs no shop */
  shop?: { port: number; storefront: ShopClient; operator?: ShopClient };
  /** write each process's output to <logDir>/<name>.log instead of this terminal */
  logDir?: string;
  /** start a crashed process again (npm start); tests leave crashes visible */
  restart?: boolean;
  /** worker process n (from 0) serves its HTTP (/metrics, /healthz, …) on this port + n; without it each gets a free port */
  metricsBasePort?: number;
  log?: (msg: string) => void;
}

/** A client of the auth service that the demo shop acts as. */
export interface ShopClient {
  id: string;
  secret: string;
}

export interface RunningPlatform {
  apiUrl: string;
  /** the auth service: the issuer of access tokens, with /oauth/token */
  authUrl: string;
  codecUrl?: string;
  /** the demo shop, when one runs: its pages are under /shop */
  shopUrl?: string;
  processes: () => ManagedProcess[];
  stop: () => Promise<void>;
}

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** where its /metrics is served, when known */
  metricsUrl?: string;
}

/** Bundles the workflows once, so each orders worker loads the bundle instead of building its own. */
export async function buildWorkflowBundle(): Promise<string> {
  const { code } = await bundleOrderWorkflows();
  await mkdir(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, 'workflow-bundle.js');
  await writeFile(path, code);
  return path;
}

/** The notifications pool's own bundle, built once likewise (NOTIFICATIONS_WORKFLOW_BUNDLE_PATH). */
export async function buildNotificationsWorkflowBundle(): Promise<string> {
  const { code } = await bundleNotificationWorkflows();
  await mkdir(BUILD_DIR, { recursive: true });
  const path = join(BUILD_DIR, 'notifications-workflow-bundle.js');
  await writeFile(path, code);
  return path;
}

const entry = (script: string) => join(PROJECT_ROOT, script);

/**
 * Starts the worker pools and the API as separate processes, each a real `node` running its own
 * entry point, and stops them with SIGTERM so each drains its in-flight tasks.
 */
export async function launchPlatform({
  env,
  counts,
  apiPort,
  authPort,
  codecPort,
  uiUpstream,
  shop,
  logDir,
  restart = false,
  metricsBasePort,
  log = () => undefined,
}: PlatformOptions): Promise<RunningPlatform> {
  if (logDir) await mkdir(logDir, { recursive: true });
  const running = new Map<string, ManagedProcess>();
  let stopping = false;

  function start(name: string, script: string, extraEnv: NodeJS.ProcessEnv = {}, metricsUrl?: string): void {
    const child = spawn(process.execPath, ['--import', 'tsx', entry(script)], {
      cwd: PROJECT_ROOT,
      env: { ...env, ...extraEnv },
      stdio: logDir ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    });
    if (logDir) {
      const out = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
      child.stdout?.pipe(out);
      child.stderr?.pipe(out);
    }
    running.set(name, { name, child, ...(metricsUrl ? { metricsUrl } : {}) });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      log(`${name} exited (${signal ?? code})${restart ? '; restarting in 1s' : ''}`);
      if (restart) setTimeout(() => !stopping && start(name, script, extraEnv, metricsUrl), 1000);
    });
  }

  // Every worker's HTTP port is fixed before it starts, so the API can be told where each pool's
  // processes answer (/healthz, inventory's /products): <POOL>_WORKER_URLS, one URL per process.
  // A crashed process starts again on its port, so none is in the range outgoing connections take from.
  const workerUrls = Object.fromEntries(POOLS.map((p) => [p, [] as string[]])) as Record<PoolName, string[]>;
  let n = 0;
  for (const pool of POOLS) {
    for (let i = 1; i <= (counts[pool] ?? 1); i++) {
      const port = metricsBasePort === undefined ? await freeFixedPort() : metricsBasePort + n++;
      workerUrls[pool].push(`http://127.0.0.1:${port}`);
    }
  }
  // The notifications pool reads the orders pool's event log over HTTP, and runs a bundle of its own.
  const poolEnv: Partial<Record<PoolName, NodeJS.ProcessEnv>> = {
    [NOTIFICATIONS_TASK_QUEUE]: {
      ORDERS_WORKER_URLS: workerUrls[ORDERS_TASK_QUEUE].join(','),
      NOTIFICATIONS_WORKFLOW_BUNDLE_PATH:
        env.NOTIFICATIONS_WORKFLOW_BUNDLE_PATH ?? (workerUrls[NOTIFICATIONS_TASK_QUEUE].length > 0 ? await buildNotificationsWorkflowBundle() : undefined),
    },
  };
  for (const pool of POOLS) {
    workerUrls[pool].forEach((url, i) =>
      start(`${pool}-worker-${i + 1}`, `workers/${pool}.ts`, { ...poolEnv[pool], METRICS_PORT: new URL(url).port }, `${url}/metrics`),
    );
  }
  const authUrl = `http://127.0.0.1:${authPort}`;
  // The API's Swagger UI asks the auth service for tokens from the browser.
  start('auth', 'auth/main.ts', { PORT: String(authPort), AUTH_ISSUER: authUrl, AUTH_CORS_ORIGINS: `http://127.0.0.1:${apiPort}` });
  start(
    'api',
    'api/main.ts',
    { PORT: String(apiPort), AUTH_ISSUER: authUrl, ...Object.fromEntries(POOLS.map((p) => [workerUrlsVar(p), workerUrls[p].join(',')])) },
    `http://127.0.0.1:${apiPort}/metrics`,
  );
  const codecUrl = codecPort ? `http://127.0.0.1:${codecPort}` : undefined;
  if (codecPort) {
    start('codec-server', 'codec-server/main.ts', {
      PORT: String(codecPort),
      AUTH_ISSUER: authUrl,
      CODEC_CORS_ORIGINS: codecUrl,
      ...(uiUpstream ? { UI_UPSTREAM: uiUpstream } : {}),
    });
  }

  const shopUrl = shop ? `http://127.0.0.1:${shop.port}` : undefined;
  if (shop) {
    start('shop', 'shop/main.ts', {
      PORT: String(shop.port),
      API_URL: `http://127.0.0.1:${apiPort}`,
      AUTH_ISSUER: authUrl,
      SHOP_CLIENT_ID: shop.storefront.id,
      SHOP_CLIENT_SECRET: shop.storefront.secret,
      ...(shop.operator ? { SHOP_OPERATOR_ID: shop.operator.id, SHOP_OPERATOR_SECRET: shop.operator.secret } : {}),
      // The operator view links each order to the Web UI the codec server serves, unless env names another.
      ...(codecUrl && uiUpstream && !env.TEMPORAL_UI_URL ? { TEMPORAL_UI_URL: codecUrl } : {}),
    });
  }

  return {
    apiUrl: `http://127.0.0.1:${apiPort}`,
    authUrl,
    ...(codecUrl ? { codecUrl } : {}),
    ...(shopUrl ? { shopUrl } : {}),
    processes: () => [...running.values()],
    stop: async () => {
      stopping = true;
      await Promise.all([...running.values()].map(({ child }) => stopProcess(child)));
    },
  };
}

/** SIGTERM, then SIGKILL if it has not drained within the grace period. */
export async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Polls a URL until it answers 200. */
export async function waitForHttp(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not become ready: ${last}`);
}
