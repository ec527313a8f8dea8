import pg from 'pg';

/** The demo catalogue. Prices are minor units. Scarce and sold-out items make the failure paths easy to try. */
export const CATALOGUE = [
  { sku: 'TSHIRT-BLK-M', name: 'Black T-shirt (M)', price: 1999, currency: 'EUR', stock: 10_000 },
  { sku: 'HOODIE-GRY-L', name: 'Grey hoodie (L)', price: 4999, currency: 'EUR', stock: 5_000 },
  { sku: 'MUG-LOGO', name: 'Logo mug', price: 1299, currency: 'EUR', stock: 10_000 },
  { sku: 'CAP-NAVY', name: 'Navy cap', price: 1799, currency: 'EUR', stock: 5_000 },
  { sku: 'SOCKS-3PK', name: 'Socks, 3-pack', price: 999, currency: 'EUR', stock: 10_000 },
  { sku: 'POSTER-A2', name: 'A2 poster', price: 1499, currency: 'EUR', stock: 2_000 },
  { sku: 'VINYL-LTD', name: 'Limited edition vinyl', price: 3499, currency: 'EUR', stock: 5 },
  { sku: 'TOUR-TEE-SOLD-OUT', name: 'Tour T-shirt (sold out)', price: 2499, currency: 'EUR', stock: 0 },
] as const;

/** Adds the catalogue's products that are missing; existing stock is never reset. */
export async function seedInventory(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    let added = 0;
    for (const p of CATALOGUE) {
      const r = await client.query(
        `INSERT INTO products (sku, name, price, currency, stock, updated_at) VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (sku) DO NOTHING`,
        [p.sku, p.name, p.price, p.currency, p.stock],
      );
      added += r.rowCount ?? 0;
    }
    return added;
  } finally {
    await client.end();
  }
}
