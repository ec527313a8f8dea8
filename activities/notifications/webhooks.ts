import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { Webhook } from 'standardwebhooks';
import {
  type CreateWebhookEndpointRequest,
  type CreatedWebhookEndpoint,
  type DeliveryRound,
  NotificationErrorType,
  type ReplayedWebhookEvent,
  type RotatedWebhookSecret,
  type WebhookEndpointView,
} from '../../contracts/notifications';
import type { OrderEventTopic } from '../../contracts/orders';
import type { Pool } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import { webhookDeliveries, webhookDeliveryDuration, webhookEndpointsDisabled } from '../../lib/metrics';
import type { Keyring } from '../../lib/temporal/codec';
import { seal, unseal } from '../../lib/temporal/sealed';
import { keepAlive } from './keep-alive';
import { guardedLookup, webhookUrlProblem, type Resolver, type TargetPolicy } from './targets';

/** How webhooks are sent, retried and given up on (the notifications pool's WEBHOOK_* settings). */
export interface WebhookSettings extends TargetPolicy {
  /** one delivery's deadline: connect, send, and the answer's status line */
  requestTimeoutMs: number;
  /** the first retry of an event waits this, then twice as long each time, up to `retryMaxIntervalMs` (±20 % jitter) */
  retryInitialMs: number;
  retryMaxIntervalMs: number;
  /** an event failing for this long since its first attempt is given up (EXPIRED; a replay brings it back) */
  retryForMs: number;
  /** the endpoint is disabled after this many failed attempts in a row (across its events)… */
  disableAfterFailures: number;
  /** …once they have gone on for at least this long */
  disableAfterMs: number;
  /** after a rotation, deliveries are signed with the previous secret too, for this long */
  secretGraceMs: number;
}

export interface WebhookDeps {
  pool: Pool;
  keyring: Keyring;
  settings: WebhookSettings;
  log: Logger;
  /** DNS for the delivery-time address check (tests resolve names their own way) */
  resolve?: Resolver;
}

/** One delivery call sends events until this much time has gone by, then hands back to its workflow. */
const ROUND_BUDGET_MS = 20_000;
/** Waiting events read at a time; the endpoint (its secrets, its status) is read again before each page. */
const PAGE = 25;
/** What is read of an answer: its status is what counts. */
const MAX_ANSWER_BYTES = 64 * 1024;
const USER_AGENT = 'order-platform-webhooks/1 (Standard Webhooks)';

// Connections are kept for the next event to the same endpoint; an address is checked when a connection is made.
const agents = { 'http:': new http.Agent({ keepAlive: true, maxSockets: 8 }), 'https:': new https.Agent({ keepAlive: true, maxSockets: 8 }) };

interface EndpointRow {
  id: string;
  owner: string;
  url: string;
  events: OrderEventTopic[];
  status: 'ENABLED' | 'DISABLED';
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
  deleted_at: Date | null;
  created_at: Date;
}

interface MessageRow {
  id: string;
  event_id: string;
  order_id: string;
  type: string;
  payload: string;
  attempts: number;
}

/** What one attempt came to. */
interface Attempt {
  statusCode?: number;
  error?: string;
  durationMs: number;
}

const ENDPOINT_COLUMNS = `id, owner, url, events, status, secret, previous_secret, previous_secret_expires_at, disabled_at, disabled_reason, deleted_at, created_at`;

export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** An endpoint as its client sees it: never its secrets. */
export function endpointView(row: EndpointRow, now = new Date()): WebhookEndpointView {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    ...(row.status === 'DISABLED' && row.disabled_at ? { disabledAt: row.disabled_at.toISOString(), disabledReason: row.disabled_reason ?? '' } : {}),
    ...(row.previous_secret_expires_at && row.previous_secret_expires_at > now
      ? { previousSecretExpiresAt: row.previous_secret_expires_at.toISOString() }
      : {}),
  };
}

