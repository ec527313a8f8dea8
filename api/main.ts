import { createOrdersDb } from '../activities/orders/db';
import { INVENTORY_TASK_QUEUE } from '../contracts/inventory';
import { NOTIFICATIONS_TASK_QUEUE } from '../contracts/notifications';
import { ORDERS_TASK_QUEUE } from '../contracts/orders';
import { PAYMENTS_TASK_QUEUE } from '../contracts/payments';
import { SHIPPING_TASK_QUEUE } from '../contracts/shipping';
import { parseEnv } from '../lib/config';
import { createPool } from '../lib/db';
import { createLogger } from '../lib/logger';
import { loadMonitoringConfig } from '../lib/monitoring';
import { connectClient, temporalSettings } from '../lib/temporal/connection';
import { initTracing } from '../lib/tracing';
import { createApp } from './app';
import { PostgresRateLimitStore } from '../lib/http/rate-limit-store';
import { apiEnv, orderTimingsFrom, securityFrom } from './config';

const log = createLogger('api');

async function main() {
  const config = parseEnv(apiEnv);
  const monitoring = loadMonitoringConfig();
  log.level = monitoring.logs.level;
  const tracing = initTracing({ service: 'api', ...monitoring.tracing });
  const temporal = temporalSettings();
  const { client, connection } = await connectClient(temporal, { interceptors: tracing.clientInterceptors });
  log.info({ temporal: temporal.summary }, 'temporal client ready');
  const pool = createPool(config.ORDERS_DATABASE_URL, config.API_DB_POOL_MAX, 'api', log, { statementTimeoutMs: config.REQUEST_TIMEOUT_MS });
  const db = createOrdersDb(pool);
  const app = createApp({
    client,
    db,
    log,
    ...securityFrom(config),
    rateLimitStore: (prefix) => new PostgresRateLimitStore(pool, 'api_rate_limits', prefix),
    timings: orderTimingsFrom(config),
    workers: {
      [ORDERS_TASK_QUEUE]: config.ORDERS_WORKER_URLS,
      [INVENTORY_TASK_QUEUE]: config.INVENTORY_WORKER_URLS,
      [PAYMENTS_TASK_QUEUE]: config.PAYMENTS_WORKER_URLS,
      [SHIPPING_TASK_QUEUE]: config.SHIPPING_WORKER_URLS,
      [NOTIFICATIONS_TASK_QUEUE]: config.NOTIFICATIONS_WORKER_URLS,
    },
    allowLoopbackWebhooks: config.WEBHOOKS_ALLOW_LOOPBACK_HTTP,
    catalogueTtlMs: config.CATALOGUE_TTL_MS,
    catalogueTimeoutMs: config.CATALOGUE_TIMEOUT_MS,
    healthTimeoutMs: config.HEALTH_TIMEOUT_MS,
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
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((err) => {
  log.fatal({ err }, 'api failed to start');
  process.exit(1);
});
