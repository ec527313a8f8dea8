import { ALL_SCOPES, type Scope } from '../contracts/auth';
import type { AuthDb } from './db';
import { DECOY_HASH, hashSecret, newSecret, verifySecret } from './secrets';

export interface ClientSpec {
  id: string;
  name: string;
  scopes: Scope[];
  rateLimitPerMinute?: number;
}

export interface RegisteredClient extends ClientSpec {
  disabled: boolean;
  createdAt: string;
}

/** A client as the token endpoint knows it once its secret checked out. */
export interface AuthenticatedClient {
  id: string;
  scopes: Scope[];
  rateLimitPerMinute?: number;
}

const CLIENT_ID = /^[a-z0-9][a-z0-9._-]{2,63}$/;

/** How long the secret before a rotation keeps working, so the client can roll its new secret out. */
export const DEFAULT_SECRET_OVERLAP_MS = 24 * 3_600_000;

/**
 * The registry of clients allowed to ask for tokens: who they are, which scopes they may hold,
 * and the hash of their secret. Secrets are made here, returned once, and never stored.
 */
export function createClientRegistry(db: AuthDb) {
  const validate = ({ id, scopes }: Pick<ClientSpec, 'id' | 'scopes'>) => {
    if (!CLIENT_ID.test(id)) throw new Error(`client id "${id}": 3-64 of a-z 0-9 . _ -, starting with a letter or digit`);
    const unknown = scopes.filter((s) => !ALL_SCOPES.includes(s));
    if (unknown.length > 0) throw new Error(`unknown scopes ${unknown.join(', ')} (known: ${ALL_SCOPES.join(' ')})`);
  };

  const view = (c: {
    id: string;
    name: string;
    scopes: string[];
    rateLimitPerMinute: number | null;
    disabledAt: Date | null;
    createdAt: Date;
  }): RegisteredClient => ({
    id: c.id,
    name: c.name,
    scopes: c.scopes as Scope[],
    ...(c.rateLimitPerMinute !== null ? { rateLimitPerMinute: c.rateLimitPerMinute } : {}),
    disabled: c.disabledAt !== null,
    createdAt: c.createdAt.toISOString(),
  });

  return {
    /** Registers a client and returns its secret, which is shown this once. */
    async create(spec: ClientSpec): Promise<{ client: RegisteredClient; secret: string }> {
      validate(spec);
      const secret = newSecret();
      const created = await db.client.create({
        data: { id: spec.id, name: spec.name, scopes: spec.scopes, rateLimitPerMinute: spec.rateLimitPerMinute ?? null, secretHash: await hashSecret(secret) },
      });
      return { client: view(created), secret };
    },

    /** A new secret; the old one keeps working for `overlapMs` (0: stops at once, for a leaked secret). */
    async rotateSecret(id: string, overlapMs = DEFAULT_SECRET_OVERLAP_MS): Promise<string> {
      const existing = await db.client.findUnique({ where: { id } });
      if (!existing) throw new Error(`no client ${id}`);
      const secret = newSecret();
      await db.client.update({
        where: { id },
        data: {
          secretHash: await hashSecret(secret),
          previousSecretHash: overlapMs > 0 ? existing.secretHash : null,
          previousSecretEnds: overlapMs > 0 ? new Date(Date.now() + overlapMs) : null,
        },
      });
      return secret;
    },

    async update(id: string, changes: Partial<Pick<ClientSpec, 'name' | 'scopes' | 'rateLimitPerMinute'>> & { disabled?: boolean }): Promise<RegisteredClient> {
      if (changes.scopes) validate({ id, scopes: changes.scopes });
      const updated = await db.client.update({
        where: { id },
        data: {
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.scopes ? { scopes: changes.scopes } : {}),
          ...(changes.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: changes.rateLimitPerMinute } : {}),
          ...(changes.disabled !== undefined ? { disabledAt: changes.disabled ? new Date() : null } : {}),
        },
      });
      return view(updated);
    },

    async list(): Promise<RegisteredClient[]> {
      return (await db.client.findMany({ orderBy: { id: 'asc' } })).map(view);
    },

    async get(id: string): Promise<RegisteredClient | undefined> {
      const found = await db.client.findUnique({ where: { id } });
      return found ? view(found) : undefined;
    },

    /**
     * The client, if the secret is its current one (or its previous one, within the overlap) and
     * it is not disabled. An unknown ID costs the same hash as a wrong secret.
     */
    async authenticate(id: string, secret: string): Promise<AuthenticatedClient | undefined> {
      const client = CLIENT_ID.test(id) ? await db.client.findUnique({ where: { id } }) : null;
      if (!client) {
        await verifySecret(secret, await DECOY_HASH);
        return undefined;
      }
      let ok = await verifySecret(secret, client.secretHash);
      if (!ok && client.previousSecretHash && client.previousSecretEnds && client.previousSecretEnds > new Date()) {
        ok = await verifySecret(secret, client.previousSecretHash);
      }
      if (!ok || client.disabledAt) return undefined;
      return {
        id: client.id,
        scopes: client.scopes as Scope[],
        ...(client.rateLimitPerMinute !== null ? { rateLimitPerMinute: client.rateLimitPerMinute } : {}),
      };
    },
  };
}
export type ClientRegistry = ReturnType<typeof createClientRegistry>;
