import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { API_AUDIENCE } from '../contracts/auth';
import type { AuthenticatedClient } from './clients';
import { SIGNING_ALGORITHM, type KeyStore } from './keys';

export interface IssuedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

/** The custom claim carrying a client's own rate limit to the API (requests per minute). */
export const RATE_LIMIT_CLAIM = 'rate_limit_per_minute';

/**
 * Access tokens as RFC 9068 profiles them (`typ: at+jwt`; iss, sub, aud, client_id, scope, iat,
 * exp, jti), signed with the current key of the key store.
 */
export function createTokenIssuer({ issuer, keys, ttlMs }: { issuer: string; keys: KeyStore; ttlMs: number }) {
  return async function issue(client: AuthenticatedClient, scopes: string[]): Promise<IssuedToken> {
    const { kid, key } = await keys.signingKey();
    const expiresIn = Math.floor(ttlMs / 1000);
    const scope = scopes.join(' ');
    const accessToken = await new SignJWT({
      client_id: client.id,
      scope,
      ...(client.rateLimitPerMinute !== undefined ? { [RATE_LIMIT_CLAIM]: client.rateLimitPerMinute } : {}),
    })
      .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setSubject(client.id)
      .setAudience(API_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${expiresIn}s`)
      .setJti(randomUUID())
      .sign(key);
    return { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, scope };
  };
}
