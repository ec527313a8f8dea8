import { parseEnv } from '../lib/config';
import { createPool } from '../lib/db';
import { createLogger } from '../lib/logger';
import { createAuthApp } from './app';
import { createClientRegistry } from './clients';
import { authEnv, keyTimingsFrom, ms } from './config';
import { createAuthDb } from './db';
import { createKeyStore } from './keys';

const log = createLogger('auth');

/** How often each replica checks whether a new signing key is due (the lock keeps replicas from doubling it). */
const ROTATION_CHECK_MS = 30_000;

async function main() {
  const config = parseEnv(authEnv);
  log.level = config.LOG_LEVEL;
  const pool = createPool(config.AUTH_DATABASE_URL, config.AUTH_DB_POOL_MAX, 'auth', log);
  const db = createAuthDb(pool);
  const keys = createKeyStore(db, keyTimingsFrom(config));
  const added = await keys.rotateIfDue();
  if (added) log.info({ kid: added }, 'signing key added');
  const rotation = setInterval(() => {
    keys.rotateIfDue().then(
      (kid) => kid && log.info({ kid }, 'signing key added: it signs once published for AUTH_KEY_PUBLISH_AHEAD'),
      (err: unknown) => log.warn({ err }, 'key rotation check failed; retrying'),
    );
  }, ROTATION_CHECK_MS);
  const app = createAuthApp({
    issuer: config.AUTH_ISSUER,
    clients: createClientRegistry(db),
    keys,
    pool,
    log,
    tokenTtlMs: ms(config.AUTH_TOKEN_TTL),
    tokenRateLimitPerMinute: config.AUTH_TOKEN_RATE_LIMIT_PER_MINUTE,
    corsOrigins: config.AUTH_CORS_ORIGINS,
  });
  const server = app.listen(config.PORT, config.HOST, () => log.info({ port: config.PORT, issuer: config.AUTH_ISSUER }, 'auth listening'));

  const shutdown = async () => {
    log.info('auth stopping');
    clearInterval(rotation);
    server.close();
    await db.$disconnect();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((err) => {
  log.fatal({ err }, 'auth failed to start');
  process.exit(1);
});
