import cors from 'cors';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { SCOPES } from '../contracts/auth';
import { hasAny, type Authenticator, type Principal } from '../api/authentication';
import { HttpError } from '../api/errors';
import { requestLog } from '../lib/http/request-log';
import type { Logger } from '../lib/logger';

// A CommonJS package: its namespaces come off the default export under Node's ESM loader.
const { Payloads } = proto.temporal.api.common.v1;

export const SESSION_COOKIE = 'codec_session';
const OPERATOR_SCOPES = [SCOPES.operate];

export interface CodecServerDeps {
  codec: PayloadCodec;
  authenticate: Authenticator;
  log: Logger;
  /** Web UI origins allowed to call /encode and /decode from a browser */
  corsOrigins: string[];
  /** the auth service's token endpoint: the sign-in page exchanges an operator client's credentials there */
  tokenUrl: string;
  /** a Web UI without sign-in of its own, served through this server to signed-in operators */
  uiUpstream?: string;
  cookieSecure?: 'true' | 'false' | 'auto';
}

const sessionToken = (req: Request): string | undefined => /(?:^|;\s*)codec_session=([A-Za-z0-9._-]+)/.exec(req.header('cookie') ?? '')?.[1];

/** A path on this server to go back to after signing in: relative, never another site. */
const safeNext = (next: unknown): string => (typeof next === 'string' && /^\/(?!\/)[^\s\\]*$/.test(next) ? next : '/');

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(next: string, error?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Operator sign-in · order platform</title>
<style>body{font:16px system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}label{display:block;margin:.8rem 0 .2rem}input,textarea{width:100%;padding:.4rem;font:inherit}button{margin-top:1rem;padding:.5rem 1rem;font:inherit}.error{color:#b00020}fieldset{margin-top:1.2rem}</style>
</head><body>
<h1>Operator sign-in</h1>
<p>The Temporal Web UI shows orders decrypted only to operators (scope <code>orders:operate</code>).</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<fieldset><legend>An operator client</legend>
<label for="client_id">Client ID</label><input id="client_id" name="client_id" autocomplete="username">
<label for="client_secret">Client secret</label><input id="client_secret" name="client_secret" type="password" autocomplete="current-password">
</fieldset>
<fieldset><legend>…or an access token (e.g. from your company's identity provider)</legend>
<label for="access_token">Access token</label><textarea id="access_token" name="access_token" rows="3"></textarea>
</fieldset>
<button type="submit">Sign in</button>
</form></body></html>`;
}

/**
 * The codec server: Temporal's remote codec endpoints (/encode, /decode) over the platform's
 * payload codec, for operators only (a bearer token with orders:operate, or the session cookie
 * its sign-in page sets), with CORS for the Web UI's origins. For a Web UI that has no sign-in of
 * its own (the dev server's), it can also serve that UI, to signed-in operators only, so the UI
 * calls /decode on its own origin and the session comes with it.
 */
export function createCodecServerApp({ codec, authenticate, log, corsOrigins, tokenUrl, uiUpstream, cookieSecure = 'auto' }: CodecServerDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestLog(log));
  // The proxied Web UI brings its own scripts and styles: no content security policy of ours over it.
  app.use(helmet({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false }));

  const operator = async (req: Request): Promise<Principal> => {
    const bearer = req.header('authorization');
    const cookie = sessionToken(req);
    const principal = await authenticate(bearer ?? (cookie ? `Bearer ${cookie}` : undefined));
    if (!hasAny(principal, OPERATOR_SCOPES)) throw new HttpError(403, 'forbidden', 'decoding payloads needs an operator token (orders:operate)');
    return principal;
  };

  const allowed = new Set(corsOrigins);
  const codecCors = cors({
    origin: (origin, done) => done(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Namespace'],
    methods: ['POST', 'OPTIONS'],
    maxAge: 600,
  });

  const transform =
    (direction: 'encode' | 'decode'): RequestHandler =>
    async (req: Request, res: Response) => {
      const who = await operator(req);
      let payloads: Payload[];
      try {
        payloads = Payloads.fromObject(req.body as object).payloads;
      } catch (err) {
        throw new HttpError(400, 'bad_request', `the body is not JSON of temporal.api.common.v1.Payloads: ${(err as Error).message}`);
      }
      let out: Payload[];
      try {
        out = direction === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
      } catch (err) {
        throw new HttpError(400, 'cannot_decode', (err as Error).message);
      }
      log.info({ operator: who.identity.subject, count: payloads.length, namespace: req.header('x-namespace') }, `payloads ${direction}d`);
      res.set('Cache-Control', 'no-store').json(Payloads.toObject(Payloads.create({ payloads: out }), { bytes: String }));
    };
  for (const direction of ['encode', 'decode'] as const) {
    app.options(`/${direction}`, codecCors);
    app.post(`/${direction}`, codecCors, express.json({ limit: '8mb' }), transform(direction));
  }

  app.get('/livez', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok', checks: [{ service: 'keyring', ok: true }] }));

  app.get(
    '/login',
    (req, res) =>
      void res
        .type('html')
        .set('Cache-Control', 'no-store')
        .send(loginPage(safeNext(req.query.next))),
  );
  app.post('/login', express.urlencoded({ extended: false, limit: '16kb' }), async (req: Request, res: Response) => {
    const form = req.body as Record<string, string | undefined>;
    const next = safeNext(form.next);
    const fail = (status: number, message: string) => void res.status(status).type('html').send(loginPage(next, message));
    let token = form.access_token?.trim();
    if (!token && form.client_id && form.client_secret) {
      const answer = await fetch(tokenUrl, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(form.client_id)}:${encodeURIComponent(form.client_secret)}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPES.operate }),
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      const body = (await answer?.json().catch(() => undefined)) as { access_token?: string } | undefined;
      if (!answer?.ok || !body?.access_token) return fail(401, 'Those client credentials were refused, or the client may not operate.');
      token = body.access_token;
    }
    if (!token) return fail(400, 'Give an operator client’s ID and secret, or an access token.');
    let principal: Principal;
    try {
      principal = await authenticate(`Bearer ${token}`);
    } catch (err) {
      return fail(401, err instanceof HttpError ? err.message : 'That token was refused.');
    }
    if (!hasAny(principal, OPERATOR_SCOPES)) return fail(403, 'That token may not operate (it lacks orders:operate).');
    const secure = cookieSecure === 'auto' ? req.secure : cookieSecure === 'true';
    // The session is the token itself, for as long as it lives: HttpOnly (no script reads it), same-site only.
    res.cookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/' });
    log.info({ operator: principal.identity.subject }, 'operator signed in');
    res.redirect(303, next);
  });
  app.post('/logout', (_req, res) => void res.clearCookie(SESSION_COOKIE, { path: '/' }).redirect(303, '/login'));

  if (uiUpstream) {
    const proxy = createProxyMiddleware({ target: uiUpstream, changeOrigin: false, xfwd: true });
    app.use(async (req: Request, res: Response, next) => {
      try {
        await operator(req);
      } catch {
        // A page of the UI: to the sign-in page and back; the UI's own API calls: 401 as JSON.
        if (req.method === 'GET' && req.accepts(['html', 'json']) === 'html') return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
        return void res.status(401).json({ error: 'unauthorized', message: 'sign in at /login' });
      }
      return proxy(req, res, next);
    });
  }

  app.use((_req, res) => void res.status(404).json({ error: 'not_found', message: 'no such route' }));
  app.use(errorHandler);
  return app;
}

const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (res.headersSent) return;
  if (err instanceof HttpError)
    return void res
      .status(err.status)
      .set(err.headers ?? {})
      .json({ error: err.code, message: err.message });
  const parse = err as { status?: number; expose?: boolean; type?: string };
  if (parse.expose && parse.status && parse.status < 500)
    return void res.status(parse.status).json({ error: 'bad_request', message: String((err as Error).message) });
  res.err = err instanceof Error ? err : new Error(String(err));
  res.status(500).json({ error: 'internal', message: 'internal error' });
};
