import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createClientRegistry, type ClientSpec } from '../../auth/clients';
import { createAuthDb } from '../../auth/db';
import { SCOPES, type Scope } from '../../contracts/auth';
import { createPool } from '../db';

export interface ClientCredentials {
  id: string;
  secret: string;
  scopes: Scope[];
}

/** The clients `npm start` makes on its first run: a storefront, a reviewer, an operator. */
export const DEV_CLIENTS = {
  storefront: { id: 'storefront-dev', name: 'Development storefront', scopes: [SCOPES.write, SCOPES.read, SCOPES.webhooks] },
  reviewer: { id: 'reviewer-dev', name: 'Development reviewer', scopes: [SCOPES.review, SCOPES.read] },
  operator: { id: 'operator-dev', name: 'Development operator', scopes: [SCOPES.operate, SCOPES.read, SCOPES.review, SCOPES.metrics] },
} as const satisfies Record<string, ClientSpec>;

/**
 * Makes sure each client exists in the auth database with a secret the caller knows: one it made
 * before (kept in `rememberIn`, a file only its owner reads), or else a new one (a client that
 * exists with a secret nobody here knows gets a new secret). Returns every client's credentials.
 */
export async function ensureClients<K extends string>(
  authDatabaseUrl: string,
  specs: Record<K, ClientSpec>,
  { rememberIn }: { rememberIn?: string } = {},
): Promise<Record<K, ClientCredentials>> {
  const remembered: Record<string, string> =
    rememberIn && existsSync(rememberIn) ? (JSON.parse(await readFile(rememberIn, 'utf8')) as Record<string, string>) : {};
  const pool = createPool(authDatabaseUrl, 2, 'client-setup');
  const db = createAuthDb(pool);
  const registry = createClientRegistry(db);
  const out = {} as Record<K, ClientCredentials>;
  try {
    for (const [name, spec] of Object.entries(specs) as Array<[K, ClientSpec]>) {
      const existing = await registry.get(spec.id);
      let secret: string;
      if (!existing) {
        secret = (await registry.create(spec)).secret;
      } else {
        const known = remembered[spec.id];
        secret = known && (await registry.authenticate(spec.id, known)) ? known : await registry.rotateSecret(spec.id, 0);
        if (existing.scopes.join(' ') !== spec.scopes.join(' ') || existing.disabled || existing.rateLimitPerMinute !== spec.rateLimitPerMinute) {
          await registry.update(spec.id, {
            scopes: [...spec.scopes],
            disabled: false,
            ...(spec.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: spec.rateLimitPerMinute } : {}),
          });
        }
      }
      remembered[spec.id] = secret;
      out[name] = { id: spec.id, secret, scopes: [...spec.scopes] };
    }
  } finally {
    await db.$disconnect();
    await pool.end();
  }
  if (rememberIn) {
    await mkdir(dirname(rememberIn), { recursive: true, mode: 0o700 });
    await writeFile(rememberIn, `${JSON.stringify(remembered, null, 2)}\n`, { mode: 0o600 });
    await chmod(rememberIn, 0o600);
  }
  return out;
}

/** An access token from the auth service's token endpoint (client_secret_basic), as any client gets one. */
export async function fetchToken(
  authUrl: string,
  { id, secret }: Pick<ClientCredentials, 'id' | 'secret'>,
  scope?: string,
): Promise<{ token: string; expiresIn: number }> {
  const res = await fetch(`${authUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
  if (!res.ok || !body.access_token) throw new Error(`token for ${id}: ${res.status} ${body.error ?? ''}`);
  return { token: body.access_token, expiresIn: body.expires_in ?? 0 };
}

/**
 * A token that renews itself a minute before it expires: for a long run (the benchmark, the crash
 * test) whose requests outlive one token.
 */
export function tokenSource(authUrl: string, credentials: Pick<ClientCredentials, 'id' | 'secret'>, scope?: string) {
  let current: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  return async (): Promise<string> => {
    if (current && Date.now() < current.renewAt) return current.token;
    pending ??= fetchToken(authUrl, credentials, scope)
      .then(({ token, expiresIn }) => {
        current = { token, renewAt: Date.now() + Math.max(10, expiresIn - 60) * 1000 };
        return token;
      })
      .finally(() => (pending = undefined));
    return pending;
  };
}
