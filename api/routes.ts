import type { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import { HttpError, validationFailed } from './errors';
import { fieldErrors } from './schemas';

/** One documented answer of a route. */
export interface Reply {
  description: string;
  /** the body's schema; JSON unless `contentType` says otherwise */
  body?: z.ZodType;
  contentType?: string;
  headers?: z.ZodObject;
}

/**
 * A route as data: the validation middleware, the handler's types and the OpenAPI document
 * (api/openapi.ts) all read it, so the three cannot disagree.
 */
export interface Route {
  method: 'get' | 'post';
  /** in OpenAPI form: /orders/{id} */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  params?: z.ZodObject;
  headers?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, Reply>;
  /** path parameters that cannot name anything (a non-UUID order id) mean the resource does not exist: 404, not 400 */
  notFound?: (params: Record<string, string>) => HttpError;
}

export const defineRoute = <const R extends Route>(route: R): R => route;

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What the handler receives: each part parsed by its schema. */
export interface Input<R extends Route> {
  params: Parsed<R['params']>;
  headers: Parsed<R['headers']>;
  body: Parsed<R['body']>;
}

/** What a handler returns: one of the route's documented answers, typed by its schema (refusals are usually thrown as HttpError). */
export type Answer<R extends Route> = {
  [S in keyof R['responses'] & number]: { status: S; body: z.input<NonNullable<R['responses'][S]['body']>>; headers?: Record<string, string> };
}[keyof R['responses'] & number];

export type Handler<R extends Route> = (input: Input<R>, req: Request, res: Response) => Promise<Answer<R>>;

export const expressPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/**
 * The one validation middleware: path parameters (404 when they cannot name anything), then
 * headers and body together, so a 400 lists every field at fault (`headers.idempotency-key`,
 * `body.items.0.quantity`, …). `body` may be the route's schema with refinements that need the
 * app's dependencies (the catalogue's SKU check); the document shows the route's own.
 */
export function validate(route: Route, body: z.ZodType | undefined = route.body): RequestHandler {
  return async (req, res, next) => {
    const params = await route.params?.safeParseAsync(req.params);
    if (params && !params.success) throw route.notFound?.(req.params as Record<string, string>) ?? new HttpError(404, 'not_found', `nothing at ${req.path}`);
    const [headers, parsedBody] = await Promise.all([route.headers?.safeParseAsync(req.headers), body?.safeParseAsync(req.body ?? {})]);
    const problems = [
      ...(headers && !headers.success ? fieldErrors(headers.error, ['headers']) : []),
      ...(parsedBody && !parsedBody.success ? fieldErrors(parsedBody.error, ['body']) : []),
    ];
    if (problems.length > 0) throw validationFailed(problems);
    res.locals.input = { params: params?.data, headers: headers?.data, body: parsedBody?.data };
    next();
  };
}

/** Adds a route to a router: `before` (e.g. a role check), validation, then the handler, whose answer is sent as documented. */
export function mount<R extends Route>(
  router: Router,
  route: R,
  handler: NoInfer<Handler<R>>,
  options: { before?: RequestHandler[]; body?: z.ZodType<Parsed<R['body']>> } = {},
): void {
  router[route.method](expressPath(route.path), ...(options.before ?? []), validate(route, options.body ?? route.body), async (req: Request, res: Response) => {
    const answer = await handler(res.locals.input as Input<R>, req, res);
    const contentType = route.responses[answer.status]?.contentType;
    res.status(answer.status).set(answer.headers ?? {});
    if (!contentType || contentType.includes('json')) return void res.json(answer.body);
    if (!res.get('Content-Type')) res.type(contentType);
    res.send(answer.body);
  });
}
