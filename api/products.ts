import { Router } from 'express';
import type { Catalogue } from './catalogue';
import { defineRoute, mount, type Guards } from './routes';
import { errorSchema, productsSchema } from './schemas';

export const listProductsRoute = defineRoute({
  method: 'get',
  path: '/products',
  operationId: 'listProducts',
  tag: 'catalogue',
  access: 'public',
  summary: 'The catalogue, with prices in minor units and available stock',
  description:
    "Read from the inventory service's own HTTP endpoint and cached for CATALOGUE_TTL_MS; while inventory is slow or down the last good copy answers. Starts no workflow.",
  responses: {
    200: { description: 'the products', body: productsSchema },
    503: { description: 'inventory cannot be read and there is no earlier copy', body: errorSchema },
  },
});

export const productRoutes = [listProductsRoute];

export function productsRouter({ catalogue, guards }: { catalogue: Catalogue; guards: Guards }): Router {
  const router = Router();
  mount(router, guards, listProductsRoute, async function listProducts() {
    return { status: 200, body: await catalogue.list() };
  });
  return router;
}
