import { Router } from 'express';
import { z } from 'zod';
import { registry, renderMetrics } from '../lib/metrics';
import { defineRoute, mount } from './routes';

export const metricsRoute = defineRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'metrics',
  tag: 'operations',
  summary: "This process's Prometheus metrics",
  responses: { 200: { description: 'the Prometheus text format', body: z.string(), contentType: 'text/plain' } },
});

export const metricsRoutes = [metricsRoute];

export function metricsRouter(): Router {
  const router = Router();
  mount(router, metricsRoute, async function metrics() {
    return { status: 200, body: await renderMetrics(), headers: { 'Content-Type': registry.contentType } };
  });
  return router;
}
