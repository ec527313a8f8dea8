import type { Product } from '../contracts/inventory';
import { HttpError } from './errors';
import { productsSchema } from './schemas';

export interface CatalogueOptions {
  /** base URLs of the inventory pool's processes; each serves GET /products */
  urls: string[];
  /** how old a copy may be for SKU checks and GET /products */
  ttlMs: number;
  /** how long one read may take before the last good copy answers instead */
  timeoutMs: number;
}

// An unknown SKU refreshes the copy, and a failed read is retried, at most this often, so junk
// SKUs or an inventory that is down cannot turn every request into a call to inventory.
const RETRY_AFTER_MS = 1_000;

/**
 * The catalogue as the API sees it: read from the inventory service over HTTP (never its
 * database, never a workflow) and kept for `ttlMs`. SKU checks on POST /orders use a copy at most
 * that old, refreshed when a SKU is not in it; that is safe because a SKU that vanished in
 * between is still refused at reservation. When inventory is slow or away, the last good copy
 * keeps answering; only with no copy at all does a read fail (503).
 */
export function createCatalogue({ urls, ttlMs, timeoutMs }: CatalogueOptions) {
  let cached: { at: number; products: Product[]; bySku: Map<string, Product> } | undefined;
  let inflight: Promise<void> | undefined;
  let failed: { at: number; error: unknown } | undefined;
  let next = 0;

  async function read(): Promise<Product[]> {
    let lastError: unknown = new Error('no inventory process is configured');
    // Any process of the pool will do; start after the last one that answered, to spread the reads.
    for (let i = 0; i < urls.length; i++) {
      const url = urls[(next + i) % urls.length]!;
      try {
        const res = await fetch(`${url}/products`, { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`${url}/products answered ${res.status}`);
        const products = productsSchema.parse(await res.json());
        next = (next + i + 1) % urls.length;
        return products;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  function refresh(): Promise<void> {
    inflight ??= read()
      .then((products) => {
        cached = { at: Date.now(), products, bySku: new Map(products.map((p) => [p.sku, p])) };
        failed = undefined;
      })
      .catch((error: unknown) => {
        failed = { at: Date.now(), error };
        throw error;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  /** Makes the copy at most `maxAgeMs` old if inventory answers; keeps the last good one if it does not. */
  async function freshen(maxAgeMs: number): Promise<Product[]> {
    const now = Date.now();
    if (cached && now - cached.at <= maxAgeMs) return cached.products;
    if (!failed || now - failed.at >= RETRY_AFTER_MS) await refresh().catch(() => undefined);
    if (cached) return cached.products;
    const reason = failed?.error instanceof Error ? failed.error.message : String(failed?.error);
    throw new HttpError(503, 'unavailable', `the catalogue cannot be read right now (${reason})`);
  }

  /** The catalogue: the cached copy while it is fresh. */
  const list = (): Promise<Product[]> => freshen(ttlMs);

  /** The SKUs among `skus` that the catalogue does not have. */
  async function unknownSkus(skus: string[]): Promise<string[]> {
    const missing = () => skus.filter((sku) => !cached?.bySku.has(sku));
    await freshen(cached && missing().length > 0 ? Math.min(ttlMs, RETRY_AFTER_MS) : ttlMs);
    return missing();
  }

  /** A product from the last copy read (call `unknownSkus` first to refresh it). */
  const product = (sku: string): Product | undefined => cached?.bySku.get(sku);

  return { list, unknownSkus, product };
}
export type Catalogue = ReturnType<typeof createCatalogue>;
