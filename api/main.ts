import { Client, Connection } from '@temporalio/client';
import { createOrdersDb } from '../activities/orders/db';
import { parseEnv } from '../lib/config';
import { createPool } from '../lib/db';
import { createLogger } from '../lib/logger';
import { loadMonitoringConfig } from '../lib/monitoring';
import { initTracing } from '../lib/tracing';
import { createApp } from './app';
import { apiEnv, orderTimingsFrom } from './config';

const log = createLogger('api');

async function main() {
  const config = parseEnv(apiEnv);
  const monitoring = loadMonitoringConfig();
  log.level = monitoring.logs.level;
  const tracing = initTracing({ service: 'api', ...monitoring.tracing });
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, interceptors: tracing.clientInterceptors });
  const pool = createPool(config.ORDERS_DATABASE_URL, config.API_DB_POOL_MAX, 'api', log);
  const db = createOrdersDb(pool);
  const app = createApp({
    client,
    db,
    log,
    timings: orderTimingsFrom(config),
  });
  const server = app.listen(config.PORT, config.HOST, () => log.info({ port: config.PORT }, 'api listening'));

  const shutdown = async () => {
    log.info('api stopping');
    server.close();
    await db.$disconnect();
    await pool.end();
    await connection.close();
    await tracing.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  log.fatal({ err }, 'api failed to start');
  process.exit(1);
});
