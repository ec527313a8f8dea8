import cors from 'cors';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { ALL_SCOPES } from '../contracts/auth';
import { healthReport, probe, within } from '../contracts/health';
import type { Pool } from '../lib/db';
import { PostgresRateLimitStore } from '../lib/http/rate-limit-store';
import { requestLog } from '../lib/http/request-log';
import type { Logger } from '../lib/logger';
import type { ClientRegistry } from './clients';
import type { KeyStore } from './keys';
import { createTokenIssuer } from './tokens';

export interface AuthAppDeps {
  issuer: string;
  clients: ClientRegistry;
  keys: KeyStore;
  pool: Pool;
  log: Logger;
  tokenTtlMs: number;
  tokenRateLimitPerMinute: number;
  /** browser origins that may ask for tokens and read the keys (the API's Swagger UI) */
  corsOrigins?: string[];
}

/** An OAuth2 error answer (RFC 6749 §5.2). */
class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope' | 'unauthorized_client',
    message: string,
  ) {
    super(message);
  }
}

/** client_secret_basic: `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1). */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError(401, 'invalid_client', 'malformed Basic credentials');
  try {
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError(401, 'invalid_client', 'malformed Basic credentials');
  }
}

const field = (body: Record<string, unknown>, name: string): string | undefined => {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new OAuthError(400, 'invalid_request', `${name} must be given once`);
  return value;
};

/**
 * The auth service: the OAuth2 client-credentials token endpoint, the JWKS its signing keys are
 * published in, its metadata (RFC 8414), and health. Clients and keys live in its own database.
 */
export function createAuthApp({ issuer, clients, keys, pool, log, tokenTtlMs, tokenRateLimitPerMinute, corsOrigins = [] }: AuthAppDeps) {
  const issue = createTokenIssuer({ issuer, keys, ttlMs: tokenTtlMs });
  const app = express();
  app.disable('x-powered-by');
  // Behind a proxy the caller's address is in X-Forwarded-For; the limit below keys on it.
  app.set('trust proxy', 'loopback');
  app.use(requestLog(log));
  app.use(helmet());
  const allowed = new Set(corsOrigins);
  app.use(
    cors({ origin: (origin, done) => done(null, origin !== undefined && allowed.has(origin)), allowedHeaders: ['Authorization', 'Content-Type'], maxAge: 600 }),
  );

  app.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json({
      issuer,
      token_endpoint: `${issuer}/oauth/token`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      scopes_supported: ALL_SCOPES,
      response_types_supported: [],
    });
  });

  app.get('/.well-known/jwks.json', async (_req, res) => {
    // Short: a verifier that caches it longer still refetches on an unknown key id.
    res.set('Cache-Control', 'public, max-age=60').json(await keys.jwks());
  });

  const tokenLimit = rateLimit({
    windowMs: 60_000,
    limit: tokenRateLimitPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    store: new PostgresRateLimitStore(pool, 'rate_limits', 'token:'),
    handler: (_req, res, _next, options) => {
      res
        .status(options.statusCode)
        .json({ error: 'slow_down', error_description: 'too many token requests from this address; retry after Retry-After seconds' });
    },
  });

  app.post('/oauth/token', tokenLimit, express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 20 }), async (req: Request, res: Response) => {
    if (!req.is('application/x-www-form-urlencoded')) {
      throw new OAuthError(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const basic = basicCredentials(req.header('authorization'));
    const posted = field(body, 'client_id');
    if (basic && posted !== undefined) throw new OAuthError(400, 'invalid_request', 'use one way to authenticate the client, not both');
    const id = basic?.id ?? posted;
    const secret = basic?.secret ?? field(body, 'client_secret');
    if (!id || !secret) throw new OAuthError(401, 'invalid_client', 'client authentication is required');
    const grant = field(body, 'grant_type');
    if (grant !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'only grant_type=client_credentials is supported');

    const client = await clients.authenticate(id, secret);
    if (!client) {
      log.warn({ clientId: id.slice(0, 64) }, 'token refused: bad client credentials');
      throw new OAuthError(401, 'invalid_client', 'unknown client, wrong secret, or a disabled client');
    }
    const asked = field(body, 'scope');
    const scopes = asked === undefined ? client.scopes : [...new Set(asked.split(' ').filter(Boolean))];
    const notAllowed = scopes.filter((s) => !(client.scopes as string[]).includes(s));
    if (notAllowed.length > 0) throw new OAuthError(400, 'invalid_scope', `not granted to this client: ${notAllowed.join(' ')}`);
    if (scopes.length === 0) throw new OAuthError(400, 'invalid_scope', 'no scope requested');
    const token = await issue(client, scopes);
    log.info({ clientId: client.id, scope: token.scope }, 'token issued');
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(token);
  });

  app.get('/livez', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/healthz', async (_req, res) => {
    const report = healthReport(
      await Promise.all([
        probe('database', () => within(1_500, pool.query('SELECT 1'), 'the auth database')),
        probe('signing key', async () => {
          if (!(await within(1_500, keys.state(), 'reading the keys')).signing) throw new Error('no key signs yet');
        }),
      ]),
    );
    res.status(report.status === 'ok' ? 200 : 503).json(report);
  });

  app.use((_req, res) => void res.status(404).json({ error: 'not_found', error_description: 'no such route' }));
  app.use(errorHandler);
  return app;
}

const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (err instanceof OAuthError) {
    if (err.status === 401) res.set('WWW-Authenticate', 'Basic realm="order-platform", charset="UTF-8"');
    return void res.status(err.status).set('Cache-Control', 'no-store').json({ error: err.code, error_description: err.message });
  }
  const status = (err as { status?: number; expose?: boolean }).expose ? ((err as { status: number }).status ?? 400) : 500;
  if (status >= 500) res.err = err instanceof Error ? err : new Error(String(err));
  res
    .status(status)
    .json({ error: status >= 500 ? 'server_error' : 'invalid_request', error_description: status >= 500 ? 'internal error' : String((err as Error).message) });
};
