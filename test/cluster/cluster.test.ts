import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Client, Connection, WorkflowExecutionAlreadyStartedError, type TLSConfig, type WorkflowHandle } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DATA_DIR } from '../../lib/infra/paths';
import { postgresUrl } from '../../lib/infra/postgres';
import { describeCluster, describeHistoryHost, startTemporalCluster, startTemporalUi } from '../../lib/infra/temporal-cluster';
import { ensureClusterCertificates } from '../../lib/infra/temporal-cluster/certificates';
import { connectClient, connectWorker, temporalConnectionSettings } from '../../lib/temporal/connection';
import { eventually } from '../support/http';
import { clusterControl, type ClusterControl } from './control';
import type { ClusterProbeActivities } from './workflows';
import type * as workflows from './workflows';

/**
 * The platform's Temporal as a real cluster: mTLS at the door, two history nodes sharing the
 * shards, and work that survives a history node's SIGKILL and a frontend restart.
 * Runs under vitest.cluster.config.ts, whose global setup starts the cluster; anywhere else
 * (the main suite's setup provides no cluster) it is skipped.
 */
const env = inject('clusterEnv') as Record<string, string> | undefined;
const NAMESPACE = 'default';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!env)('Temporal cluster', () => {
  let ca: Buffer;
  let serverName: string;
  let clientCertPair: { crt: Buffer; key: Buffer };
  let tls: TLSConfig;
  let address: string;
  let control: ClusterControl;
  let connection: Connection;
  let nativeConnection: NativeConnection;
  let client: Client;
  let bundle: WorkflowBundle;
  /** how many times each label's activity ran, across every worker of this file */
  const recorded = new Map<string, number>();
  /** a label's activity waits here until the test lets it finish */
  const gates = new Map<string, Promise<void>>();
  const running = new Set<string>();
  const activities: ClusterProbeActivities = {
    async record(label) {
      running.add(label);
      await gates.get(label);
      recorded.set(label, (recorded.get(label) ?? 0) + 1);
    },
  };

  beforeAll(async () => {
    // Errors only, from the SDK core too: calls cut by a node's death are expected here, and retried.
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
    const vars = env!;
    address = vars.TEMPORAL_ADDRESS!;
    ca = await readFile(vars.TEMPORAL_TLS_SERVER_CA_CERT_PATH!);
    serverName = vars.TEMPORAL_TLS_SERVER_NAME!;
    clientCertPair = { crt: await readFile(vars.TEMPORAL_TLS_CLIENT_CERT_PATH!), key: await readFile(vars.TEMPORAL_TLS_CLIENT_KEY_PATH!) };
    tls = { serverNameOverride: serverName, serverRootCACertificate: ca, clientCertPair };
    control = clusterControl(inject('clusterControlUrl'));
    connection = await Connection.connect({ address, tls });
    nativeConnection = await NativeConnection.connect({ address, tls });
    client = new Client({ connection, namespace: NAMESPACE });
    bundle = await bundleWorkflowCode({ workflowsPath: createRequire(import.meta.url).resolve('./workflows.ts'), logger: quietLogger });
  });

  afterAll(async () => {
    await nativeConnection?.close();
    await connection?.close();
  });

  const newWorker = (taskQueue: string) => Worker.create({ connection: nativeConnection, namespace: NAMESPACE, taskQueue, workflowBundle: bundle, activities });

  /**
   * Starts the probe as a careful caller does across a crash: retried until the server answers,
   * under a reuse policy that refuses a second run, so a start whose answer was lost is found as
   * already started instead of run twice.
   */
  async function startOnce(workflowId: string, taskQueue: string): Promise<WorkflowHandle<typeof workflows.clusterProbe>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        return await client.workflow.start<typeof workflows.clusterProbe>('clusterProbe', {
          taskQueue,
          workflowId,
          args: [workflowId],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) return client.workflow.getHandle(workflowId);
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  /** Connects with the given TLS settings and makes one call; the refused cases must throw. */
  async function callWith(tlsSettings: TLSConfig | false): Promise<string> {
    const conn = await Connection.connect({ address, tls: tlsSettings, connectTimeout: 2000 });
    try {
      const { namespaceInfo } = await conn.workflowService.describeNamespace({ namespace: NAMESPACE });
      return namespaceInfo?.name ?? '';
    } finally {
      await conn.close();
    }
  }

  /**
   * What the frontend's TLS says to a raw TLS client (ALPN h2, as gRPC): the alert it ends the
   * handshake with, or `open` when it keeps the connection.
   */
  async function tlsOutcome(options: { cert?: Buffer; key?: Buffer }): Promise<string> {
    const { hostname, port } = new URL(`tcp://${address}`);
    const socket = connectTls({
      host: hostname,
      port: Number(port),
      servername: serverName,
      ca,
      ALPNProtocols: ['h2'],
      ...options,
    });
    try {
      return await new Promise<string>((resolve) => {
        // TLS 1.3: the server judges the client's certificate after the client has finished its side.
        socket.once('secureConnect', () => setTimeout(() => resolve('open'), 1000));
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        socket.once('close', () => resolve('closed'));
      });
    } finally {
      socket.destroy();
    }
  }

  it('refuses a client without a certificate of its CA, and serves one with', async () => {
    // The server's own words: a certificate is required, and one from another CA is unknown to it.
    const stranger = await ensureClusterCertificates(join(tmpdir(), `cluster-test-stranger-${process.pid}`));
    const strangerPair = { crt: await readFile(stranger.client.cert), key: await readFile(stranger.client.key) };
    expect(await tlsOutcome({})).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    expect(await tlsOutcome({ cert: strangerPair.crt, key: strangerPair.key })).toMatch(/ERR_SSL_.*(UNKNOWN_CA|BAD_CERTIFICATE)/);
    expect(await tlsOutcome({ cert: clientCertPair.crt, key: clientCertPair.key })).toBe('open');

    // And so for the SDK: no call gets through without the certificate, nor in plaintext.
    const withoutCert = { serverNameOverride: serverName, serverRootCACertificate: ca };
    const refused = /Failed to connect before the deadline|UNAVAILABLE/;
    await expect(callWith(withoutCert)).rejects.toThrow(refused);
    await expect(callWith({ ...withoutCert, clientCertPair: strangerPair })).rejects.toThrow(refused);
    await expect(callWith(false)).rejects.toThrow(refused);
    await expect(callWith(tls)).resolves.toBe(NAMESPACE);
  });

  it('is reached by the platform’s own connection factory from the provided clusterEnv alone', async () => {
    const settings = temporalConnectionSettings({ ...env, TEMPORAL_NAMESPACE: NAMESPACE });
    expect(settings.summary).toBe(`${address}, namespace ${NAMESPACE}, TLS on, authentication mTLS`);
    const { connection: platformConnection } = await connectClient(settings);
    try {
      const { namespaceInfo } = await platformConnection.workflowService.describeNamespace({ namespace: NAMESPACE });
      expect(namespaceInfo?.name).toBe(NAMESPACE);
    } finally {
      await platformConnection.close();
    }
    const workerConnection = await connectWorker(settings);
    await workerConnection.close();
  });

  it('has every service as its own process, two history hosts in membership and 16 shards between them', async () => {
    const nodes = await control.nodes();
    expect(nodes.map((n) => n.name).sort()).toEqual(['frontend', 'history-0', 'history-1', 'matching', 'worker']);
    expect(new Set(nodes.map((n) => n.pid)).size).toBe(nodes.length);
    expect(nodes.every((n) => typeof n.pid === 'number')).toBe(true);

    const cluster = await describeCluster(connection);
    const ring = (role: string) => cluster.rings.find((r) => r.role === role)?.members ?? [];
    const addressOf = (service: string) =>
      nodes
        .filter((n) => n.service === service)
        .map((n) => n.grpcAddress)
        .sort();
    expect(ring('history')).toHaveLength(inject('clusterHistoryNodes'));
    expect(ring('history')).toEqual(addressOf('history'));
    for (const service of ['frontend', 'matching', 'worker']) expect(ring(service)).toEqual(addressOf(service));
    expect(cluster.historyShardCount).toBe(inject('clusterShards'));
    expect(cluster.persistenceStore).toBe('postgres12');
    const info = await connection.workflowService.getClusterInfo({});
    expect(info.historyShardCount).toBe(16);

    // Every shard has an owner, and each history host owns some.
    const owners = await Promise.all(Array.from({ length: 16 }, (_, i) => describeHistoryHost(connection, { shardId: i + 1 })));
    expect(new Set(owners.map((o) => o.address))).toEqual(new Set(addressOf('history')));
    expect(new Set(owners.flatMap((o) => o.shardIds)).size).toBe(16);
  });

  it('runs a workflow to completion', async () => {
    const taskQueue = `cluster-simple-${randomUUID()}`;
    const worker = await newWorker(taskQueue);
    const id = `cluster-simple-${randomUUID()}`;
    const result = await worker.runUntil(async () => (await startOnce(id, taskQueue)).result());
    expect(result).toBe(`${id} done`);
    expect(recorded.get(id)).toBe(1);
  });

  it('completes every workflow exactly once while a history node is SIGKILLed and restarted, its shards taken over meanwhile', async () => {
    const taskQueue = `cluster-crash-${randomUUID()}`;
    const nodes = await control.nodes();
    const victim = 1;
    const victimAddress = nodes.find((n) => n.name === `history-${victim}`)!.grpcAddress;
    const survivorAddress = nodes.find((n) => n.name === 'history-0')!.grpcAddress;
    const victimShards = (await describeHistoryHost(connection, { hostAddress: victimAddress })).shardIds;
    expect(victimShards.length).toBeGreaterThan(0);
    // A workflow ID that hashes to one of the victim's shards: started only once the victim is dead.
    let onVictimShard = '';
    for (let i = 0; !onVictimShard && i < 500; i++) {
      const candidate = `cluster-crash-on-victim-${randomUUID()}`;
      if ((await describeHistoryHost(connection, { namespace: NAMESPACE, workflowId: candidate })).address === victimAddress) onVictimShard = candidate;
    }
    expect(onVictimShard).not.toBe('');

    const ids = Array.from({ length: 20 }, (_, n) => `cluster-crash-${n}-${randomUUID()}`);
    const worker = await newWorker(taskQueue);
    let takeover = 0;
    await worker.runUntil(async () => {
      // 20 workflows started over ten seconds; the victim dies four seconds in.
      const started = ids.map(async (id, n) => {
        await sleep(n * 500);
        return startOnce(id, taskQueue);
      });
      await sleep(4000);
      await control.killHistoryNode(victim);
      const killedAt = Date.now();

      // Its shards move to the survivor…
      await eventually(
        async () => {
          const owners = await Promise.all(victimShards.map((shardId) => describeHistoryHost(connection, { shardId }, 2000).catch(() => undefined)));
          return owners.every((o) => o?.address === survivorAddress) ? true : undefined;
        },
        `the survivor to own shards ${victimShards.join(', ')}`,
        120,
        500,
      );
      takeover = Date.now() - killedAt;
      // …where a workflow on one of them runs to completion while the victim is still down.
      expect(await (await startOnce(onVictimShard, taskQueue)).result()).toBe(`${onVictimShard} done`);
      expect((await control.nodes()).find((n) => n.name === `history-${victim}`)?.pid).toBeUndefined();

      const handles = await Promise.all(started);
      await control.startHistoryNode(victim);
      const results = await Promise.all(handles.map((h) => h.result()));
      expect(results).toEqual(ids.map((id) => `${id} done`));
    });

    // Exactly once: one run per workflow ID, each completed, each activity done (at least once: a
    // task whose answer died with the node runs again, which is why activities are idempotent).
    const all = [...ids, onVictimShard];
    await eventually(
      async () => ((await client.workflow.count(`TaskQueue = '${taskQueue}'`)).count === all.length ? true : undefined),
      'visibility to list every run',
      100,
      200,
    );
    expect((await client.workflow.count(`TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Completed'`)).count).toBe(all.length);
    for (const id of all) {
      const runs = [];
      for await (const run of client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(run.status.name);
      expect(runs, id).toEqual(['COMPLETED']);
      expect(recorded.get(id), id).toBeGreaterThanOrEqual(1);
    }
    // The restarted node is back in the ring, and takes its share of the shards again.
    const { rings } = await describeCluster(connection);
    expect(rings.find((r) => r.role === 'history')?.members).toContain(victimAddress);
    await eventually(
      async () => ((await describeHistoryHost(connection, { hostAddress: victimAddress })).shardIds.length > 0 ? true : undefined),
      'the restarted node to own shards again',
      120,
      500,
    );
    const reruns = all.filter((id) => (recorded.get(id) ?? 0) > 1).length;
    console.log(
      `history node SIGKILLed: ${victimShards.length} shards taken over in ${(takeover / 1000).toFixed(1)} s; ${all.length} workflows completed once each; activities run again: ${reruns}`,
    );
  });

  it('serves the Web UI for the cluster, reaching the frontend with the client certificate', { timeout: 600_000 }, async () => {
    const vars = env!;
    const uiDir = join(DATA_DIR, 'test', `cluster-ui-${process.pid}`);
    const ui = await startTemporalUi({
      address,
      tls: {
        serverCaPath: vars.TEMPORAL_TLS_SERVER_CA_CERT_PATH!,
        clientCertPath: vars.TEMPORAL_TLS_CLIENT_CERT_PATH!,
        clientKeyPath: vars.TEMPORAL_TLS_CLIENT_KEY_PATH!,
        serverName,
      },
      codecEndpoint: 'http://127.0.0.1:8888',
      dataDir: uiDir,
    });
    try {
      // The UI's own API calls the frontend over gRPC: an answer listing the namespaces went through mTLS.
      const namespaces = (await (await fetch(`${ui.url}/api/v1/namespaces`)).json()) as { namespaces: Array<{ namespaceInfo: { name: string } }> };
      expect(namespaces.namespaces.map((n) => n.namespaceInfo.name)).toContain(NAMESPACE);
      const settings = (await (await fetch(`${ui.url}/api/v1/settings`)).json()) as { Codec: { Endpoint: string } };
      expect(settings.Codec.Endpoint).toBe('http://127.0.0.1:8888');
      expect((await fetch(`${ui.url}/`)).status).toBe(200);
    } finally {
      await ui.stop();
      await rm(uiDir, { recursive: true, force: true });
    }
  });

  it('fails fast when a node cannot start, naming it and showing the end of its log', async () => {
    // Another cluster on the same PostgreSQL, whose frontend port is already taken.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as { port: number };
    const dataDir = join(DATA_DIR, 'test', `cluster-fail-fast-${process.pid}`);
    const began = Date.now();
    try {
      const failure = await startTemporalCluster({
        postgresAdminUrl: postgresUrl(inject('pgPort'), 'postgres'),
        dataDir,
        frontendPort: port,
        namespaces: [],
        startTimeoutMs: 120_000,
      }).then(
        async (cluster) => {
          await cluster.stop();
          return new Error('started');
        },
        (err: Error) => err,
      );
      expect(failure.message).toMatch(/^temporal frontend exited \(exit code \d+\); the end of .*frontend\.log:\n/);
      expect(failure.message).toMatch(/address already in use/);
      // Long before the start-up timeout: the exit ends the wait.
      expect(Date.now() - began).toBeLessThan(30_000);
      // Nothing it started is left running.
      for (const file of await readdir(join(dataDir, 'run'))) {
        const pid = Number((await readFile(join(dataDir, 'run', file), 'utf8')).split('\n')[0]);
        expect(() => process.kill(pid, 0), file).toThrow();
      }
    } finally {
      squatter.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps working across a frontend restart: in-flight work finishes and the same clients carry on', async () => {
    const taskQueue = `cluster-frontend-${randomUUID()}`;
    const worker = await newWorker(taskQueue);
    const before = `cluster-frontend-before-${randomUUID()}`;
    const after = `cluster-frontend-after-${randomUUID()}`;
    const frontendPid = (await control.nodes()).find((n) => n.name === 'frontend')?.pid;
    let release = () => {};
    gates.set(before, new Promise<void>((resolve) => (release = resolve)));
    await worker.runUntil(async () => {
      // Its activity is running when the frontend goes, and reports its result to the new one.
      const first = await startOnce(before, taskQueue);
      await eventually(async () => (running.has(before) ? true : undefined), 'the activity to start', 100, 100);
      await control.restartFrontend();
      expect((await control.nodes()).find((n) => n.name === 'frontend')?.pid).not.toBe(frontendPid);
      release();
      // The client's and the worker's connections are the ones made before the restart.
      const second = await startOnce(after, taskQueue);
      expect(await first.result()).toBe(`${before} done`);
      expect(await second.result()).toBe(`${after} done`);
    });
  });
});

/** The workflow bundler's own logging is noise here. */
const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };
