import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { AuthDb } from './db';

/** ES256: small signatures, fast verification, supported by every JOSE library. */
export const SIGNING_ALGORITHM = 'ES256';

export interface KeyTimings {
  /** how long an access token lives: a superseded key stays published this long (plus skew) */
  tokenTtlMs: number;
  /** how often a new key takes over */
  rotateEveryMs: number;
  /**
   * How long a new key is published before it signs: at least the verifiers' JWKS cache age, so
   * every verifier knows the key before the first token signed with it arrives.
   */
  publishAheadMs: number;
  /** clock difference tolerated between the auth service and verifiers */
  skewMs: number;
}

interface StoredKey {
  kid: string;
  algorithm: string;
  publicJwk: JWK;
  privateJwk: JWK;
  activatesAt: Date;
  revokedAt: Date | null;
}

export interface KeyState {
  /** the key tokens are signed with now */
  signing: StoredKey | undefined;
  /** what the JWKS publishes: the signing key, keys about to sign, and superseded keys whose tokens may still be alive */
  published: StoredKey[];
  /** a key waiting to take over, if any */
  pending: StoredKey | undefined;
}

/**
 * The lifecycle of the signing keys, worked out from their activation times alone: the newest
 * key already active signs; a key that activates later is published ahead of time; a key that
 * was superseded stays published until every token it signed has expired, then drops out.
 * Every replica of the auth service reads the same table, so they all agree.
 */
export function keyState(keys: StoredKey[], now: number, { tokenTtlMs, skewMs }: KeyTimings): KeyState {
  const live = keys.filter((k) => !k.revokedAt).sort((a, b) => a.activatesAt.getTime() - b.activatesAt.getTime());
  const active = live.filter((k) => k.activatesAt.getTime() <= now);
  const signing = active.at(-1);
  const published = live.filter((k, i) => {
    if (k.activatesAt.getTime() > now || k === signing) return true;
    const supersededAt = live[i + 1]!.activatesAt.getTime();
    return now < supersededAt + tokenTtlMs + skewMs;
  });
  return { signing, published, pending: live.find((k) => k.activatesAt.getTime() > now) };
}

const ROTATION_LOCK = 0x617574_68; // "auth": one replica at a time decides to rotate

/** The signing keys in the auth database: generation, scheduled rotation, revocation and the JWKS. */
export function createKeyStore(db: AuthDb, timings: KeyTimings) {
  let cache: { at: number; keys: StoredKey[] } | undefined;
  /** bumped by every change this process makes: a read that began before a change must not cache what it read */
  let generation = 0;
  const CACHE_MS = 2_000;

  async function load(fresh = false): Promise<StoredKey[]> {
    if (!fresh && cache && Date.now() - cache.at < CACHE_MS) return cache.keys;
    const started = generation;
    const rows = await db.signingKey.findMany({ orderBy: { activatesAt: 'asc' } });
    const keys = rows.map((r) => ({ ...r, publicJwk: r.publicJwk as JWK, privateJwk: r.privateJwk as JWK }));
    if (started === generation) cache = { at: Date.now(), keys };
    return keys;
  }

  const changed = () => {
    generation++;
    cache = undefined;
  };

  /** A new key pair, stored to activate at `activatesAt`. */
  async function addKey(activatesAt: Date): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
    const kid = `${activatesAt.toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALGORITHM, use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALGORITHM };
    await db.signingKey.create({ data: { kid, algorithm: SIGNING_ALGORITHM, publicJwk, privateJwk, activatesAt } });
    changed();
    return kid;
  }

  /** Runs `fn` holding the rotation lock, so two replicas never add a key for the same turn. */
  async function locked<T>(fn: () => Promise<T>): Promise<T> {
    return db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ROTATION_LOCK})`;
      return fn();
    });
  }

  return {
    async state(): Promise<KeyState> {
      return keyState(await load(), Date.now(), timings);
    },

    /** The key to sign with now, and its private half. */
    async signingKey(): Promise<{ kid: string; key: CryptoKey | Uint8Array }> {
      const { signing } = keyState(await load(), Date.now(), timings);
      if (!signing) throw new Error('no signing key is active yet');
      return { kid: signing.kid, key: await importJWK(signing.privateJwk, signing.algorithm) };
    },

    /** The JSON Web Key Set verifiers fetch: public halves only. */
    async jwks(): Promise<{ keys: JWK[] }> {
      const { published } = keyState(await load(), Date.now(), timings);
      return { keys: published.map((k) => k.publicJwk) };
    },

    /**
     * Keeps the schedule: the first key at once when there is none; a successor published
     * `publishAheadMs` before the signing key's turn ends. Returns the kid it added, if any.
     */
    async rotateIfDue(): Promise<string | undefined> {
      return locked(async () => {
        const now = Date.now();
        const { signing, pending } = keyState(await load(true), now, timings);
        if (!signing && !pending) return addKey(new Date(now));
        if (pending || !signing) return undefined;
        const turnEnds = signing.activatesAt.getTime() + timings.rotateEveryMs;
        if (now < turnEnds - timings.publishAheadMs) return undefined;
        return addKey(new Date(Math.max(turnEnds, now + timings.publishAheadMs)));
      });
    },

    /** An operator's rotation: a new key that signs once it has been published for `publishAheadMs` (or at once). */
    async rotateNow({ immediately = false } = {}): Promise<string> {
      return locked(() => addKey(new Date(Date.now() + (immediately ? 0 : timings.publishAheadMs))));
    },

    /**
     * Takes a key out of use and out of the JWKS at once (it leaked): tokens it signed stop
     * verifying as the verifiers' caches refresh, and a new key signs at once if none other is active.
     */
    async revoke(kid: string): Promise<void> {
      await locked(async () => {
        const { count } = await db.signingKey.updateMany({ where: { kid, revokedAt: null }, data: { revokedAt: new Date() } });
        if (count === 0) throw new Error(`no live key ${kid}`);
        // Tokens must keep coming: with the signing key gone and no other active, a new one signs at once.
        if (!keyState(await load(true), Date.now(), timings).signing) await addKey(new Date());
      });
      changed();
    },
  };
}
export type KeyStore = ReturnType<typeof createKeyStore>;
