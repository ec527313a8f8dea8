import { createHash } from 'node:crypto';
import type pg from 'pg';

/**
 * The simulated outside world (payment provider and carrier) keeps its ledger in a database of
 * its own, "sandbox", shared by every worker process the way a real provider is shared. Like a
 * real provider it remembers each idempotency key and answers a repeat with the first answer.
 */
export const SANDBOX_SCHEMA = `
CREATE TABLE IF NOT EXISTS sim_operations (
  idempotency_key TEXT PRIMARY KEY,
  system TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT,
  amount INTEGER,
  response JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sim_authorisations (
  id TEXT PRIMARY KEY,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  captured INTEGER NOT NULL DEFAULT 0,
  refunded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sim_shipments (
  ref TEXT PRIMARY KEY,
  country TEXT NOT NULL,
  status TEXT NOT NULL,
  pickup_at TIMESTAMPTZ NOT NULL,
  pickup_notified_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS sim_shipments_due ON sim_shipments (pickup_at) WHERE status = 'BOOKED' AND pickup_notified_at IS NULL;
`;

export const deterministicId = (prefix: string, key: string): string =>
  `${prefix}_${createHash('sha256').update(key).digest('hex').slice(0, 20)}`;

export interface LedgerEntry<R> {
  kind: string;
  subject?: string;
  amount?: number;
  response: R;
}

/**
 * Runs `apply` at most once per key: the first call's answer is stored with the effect in one
 * transaction, and every later call with that key gets the stored answer back.
 */
export async function onceByKey<R>(
  pool: pg.Pool,
  system: string,
  key: string,
  apply: (client: pg.PoolClient) => Promise<LedgerEntry<R>>,
): Promise<R> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
    const seen = await client.query<{ response: R }>('SELECT response FROM sim_operations WHERE idempotency_key = $1', [key]);
    if (seen.rows[0]) {
      await client.query('COMMIT');
      return seen.rows[0].response;
    }
    const entry = await apply(client);
    await client.query(
      'INSERT INTO sim_operations (idempotency_key, system, kind, subject, amount, response) VALUES ($1, $2, $3, $4, $5, $6)',
      [key, system, entry.kind, entry.subject ?? null, entry.amount ?? null, JSON.stringify(entry.response)],
    );
    await client.query('COMMIT');
    return entry.response;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export async function lookupByKey<R>(pool: pg.Pool, key: string): Promise<R | undefined> {
  const found = await pool.query<{ response: R }>('SELECT response FROM sim_operations WHERE idempotency_key = $1', [key]);
  return found.rows[0]?.response;
}

export async function ensureSandboxSchema(pool: pg.Pool): Promise<void> {
  await pool.query(SANDBOX_SCHEMA);
}
