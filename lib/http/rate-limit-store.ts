import type { IncrementResponse, Options, Store } from 'express-rate-limit';
import type { Pool } from '../db';

/**
 * express-rate-limit's counters in PostgreSQL, so every replica of a service counts the same
 * client against the same limit. One statement per request on the pool the service already has
 * (the pools are bounded: a rate limiter opening its own would add connections per replica).
 * Windows are fixed and timed by the database's clock, so replicas with drifting clocks agree.
 * Written by hand: the PostgreSQL stores published for express-rate-limit open pools of their own.
 *
 * The table (`key text primary key, window_start timestamptz, hits int`) comes with the service's
 * migrations.
 */
export class PostgresRateLimitStore implements Store {
  private windowMs = 60_000;
  private lastSweep = 0;
  /** keys from every replica are shared: express-rate-limit's single-instance checks do not apply */
  readonly localKeys = false;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
    readonly prefix = '',
  ) {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table name: ${table}`);
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async increment(key: string): Promise<IncrementResponse> {
    const seconds = this.windowMs / 1000;
    const { rows } = await this.pool.query<{ hits: number; reset: Date }>(
      `WITH now AS (SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2) AS window_start)
       INSERT INTO ${this.table} AS r (key, window_start, hits) SELECT $1, window_start, 1 FROM now
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + 1 ELSE 1 END,
         window_start = EXCLUDED.window_start
       RETURNING hits, window_start + make_interval(secs => $2) AS reset`,
      [this.prefix + key, seconds],
    );
    this.sweepNowAndThen();
    return { totalHits: rows[0]!.hits, resetTime: rows[0]!.reset };
  }

  async decrement(key: string): Promise<void> {
    await this.pool.query(`UPDATE ${this.table} SET hits = greatest(hits - 1, 0) WHERE key = $1`, [this.prefix + key]);
  }

  async resetKey(key: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.table} WHERE key = $1`, [this.prefix + key]);
  }

  /** Counters of windows long past are dropped at most once a minute, so the table holds only recent callers. */
  private sweepNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    void this.pool
      .query(`DELETE FROM ${this.table} WHERE window_start < clock_timestamp() - make_interval(secs => $1)`, [(this.windowMs / 1000) * 2])
      .catch(() => undefined);
  }
}
