import { SCOPES } from '../../contracts/auth';
import { ensureClients, tokenSource } from '../../lib/infra/clients';

/**
 * Clients of a platform launched as real processes: registered in its auth database, their tokens
 * from its auth service's real token endpoint, renewed before they expire. No rate limit gets in
 * the way of a test's polling.
 */
export async function launchedClients(authUrl: string, authDatabaseUrl: string) {
  const credentials = await ensureClients(authDatabaseUrl, {
    storefront: { id: 'storefront-test', name: 'Test storefront', scopes: [SCOPES.write, SCOPES.read], rateLimitPerMinute: 1_000_000 },
    operator: {
      id: 'operator-test',
      name: 'Test operator',
      scopes: [SCOPES.operate, SCOPES.read, SCOPES.review, SCOPES.metrics],
      rateLimitPerMinute: 1_000_000,
    },
  });
  const tokens = { storefront: tokenSource(authUrl, credentials.storefront), operator: tokenSource(authUrl, credentials.operator) };
  return {
    credentials,
    /** `Authorization: Bearer …` for one of the clients */
    headers: async (who: keyof typeof tokens = 'storefront'): Promise<Record<string, string>> => ({ Authorization: `Bearer ${await tokens[who]()}` }),
  };
}
