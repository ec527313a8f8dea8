import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { eventIdOf, isEmailed, topicOf, webhookData, type OrderEmailInput, type OrderEventRecord, type OrderEventsPage } from '../../contracts/notifications';
import type { OrderEventTopic } from '../../contracts/orders';
import type { Pool } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import { orderEventsRelayed } from '../../lib/metrics';

/**
 * The notifications relay: it follows the orders service's event log (its outbox, read through the
 * orders pool's `GET /events`) and hands each event on: into the queue of every webhook endpoint of
 * the order's client that subscribed to it (then a signal wakes the endpoint's workflow), and to a
 * customer-email workflow when the customer gave an address. One process relays at a time (a
 * PostgreSQL advisory lock, held by a connection of its own: if the process dies, the lock goes with
 * its connection and another takes over); the others wait their turn.
 *
 * A log position is not a commit order: an event can commit after one with a higher position, and a
 * reader that had moved past it would never see it. So the relay remembers the positions it skipped
 * (gaps), reads them again until they appear or are older than `gapTimeoutMs` (a position taken by a
 * statement that was rolled back, or by a retried insert that found its event there, is never
 * filled), and keeps its saved place below the oldest open gap. Everything it does is idempotent
 * (a unique key per endpoint and event, a workflow ID per email), so reading a position twice after
 * a crash changes nothing.
 */
export interface RelaySettings {
  pollIntervalMs: number;
  /** events read at a time */
  batch: number;
  gapTimeoutMs: number;
  /** where a relay with no saved place starts: the log's beginning, or its current end */
  startAt: 'beginning' | 'end';
  /** whether customer emails are sent (SMTP_URL is set) */
  emails: boolean;
}

/** What the relay asks of Temporal; the pool wires these to its client (tests, to whatever they like). */
export interface RelayTemporal {
  /** wakes the endpoint's workflow (signal-with-start: it is started if it is not running) */
  wakeEndpoint: (endpoint: { id: string; owner: string }) => Promise<void>;
  /** starts the email workflow of one event; starting it again is a no-op */
  startEmail: (input: OrderEmailInput) => Promise<void>;
}

export interface RelayDeps {
  pool: Pool;
  /** the notifications database, for the relay's own connection (the lock) */
  databaseUrl: string;
  /** one page of the orders service's log after a position */
  readEvents: (after: bigint, limit: number) => Promise<OrderEventsPage>;
  temporal: RelayTemporal;
  settings: RelaySettings;
  log: Logger;
}

const CURSOR = 'order-events';
// Any constant will do; it names the relay's lock among the database's advisory locks.
const RELAY_LOCK = 7_300_451_201;
/** How often a process that does not hold the lock asks for it again. */
const STANDBY_MS = 1_000;
/** How often a leading relay with nothing to save checks that its lock's connection is alive. */
const LOCK_CHECK_MS = 10_000;
/** Email workflows started at once. */
const START_CONCURRENCY = 8;

/** The relay's own connection (its lock) failed: it may no longer be the only relay. */
class LockLost extends Error {
  constructor(cause: unknown) {
    super(`the relay's lock connection failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

interface Gap {
  from: bigint;
  to: bigint;
  /** when it was first seen open (ms) */
  since: number;
}

interface Endpoint {
  id: string;
  owner: string;
  events: OrderEventTopic[];
  status: string;
}

/** Removes position `id` from the gaps (splitting the one it falls in). */
function fill(gaps: Gap[], id: bigint): Gap[] {
  return gaps.flatMap((g) => {
    if (id < g.from || id > g.to) return [g];
    return [...(id > g.from ? [{ ...g, to: id - 1n }] : []), ...(id < g.to ? [{ ...g, from: id + 1n }] : [])];
  });
}
const inGaps = (gaps: Gap[], id: bigint) => gaps.some((g) => id >= g.from && id <= g.to);

/** HTTP reads of the orders pool's `/events`, trying each of its processes in turn. */
export function orderEventsReader(urls: string[], timeoutMs = 5_000) {
  let next = 0;
  return async (after: bigint, limit: number): Promise<OrderEventsPage> => {
    let last: unknown;
    for (let i = 0; i < urls.length; i++) {
      const url = urls[(next + i) % urls.length]!;
      try {
        const res = await fetch(`${url}/events?after=${after}&limit=${limit}`, { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`${url}/events answered ${res.status}`);
        next = (next + i) % urls.length;
        return (await res.json()) as OrderEventsPage;
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no orders process answered /events: ${last instanceof Error ? last.message : String(last)}`);
  };
}

