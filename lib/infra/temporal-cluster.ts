import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { ORDER_SEARCH_ATTRIBUTES } from '../../contracts/orders';
import { describeCluster } from './temporal-cluster/admin';
import {
  NodeExitedError,
  connectToCluster,
  registerNamespaces,
  retryUntil,
  waitForFrontend,
  waitForMembership,
  waitForShards,
  type ClusterClientTls,
} from './temporal-cluster/bootstrap';
import { ensureClusterCertificates, FRONTEND_SERVER_NAME } from './temporal-cluster/certificates';
import { clusterDatabaseNames, forgetClusterMembers, postgresEndpoint, prepareClusterDatabases, type ClusterDatabases } from './temporal-cluster/databases';
import { freeClusterPort } from './temporal-cluster/ports';
import { endLeftoverNodes, nodeProcess, tailLog, type NodeProcess } from './temporal-cluster/processes';
import {
  clusterDynamicConfig,
  nodeServerConfig,
  renderDynamicConfig,
  renderServerConfig,
  type ClusterNode,
  type TemporalService,
} from './temporal-cluster/server-config';
import { ensureTemporalServerTools } from './temporal-cluster/tools';

export { ensureTemporalServerTools, type TemporalServerTools } from './temporal-cluster/tools';
export { describeCluster, describeHistoryHost, type ClusterDescription, type HistoryHostDescription } from './temporal-cluster/admin';
export { connectToCluster, type ClusterClientTls } from './temporal-cluster/bootstrap';
export { clusterDatabaseNames, type ClusterDatabases } from './temporal-cluster/databases';
export { startTemporalUi, type TemporalUiOptions, type RunningTemporalUi } from './temporal-cluster/ui';

