import type { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import type { Scope } from '../contracts/auth';
import { jsonBody } from './body';
import { HttpError, validationFailed } from './errors';
import { errorSchema, fieldErrors } from './schemas';

/** One documented answer of a route. */
export interface Reply {
  description: string;
  /** the body's schema; JSON unless `contentType` says otherwise */
  body?: z.ZodType;
  contentType?: string;
  headers?: z.ZodObject;
  /** OpenAPI links: the operations this answer leads to, and which of its values fill their parameters */
  links?: Record<string, { operationId: string; parameters: Record<string, string>; description?: string }>;
}

/** Who may call a route: anyone, or a token with any one of these scopes. */
export type Access = 'public' | { scopes: readonly Scope[] };

/**
 * A route as data: the guards, the validation middleware, the handler's types and the OpenAPI
 * document (api/openapi.ts) all read it, so none of them can disagree.
 */
export interface Route {
  method: 'get' | 'post' | 'delete';
  /** in OpenAPI form: /orders/{id} */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  params?: z.ZodObject;
  /** the query string's parameters */
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, Reply>;
  /** path parameters that cannot name anything (a non-UUID order id) mean the resource does not exist: 404, not 400 */
  notFound?: (params: Record<string, string>) => HttpError;
  /** the answer holds order data: never stored by a browser or a proxy */
  private?: boolean;
}

export const defineRoute = <const R extends Route>(route: R): R => route;

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What the handler receives: each part parsed by its schema. */
export interface Input<R extends Route> {
  params: Parsed<R['params']>;
  query: Parsed<R['query']>;
  headers: Parsed<R['headers']>;
  body: Parsed<R['body']>;
}

/** What a handler returns: one of the route's documented answers, typed by its schema (refusals are usually thrown as HttpError). */
export type Answer<R extends Route> = {
  [S in keyof R['responses'] & number]: { status: S; body: z.input<NonNullable<R['responses'][S]['body']>>; headers?: Record<string, string> };
}[keyof R['responses'] & number];

export type Handler<R extends Route> = (input: Input<R>, req: Request, res: Response) => Promise<Answer<R>>;

export const expressPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/** The answers every route has because of its access and its body, added to the document and the checks alike. */
export function guardReplies(route: Route): Record<number, Reply> {
  const error = (description: string): Reply => ({ description, body: errorSchema });
  const replies: Record<number, Reply> = {};
  if (route.access !== 'public') {
    replies[401] = error('no access token, or one that is expired, tampered with, or from an issuer this API does not trust (`WWW-Authenticate` says which)');
    replies[403] = error(`the token lacks the scope: ${route.access.scopes.join(' or ')}`);
  }
  if (route.body) replies[415] = error('the body is not JSON in UTF-8, or its Content-Encoding is not one the API reads');
  replies[429] = error('over the rate limit: wait `Retry-After` seconds (the `RateLimit` and `RateLimit-Policy` headers say where the caller stands)');
  return replies;
}

/** How a router guards its routes: authentication and the rate limits, built once by the app. */
export interface Guards {
  /** a valid token with any one of `scopes`, then that client's rate limit */
  token: (scopes: readonly Scope[]) => RequestHandler[];
  /** the per-address limit of the public routes */
  public: RequestHandler[];
}

/**
 * The one validation middleware: path parameters (404 when they cannot name anything), then
 * query, headers and body together, so a 400 lists every field at fault (`query.limit`,
 * `headers.idempotency-key`, `body.items.0.quantity`, …). `body` may be the route's schema with
 * refinements that need the app's dependencies (the catalogue's SKU check); the document shows
 * the route's own.
 */
export function validate(route: Route, body: z.ZodType | undefined = route.body): RequestHandler {
  return async (req, res, next) => {
    const params = await route.params?.safeParseAsync(req.params);
    if (params && !params.success) throw route.notFound?.(req.params as Record<string, string>) ?? new HttpError(404, 'not_found', `nothing at ${req.path}`);
    const [query, headers, parsedBody] = await Promise.all([
      route.query?.safeParseAsync(req.query),
      route.headers?.safeParseAsync(req.headers),
      body?.safeParseAsync(req.body ?? {}),
    ]);
    const problems = [
      ...(query && !query.success ? fieldErrors(query.error, ['query']) : []),
      ...(headers && !headers.success ? fieldErrors(headers.error, ['headers']) : []),
      ...(parsedBody && !parsedBody.success ? fieldErrors(parsedBody.error, ['body']) : []),
    ];
    if (problems.length > 0) throw validationFailed(problems);
    res.locals.input = { params: params?.data, query: query?.data, headers: headers?.data, body: parsedBody?.data };
    next();
  };
}

const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};

/**
 * Adds a route to a router, in this order: its guards (401/403 and the rate limit before anything
 * is read), `before` (e.g. a check that needs the caller), the body (415/413/400 for what cannot
 * be read), validation, then the handler, whose answer is sent as documented. A body is read only
 * for a caller allowed to send it.
 */
export function mount<R extends Route>(
  router: Router,
  guards: Guards,
  route: R,
  handler: NoInfer<Handler<R>>,
  options: { before?: RequestHandler[]; body?: z.ZodType<Parsed<R['body']>> } = {},
): void {
  const access = route.access === 'public' ? guards.public : guards.token(route.access.scopes);
  router[route.method](
    expressPath(route.path),
    ...(route.private || route.access !== 'public' ? [noStore] : []),
    ...access,
    ...(options.before ?? []),
    ...(route.body ? jsonBody() : []),
    validate(route, options.body ?? route.body),
    async (req: Request, res: Response) => {
      const answer = await handler(res.locals.input as Input<R>, req, res);
      // The request's deadline answered already (503): this late answer has no one to go to.
      if (res.headersSent) return;
      const contentType = route.responses[answer.status]?.contentType;
      res.status(answer.status).set(answer.headers ?? {});
      if (!contentType || contentType.includes('json')) return void res.json(answer.body);
      if (!res.get('Content-Type')) res.type(contentType);
      res.send(answer.body);
    },
  );
}
