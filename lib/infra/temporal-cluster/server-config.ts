import { DEV_SERVER_DYNAMIC_CONFIG } from '../temporal';
import type { ClusterCertificates } from './certificates';
import { FRONTEND_SERVER_NAME, INTERNODE_SERVER_NAME } from './certificates';
import type { ClusterDatabases, PostgresEndpoint } from './databases';

/** The services of Temporal's server; each node of the cluster is one OS process running one of them. */
export type TemporalService = 'frontend' | 'history' | 'matching' | 'worker';

export interface NodePorts {
  /** gRPC, on 127.0.0.1 */
  grpc: number;
  /** ringpop's gossip; the port this node announces in the cluster_membership table */
  membership: number;
  /** Prometheus /metrics */
  metrics: number;
}

export interface ClusterNode {
  /** frontend, matching, worker, history-1, history-2, … */
  name: string;
  service: TemporalService;
  ports: NodePorts;
}

export interface ClusterLayout {
  shards: number;
  /** one node of each service: every process's membership monitor tracks all four, by the names in its config */
  services: Record<TemporalService, NodePorts>;
  postgres: PostgresEndpoint;
  databases: ClusterDatabases;
  /** none: plaintext everywhere */
  certificates?: ClusterCertificates;
  /** every node's config names the frontend's address for the cluster's own metadata */
  frontendPort: number;
  dynamicConfigFile: string;
  logLevel: string;
}

// Per process: history keeps the most connections busy (shard updates, queues); the rest are light.
const MAX_CONNS: Record<TemporalService, number> = { history: 20, matching: 10, frontend: 10, worker: 5 };
const VISIBILITY_MAX_CONNS = 5;

/**
 * One node's server config, from the module's config/development-postgres12.yaml. Every service is
 * listed (a process tracks the rings of the services named in its config, and fails to start
 * without them), its own with its own ports: a process binds only its own service's ports, so the
 * two history nodes each bind theirs, and each announces them through the membership table,
 * where the others find it (the other entries' ports are not used). Archival is off; TLS, when
 * given certificates, is mutual everywhere: clients of the frontend need the cluster CA's
 * certificate, and the nodes talk to each other and to the frontend with the internode certificate.
 */
export function nodeServerConfig(layout: ClusterLayout, node: ClusterNode): Record<string, unknown> {
  const sql = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${layout.postgres.host}:${layout.postgres.port}`,
      connectProtocol: 'tcp',
      user: layout.postgres.user,
      password: layout.postgres.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const frontendAddress = `127.0.0.1:${layout.frontendPort}`;
  return {
    log: { stdout: true, level: layout.logLevel },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: layout.shards,
      datastores: {
        'postgres-default': sql(layout.databases.persistence, MAX_CONNS[node.service]),
        'postgres-visibility': sql(layout.databases.visibility, VISIBILITY_MAX_CONNS),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      pprof: { port: 0 },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `127.0.0.1:${node.ports.metrics}` } },
      ...(layout.certificates ? { tls: tlsConfig(layout.certificates) } : {}),
    },
    services: Object.fromEntries(
      (Object.entries({ ...layout.services, [node.service]: node.ports }) as Array<[TemporalService, NodePorts]>).map(([service, ports]) => [
        service,
        { rpc: { grpcPort: ports.grpc, membershipPort: ports.membership, bindOnIP: '127.0.0.1' } },
      ]),
    ),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: frontendAddress } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: layout.dynamicConfigFile, pollInterval: '10s' },
  };
}

function tlsConfig(certs: ClusterCertificates) {
  return {
    // Between history, matching, worker and the frontend's internal clients: both ends show the internode certificate.
    internode: {
      server: { certFile: certs.internode.cert, keyFile: certs.internode.key, requireClientAuth: true, clientCaFiles: [certs.ca] },
      client: { serverName: INTERNODE_SERVER_NAME, rootCaFiles: [certs.ca] },
    },
    // What clients see: the frontend certificate, and no call without a certificate from the cluster's CA.
    frontend: {
      server: { certFile: certs.frontend.cert, keyFile: certs.frontend.key, requireClientAuth: true, clientCaFiles: [certs.ca] },
      client: { serverName: FRONTEND_SERVER_NAME, rootCaFiles: [certs.ca] },
    },
    // The worker service (and any node calling the frontend) as a client of the frontend.
    systemWorker: {
      certFile: certs.internode.cert,
      keyFile: certs.internode.key,
      client: { serverName: FRONTEND_SERVER_NAME, rootCaFiles: [certs.ca] },
    },
  };
}

/** How often each node re-reads its namespaces (and their search attributes); the server's default is 10 s. */
export const NAMESPACE_REFRESH_SECONDS = 2;

/**
 * The cluster's dynamic config: the dev server's queue settings (lib/infra/temporal.ts, with the
 * figures in BENCHMARKS.md), so both run the platform alike; and namespaces (with the search
 * attributes registered on them) seen by every node within two seconds instead of ten, so a
 * cluster is usable as soon as it has started.
 */
export function clusterDynamicConfig(): Record<string, string | number | boolean> {
  const settings: Record<string, string | number | boolean> = {};
  for (const setting of DEV_SERVER_DYNAMIC_CONFIG) {
    const [key, value = ''] = setting.split('=');
    if (key) settings[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === 'true' || value === 'false' ? value === 'true' : value;
  }
  settings['system.namespaceCacheRefreshInterval'] = `${NAMESPACE_REFRESH_SECONDS}s`;
  return settings;
}

/** Dynamic config in the server's file format: each key a list of constrained values, here one unconstrained value. */
export function renderDynamicConfig(settings: Record<string, string | number | boolean>): string {
  return Object.entries(settings)
    .map(([key, value]) => `${key}:\n  - value: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}\n`)
    .join('');
}

/** JSON is YAML: the server reads this as is, and nothing here needs a YAML library. */
export function renderServerConfig(node: ClusterNode, config: Record<string, unknown>): string {
  return `# Temporal server config of the ${node.name} node, written by lib/infra/temporal-cluster at each start.\n${JSON.stringify(config, null, 2)}\n`;
}
