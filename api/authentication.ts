import type { RequestHandler } from 'express';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors,
  jwksCache,
  jwtVerify,
  type JWKSCacheInput,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import { API_AUDIENCE, identityKey, type Identity, type Scope } from '../contracts/auth';
import { HttpError } from './errors';

/**
 * Who is calling, from a verified access token: the identity (issuer and subject), the scopes it
 * was granted, and the client's own rate limit when its issuer says so.
 */
export interface Principal {
  identity: Identity;
  /** identityKey(identity): what rate limits and order ownership key on */
  key: string;
  scopes: ReadonlySet<string>;
  rateLimitPerMinute?: number;
}

/** An issuer whose tokens the API accepts: the platform's auth service, or a company identity provider. */
export interface TrustedIssuer {
  issuer: string;
  jwksUrl: string;
  audience: string;
  /** the claim scopes are read from: `scope` (space-separated, the default) or a list claim such as `scp` or `roles` */
  scopeClaim?: string;
  /** the auth service's own tokens are RFC 9068 access tokens (`typ: at+jwt`) */
  accessTokenType?: string;
}

/** TRUSTED_ISSUERS: extra issuers as JSON, e.g. `[{"issuer":"https://id.example.com","jwksUrl":"https://id.example.com/jwks","audience":"order-platform-api","scopeClaim":"scp"}]`. */
export const trustedIssuersSchema = z.array(
  z.strictObject({
    issuer: z.string().url(),
    jwksUrl: z.string().url(),
    audience: z.string().min(1).default(API_AUDIENCE),
    scopeClaim: z.string().min(1).optional(),
  }),
);

const ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** The platform's own rate-limit claim (auth/tokens.ts); read only from the platform's own issuer. */
const RATE_LIMIT_CLAIM = 'rate_limit_per_minute';

/** 401 as RFC 6750 says: the scheme, the realm, and why, in WWW-Authenticate. */
function unauthorised(description: string, error?: 'invalid_token' | 'invalid_request'): HttpError {
  const challenge = `Bearer realm="order-platform"${error ? `, error="${error}", error_description="${description.replace(/"/g, "'")}"` : ''}`;
  return new HttpError(401, 'unauthorized', description, undefined, { 'WWW-Authenticate': challenge });
}

/**
 * A key set fetched from the issuer and cached (`cacheMaxAge`); an unknown key id fetches again
 * at once (after a short cooldown), which is how a rotated key is picked up. When the issuer
 * cannot be reached, the last copy keeps verifying: an auth service outage must not lock out
 * tokens already issued.
 */
function keySet(jwksUrl: string, cacheMaxAge: number): JWTVerifyGetKey {
  const cache: JWKSCacheInput = {};
  const remote = createRemoteJWKSet(new URL(jwksUrl), { cacheMaxAge, cooldownDuration: 5_000, timeoutDuration: 3_000, [jwksCache]: cache });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      const unreachable = err instanceof errors.JWKSTimeout || (err instanceof Error && !(err instanceof errors.JOSEError));
      if (unreachable && 'jwks' in cache && cache.jwks) return createLocalJWKSet(cache.jwks)(header, token);
      throw err;
    }
  };
}

function scopesOf(payload: JWTPayload, claim: string | undefined): Set<string> {
  const value = claim ? payload[claim] : (payload.scope ?? payload.scp);
  if (typeof value === 'string') return new Set(value.split(' ').filter(Boolean));
  if (Array.isArray(value)) return new Set(value.filter((v): v is string => typeof v === 'string'));
  return new Set();
}

/**
 * Verifies bearer tokens with jose: the issuer must be one the API trusts, the signature must
 * check against that issuer's published keys, and the audience, expiry and not-before must hold
 * (with `clockToleranceSec` of skew).
 */
