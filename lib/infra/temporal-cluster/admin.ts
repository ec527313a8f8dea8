import type { Connection } from '@temporalio/client';
import protobuf from 'protobufjs';

/**
 * The few calls of Temporal's admin service (temporal.server.api.adminservice.v1, served on the
 * frontend's port next to the public API) that show a cluster's inside: which hosts are in each
 * service's ring and which history host owns which shard. The SDK has no client for it, so the
 * calls go over the SDK connection's own gRPC channel (same address, same TLS), with the messages
 * declared here: only the fields read, with the numbers of the server's
 * proto/internal/temporal/server/api/{adminservice,cluster}/v1 files.
 */
const root = protobuf.Root.fromJSON({
  nested: {
    admin: {
      nested: {
        WorkflowExecution: { fields: { workflowId: { type: 'string', id: 1 }, runId: { type: 'string', id: 2 } } },
        DescribeClusterRequest: { fields: { clusterName: { type: 'string', id: 1 } } },
        HostInfo: { fields: { identity: { type: 'string', id: 1 } } },
        RingInfo: {
          fields: { role: { type: 'string', id: 1 }, memberCount: { type: 'int32', id: 2 }, members: { rule: 'repeated', type: 'HostInfo', id: 3 } },
        },
        MembershipInfo: { fields: { currentHost: { type: 'HostInfo', id: 1 }, rings: { rule: 'repeated', type: 'RingInfo', id: 3 } } },
        DescribeClusterResponse: {
          fields: {
            serverVersion: { type: 'string', id: 2 },
            membershipInfo: { type: 'MembershipInfo', id: 3 },
            clusterName: { type: 'string', id: 5 },
            historyShardCount: { type: 'int32', id: 6 },
            persistenceStore: { type: 'string', id: 7 },
            visibilityStore: { type: 'string', id: 8 },
          },
        },
        DescribeHistoryHostRequest: {
          fields: {
            hostAddress: { type: 'string', id: 1 },
            shardId: { type: 'int32', id: 2 },
            namespace: { type: 'string', id: 3 },
            workflowExecution: { type: 'WorkflowExecution', id: 4 },
          },
        },
        DescribeHistoryHostResponse: {
          fields: { shardsNumber: { type: 'int32', id: 1 }, shardIds: { rule: 'repeated', type: 'int32', id: 2 }, address: { type: 'string', id: 5 } },
        },
      },
    },
  },
});

export interface ClusterDescription {
  serverVersion: string;
  clusterName: string;
  historyShardCount: number;
  persistenceStore: string;
  visibilityStore: string;
  /** each service's ring: role (frontend, history, matching, worker) and its members' host:port */
  rings: Array<{ role: string; members: string[] }>;
}

export interface HistoryHostDescription {
  /** the history host's gRPC address */
  address: string;
  /** the shards it owns now */
  shardIds: number[];
}

/** The part of @grpc/grpc-js's Client these calls use (the SDK keeps its client protected; it is there at run time). */
interface UnaryClient {
  makeUnaryRequest<Req, Res>(
    method: string,
    serialize: (value: Req) => Buffer,
    deserialize: (value: Buffer) => Res,
    argument: Req,
    options: { deadline: Date },
    callback: (err: Error | null, value?: Res) => void,
  ): unknown;
}

const SERVICE = '/temporal.server.api.adminservice.v1.AdminService';

function call<Res>(connection: Connection, method: string, requestType: string, responseType: string, request: object, timeoutMs: number): Promise<Res> {
  const client = (connection as unknown as { client: UnaryClient }).client;
  const req = root.lookupType(`admin.${requestType}`);
  const res = root.lookupType(`admin.${responseType}`);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `${SERVICE}/${method}`,
      (value: object) => Buffer.from(req.encode(req.fromObject(value)).finish()),
      (buffer: Buffer) => res.toObject(res.decode(buffer), { defaults: true, arrays: true }) as Res,
      request,
      { deadline: new Date(Date.now() + timeoutMs) },
      (err, value) => (err ? reject(err) : resolve(value as Res)),
    );
  });
}

export async function describeCluster(connection: Connection, timeoutMs = 5000): Promise<ClusterDescription> {
  const res = await call<{
    serverVersion: string;
    clusterName: string;
    historyShardCount: number;
    persistenceStore: string;
    visibilityStore: string;
    membershipInfo?: { rings: Array<{ role: string; members: Array<{ identity: string }> }> };
  }>(connection, 'DescribeCluster', 'DescribeClusterRequest', 'DescribeClusterResponse', {}, timeoutMs);
  return {
    serverVersion: res.serverVersion,
    clusterName: res.clusterName,
    historyShardCount: res.historyShardCount,
    persistenceStore: res.persistenceStore,
    visibilityStore: res.visibilityStore,
    rings: (res.membershipInfo?.rings ?? []).map((ring) => ({ role: ring.role, members: ring.members.map((m) => m.identity).sort() })),
  };
}

/**
 * The history host that owns a shard (`{ shardId }`) or a workflow's shard (`{ namespace, workflowId }`),
 * with every shard it owns; or a host by its address. Asking for a shard makes its owner load it.
 */
export async function describeHistoryHost(
  connection: Connection,
  by: { shardId: number } | { namespace: string; workflowId: string } | { hostAddress: string },
  timeoutMs = 5000,
): Promise<HistoryHostDescription> {
  const request = 'workflowId' in by ? { namespace: by.namespace, workflowExecution: { workflowId: by.workflowId } } : by;
  const res = await call<{ address: string; shardIds: number[] }>(
    connection,
    'DescribeHistoryHost',
    'DescribeHistoryHostRequest',
    'DescribeHistoryHostResponse',
    request,
    timeoutMs,
  );
  return { address: res.address, shardIds: [...res.shardIds].sort((a, b) => a - b) };
}
