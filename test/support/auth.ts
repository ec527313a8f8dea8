import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthApp } from '../../auth/app';
import { createClientRegistry, type ClientSpec } from '../../auth/clients';
import { createAuthDb } from '../../auth/db';
import { createKeyStore, type KeyTimings } from '../../auth/keys';
import { SCOPES, type Scope } from '../../contracts/auth';
import { createPool } from '../../lib/db';
import { createLogger } from '../../lib/logger';

/** The clients most tests act as: two storefronts, a reviewer, an operator, and Prometheus. */
export const TEST_CLIENTS = {
  storefront: { id: 'storefront-a', name: 'Storefront A', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks] },
  otherStorefront: { id: 'storefront-b', name: 'Storefront B', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks] },
  reviewer: { id: 'reviewer-1', name: 'Risk team', scopes: [SCOPES.review, SCOPES.read] },
  operator: { id: 'operator-1', name: 'Operations', scopes: [SCOPES.operate, SCOPES.read, SCOPES.review] },
  prometheus: { id: 'prometheus', name: 'Prometheus', scopes: [SCOPES.metrics] },
} as const satisfies Record<string, Omit<ClientSpec, 'scopes'> & { scopes: readonly Scope[] }>;
export type TestClient = keyof typeof TEST_CLIENTS;

/** Fast key timings for tests: the first key signs at once, rotations publish 1 s ahead. */
export const TEST_KEY_TIMINGS: KeyTimings = { tokenTtlMs: 15 * 60_000, rotateEveryMs: 30 * 86_400_000, publishAheadMs: 1_000, skewMs: 1_000 };

/**
 * The real auth service (its app, its registry, its key store) on its own database and a loopback
 * port, with the test clients registered. Tokens come from its real token endpoint.
 */
export async function startTestAuth(authDatabaseUrl: string, { timings = TEST_KEY_TIMINGS, tokenRateLimitPerMinute = 10_000 } = {}) {
  const pool = createPool(authDatabaseUrl, 3, 'test-auth');
  const db = createAuthDb(pool);
  const clients = createClientRegistry(db);
  const keys = createKeyStore(db, timings);
  await keys.rotateIfDue();
  // The issuer is the service's own URL, known once it listens: listen first, then hand requests to the app.
  const serving: { app?: ReturnType<typeof createAuthApp> } = {};
  const server: Server = createServer((req, res) => serving.app!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  serving.app = createAuthApp({
    issuer,
    clients,
    keys,
    pool,
    log: createLogger('test-auth', 'silent'),
    tokenTtlMs: timings.tokenTtlMs,
    tokenRateLimitPerMinute,
  });

  const secrets = new Map<string, string>();
  for (const spec of Object.values(TEST_CLIENTS)) {
    const { secret } = await clients.create({ ...spec, scopes: [...spec.scopes], rateLimitPerMinute: 1_000_000 });
    secrets.set(spec.id, secret);
  }
  const cached = new Map<string, string>();

  /** An access token from the token endpoint (client_secret_basic). */
  async function tokenFor(id: string, secret: string, scope?: string): Promise<string> {
    const res = await fetch(`${issuer}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }),
    });
    const body = (await res.json()) as { access_token?: string; error?: string };
    if (!res.ok || !body.access_token) throw new Error(`token for ${id}: ${res.status} ${JSON.stringify(body)}`);
    return body.access_token;
  }

  return {
    issuer,
    clients,
    keys,
    db,
    tokenFor,
    /** a token of one of the test clients, fetched once */
    async token(client: TestClient): Promise<string> {
      const { id } = TEST_CLIENTS[client];
      if (!cached.has(id)) cached.set(id, await tokenFor(id, secrets.get(id)!));
      return cached.get(id)!;
    },
    /** `Authorization: Bearer …` for one of the test clients */
    async as(client: TestClient): Promise<Record<string, string>> {
      return { Authorization: `Bearer ${await this.token(client)}` };
    },
    /** registers another client; its secret is returned */
    async register(spec: ClientSpec): Promise<{ id: string; secret: string }> {
      const { secret } = await clients.create(spec);
      return { id: spec.id, secret };
    },
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.$disconnect();
      await pool.end();
    },
  };
}
export type TestAuth = Awaited<ReturnType<typeof startTestAuth>>;
