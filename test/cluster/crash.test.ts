import { describe, inject } from 'vitest';
import { describeHistoryHost } from '../../lib/infra/temporal-cluster';
import { connectClient, temporalConnectionSettings } from '../../lib/temporal/connection';
import { describeCrashSuite } from '../support/crash-suite';
import { eventually } from '../support/http';
import { clusterControl } from './control';
import { CLUSTER_CRASH_NAMESPACE } from './global-setup';

/**
 * The crash test (test/support/crash-suite.ts) on the multi-node cluster, its processes reaching it
 * with mTLS from `clusterEnv` alone. The dev server's Temporal restart gives way to the cluster's
 * own faults, each once, under load: the last history node is SIGKILLed (its shards move to the
 * others, which the test waits for and times), started again later (it takes shards back), and the
 * frontend is restarted. The worker kills and the PostgreSQL restart are the suite's own; that
 * PostgreSQL holds the services' databases only, the cluster keeps its state in the suite's other
 * one, so that restart is the services' outage and not Temporal's. Skipped outside the cluster suite.
 */
const env = inject('clusterEnv') as Record<string, string> | undefined;
const NAMESPACE = CLUSTER_CRASH_NAMESPACE;
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

describe.skipIf(!env)('on the Temporal cluster', () => {
  if (!env) return;
  describeCrashSuite({
    title: 'the platform under crashes, on the multi-node cluster (mTLS)',
    namespace: NAMESPACE,
    slug: 'cluster-chaos',
    async setUp() {
      const control = clusterControl(inject('clusterControlUrl'));
      const { connection } = await connectClient(temporalConnectionSettings({ ...env, TEMPORAL_NAMESPACE: NAMESPACE }));
      const historyNodes = inject('clusterHistoryNodes');
      const victim = historyNodes - 1;
      const addressOf = async (i: number) => (await control.nodes()).find((n) => n.name === `history-${i}`)!.grpcAddress;
      const victimAddress = await addressOf(victim);
      let victimShards: number[] = [];
      /** Each shard's owner as the cluster answers now; a shard whose owner cannot say is left out. */
      const owners = async (shards: number[]) =>
        new Map(
          (
            await Promise.all(
              shards.map(async (shardId) => [shardId, (await describeHistoryHost(connection, { shardId }, 2000).catch(() => undefined))?.address] as const),
            )
          ).filter((entry): entry is readonly [number, string] => entry[1] !== undefined),
        );

      return {
        env,
        faults: [
          {
            name: `SIGKILL history-${victim}`,
            afterPlaced: 0.2,
            run: async (note) => {
              victimShards = (await describeHistoryHost(connection, { hostAddress: victimAddress })).shardIds;
              const killedAt = Date.now();
              await control.killHistoryNode(victim);
              await eventually(
                async () => {
                  const now = await owners(victimShards);
                  return victimShards.every((shard) => now.has(shard) && now.get(shard) !== victimAddress) ? now : undefined;
                },
                `the other history nodes to own shards ${victimShards.join(', ')}`,
                240,
                500,
              );
              note(`its ${victimShards.length} shards (${victimShards.join(', ')}) owned by the other history nodes ${seconds(killedAt)} after the kill`);
            },
          },
          {
            name: `start history-${victim} again`,
            afterPlaced: 0.4,
            run: async (note) => {
              const startedAt = Date.now();
              await control.startHistoryNode(victim);
              note(`back in the history ring after ${seconds(startedAt)}`);
              const shards = await eventually(
                async () => {
                  const { shardIds } = await describeHistoryHost(connection, { hostAddress: victimAddress }, 2000).catch(() => ({ shardIds: [] as number[] }));
                  return shardIds.length > 0 ? shardIds : undefined;
                },
                `history-${victim} to own shards again`,
                240,
                500,
              );
              note(`owns ${shards.length} shards again ${seconds(startedAt)} after its start`);
            },
          },
          {
            name: 'restart the frontend',
            afterPlaced: 0.55,
            run: async (note) => {
              const startedAt = Date.now();
              await control.restartFrontend();
              note(`answering again after ${seconds(startedAt)}`);
            },
          },
        ],
        tearDown: async () => {
          // A test that failed between the kill and the start leaves the node down: the next file needs it.
          for (const node of await control.nodes()) {
            const i = /^history-(\d+)$/.exec(node.name)?.[1];
            if (i !== undefined && node.pid === undefined) await control.startHistoryNode(Number(i));
          }
          await connection.close();
        },
      };
    },
  });
});
