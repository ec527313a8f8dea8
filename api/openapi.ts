import { Router, type RequestHandler } from 'express';
import { OpenApiGeneratorV31, OpenAPIRegistry, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import { SCOPES, type Scope } from '../contracts/auth';
import { healthRoutes } from './health';
import { metricsRoutes } from './metrics';
import { orderRoutes } from './orders';
import { productRoutes } from './products';
import { orderEventRoutes } from './order-events';
import { reviewRoutes } from './reviews';
import { webhookRoutes } from './webhooks';
import { defineRoute, guardReplies, mount, type Guards, type Route } from './routes';

export const openApiRoute = defineRoute({
  method: 'get',
  path: '/openapi.json',
  operationId: 'openApi',
  tag: 'operations',
  access: 'public',
  summary: 'This document: OpenAPI 3.1, generated from the zod schemas the API validates with',
  responses: {
    200: {
      description: 'the OpenAPI document',
      body: z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) }),
    },
  },
});

export const docsRoute = defineRoute({
  method: 'get',
  path: '/docs/',
  operationId: 'docs',
  tag: 'operations',
  access: 'public',
  summary: 'Interactive documentation (Swagger UI) of this document, served with its assets by the API itself',
  responses: { 200: { description: 'the Swagger UI page', body: z.string(), contentType: 'text/html' } },
});

export const docsRedirectRoute = defineRoute({
  method: 'get',
  path: '/docs',
  operationId: 'docsRedirect',
  tag: 'operations',
  access: 'public',
  summary: 'Sends the browser to /docs/ (the page loads its assets relative to itself)',
  responses: { 301: { description: 'to /docs/', headers: z.object({ Location: z.literal('/docs/') }) } },
});

/** Every route of the API, in the order the document lists them. */
export const ROUTES: readonly Route[] = [
  ...productRoutes,
  ...orderRoutes,
  ...reviewRoutes,
  ...orderEventRoutes,
  ...webhookRoutes,
  ...healthRoutes,
  ...metricsRoutes,
  openApiRoute,
  docsRedirectRoute,
  docsRoute,
];

const requestIdIn = z.object({ 'x-request-id': z.string().optional().meta({ description: 'a request id to log under; a new one when absent' }) });
const requestIdOut = z.object({ 'X-Request-Id': z.string().meta({ description: 'the request id: the one sent, or a new one' }) });

function toRouteConfig(route: Route): RouteConfig {
  return {
    method: route.method,
    path: route.path,
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    request: {
      ...(route.params ? { params: route.params } : {}),
      ...(route.query ? { query: route.query } : {}),
      headers: route.headers ? route.headers.extend(requestIdIn.shape) : requestIdIn,
      ...(route.body ? { body: { required: true, content: { 'application/json': { schema: route.body } } } } : {}),
    },
    ...(route.access === 'public' ? { security: [] } : { security: [{ [SECURITY_SCHEME]: [...route.access.scopes] }] }),
    responses: Object.fromEntries(
      Object.entries({ ...guardReplies(route), ...route.responses }).map(([status, reply]) => [
        status,
        {
          description: reply.description,
          headers: reply.headers ? reply.headers.extend(requestIdOut.shape) : requestIdOut,
          ...(reply.body ? { content: { [reply.contentType ?? 'application/json']: { schema: reply.body } } } : {}),
          ...(reply.links ? { links: reply.links } : {}),
        },
      ]),
    ),
  };
}

const SECURITY_SCHEME = 'oauth2';

/**
 * The OpenAPI document, generated from the routes' own schemas; never written by hand. The
 * security scheme is OAuth2 client credentials at the auth service's token endpoint.
 */
export function openApiDocument({ tokenUrl }: { tokenUrl: string }) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', SECURITY_SCHEME, {
    type: 'oauth2',
    description: 'An access token from the auth service (client credentials), sent as `Authorization: Bearer <token>`.',
    flows: { clientCredentials: { tokenUrl, scopes: SCOPE_DESCRIPTIONS } },
  });
  for (const route of ROUTES) registry.registerPath(toRouteConfig(route));
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Order platform API',
      version: '1.0.0',
      description: 'Storefronts place and follow orders; each order is a durable Temporal workflow running a saga across inventory, payments and shipping.',
    },
  });
}

const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  [SCOPES.write]: 'place orders, cancel your own',
  [SCOPES.read]: 'read your own orders',
  [SCOPES.review]: 'approve or reject orders held for review (never your own)',
  [SCOPES.operate]: 'read and cancel any order',
  [SCOPES.metrics]: 'read the Prometheus metrics',
  [SCOPES.webhooks]: 'register and manage your webhook endpoints',
};

/** /openapi.json and /docs. */
export function docsRouter(guards: Guards, { tokenUrl }: { tokenUrl: string }): Router {
  const document = openApiDocument({ tokenUrl });
  const router = Router();
  mount(router, guards, openApiRoute, async function openApi() {
    return { status: 200, body: document as z.input<(typeof openApiRoute)['responses'][200]['body']> };
  });
  // Express matches /docs/ here too: that request is the page's, and must meet the rate limit once, below.
  const exactly: RequestHandler = (req, _res, next) => next(req.path === docsRedirectRoute.path ? undefined : 'route');
  router.get(docsRedirectRoute.path, exactly, ...guards.public, (_req, res) => res.redirect(301, docsRoute.path));
  // The page and its assets answer GET (and HEAD) only; any other method falls through to 405.
  const readOnly: RequestHandler = (req, _res, next) => next(req.method === 'GET' || req.method === 'HEAD' ? undefined : 'router');
  router.use('/docs', readOnly, ...guards.public, swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'Order platform API' }));
  return router;
}
