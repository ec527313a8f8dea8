import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { z } from 'zod';

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

export const deterministicId = (prefix: string, key: string): string => `${prefix}_${createHash('sha256').update(key).digest('hex').slice(0, 20)}`;

export interface LedgerEntry<R> {
  kind: string;
  subject?: string;
  amount?: number;
  response: R;
}

/**
 * What can go wrong between us and the outside world, injected on purpose (all off by default).
 * Decisions come from a hash of the seed, the key and how often this process has called with
 * it, so a run is repeatable.
 */
export interface FaultConfig {
  /** added to every call */
  latencyMs: number;
  /** the call fails before the outside world does anything */
  failureRate: number;
  /** the call hangs for `timeoutMs`, then fails, and nothing was done */
  timeoutRate: number;
  timeoutMs: number;
  /** the call is applied but its answer is lost: the caller sees an error */
  unknownOutcomeRate: number;
  seed: number;
}

export const NO_FAULTS: FaultConfig = { latencyMs: 0, failureRate: 0, timeoutRate: 0, timeoutMs: 2000, unknownOutcomeRate: 0, seed: 1 };

export class SimulatedFault extends Error {
  constructor(
    readonly fault: 'unavailable' | 'timeout' | 'answer-lost',
    system: string,
    key: string,
  ) {
    super(`${system}: ${fault} (simulated) for ${key}`);
    this.name = 'SimulatedFault';
  }
}

function faultRoller({ seed }: FaultConfig) {
  const calls = new Map<string, number>();
  return (key: string, what: string): number => {
    const n = (calls.get(`${what}:${key}`) ?? 0) + 1;
    calls.set(`${what}:${key}`, n);
    return createHash('sha256').update(`${seed}:${what}:${key}:${n}`).digest().readUInt32BE(0) / 0x1_0000_0000;
  };
}

/**
 * The ledger of one simulated system. `once` runs an effect at most once per key: the first
 * call's answer is stored with the effect in one transaction, and every later call with that
 * key gets the stored answer back — what a real provider's idempotency keys promise.
 */
export function createLedger(pool: pg.Pool, system: string, faults: FaultConfig = NO_FAULTS) {
  const roll = faultRoller(faults);

  /** What can happen to a call before the system acts on it: latency, an outage, a hang. */
  async function reach(key: string): Promise<void> {
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (roll(key, 'failure') < faults.failureRate) throw new SimulatedFault('unavailable', system, key);
    if (roll(key, 'timeout') < faults.timeoutRate) {
      await sleep(faults.timeoutMs);
      throw new SimulatedFault('timeout', system, key);
    }
  }

  async function once<R>(key: string, apply: (client: pg.PoolClient) => Promise<LedgerEntry<R>>): Promise<R> {
    await reach(key);
    const client = await pool.connect();
    let response: R;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
      const seen = await client.query<{ response: R }>('SELECT response FROM sim_operations WHERE idempotency_key = $1', [key]);
      if (seen.rows[0]) {
        response = seen.rows[0].response;
      } else {
        const entry = await apply(client);
        await client.query('INSERT INTO sim_operations (idempotency_key, system, kind, subject, amount, response) VALUES ($1, $2, $3, $4, $5, $6)', [
          key,
          system,
          entry.kind,
          entry.subject ?? null,
          entry.amount ?? null,
          JSON.stringify(entry.response),
        ]);
        response = entry.response;
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    if (roll(key, 'answer') < faults.unknownOutcomeRate) throw new SimulatedFault('answer-lost', system, key);
    return response;
  }

  /** What the system did with a key, if anything. */
  async function lookup<R>(key: string): Promise<R | undefined> {
    const found = await pool.query<{ response: R }>('SELECT response FROM sim_operations WHERE idempotency_key = $1', [key]);
    return found.rows[0]?.response;
  }

  /** A question that changes nothing (a status lookup): it can be slow or fail like any call, and is safe to repeat. */
  async function read<R>(what: string, query: (db: pg.Pool) => Promise<R>): Promise<R> {
    await reach(what);
    return query(pool);
  }

  return { once, lookup, read };
}

export async function ensureSandboxSchema(pool: pg.Pool): Promise<void> {
  await pool.query(SANDBOX_SCHEMA);
}

/** The fault-injection settings of a process that talks to a simulated system. */
export const faultEnv = {
  SIM_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  SIM_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
  SIM_TIMEOUT_RATE: z.coerce.number().min(0).max(1).default(0),
  SIM_TIMEOUT_MS: z.coerce.number().int().min(0).default(2000),
  SIM_UNKNOWN_OUTCOME_RATE: z.coerce.number().min(0).max(1).default(0),
  SIM_SEED: z.coerce.number().int().default(1),
};

export const faultsFrom = (c: { [K in keyof typeof faultEnv]: number }): FaultConfig => ({
  latencyMs: c.SIM_LATENCY_MS,
  failureRate: c.SIM_FAILURE_RATE,
  timeoutRate: c.SIM_TIMEOUT_RATE,
  timeoutMs: c.SIM_TIMEOUT_MS,
  unknownOutcomeRate: c.SIM_UNKNOWN_OUTCOME_RATE,
  seed: c.SIM_SEED,
});
