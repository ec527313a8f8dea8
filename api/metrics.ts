import { Router } from 'express';
import { z } from 'zod';
import { registry, renderMetrics } from '../lib/metrics';
import { SCOPES } from '../contracts/auth';
import { defineRoute, mount, type Guards } from './routes';

export const metricsRoute = defineRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'metrics',
  tag: 'operations',
  // Prometheus scrapes with a client of its own (its scrape config's oauth2 block gets the token).
  access: { scopes: [SCOPES.metrics, SCOPES.operate] },
  summary: "This process's Prometheus metrics",
  responses: { 200: { description: 'the Prometheus text format', body: z.string(), contentType: 'text/plain' } },
});

export const metricsRoutes = [metricsRoute];

export function metricsRouter(guards: Guards): Router {
  const router = Router();
  mount(router, guards, metricsRoute, async function metrics() {
    return { status: 200, body: await renderMetrics(), headers: { 'Content-Type': registry.contentType } };
  });
  return router;
}
