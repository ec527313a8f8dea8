import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Product } from '../contracts/inventory';
import { ORDERS_TASK_QUEUE, catalogueWorkflowId } from '../contracts/orders';
import type { listProductsWorkflow } from '../workflows/catalogue';

/**
 * The catalogue as the API sees it: read through the inventory service (never its database).
 * SKU checks on POST /orders use a copy at most `ttlMs` old, refreshed once when a SKU is not in
 * it; that is safe because a SKU that vanished in between is still refused at reservation.
 */
export function createCatalogue(client: Client, ttlMs: number) {
  let cached: { at: number; bySku: Map<string, Product> } | undefined;
  let inflight: Promise<Product[]> | undefined;

  async function list(): Promise<Product[]> {
    inflight ??= client.workflow
      .execute<typeof listProductsWorkflow>('listProductsWorkflow', {
        taskQueue: ORDERS_TASK_QUEUE,
        workflowId: catalogueWorkflowId(randomUUID()),
        workflowExecutionTimeout: '15s',
      })
      .then((products) => {
        cached = { at: Date.now(), bySku: new Map(products.map((p) => [p.sku, p])) };
        return products;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  /** The SKUs among `skus` that the catalogue does not have. */
  async function unknownSkus(skus: string[]): Promise<string[]> {
    const missing = () => skus.filter((sku) => !cached?.bySku.has(sku));
    const age = cached ? Date.now() - cached.at : Infinity;
    // An unknown SKU refreshes the copy, but at most once a second, so junk SKUs cannot flood inventory.
    if (age > ttlMs || (missing().length > 0 && age > 1000)) {
      try {
        await list();
      } catch (err) {
        // Inventory slow or away: an older copy still validates (reservation checks again), none fails.
        if (!cached) throw err;
      }
    }
    return missing();
  }

  /** A product from the last copy read (call `unknownSkus` first to refresh it). */
  const product = (sku: string): Product | undefined => cached?.bySku.get(sku);

  return { list, unknownSkus, product };
}
export type Catalogue = ReturnType<typeof createCatalogue>;