export interface TemporalClusterOptions {
  /** a PostgreSQL role that may create databases, e.g. postgresql://postgres:postgres@127.0.0.1:54329/postgres */
  postgresAdminUrl: string;
  /** certificates, config files, logs and pid files; the databases' names derive from it unless given */
  dataDir: string;
  /** the persistence database's name (visibility: the same with `_visibility`); default from dataDir */
  databaseName?: string;
  /** default 2 */
  historyNodes?: number;
  /** numHistoryShards, fixed for the databases' lifetime; default 16 */
  shards?: number;
  /** registered at start; default ['default'] */
  namespaces?: string[];
  /** registered on every namespace; default the order attributes */
  searchAttributes?: ReadonlyArray<{ name: string; type: SearchAttributeType }>;
  /** workflow retention of the namespaces registered here; default 3 */
  retentionDays?: number;
  /** default: a free port */
  frontendPort?: number;
  /** mutual TLS on the frontend and between nodes; default true */
  mtls?: boolean;
  /** the nodes' log level (debug, info, warn, error); default info */
  logLevel?: string;
  /** how long start-up may take before it fails; default 3 minutes */
  startTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface ClusterNodeInfo {
  name: string;
  service: TemporalService;
  /** undefined while the node is down */
  pid: number | undefined;
  grpcAddress: string;
  membershipPort: number;
  metricsUrl: string;
  logFile: string;
  configFile: string;
}

export interface RunningTemporalCluster {
  /** the frontend, host:port */
  address: string;
  /** undefined when started with mtls: false */
  tls: ClusterClientTls | undefined;
  /** TEMPORAL_ADDRESS and TEMPORAL_TLS_* as the Temporal CLI and the platform's connection factory read them */
  env: Record<string, string>;
  databases: ClusterDatabases;
  shards: number;
  /** every node as it is now */
  readonly nodes: ClusterNodeInfo[];
  /** a new client connection (mTLS when on); the caller closes it */
  connect: () => Promise<Connection>;
  /** SIGKILL history node i (from 0); resolves once the process is gone */
  killHistoryNode: (i: number) => Promise<void>;
  /** starts history node i again on its ports; resolves once it is back in the history ring */
  startHistoryNode: (i: number) => Promise<void>;
  /** stops the frontend (SIGTERM), starts it again on the same port, resolves once it answers */
  restartFrontend: () => Promise<void>;
  /** stops every node: SIGTERM, SIGKILL after a grace period */
  stop: () => Promise<void>;
}

/**
 * A real Temporal cluster on this machine: the server built from source (`go install`, once),
 * PostgreSQL for persistence and visibility, and one OS process per node: frontend, matching, the
 * worker service and `historyNodes` history nodes, each on its own ports on 127.0.0.1 and finding
 * the others through ringpop membership. Returns once every shard has a live owner and the
 * namespaces and search attributes are registered; fails fast with the end of a node's log when one
 * exits during start-up.
 */
export async function startTemporalCluster(options: TemporalClusterOptions): Promise<RunningTemporalCluster> {
  const {
    postgresAdminUrl,
    historyNodes = 2,
    shards = 16,
    namespaces = ['default'],
    searchAttributes = ORDER_SEARCH_ATTRIBUTES,
    retentionDays = 3,
    mtls = true,
    logLevel = 'info',
    startTimeoutMs = 180_000,
    log = () => undefined,
  } = options;
  if (!Number.isInteger(historyNodes) || historyNodes < 1) throw new Error(`historyNodes must be a positive integer, not ${historyNodes}`);
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`shards must be a positive integer, not ${shards}`);
  const dataDir = resolve(options.dataDir);
  const dirs = { config: join(dataDir, 'config'), logs: join(dataDir, 'logs'), run: join(dataDir, 'run'), tls: join(dataDir, 'tls') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  await endLeftoverNodes(dirs.run, log);

  const tools = await ensureTemporalServerTools(log);
  const databases = options.databaseName
    ? { persistence: options.databaseName, visibility: `${options.databaseName}_visibility` }
    : clusterDatabaseNames(dataDir);
  await prepareClusterDatabases({ adminUrl: postgresAdminUrl, databases, sqlTool: tools.sqlTool, moduleDir: tools.moduleDir, log });
  await forgetClusterMembers(postgresAdminUrl, databases.persistence);
  const certificates = mtls ? await ensureClusterCertificates(dirs.tls, log) : undefined;

  const taken = new Set<number>(options.frontendPort ? [options.frontendPort] : []);
  const frontendPort = options.frontendPort ?? (await freeClusterPort(taken));
  const ports = async (grpc?: number) => ({
    grpc: grpc ?? (await freeClusterPort(taken)),
    membership: await freeClusterPort(taken),
    metrics: await freeClusterPort(taken),
  });
  const specs: ClusterNode[] = [
    { name: 'frontend', service: 'frontend', ports: await ports(frontendPort) },
    { name: 'matching', service: 'matching', ports: await ports() },
    { name: 'worker', service: 'worker', ports: await ports() },
  ];
  for (let i = 0; i < historyNodes; i++) specs.push({ name: `history-${i}`, service: 'history', ports: await ports() });

  const dynamicConfigFile = join(dirs.config, 'dynamicconfig.yaml');
  await writeFile(dynamicConfigFile, `# Dynamic config of the local Temporal cluster, written at each start.\n${renderDynamicConfig(clusterDynamicConfig())}`);
  const first = (service: TemporalService) => specs.find((s) => s.service === service)!.ports;
  const layout = {
    shards,
    services: { frontend: first('frontend'), matching: first('matching'), worker: first('worker'), history: first('history') },
    postgres: postgresEndpoint(postgresAdminUrl),
    databases,
    certificates,
    frontendPort,
    dynamicConfigFile,
    logLevel,
  };

  // A node that ends while the cluster is starting, or while a node is being waited for, fails
  // that wait at once, with the end of its log.
  const waits = new Set<(err: NodeExitedError) => void>();
  /** Runs a wait that fails at once when any node exits meanwhile. */
  async function watched<T>(wait: (abort: Promise<never>) => Promise<T>): Promise<T> {
    let fail: (err: NodeExitedError) => void = () => undefined;
    const abort = new Promise<never>((_, reject) => {
      fail = reject;
    });
    abort.catch(() => undefined);
    waits.add(fail);
    try {
      return await wait(abort);
    } finally {
      waits.delete(fail);
    }
  }

  const nodes = new Map<string, { spec: ClusterNode; proc: NodeProcess; configFile: string }>();
  for (const spec of specs) {
    const configFile = join(dirs.config, `${spec.name}.yaml`);
    await writeFile(configFile, renderServerConfig(spec, nodeServerConfig(layout, spec)), { mode: 0o600 });
    const proc = nodeProcess({
      name: spec.name,
      command: tools.server,
      args: ['--config-file', configFile, '--allow-no-auth', 'start', '--service', spec.service],
      logFile: join(dirs.logs, `${spec.name}.log`),
      runDir: dirs.run,
      onUnexpectedExit: (name, how) => {
        const logFile = join(dirs.logs, `${name}.log`);
        if (waits.size > 0) {
          void tailLog(logFile).then((tail) => {
            const err = new NodeExitedError(`temporal ${name} exited (${how}); the end of ${logFile}:\n${tail}`);
            for (const fail of waits) fail(err);
          });
        } else {
          log(`temporal ${name} exited (${how}); see ${logFile}`);
        }
      },
    });
    nodes.set(spec.name, { spec, proc, configFile });
  }
  const node = (name: string) => {
    const found = nodes.get(name);
    if (!found) throw new Error(`no node ${name} in this cluster (history nodes: 0..${historyNodes - 1})`);
    return found;
  };

  const address = `127.0.0.1:${frontendPort}`;
  const tls: ClusterClientTls | undefined = certificates && {
    serverCaPath: certificates.ca,
    clientCertPath: certificates.client.cert,
    clientKeyPath: certificates.client.key,
    serverName: FRONTEND_SERVER_NAME,
  };
  const expectedRings = { frontend: 1, matching: 1, worker: 1, history: historyNodes };

  // The worker service first: its system workers poll the frontend and wait for it while shutting down.
  const stopAll = async () => {
    await node('worker').proc.stop(10_000);
    await Promise.all([...nodes.values()].map(({ proc }) => proc.stop(10_000)));
  };
  const started = Date.now();
  log(
    `starting Temporal cluster: frontend ${address}, matching, worker, ${historyNodes} history nodes, ${shards} shards, databases ${databases.persistence}, ${databases.visibility}`,
  );
  try {
    await watched(async (abort) => {
      // The frontend first, alone: every node writes the cluster's metadata record when it differs
      // from its config (the first start, a new frontend port), and nodes doing it at once fail
      // each other with a version conflict. Once the frontend answers, the record is there.
      node('frontend').proc.start();
      const connection = await waitForFrontend(address, tls, abort, startTimeoutMs);
      for (const { proc } of nodes.values()) if (!proc.running()) proc.start();
      try {
        await waitForMembership(connection, expectedRings, abort, startTimeoutMs);
        await registerNamespaces(connection, { namespaces, searchAttributes, retentionDays, abort, timeoutMs: startTimeoutMs, log });
        await waitForShards(connection, shards, abort, startTimeoutMs);
      } finally {
        await connection.close();
      }
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
  log(`Temporal cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${dirs.logs}`);

  const env: Record<string, string> = { TEMPORAL_ADDRESS: address };
  if (tls) {
    Object.assign(env, {
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_PATH: tls.clientCertPath,
      TEMPORAL_TLS_CLIENT_KEY_PATH: tls.clientKeyPath,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: tls.serverCaPath,
      TEMPORAL_TLS_SERVER_NAME: tls.serverName,
    });
  }

  const connect = () => connectToCluster(address, tls);
  const withConnection = async <T>(fn: (connection: Connection) => Promise<T>): Promise<T> => {
    const connection = await connect();
    try {
      return await fn(connection);
    } finally {
      await connection.close();
    }
  };

  return {
    address,
    tls,
    env,
    databases,
    shards,
    get nodes() {
      return [...nodes.values()].map(({ spec, proc, configFile }) => ({
        name: spec.name,
        service: spec.service,
        pid: proc.pid(),
        grpcAddress: `127.0.0.1:${spec.ports.grpc}`,
        membershipPort: spec.ports.membership,
        metricsUrl: `http://127.0.0.1:${spec.ports.metrics}/metrics`,
        logFile: proc.logFile,
        configFile,
      }));
    },
    connect,
    killHistoryNode: (i) => node(`history-${i}`).proc.kill(),
    startHistoryNode: async (i) => {
      const { proc, spec } = node(`history-${i}`);
      await watched(async (abort) => {
        proc.start();
        const grpcAddress = `127.0.0.1:${spec.ports.grpc}`;
        await withConnection((connection) =>
          retryUntil(
            `${spec.name} in the history ring`,
            async () => {
              const { rings } = await describeCluster(connection);
              if (!rings.find((r) => r.role === 'history')?.members.includes(grpcAddress)) throw new Error(`${grpcAddress} not in the ring yet`);
            },
            abort,
            startTimeoutMs,
          ),
        );
      });
    },
    restartFrontend: async () => {
      const { proc } = node('frontend');
      await proc.stop(10_000);
      await watched(async (abort) => {
        proc.start();
        const connection = await waitForFrontend(address, tls, abort, startTimeoutMs);
        await connection.close();
      });
    },
    stop: async () => {
      await stopAll();
    },
  };
}