export function createRelay({ pool, databaseUrl, readEvents, temporal, settings, log }: RelayDeps) {
  /** Hands a set of events on, in log order. Throws when any part fails; every part is safe to do again. */
  async function handOn(events: OrderEventRecord[]): Promise<void> {
    if (events.length === 0) return;
    events.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    const { rows: endpoints } = await pool.query<Endpoint>(`SELECT id, owner, events, status FROM webhook_endpoints WHERE deleted_at IS NULL`);
    const byOwner = new Map<string, Endpoint[]>();
    for (const e of endpoints) byOwner.set(e.owner, [...(byOwner.get(e.owner) ?? []), e]);

    const queued: Array<{ endpointId: string; eventId: string; orderId: string; type: string; payload: string }> = [];
    const wake = new Map<string, Endpoint>();
    const emails: OrderEmailInput[] = [];
    for (const event of events) {
      const topic = topicOf(event.type);
      if (!topic) continue;
      const eventId = eventIdOf(event.id);
      for (const endpoint of byOwner.get(event.placedBy) ?? []) {
        if (!endpoint.events.includes(topic)) continue;
        const payload = JSON.stringify({ type: topic, timestamp: event.at, data: webhookData(topic, event.orderId, event.data) });
        queued.push({ endpointId: endpoint.id, eventId, orderId: event.orderId, type: topic, payload });
        // A disabled endpoint's events wait in its queue; its workflow is woken when it is enabled.
        if (endpoint.status === 'ENABLED') wake.set(endpoint.id, endpoint);
      }
      if (settings.emails && isEmailed(topic) && event.email) {
        emails.push({ eventId, orderId: event.orderId, topic, to: event.email, at: event.at, data: event.data ?? {} });
      }
    }
    if (queued.length > 0) {
      // In log order, so each endpoint's queue (ordered by its own id) is in the order the events happened.
      await pool.query(
        `INSERT INTO webhook_messages (endpoint_id, event_id, order_id, type, payload)
         SELECT endpoint_id, event_id, order_id, type, payload
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[]) WITH ORDINALITY AS m(endpoint_id, event_id, order_id, type, payload, n)
         ORDER BY n
         ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
        [queued.map((q) => q.endpointId), queued.map((q) => q.eventId), queued.map((q) => q.orderId), queued.map((q) => q.type), queued.map((q) => q.payload)],
      );
    }
    for (let i = 0; i < emails.length; i += START_CONCURRENCY) {
      await Promise.all(emails.slice(i, i + START_CONCURRENCY).map((email) => temporal.startEmail(email)));
    }
    await Promise.all([...wake.values()].map((endpoint) => temporal.wakeEndpoint(endpoint)));
    orderEventsRelayed.inc(events.length);
  }

  /** Every enabled endpoint with events waiting: woken when this process takes over, in case the last relay died between queueing and waking. */
  async function wakeWaiting(): Promise<number> {
    const { rows } = await pool.query<{ id: string; owner: string }>(
      `SELECT e.id, e.owner FROM webhook_endpoints e
       WHERE e.deleted_at IS NULL AND e.status = 'ENABLED' AND EXISTS (SELECT 1 FROM webhook_messages m WHERE m.endpoint_id = e.id AND m.state = 'PENDING')`,
    );
    await Promise.all(rows.map((endpoint) => temporal.wakeEndpoint(endpoint)));
    return rows.length;
  }

  /** The relay's place in the log, and its memory of what it skipped. */
  class Follower {
    gaps: Gap[] = [];
    constructor(
      private readonly lock: pg.Client,
      public maxSeen: bigint,
      private saved: bigint,
    ) {}

    get settled(): bigint {
      return this.gaps.length > 0 ? this.gaps[0]!.from - 1n : this.maxSeen;
    }

    /** One round: positions skipped before, then what is new. Returns how many events it handed on. */
    async poll(): Promise<number> {
      const now = Date.now();
      const batch: OrderEventRecord[] = [];
      let gaps = this.gaps;
      // 1. the open gaps, read from the first, as few pages as cover them
      for (let i = 0; i < this.gaps.length;) {
        const start = this.gaps[i]!.from;
        const span = this.gaps[this.gaps.length - 1]!.to - start + 1n;
        const limit = Number(span < BigInt(settings.batch) ? span : BigInt(settings.batch));
        const page = await readEvents(start - 1n, limit);
        for (const event of page.events) {
          const id = BigInt(event.id);
          if (inGaps(gaps, id)) {
            batch.push(event);
            gaps = fill(gaps, id);
          }
        }
        const covered = page.events.length < limit ? this.maxSeen : BigInt(page.events.at(-1)!.id);
        while (i < this.gaps.length && this.gaps[i]!.from <= covered) i++;
      }
      // 2. what is new, noting any position skipped on the way
      const page = await readEvents(this.maxSeen, settings.batch);
      let previous = this.maxSeen;
      for (const event of page.events) {
        const id = BigInt(event.id);
        if (id > previous + 1n) gaps = [...gaps, { from: previous + 1n, to: id - 1n, since: now }];
        batch.push(event);
        previous = id;
      }
      // 3. on: if this throws, nothing above is kept and the same positions are read next time
      await handOn(batch);
      this.maxSeen = previous;
      const expired = gaps.filter((g) => now - g.since >= settings.gapTimeoutMs);
      for (const g of expired) log.debug({ from: String(g.from), to: String(g.to) }, 'order event positions never filled: skipped');
      this.gaps = gaps.filter((g) => now - g.since < settings.gapTimeoutMs);
      await this.save();
      return batch.length;
    }

    /** Saves the settled place, on the lock's own connection: a relay that lost its lock cannot write. */
    async save(): Promise<void> {
      const settled = this.settled;
      if (settled === this.saved) return;
      try {
        await this.lock.query(`UPDATE relay_cursors SET position = $2, updated_at = now() WHERE name = $1`, [CURSOR, String(settled)]);
      } catch (err) {
        throw new LockLost(err);
      }
      this.saved = settled;
    }
  }

  /** The saved place, or a first one (the log's beginning, or its end). */
  async function startingPlace(lock: pg.Client): Promise<bigint> {
    const { rows } = await lock.query<{ position: string }>(`SELECT position::text FROM relay_cursors WHERE name = $1`, [CURSOR]);
    if (rows[0]) return BigInt(rows[0].position);
    const first = settings.startAt === 'end' ? BigInt((await readEvents(0n, 1)).head) : 0n;
    await lock.query(`INSERT INTO relay_cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [CURSOR, String(first)]);
    log.info({ position: String(first), startAt: settings.startAt }, 'notifications relay starts following the order event log');
    return first;
  }

  /** Follows the log while this process holds the lock; returns when the signal aborts, throws when the lock's connection fails. */
  async function lead(lock: pg.Client, signal: AbortSignal): Promise<void> {
    const place = await startingPlace(lock);
    const follower = new Follower(lock, place, place);
    const woken = await wakeWaiting();
    log.info({ position: String(place), woken }, 'notifications relay leads');
    let failing = false;
    let checked = Date.now();
    while (!signal.aborted) {
      let handed = 0;
      try {
        // A quiet log saves nothing for a while: make sure now and then that the lock is still this process's.
        if (Date.now() - checked > LOCK_CHECK_MS) {
          await lock.query('SELECT 1').catch((err: unknown) => Promise.reject(new LockLost(err)));
          checked = Date.now();
        }
        handed = await follower.poll();
        if (failing) log.info('notifications relay reaches the orders service again');
        failing = false;
      } catch (err) {
        // Without its lock's connection this process may no longer be the only relay: stop, and queue for the lock again.
        if (err instanceof LockLost) throw err;
        if (!failing) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'notifications relay poll failed; trying again');
        failing = true;
      }
      if (handed === 0) await sleep(settings.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Runs until the signal aborts: waits for the lock on a connection of its own, leads while it holds it, and starts over if that connection fails. */
  async function run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const lock = new pg.Client({ connectionString: databaseUrl, application_name: 'notifications-relay' });
      // An error on an idle connection is reported here; the next query on it then fails.
      lock.on('error', () => undefined);
      try {
        await lock.connect();
        while (!signal.aborted) {
          const { rows } = await lock.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked`, [RELAY_LOCK]);
          if (rows[0]?.locked) {
            await lead(lock, signal);
            break;
          }
          await sleep(STANDBY_MS, undefined, { signal }).catch(() => undefined);
        }
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'notifications relay lost its database connection; queueing for the lock again');
        await sleep(STANDBY_MS, undefined, { signal }).catch(() => undefined);
      } finally {
        await lock.end().catch(() => undefined);
      }
    }
  }

  return { run, handOn, wakeWaiting };
}
