import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCatalogue } from '../../api/catalogue';
import { HttpError } from '../../api/errors';
import type { Product } from '../../contracts/inventory';

/**
 * The API's catalogue against a stand-in for the inventory pool's GET /products: what it reads,
 * how often, and what it answers while inventory is slow or gone.
 */
const mug: Product = { sku: 'MUG-LOGO', name: 'Mug', price: 1299, currency: 'EUR', available: 10 };
const cap: Product = { sku: 'CAP-NAVY', name: 'Navy cap', price: 1799, currency: 'EUR', available: 4 };

interface FakeInventory {
  url: string;
  reads: number;
  products: Product[];
  /** how long each answer takes */
  delayMs: number;
  close: () => Promise<void>;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function fakeInventory(products: Product[]): Promise<FakeInventory> {
  const fake: FakeInventory = { url: '', reads: 0, products, delayMs: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    if (req.url !== '/products') return void res.writeHead(404).end();
    fake.reads++;
    setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(fake.products)), fake.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the catalogue read from the inventory pool', () => {
  it('answers from its copy while it is fresh and reads again once it is older than the TTL', async () => {
    const inventory = await fakeInventory([mug]);
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 200, timeoutMs: 1000 });
    expect(await catalogue.list()).toEqual([mug]);
    expect(await catalogue.list()).toEqual([mug]);
    expect(await catalogue.unknownSkus(['MUG-LOGO'])).toEqual([]);
    expect(inventory.reads).toBe(1);
    inventory.products = [mug, cap];
    await sleep(250);
    expect(await catalogue.list()).toEqual([mug, cap]);
    expect(inventory.reads).toBe(2);
  });

  it('reads once for concurrent requests', async () => {
    const inventory = await fakeInventory([mug]);
    inventory.delayMs = 50;
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 5000, timeoutMs: 1000 });
    await Promise.all(Array.from({ length: 10 }, () => catalogue.list()));
    expect(inventory.reads).toBe(1);
  });

  it('refreshes for an unknown SKU at most once a second', async () => {
    const inventory = await fakeInventory([mug]);
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 60_000, timeoutMs: 1000 });
    expect(await catalogue.unknownSkus(['NOPE'])).toEqual(['NOPE']);
    expect(await catalogue.unknownSkus(['NOPE'])).toEqual(['NOPE']);
    expect(inventory.reads).toBe(1);
    inventory.products = [mug, cap];
    expect(await catalogue.unknownSkus(['CAP-NAVY'])).toEqual(['CAP-NAVY']);
    await sleep(1050);
    expect(await catalogue.unknownSkus(['CAP-NAVY'])).toEqual([]);
    expect(catalogue.product('CAP-NAVY')).toEqual(cap);
    expect(inventory.reads).toBe(2);
  });

  it('keeps serving the last good copy when the inventory endpoint is down', async () => {
    const inventory = await fakeInventory([mug]);
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 50, timeoutMs: 500 });
    expect(await catalogue.list()).toEqual([mug]);
    await inventory.close();
    await sleep(100);
    expect(await catalogue.list()).toEqual([mug]);
    expect(await catalogue.unknownSkus(['MUG-LOGO', 'NOPE'])).toEqual(['NOPE']);
  });

  it('keeps serving the last good copy when inventory is slower than the timeout, without waiting on every request', async () => {
    const inventory = await fakeInventory([mug]);
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 50, timeoutMs: 200 });
    await catalogue.list();
    inventory.delayMs = 2_000;
    inventory.products = [mug, cap];
    await sleep(100);
    const started = Date.now();
    expect(await catalogue.list()).toEqual([mug]);
    expect(Date.now() - started).toBeLessThan(1_000);
    // Right after a failed read the copy answers at once; inventory is asked again a second later.
    const again = Date.now();
    expect(await catalogue.list()).toEqual([mug]);
    expect(Date.now() - again).toBeLessThan(100);
    expect(inventory.reads).toBe(2);
  });

  it('answers 503 when it has never read the catalogue and inventory is down', async () => {
    const inventory = await fakeInventory([mug]);
    await inventory.close();
    const catalogue = createCatalogue({ urls: [inventory.url], ttlMs: 5000, timeoutMs: 500 });
    const failure = await catalogue.list().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(HttpError);
    expect(failure).toMatchObject({ status: 503, code: 'unavailable' });
    await expect(catalogue.unknownSkus(['MUG-LOGO'])).rejects.toMatchObject({ status: 503 });
  });

  it('reads from another inventory process when one is down, and spreads its reads over them', async () => {
    const [a, b] = await Promise.all([fakeInventory([mug]), fakeInventory([mug])]);
    const catalogue = createCatalogue({ urls: [a.url, b.url], ttlMs: 0, timeoutMs: 500 });
    await catalogue.list();
    await sleep(5);
    await catalogue.list();
    expect([a.reads, b.reads]).toEqual([1, 1]);
    await a.close();
    await sleep(5);
    expect(await catalogue.list()).toEqual([mug]);
    await sleep(5);
    expect(await catalogue.list()).toEqual([mug]);
    expect(b.reads).toBe(3);
  });
});