export function createAuthenticator({
  issuers,
  jwksCacheMs = 600_000,
  clockToleranceSec = 30,
}: {
  issuers: TrustedIssuer[];
  jwksCacheMs?: number;
  clockToleranceSec?: number;
}) {
  const byIssuer = new Map(issuers.map((i) => [i.issuer, { ...i, keys: keySet(i.jwksUrl, jwksCacheMs) }]));
  const own = issuers[0]?.issuer;

  return async function authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw unauthorised('an access token is required: Authorization: Bearer <token> (README, "Getting a token")');
    const match = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$/.exec(authorization);
    if (!match) throw unauthorised('the Authorization header must be "Bearer <JWT>"', 'invalid_request');
    const token = match[1]!;
    let claimedIssuer: string | undefined;
    try {
      claimedIssuer = decodeJwt(token).iss;
    } catch {
      throw unauthorised('the token is not a JWT', 'invalid_token');
    }
    const trusted = claimedIssuer ? byIssuer.get(claimedIssuer) : undefined;
    if (!trusted) throw unauthorised('the token comes from an issuer this API does not trust', 'invalid_token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, trusted.keys, {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: ALGORITHMS,
        clockTolerance: clockToleranceSec,
        requiredClaims: ['sub', 'exp'],
        ...(trusted.accessTokenType ? { typ: trusted.accessTokenType } : {}),
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw unauthorised('the token has expired', 'invalid_token');
      if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError)) {
        throw new HttpError(503, 'unavailable', 'the token issuer’s keys cannot be read right now', undefined, { 'Retry-After': '5' });
      }
      throw unauthorised('the token is not valid here (signature, audience or claims)', 'invalid_token');
    }
    const identity = { issuer: trusted.issuer, subject: payload.sub! };
    const limit = trusted.issuer === own ? payload[RATE_LIMIT_CLAIM] : undefined;
    return {
      identity,
      key: identityKey(identity),
      scopes: scopesOf(payload, trusted.scopeClaim),
      ...(typeof limit === 'number' && limit > 0 ? { rateLimitPerMinute: limit } : {}),
    };
  };
}
export type Authenticator = ReturnType<typeof createAuthenticator>;

/** The issuers the API trusts: the platform's auth service first, then any configured by operators. */
export function trustedIssuers(config: {
  AUTH_ISSUER: string;
  AUTH_JWKS_URL?: string;
  TRUSTED_ISSUERS: z.infer<typeof trustedIssuersSchema>;
}): TrustedIssuer[] {
  return [
    {
      issuer: config.AUTH_ISSUER,
      jwksUrl: config.AUTH_JWKS_URL ?? `${config.AUTH_ISSUER}/.well-known/jwks.json`,
      audience: API_AUDIENCE,
      accessTokenType: 'at+jwt',
    },
    ...config.TRUSTED_ISSUERS,
  ];
}

/** The principal of a request that passed `requireToken` (res.locals). */
export const principalOf = (locals: Record<string, unknown>): Principal => {
  const principal = locals.principal as Principal | undefined;
  if (!principal) throw new Error('principalOf: the route has no requireToken');
  return principal;
};

export const hasAny = (principal: Principal, scopes: readonly Scope[]): boolean => scopes.some((s) => principal.scopes.has(s));

/**
 * Authenticates the request and requires any one of `scopes`: 401 without a valid token, 403
 * with one that lacks them (RFC 6750's insufficient_scope).
 */
export function requireToken(authenticate: Authenticator, scopes: readonly Scope[]): RequestHandler {
  return async (req, res, next) => {
    const principal = await authenticate(req.header('authorization'));
    if (!hasAny(principal, scopes)) {
      throw new HttpError(
        403,
        'forbidden',
        `this needs a token with ${scopes.length > 1 ? 'one of the scopes' : 'the scope'} ${scopes.join(', ')}`,
        undefined,
        {
          'WWW-Authenticate': `Bearer realm="order-platform", error="insufficient_scope", scope="${scopes.join(' ')}"`,
        },
      );
    }
    res.locals.principal = principal;
    next();
  };
}
