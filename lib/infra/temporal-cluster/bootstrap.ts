import { readFile } from 'node:fs/promises';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { ensureSearchAttributes } from '../../temporal/search-attributes';
import { describeCluster, describeHistoryHost } from './admin';
import { NAMESPACE_REFRESH_SECONDS } from './server-config';

/** What a client needs to reach a cluster with mutual TLS (the CLI's TEMPORAL_TLS_* variables name the same files). */
export interface ClusterClientTls {
  serverCaPath: string;
  clientCertPath: string;
  clientKeyPath: string;
  serverName: string;
}

const GRPC_ALREADY_EXISTS = 6;
const GRPC_NOT_FOUND = 5;
const { SERVING } = proto.grpc.health.v1.HealthCheckResponse.ServingStatus;

export async function connectToCluster(address: string, tls?: ClusterClientTls, connectTimeout = 2000): Promise<Connection> {
  return Connection.connect({
    address,
    connectTimeout,
    ...(tls
      ? {
          tls: {
            serverNameOverride: tls.serverName,
            serverRootCACertificate: await readFile(tls.serverCaPath),
            clientCertPair: { crt: await readFile(tls.clientCertPath), key: await readFile(tls.clientKeyPath) },
          },
        }
      : {}),
  });
}

/**
 * Retries `attempt` until it returns without throwing, or fails with its last error after the
 * timeout; at once when `abort` rejects (a node exited while the cluster was starting).
 */
export async function retryUntil<T>(what: string, attempt: () => Promise<T>, abort: Promise<never>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await Promise.race([attempt(), abort]);
    } catch (err) {
      if (err instanceof NodeExitedError) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${Math.round(timeoutMs / 1000)} s; last: ${(last as Error)?.message ?? String(last)}`);
    await Promise.race([new Promise((r) => setTimeout(r, 250)), abort]);
  }
}

/** A node exited while the cluster was starting or being waited for; the message carries the end of its log. */
export class NodeExitedError extends Error {
  override name = 'NodeExitedError';
}

/** Waits until the frontend answers its health check over the client's connection. */
export async function waitForFrontend(address: string, tls: ClusterClientTls | undefined, abort: Promise<never>, timeoutMs: number): Promise<Connection> {
  return retryUntil(
    `frontend ${address}`,
    async () => {
      const connection = await connectToCluster(address, tls);
      try {
        const { status } = await connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' });
        if (status !== SERVING) throw new Error(`health status ${status}`);
        return connection;
      } catch (err) {
        await connection.close();
        throw err;
      }
    },
    abort,
    timeoutMs,
  );
}

/** Waits until each service's ring has the members expected (history: every history node). */
export async function waitForMembership(connection: Connection, expected: Record<string, number>, abort: Promise<never>, timeoutMs: number): Promise<void> {
  await retryUntil(
    'cluster membership',
    async () => {
      const { rings } = await describeCluster(connection);
      const counts = Object.fromEntries(rings.map((r) => [r.role, r.members.length]));
      const short = Object.entries(expected).filter(([role, n]) => counts[role] !== n);
      if (short.length > 0) throw new Error(`rings ${JSON.stringify(counts)}, want ${JSON.stringify(expected)}`);
    },
    abort,
    timeoutMs,
  );
}

/**
 * Waits until every shard has an owner that has loaded it (asking a shard's owner about it makes
 * the owner acquire it), so that a workflow with any ID can start. Returns each host's shards.
 */
export async function waitForShards(connection: Connection, shards: number, abort: Promise<never>, timeoutMs: number): Promise<Map<string, number[]>> {
  return retryUntil(
    'history shards',
    async () => {
      const owners = new Map<string, number[]>();
      const hosts = await Promise.all(Array.from({ length: shards }, (_, i) => describeHistoryHost(connection, { shardId: i + 1 })));
      for (const host of hosts) owners.set(host.address, host.shardIds);
      const owned = new Set([...owners.values()].flat());
      const missing = Array.from({ length: shards }, (_, i) => i + 1).filter((id) => !owned.has(id));
      if (missing.length > 0) throw new Error(`shards without an owner: ${missing.join(', ')}`);
      return owners;
    },
    abort,
    timeoutMs,
  );
}

/**
 * SQL visibility stores custom search attributes in columns made in advance, a fixed number per
 * type per namespace (schema/postgresql/v12/visibility: Keyword01-10, Double01-03, …). A list that
 * cannot fit is refused here, naming the type, before anything is registered.
 */
export const SQL_CUSTOM_ATTRIBUTE_LIMITS: Partial<Record<SearchAttributeType, number>> = {
  [SearchAttributeType.KEYWORD]: 10,
  [SearchAttributeType.TEXT]: 3,
  [SearchAttributeType.INT]: 3,
  [SearchAttributeType.DOUBLE]: 3,
  [SearchAttributeType.BOOL]: 3,
  [SearchAttributeType.DATETIME]: 3,
  [SearchAttributeType.KEYWORD_LIST]: 3,
};

export function checkSearchAttributeLimits(attributes: ReadonlyArray<{ name: string; type: SearchAttributeType }>): void {
  const byType = new Map<SearchAttributeType, string[]>();
  for (const { name, type } of attributes) byType.set(type, [...(byType.get(type) ?? []), name]);
  for (const [type, names] of byType) {
    const limit = SQL_CUSTOM_ATTRIBUTE_LIMITS[type] ?? 0;
    if (names.length > limit) {
      throw new Error(
        `PostgreSQL visibility holds at most ${limit} custom search attributes of type ${type} per namespace; asked for ${names.length}: ${names.join(', ')}`,
      );
    }
  }
}

/**
 * Registers each namespace that does not exist yet (with its retention) and the custom search
 * attributes on each. When anything was new, waits until every node has re-read its namespaces,
 * so the first workflow that sets an attribute is not refused by a node that has not seen it.
 */
export async function registerNamespaces(
  connection: Connection,
  {
    namespaces,
    searchAttributes,
    retentionDays,
    abort,
    timeoutMs,
    log,
  }: {
    namespaces: string[];
    searchAttributes: ReadonlyArray<{ name: string; type: SearchAttributeType }>;
    retentionDays: number;
    abort: Promise<never>;
    timeoutMs: number;
    log: (msg: string) => void;
  },
): Promise<void> {
  checkSearchAttributeLimits(searchAttributes);
  let changed = false;
  for (const namespace of namespaces) {
    const exists = await connection.workflowService.describeNamespace({ namespace }).then(
      () => true,
      (err: { code?: number }) => {
        if (err.code === GRPC_NOT_FOUND) return false;
        throw err;
      },
    );
    if (!exists) {
      try {
        await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(retentionDays * 24 * 3600 * 1000) });
        log(`namespace ${namespace} registered (retention ${retentionDays} days)`);
        changed = true;
      } catch (err) {
        if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) throw err;
      }
    }
    // A namespace just registered may not be known to the frontend yet for a moment.
    const added = await retryUntil(`namespace ${namespace}`, () => ensureSearchAttributes(connection, namespace, searchAttributes), abort, timeoutMs);
    if (added.length > 0) {
      log(`search attributes on ${namespace}: ${added.join(', ')}`);
      changed = true;
    }
  }
  if (changed) await new Promise((r) => setTimeout(r, (2 * NAMESPACE_REFRESH_SECONDS + 1) * 1000));
}
