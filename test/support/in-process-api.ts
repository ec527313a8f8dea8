import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOrdersDb, type OrdersDb } from '../../activities/orders/db';
import { createApp, type AppDeps } from '../../api/app';
import { createAuthenticator, trustedIssuers } from '../../api/authentication';
import { createPool } from '../../lib/db';
import { PostgresRateLimitStore } from '../../lib/http/rate-limit-store';
import { createLogger, type Logger } from '../../lib/logger';
import { startTestAuth } from './auth';
import type { Tracing } from '../../lib/tracing';
import { createTestDatabases } from './databases';
import { startInProcessPools } from './in-process-pools';
import { bundleWorkflows, quietRuntime, testClient } from './temporal';

/**
 * The API over real HTTP, backed by the four pools in this process, fresh databases named with
 * `prefix` and its own dev-server namespace: the whole saga, steered through the API.
 */
export async function startInProcessApi(options: {
  prefix: string;
  namespace: string;
  env?: NodeJS.ProcessEnv;
  tracing?: Tracing;
  app?: Partial<
    Pick<
      AppDeps,
      'timings' | 'catalogueTtlMs' | 'catalogueTimeoutMs' | 'healthTimeoutMs' | 'rateLimits' | 'requestTimeoutMs' | 'corsOrigins' | 'allowLoopbackWebhooks'
    >
  >;
  /** where the pools log (warnings and up by default) */
  log?: Logger;
}) {
  quietRuntime();
  const urls = await createTestDatabases(options.prefix);
  const pools = await startInProcessPools({
    urls,
    namespace: options.namespace,
    bundle: await bundleWorkflows(),
    env: options.env,
    tracing: options.tracing,
    ...(options.log ? { log: options.log } : {}),
  });
  const { client, connection } = await testClient(options.namespace, options.tracing ? { interceptors: options.tracing.clientInterceptors } : {});
  const pool = createPool(urls.orders, 3, `${options.prefix}-test`);
  const db: OrdersDb = createOrdersDb(pool);
  const log = createLogger(`${options.prefix}-test`, 'silent');
  const auth = await startTestAuth(urls.auth);
  const security = {
    authenticate: createAuthenticator({ issuers: trustedIssuers({ AUTH_ISSUER: auth.issuer, TRUSTED_ISSUERS: [] }), jwksCacheMs: 1_000 }),
    rateLimitStore: (prefix: string) => new PostgresRateLimitStore(pool, 'api_rate_limits', prefix),
    tokenUrl: `${auth.issuer}/oauth/token`,
  };
  /** Another API on the same platform, e.g. with other worker URLs or a fresh catalogue. */
  const serve = async (overrides: Partial<AppDeps> = {}) => {
    // Webhook receivers in tests listen on this machine, over plain http:.
    const app = createApp({ client, db, log, workers: pools.workers, ...security, allowLoopbackWebhooks: true, ...options.app, ...overrides });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    return {
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
  const api = await serve();
  const extra: Array<{ close: () => Promise<void> }> = [];
  return {
    baseUrl: api.baseUrl,
    /** the auth service of this platform: its clients, tokens and keys */
    auth,
    client,
    db,
    urls,
    /** each pool, to stop one on its own */
    pools: pools.pools,
    workers: pools.workers,
    serve: async (overrides: Partial<AppDeps> = {}) => {
      const other = await serve(overrides);
      extra.push(other);
      return other.baseUrl;
    },
    stop: async () => {
      await Promise.all([api, ...extra].map((s) => s.close()));
      await pools.stop();
      await auth.stop();
      await db.$disconnect();
      await pool.end();
      await connection.close();
    },
  };
}
