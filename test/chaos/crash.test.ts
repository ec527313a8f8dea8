import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';
import { DATA_DIR } from '../../lib/infra/paths';
import { startTemporalDevServer, type RunningTemporal } from '../../lib/infra/temporal';
import { freeFixedPort } from '../../lib/net';
import { describeCrashSuite } from '../support/crash-suite';

/**
 * The crash test (test/support/crash-suite.ts) on a Temporal dev server of its own, with a SQLite
 * file so its state survives a restart: besides the worker kills and the PostgreSQL restart,
 * Temporal itself is restarted once. test/cluster/crash.test.ts runs it on the multi-node cluster.
 */
describeCrashSuite({
  title: 'the platform under crashes',
  namespace: 'default',
  slug: 'chaos',
  async setUp() {
    const dir = join(DATA_DIR, 'test', `chaos-temporal-${process.pid}`);
    await rm(dir, { recursive: true, force: true });
    // Restarted on this port by the fault below.
    const port = await freeFixedPort();
    const start = () => startTemporalDevServer({ cli: inject('temporalCli'), port, dbFile: join(dir, 'dev.db'), namespaces: ['default'] });
    let temporal: RunningTemporal | undefined = await start();
    return {
      env: { TEMPORAL_ADDRESS: temporal.address },
      faults: [
        {
          name: 'restart Temporal',
          afterPlaced: 1 / 3,
          run: async () => {
            await temporal?.stop();
            temporal = undefined;
            temporal = await start();
          },
        },
      ],
      tearDown: async () => {
        await temporal?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