const notFound = (endpointId: string) =>
  ApplicationFailure.create({ type: NotificationErrorType.EndpointNotFound, message: `no webhook endpoint ${endpointId}`, nonRetryable: true });

/** A run of SQL statements on one connection, committed together. */
async function inTransaction<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The delay before retrying an event that has failed `attempts` times: exponential, capped, jittered so endpoints that failed together do not retry together. */
export function retryDelay(attempts: number, { retryInitialMs, retryMaxIntervalMs }: Pick<WebhookSettings, 'retryInitialMs' | 'retryMaxIntervalMs'>): number {
  const base = Math.min(retryMaxIntervalMs, retryInitialMs * 2 ** Math.max(0, attempts - 1));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}

/** An error's short, loggable description: its code, never a payload. */
function describe(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || e?.code === 'ABORT_ERR') return `timed out after ${timeoutMs} ms`;
  if (e?.code === 'ERR_REFUSED_TARGET') return e.message ?? 'refused';
  return e?.code ?? e?.message ?? String(err);
}

/**
 * The webhooks side of the notifications service: its endpoints (made, rotated, enabled, deleted
 * and replayed through their workflow's updates) and the delivery of their waiting events.
 */
export function createWebhookActivities({ pool, keyring, settings, log, resolve }: WebhookDeps) {
  const lookup = guardedLookup(settings, resolve);

  async function readEndpoint(db: Pick<pg.Pool, 'query'>, endpointId: string): Promise<EndpointRow | undefined> {
    const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1`, [endpointId]);
    return rows[0];
  }

  async function liveEndpoint(endpointId: string): Promise<EndpointRow> {
    const row = await readEndpoint(pool, endpointId);
    if (!row || row.deleted_at) throw notFound(endpointId);
    return row;
  }

  /** The webhook-signature header: one `v1,` signature per secret in force (the previous one too, during a rotation's grace). */
  function signatures(endpoint: EndpointRow, eventId: string, at: Date, payload: string): string {
    const secrets = [endpoint.secret];
    if (endpoint.previous_secret && endpoint.previous_secret_expires_at && endpoint.previous_secret_expires_at > at) secrets.push(endpoint.previous_secret);
    return secrets.map((sealed) => new Webhook(unseal(keyring, sealed, 'webhook-secret')).sign(eventId, at, payload)).join(' ');
  }

  /** One POST of one event: the status of the answer, or what went wrong. A connection kept from before that turns out closed is tried once more, fresh. */
  async function post(endpoint: EndpointRow, message: MessageRow): Promise<Attempt> {
    const started = performance.now();
    const finished = (outcome: Omit<Attempt, 'durationMs'>): Attempt => ({ ...outcome, durationMs: Math.round(performance.now() - started) });
    const problem = webhookUrlProblem(endpoint.url, settings);
    if (problem) return finished({ error: `refused: the URL ${problem}` });
    const target = new URL(endpoint.url);
    const now = new Date();
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(message.payload)),
      'user-agent': USER_AGENT,
      'webhook-id': message.event_id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signatures(endpoint, message.event_id, now, message.payload),
    };
    const signal = AbortSignal.timeout(settings.requestTimeoutMs);
    const once = (fresh: boolean) =>
      new Promise<{ statusCode?: number; error?: unknown; reused: boolean }>((settle) => {
        const request = (target.protocol === 'https:' ? https : http).request(
          target,
          { method: 'POST', headers, lookup, signal, agent: fresh ? false : agents[target.protocol as 'http:' | 'https:'] },
          (answer) => {
            let read = 0;
            answer.on('data', (chunk: Buffer) => {
              read += chunk.length;
              if (read > MAX_ANSWER_BYTES) answer.destroy();
            });
            answer.on('error', () => undefined);
            settle({ statusCode: answer.statusCode, reused: request.reusedSocket });
          },
        );
        request.on('error', (error) => settle({ error, reused: request.reusedSocket }));
        request.end(message.payload);
      });
    let result = await once(false);
    if (result.error && result.reused && !signal.aborted) result = await once(true);
    if (result.error) return finished({ error: describe(result.error, settings.requestTimeoutMs) });
    return finished({ statusCode: result.statusCode });
  }

  /** Writes one attempt: the delivery log, the event's state and the endpoint's run of failures, together; disables the endpoint when that run has gone on too long. */
  async function record(client: pg.PoolClient, endpoint: EndpointRow, message: MessageRow, attempt: Attempt) {
    const ok = attempt.statusCode !== undefined && attempt.statusCode >= 200 && attempt.statusCode < 300;
    const result = await inTransaction(client, async () => {
      if (ok) {
        const { rows } = await client.query<{ attempts: number }>(
          `UPDATE webhook_messages SET state = 'DELIVERED', attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, now()), delivered_at = now()
           WHERE id = $1 RETURNING attempts`,
          [message.id],
        );
        await client.query(`UPDATE webhook_endpoints SET failure_streak = 0, failing_since = NULL WHERE id = $1 AND failure_streak > 0`, [endpoint.id]);
        await logAttempt(client, endpoint.id, message, 'DELIVERED', rows[0]?.attempts, attempt);
        return { delivered: true as const };
      }
      const { rows: messages } = await client.query<{ attempts: number; state: string }>(
        `UPDATE webhook_messages SET attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, now()),
           state = CASE WHEN now() - coalesce(first_attempt_at, now()) >= $2::double precision * interval '1 millisecond' THEN 'EXPIRED' ELSE state END
         WHERE id = $1 RETURNING attempts, state`,
        [message.id, settings.retryForMs],
      );
      const reason = `${settings.disableAfterFailures} or more failed attempts in a row for at least ${Math.round(settings.disableAfterMs / 1000)} s; the last: ${
        attempt.error ?? `HTTP ${attempt.statusCode}`
      }`;
      // The SET expressions see the row as it was: the run of failures this attempt lengthens.
      const disable = `status = 'ENABLED' AND failure_streak + 1 >= $2 AND now() - coalesce(failing_since, now()) >= $3::double precision * interval '1 millisecond'`;
      const { rows: endpoints } = await client.query<{ failure_streak: number; failing_since: Date; disabled_now: boolean }>(
        `WITH before AS (SELECT id, status AS was FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
         UPDATE webhook_endpoints e SET failure_streak = failure_streak + 1, failing_since = coalesce(failing_since, now()), updated_at = now(),
           status = CASE WHEN ${disable} THEN 'DISABLED' ELSE status END,
           disabled_at = CASE WHEN ${disable} THEN now() ELSE disabled_at END,
           disabled_reason = CASE WHEN ${disable} THEN $4 ELSE disabled_reason END
         FROM before WHERE e.id = before.id
         RETURNING e.failure_streak, e.failing_since, before.was = 'ENABLED' AND e.status = 'DISABLED' AS disabled_now`,
        [endpoint.id, settings.disableAfterFailures, settings.disableAfterMs, reason],
      );
      const { attempts = 1, state = 'PENDING' } = messages[0] ?? {};
      await logAttempt(client, endpoint.id, message, state === 'EXPIRED' ? 'EXPIRED' : 'FAILED', attempts, attempt);
      const disabled = endpoints[0]?.disabled_now === true;
      if (disabled) await logAttempt(client, endpoint.id, message, 'ENDPOINT_DISABLED', undefined, { durationMs: 0, error: reason });
      return {
        delivered: false as const,
        attempts,
        expired: state === 'EXPIRED',
        disabled,
        streak: endpoints[0]?.failure_streak ?? 0,
        since: endpoints[0]?.failing_since,
      };
    });
    webhookDeliveries.inc({ outcome: ok ? 'delivered' : result.delivered === false && result.expired ? 'expired' : 'failed' });
    webhookDeliveryDuration.observe(attempt.durationMs / 1000);
    if (!result.delivered && result.disabled) {
      webhookEndpointsDisabled.inc();
      log.warn(
        {
          endpointId: endpoint.id,
          failures: result.streak,
          failingSince: result.since?.toISOString(),
          lastError: attempt.error ?? `HTTP ${attempt.statusCode}`,
        },
        'webhook endpoint disabled after repeated failures; its events wait until its client enables it',
      );
    }
    return result;
  }

  async function logAttempt(
    client: Pick<pg.PoolClient, 'query'>,
    endpointId: string,
    message: Pick<MessageRow, 'event_id' | 'type' | 'order_id'> | undefined,
    outcome: string,
    attemptNumber: number | undefined,
    attempt?: Attempt,
  ): Promise<void> {
    await client.query(
      `INSERT INTO webhook_attempts (endpoint_id, event_id, type, order_id, outcome, attempt, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        endpointId,
        message?.event_id ?? null,
        message?.type ?? null,
        message?.order_id ?? null,
        outcome,
        attemptNumber ?? null,
        attempt?.statusCode ?? null,
        attempt?.error ?? (attempt?.statusCode !== undefined && (attempt.statusCode < 200 || attempt.statusCode >= 300) ? `HTTP ${attempt.statusCode}` : null),
        attempt && outcome !== 'ENDPOINT_DISABLED' ? attempt.durationMs : null,
      ],
    );
  }

  /** Sends the endpoint's waiting events in order, one at a time, until one fails, none is left or the round's time is up. */
  async function deliverRound(client: pg.PoolClient, endpointId: string): Promise<DeliveryRound> {
    const started = Date.now();
    let delivered = 0;
    for (;;) {
      const endpoint = await readEndpoint(client, endpointId);
      // Not written yet (the update that makes it runs beside this) is nothing to do; deleted is the end.
      if (!endpoint) return { state: 'idle', delivered };
      if (endpoint.deleted_at) return { state: 'gone', delivered };
      if (endpoint.status === 'DISABLED') return { state: 'disabled', delivered };
      const { rows: waiting } = await client.query<MessageRow>(
        `SELECT id::text, event_id, order_id::text, type, payload, attempts FROM webhook_messages
         WHERE endpoint_id = $1 AND state = 'PENDING' ORDER BY webhook_messages.id /* the number, not the text selected as id */ LIMIT ${PAGE}`,
        [endpointId],
      );
      if (waiting.length === 0) return { state: 'idle', delivered };
      for (const message of waiting) {
        if (Date.now() - started > ROUND_BUDGET_MS) return { state: 'more', delivered };
        const outcome = await record(client, endpoint, message, await post(endpoint, message));
        if (outcome.delivered) {
          delivered++;
          continue;
        }
        if (outcome.disabled) return { state: 'disabled', delivered };
        // An expired event is out of the way; the next one waits the same backoff, as the endpoint is still failing.
        return { state: 'retry', delivered, retryInMs: retryDelay(outcome.expired ? 1 : outcome.attempts, settings) };
      }
    }
  }

  return {
    /** Registers the endpoint with a new secret; a retry finds it made and returns the same secret (the first answer never reached anyone). */
    async createWebhookEndpoint({
      endpointId,
      owner,
      url,
      events,
    }: Omit<CreateWebhookEndpointRequest, 'requestedBy'> & { endpointId: string; owner: string }): Promise<CreatedWebhookEndpoint> {
      const problem = webhookUrlProblem(url, settings);
      if (problem) throw ApplicationFailure.create({ type: NotificationErrorType.InvalidUrl, message: `url ${problem}`, nonRetryable: true });
      await pool.query(`INSERT INTO webhook_endpoints (id, owner, url, events, secret) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [
        endpointId,
        owner,
        url,
        events,
        seal(keyring, newWebhookSecret(), 'webhook-secret'),
      ]);
      const row = await liveEndpoint(endpointId);
      return { ...endpointView(row), secret: unseal(keyring, row.secret, 'webhook-secret') };
    },

    /**
     * A new secret; the previous one keeps signing (a second signature) for the grace period. The
     * rotation's ID makes a retry return the secret it made instead of rotating again.
     */
    async rotateWebhookSecret({ endpointId, rotationId }: { endpointId: string; rotationId: string }): Promise<RotatedWebhookSecret> {
      await pool.query(
        `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = now() + $3::double precision * interval '1 millisecond',
           secret = $4, rotation_id = $2, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL AND rotation_id IS DISTINCT FROM $2`,
        [endpointId, rotationId, settings.secretGraceMs, seal(keyring, newWebhookSecret(), 'webhook-secret')],
      );
      const row = await liveEndpoint(endpointId);
      return {
        id: endpointId,
        secret: unseal(keyring, row.secret, 'webhook-secret'),
        previousSecretExpiresAt: (row.previous_secret_expires_at ?? new Date()).toISOString(),
      };
    },

    /** Enabled again: its run of failures forgotten, and each waiting event given its whole retry budget again. */
    async enableWebhookEndpoint({ endpointId }: { endpointId: string }): Promise<WebhookEndpointView> {
      const client = await pool.connect();
      try {
        await inTransaction(client, async () => {
          const { rowCount } = await client.query(
            `UPDATE webhook_endpoints SET status = 'ENABLED', failure_streak = 0, failing_since = NULL, disabled_at = NULL, disabled_reason = NULL, updated_at = now()
             WHERE id = $1 AND deleted_at IS NULL AND status = 'DISABLED'`,
            [endpointId],
          );
          if (!rowCount) return;
          await client.query(`UPDATE webhook_messages SET attempts = 0, first_attempt_at = NULL WHERE endpoint_id = $1 AND state = 'PENDING'`, [endpointId]);
          await logAttempt(client, endpointId, undefined, 'ENDPOINT_ENABLED', undefined);
        });
      } finally {
        client.release();
      }
      log.info({ endpointId }, 'webhook endpoint enabled');
      return endpointView(await liveEndpoint(endpointId));
    },

    async deleteWebhookEndpoint({ endpointId }: { endpointId: string }): Promise<{ id: string; deleted: true }> {
      await pool.query(`UPDATE webhook_endpoints SET deleted_at = coalesce(deleted_at, now()), updated_at = now() WHERE id = $1`, [endpointId]);
      return { id: endpointId, deleted: true };
    },

    /** The event again, by hand, with the same ID: back in the endpoint's queue at its place; null when the endpoint never had it. */
    async replayWebhookEvent({ endpointId, eventId }: { endpointId: string; eventId: string }): Promise<ReplayedWebhookEvent | null> {
      const client = await pool.connect();
      try {
        return await inTransaction(client, async () => {
          const { rows } = await client.query<MessageRow>(
            `UPDATE webhook_messages SET state = 'PENDING', attempts = 0, first_attempt_at = NULL, delivered_at = NULL
             WHERE endpoint_id = $1 AND event_id = $2 RETURNING event_id, type, order_id::text`,
            [endpointId, eventId],
          );
          if (rows.length === 0) return null;
          await logAttempt(client, endpointId, rows[0], 'REPLAY_REQUESTED', undefined);
          return { eventId, status: 'QUEUED' as const };
        });
      } finally {
        client.release();
      }
    },

    /**
     * One round of deliveries for one endpoint. Only one round of an endpoint runs at a time
     * (a session advisory lock, let go with the connection if this process dies), so a retry of
     * a round whose worker vanished cannot overtake an older event still being sent.
     */
    async deliverPendingWebhooks({ endpointId }: { endpointId: string }): Promise<DeliveryRound> {
      const stop = keepAlive();
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const key = `webhook:${endpointId}`;
        const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`, [key]);
        if (!rows[0]?.locked) throw new Error(`another delivery round of endpoint ${endpointId} is running`);
        try {
          return await deliverRound(client, endpointId);
        } finally {
          await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [key]).catch((err: Error) => (broken = err));
        }
      } finally {
        stop();
        client.release(broken);
      }
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
