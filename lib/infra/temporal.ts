import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { ORDER_SEARCH_ATTRIBUTES } from '../../contracts/orders';

export interface RunningTemporal {
  address: string;
  uiUrl?: string;
  /** the server's Prometheus endpoint, when started with a metricsPort */
  metricsUrl?: string;
  stop: () => Promise<void>;
}

export interface DevServerOptions {
  cli: string;
  port: number;
  /** the Web UI's port; none runs the server headless */
  uiPort?: number;
  /** where the Web UI's browser decodes payloads (the codec server) */
  uiCodecEndpoint?: string;
  /** a SQLite file keeps workflows across restarts; none keeps them in memory */
  dbFile?: string;
  namespaces?: string[];
  /**
   * For a file-backed server. The default journal makes every history write an fsync of a
   * rollback journal; write-ahead logging with normal sync keeps the state across a crash of the
   * server process (not of the machine) at nearly three times the floor's throughput at 32 in flight
   * (BENCHMARKS.md, "SQLite journal").
   */
  sqlitePragmas?: string[];
  /** registered on every namespace at start (the Web UI's order list filters on them) */
  searchAttributes?: ReadonlyArray<{ name: string; type: SearchAttributeType }>;
  /** serves the server's own Prometheus metrics (its `action` counter, …) on this port; none picks a random one */
  metricsPort?: number;
  log?: (msg: string) => void;
}

/**
 * The dev server's settings (BENCHMARKS.md has the figures):
 * - The history service reads its transfer queue (the tasks that hand a workflow or activity task
 *   to matching) at most 20 times a second by default, on the dev server's single shard. Every
 *   hop of a saga that is not dispatched eagerly waited ~40 ms for that read: the floor workflow of
 *   the time (twelve no-op activities) ran 1.15 times a second at one in flight. At 100 reads a second it
 *   runs 5.9 times a second, and at 64 in flight 14.5 against 14.2; at 1000 a second, 6.3 and
 *   13.2 (`bench/probe-dev-server.ts`). The limit caps how often the queue may be read when there
 *   is work; an idle server reads no more often. The timer queue (timeouts, durable waits) and the
 *   visibility queue (the Web UI's list, search attributes) have the same limit and setting.
 * - One partition per task queue: on a single dev server, several partitions only make a task wait
 *   for a poller on another partition to forward it.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'history.transferProcessorMaxPollRPS=100',
  'history.timerProcessorMaxPollRPS=100',
  'history.visibilityProcessorMaxPollRPS=100',
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
];

/**
 * Worker Versioning, dev server only: a build that stops taking new orders is DRAINING until the
 * server counts none of its pinned workflows open, and DRAINED after. The server first waits a grace
 * period for visibility to catch up, then recounts every refresh interval: 3 minutes each by default,
 * so a drained build showed DRAINING for up to 6 minutes. The dev server's visibility (SQLite) is
 * current within its queue's next read, so 2 seconds each; the deployment script's `drain` and the
 * versioning test wait on it. (Durations are JSON strings: the quotes are part of the value.)
 */
export const DEV_SERVER_VERSIONING_CONFIG = [
  'matching.wv.VersionDrainageStatusVisibilityGracePeriod="2s"',
  'matching.wv.VersionDrainageStatusRefreshInterval="2s"',
];

/** The Temporal CLI's dev server: a real Temporal (frontend, history, matching) with SQLite and the Web UI. */
export async function startTemporalDevServer({
  cli,
  port,
  uiPort,
  uiCodecEndpoint,
  dbFile,
  namespaces = ['default'],
  searchAttributes = ORDER_SEARCH_ATTRIBUTES,
  metricsPort,
  sqlitePragmas = (process.env.TEMPORAL_SQLITE_PRAGMAS ?? 'journal_mode=wal,synchronous=normal').split(',').filter(Boolean),
  log = () => undefined,
}: DevServerOptions): Promise<RunningTemporal> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'];
  if (uiPort) args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch', ...(uiCodecEndpoint ? ['--ui-codec-endpoint', uiCodecEndpoint] : []));
  else args.push('--headless');
  if (metricsPort) args.push('--metrics-port', String(metricsPort));
  if (dbFile) {
    await mkdir(dirname(dbFile), { recursive: true });
    args.push('--db-filename', dbFile);
    for (const pragma of sqlitePragmas) args.push('--sqlite-pragma', pragma);
  }
  for (const ns of namespaces) args.push('--namespace', ns);
  for (const setting of process.env.TEMPORAL_DYNAMIC_CONFIG?.split(',').filter(Boolean) ?? [...DEV_SERVER_DYNAMIC_CONFIG, ...DEV_SERVER_VERSIONING_CONFIG]) {
    args.push('--dynamic-config-value', setting);
  }
  const typeNames: Partial<Record<SearchAttributeType, string>> = { [SearchAttributeType.KEYWORD]: 'Keyword', [SearchAttributeType.DOUBLE]: 'Double' };
  for (const { name, type } of searchAttributes) args.push('--search-attribute', `${name}=${typeNames[type] ?? type}`);

  // Its own process group: Ctrl-C reaches the workers first, and they drain while Temporal is still up.
  const child = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${port}`;
  const ready = await Promise.race([waitForTemporal(address, namespaces), exited.then(() => false)]);
  if (!ready) throw new Error(`temporal dev server exited during start-up: ${stderr}`);
  log(`temporal dev server on ${address}${uiPort ? `, Web UI on http://127.0.0.1:${uiPort}` : ''}`);
  return {
    address,
    ...(uiPort ? { uiUrl: `http://127.0.0.1:${uiPort}` } : {}),
    ...(metricsPort ? { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` } : {}),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Waits until the frontend answers and every namespace is registered (`target`: an address, or full connection options with TLS). */
export async function waitForTemporal(target: string | ConnectionOptions, namespaces: string[] = ['default'], timeoutMs = 60_000): Promise<true> {
  const options = typeof target === 'string' ? { address: target } : target;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const connection = await Connection.connect({ ...options, connectTimeout: 1000 });
      try {
        for (const namespace of namespaces) await connection.workflowService.describeNamespace({ namespace });
        return true;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`temporal at ${options.address} did not become ready: ${String(lastError)}`);
}
