import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../prisma/inventory/seed';
import { DATABASES, databaseUrlVar, prepareDatabases, type DatabaseName } from '../../lib/infra/databases';
import { DATA_DIR } from '../../lib/infra/paths';
import { POOLS, buildWorkflowBundle, launchPlatform, waitForHttp, type ManagedProcess, type RunningPlatform } from '../../lib/infra/platform';
import { postgresUrl, startEmbeddedPostgres, type RunningPostgres } from '../../lib/infra/postgres';
import { freeFixedPort } from '../../lib/net';
import { validOrder } from './http';
import { launchedClients } from './launched';
import { queryDatabase } from './databases';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { orderWorkflowId } from '../../contracts/orders';
import { temporalConnectionSettings } from '../../lib/temporal/connection';

/**
 * Crash test: the whole platform as separate processes, on its own PostgreSQL and on the Temporal
 * the target brings (the dev server, or the multi-node cluster), while a chaos harness SIGKILLs
 * worker processes every few seconds, injects the target's Temporal faults once each (restart the
 * dev server; kill a history node and start it again, restart the frontend) and restarts
 * PostgreSQL once. Storefront clients place orders over HTTP and retry failed requests with the
 * same Idempotency-Key. At the end every order must be terminal and every ledger (ours and the
 * simulated provider's and carrier's) must show each effect exactly once for the orders that kept
 * it, and not at all for the others.
 */

const ORDER_COUNT = 200;
const CONCURRENCY = 16;
/** Arrivals are paced so that placing spans about a minute and the chaos has something to hit. */
const MIN_ARRIVAL_GAP_MS = 300;
/**
 * How long a storefront keeps retrying one request. A cancel is an Update: it waits for the order's
 * next workflow task, and on two busy cores with a worker killed every few seconds the orders
 * queue's backlog has held that task back for well over the two minutes this once was.
 */
const POST_GIVE_UP_MS = 300_000;
const REQUEST_TIMEOUT_MS = 15_000;
const TERMINAL_WAIT_MS = 8 * 60_000;
const TEST_TIMEOUT_MS = 900_000;
/** Chaos: a kill every 2–4 s, at most this many, for at most this long, and a few seconds after placing. */
const MAX_KILLS = 40;
const MAX_CHAOS_MS = 240_000;
const CHAOS_TAIL_MS = 5_000;
/** After the last order ends, late attempts of an activity (if any) get this long to land before reconciling. */
const SETTLE_MS = 5_000;
const SEED = 0x5eed_c4a0;
/** The services' PostgreSQL is restarted once this share of the orders has been placed. */
const POSTGRES_RESTART_AFTER = 2 / 3;

const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED'];
const pid = process.pid;

/** One fault the harness injects once, at its moment, between two of its worker kills. */
export interface Fault {
  /** as the summary prints it: `restart Temporal`, `SIGKILL history-1`, … */
  name: string;
  /** injected once this share of the orders (0..1) has been placed; faults run in this order */
  afterPlaced: number;
  /** injects it and waits until it has had its effect; `note` adds a line to the summary */
  run: (note: (msg: string) => void) => Promise<void>;
}

/** The Temporal a crash run uses, as its target brings it up. */
export interface TemporalUnderTest {
  /** what every platform process gets to reach it: TEMPORAL_ADDRESS and, for a cluster, TEMPORAL_TLS_* */
  env: Record<string, string>;
  /** its own faults, injected beside the worker kills and the PostgreSQL restart */
  faults: Fault[];
  /** stops what setUp started and puts back what a fault took away, whatever state the test left */
  tearDown: () => Promise<void>;
}

export interface CrashTarget {
  /** the describe block's title */
  title: string;
  /** the Temporal namespace the platform runs in; the server must have it */
  namespace: string;
  /** a word for this run's folders under .data/test (logs, PostgreSQL) */
  slug: string;
  setUp: () => Promise<TemporalUnderTest>;
}

/** The order an idempotency key belongs to (`order-<uuid>:<step>…`). */
const orderIdOfKey = (key: string): string | undefined => /^order-([0-9a-f-]{36}):/.exec(key)?.[1];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Declares the crash test on `target`'s Temporal. The services' databases are on a PostgreSQL of
 * the test's own (never the one a cluster keeps its state in), so restarting it takes the services'
 * data away and leaves Temporal up, on the dev server and on the cluster alike.
 */
export function describeCrashSuite(target: CrashTarget): void {
  const pgDir = join(DATA_DIR, 'test', `${target.slug}-pg-${pid}`);
  const logDir = join(DATA_DIR, 'test', `${target.slug}-logs-${pid}`);

  let pgPort: number;
  let postgres: RunningPostgres | undefined;
  let temporal: TemporalUnderTest | undefined;
  let platform: RunningPlatform | undefined;
  let urls: Record<DatabaseName, string>;
  let clients: Awaited<ReturnType<typeof launchedClients>>;
  let passed = false;
  const exits: string[] = [];

  const startPostgres = (fresh: boolean): Promise<RunningPostgres> => startEmbeddedPostgres({ dataDir: pgDir, port: pgPort, fresh });

  beforeAll(async () => {
    // Restarted on the same ports (PostgreSQL by the chaos, the API and the auth service if they crash).
    pgPort = await freeFixedPort();
    await rm(logDir, { recursive: true, force: true });
    postgres = await startPostgres(true);
    urls = Object.fromEntries(DATABASES.map((db) => [db, postgresUrl(pgPort, `chaos_${db}`)])) as Record<DatabaseName, string>;
    await prepareDatabases(urls, { adminUrl: postgresUrl(pgPort, 'postgres') });
    temporal = await target.setUp();
    const bundle = await buildWorkflowBundle();
    platform = await launchPlatform({
      env: {
        ...process.env,
        ...temporal.env,
        TEMPORAL_NAMESPACE: target.namespace,
        WORKFLOW_BUNDLE_PATH: bundle,
        LOG_LEVEL: 'warn',
        CARRIER_PICKUP_DELAY_MS: '300',
        // The reconciliation sweep is a safety net; here the sagas alone must leave nothing open,
        // so it only looks at what is older than the whole test.
        RECONCILIATION_OLDER_THAN: '1h',
        // No order here waits for a reviewer (0 turns manual review off).
        REVIEW_ABOVE: '0',
        ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
      },
      // Two processes per pool, so a pool keeps working while one of its processes is killed.
      counts: Object.fromEntries(POOLS.map((pool) => [pool, 2])),
      apiPort: await freeFixedPort(),
      authPort: await freeFixedPort(),
      logDir,
      restart: true,
      log: (msg) => exits.push(`${new Date().toISOString()} ${msg}`),
    });
    await waitForHttp(`${platform.apiUrl}/healthz`, 180_000);
    await waitForHttp(`${platform.authUrl}/healthz`, 60_000);
    clients = await launchedClients(platform.authUrl, urls.auth);
  }, 300_000);

  afterAll(async () => {
    // Each step runs even if one before it fails, so no server outlives the test.
    const attempt = (what: string, p: Promise<void> | undefined) => p?.catch((err) => console.log(`[chaos] ${what} failed: ${String(err)}`));
    await attempt('stopping the platform', platform?.stop());
    await attempt('tearing down Temporal', temporal?.tearDown());
    await attempt('stopping PostgreSQL', postgres?.stop());
    await rm(pgDir, { recursive: true, force: true });
    if (passed && !process.env.CHAOS_KEEP_LOGS) await rm(logDir, { recursive: true, force: true });
    else console.log(`[chaos] worker logs kept in ${logDir}`);
  }, 180_000);

  // -------------------------------------------------------------------------------------------
  // The storefront: real HTTP, a timeout per request, retries with the same key and body.

  async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${platform!.apiUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(await clients.headers()), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  /** Where an order's workflow is, as Temporal says (for a failure's message): its pending workflow task and its last events. */
  async function workflowState(orderId: string): Promise<string> {
    try {
      const connection = await Connection.connect(temporalConnectionSettings({ ...temporal!.env, TEMPORAL_NAMESPACE: target.namespace }).connection);
      try {
        const execution = { workflowId: orderWorkflowId(orderId) };
        const described = await connection.workflowService.describeWorkflowExecution({ namespace: target.namespace, execution });
        const { history } = await connection.workflowService.getWorkflowExecutionHistory({ namespace: target.namespace, execution });
        const task = described.pendingWorkflowTask;
        const at = (t: { seconds?: unknown } | null | undefined) => (t?.seconds ? new Date(Number(t.seconds) * 1000).toISOString().slice(11, 19) : '-');
        const events = (history?.events ?? [])
          .slice(-12)
          .map((e) => `${at(e.eventTime)} ${String(e.eventId)} ${proto.temporal.api.enums.v1.EventType[e.eventType ?? 0]}`);
        return [
          `workflow ${execution.workflowId}: ${proto.temporal.api.enums.v1.WorkflowExecutionStatus[described.workflowExecutionInfo?.status ?? 0]}`,
          task
            ? `pending workflow task: ${proto.temporal.api.enums.v1.PendingWorkflowTaskState[task.state ?? 0]}, attempt ${task.attempt}, scheduled ${at(task.scheduledTime)}, started ${at(task.startedTime)}`
            : 'no pending workflow task',
          ...events.map((e) => `  ${e}`),
        ].join('\n');
      } finally {
        await connection.close();
      }
    } catch (err) {
      return `(its workflow could not be described: ${String(err)})`;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The chaos harness.

  interface ChaosStats {
    kills: string[];
    /** ticks that killed nothing: the pool chosen had fewer than two processes serving */
    spared: number;
    /** each fault's name, once injected */
    faults: string[];
    notes: string[];
  }

  function runChaos(
    progress: () => { placed: number; done: boolean; doneAt?: number },
    stopSignal: { stop: boolean },
  ): { finished: Promise<void>; stats: ChaosStats; planned: Fault[] } {
    const rand = lcg(SEED);
    const stats: ChaosStats = { kills: [], spared: 0, faults: [], notes: [] };
    const restartPostgres: Fault = {
      name: 'restart PostgreSQL',
      afterPlaced: POSTGRES_RESTART_AFTER,
      run: async () => {
        await postgres!.stop();
        postgres = await startPostgres(false);
      },
    };
    // Stable: faults at the same moment keep the target's order.
    const planned = [...temporal!.faults, restartPostgres].sort((a, b) => a.afterPlaced - b.afterPlaced);
    const started = Date.now();
    const at = () => `+${((Date.now() - started) / 1000).toFixed(1)}s`;

    const finished = (async () => {
      while (!stopSignal.stop && Date.now() - started < MAX_CHAOS_MS) {
        const { placed, done, doneAt } = progress();
        if (done && doneAt !== undefined && Date.now() - doneAt > CHAOS_TAIL_MS && stats.faults.length === planned.length) break;
        await sleep(rand.int(2_000, 4_000));
        if (stopSignal.stop) break;

        // One fault a tick, each once, in order, once enough orders are placed.
        const fault = planned[stats.faults.length];
        if (fault && placed >= fault.afterPlaced * ORDER_COUNT) {
          stats.notes.push(`${at()} ${fault.name} (placed ${placed})`);
          await fault.run((msg) => stats.notes.push(`${at()} ${fault.name}: ${msg}`));
          stats.faults.push(fault.name);
          stats.notes.push(`${at()} ${fault.name}: done`);
          continue;
        }
        if (stats.kills.length >= MAX_KILLS) continue;

        const pool = rand.pick(POOLS);
        // Two processes per pool, so that the pool keeps working while one is down: a kill hits a
        // process that is serving (it has work in flight) while another of its pool serves too.
        // Under load a restart takes far longer than the ticks between kills (30 s and more on two
        // busy cores): killing the one process left, or one still starting, would only keep the
        // pool away for that long, and not test anything more.
        const live = platform!.processes().filter((p) => p.name.startsWith(`${pool}-worker-`) && p.child.exitCode === null && p.child.signalCode === null);
        const candidates = (await Promise.all(live.map(async (p) => ((await serving(p)) ? [p] : [])))).flat();
        if (candidates.length < 2) {
          stats.spared++;
          continue;
        }
        const victim = rand.pick(candidates);
        victim.child.kill('SIGKILL');
        stats.kills.push(`${at()} ${victim.name} (pid ${victim.child.pid})`);
      }
    })();
    return { finished, stats, planned };
  }

  /** A worker process answers /livez once its worker exists (its HTTP server starts after it). */
  async function serving(p: ManagedProcess): Promise<boolean> {
    if (!p.metricsUrl) return false;
    try {
      return (await fetch(new URL('/livez', p.metricsUrl), { signal: AbortSignal.timeout(2_000) })).ok;
    } catch {
      return false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reconciliation.

  const query = <T extends pg.QueryResultRow>(db: DatabaseName, sql: string, params: unknown[] = []) => queryDatabase<T>(urls[db], sql, params);

  describe(target.title, () => {
    it(
      'loses and duplicates no order, reservation, charge or shipment when processes die mid-saga',
      async () => {
        const started = Date.now();
        const plan = orderMix();
        const placed: Placed[] = [];
        let placedCount = 0;
        let placingDoneAt: number | undefined;
        const stopSignal = { stop: false };
        const chaos = runChaos(() => ({ placed: placedCount, done: placingDoneAt !== undefined, doneAt: placingDoneAt }), stopSignal);

        const finals = new Map<string, any>();
        try {
          // Place every order: paced arrivals, at most CONCURRENCY in flight, each retried with its own key.
          let nextArrival = Date.now();
          await mapLimit(plan, CONCURRENCY, async (order) => {
            const wait = nextArrival - Date.now();
            nextArrival = Math.max(nextArrival, Date.now()) + MIN_ARRIVAL_GAP_MS;
            if (wait > 0) await sleep(wait);
            const { answer, attempts } = await withRetries(`POST /orders (${order.key})`, POST_GIVE_UP_MS, () =>
              http('POST', '/orders', order.body, { 'Idempotency-Key': order.key }),
            );
            expect(answer.status, `POST /orders ${order.key}: ${JSON.stringify(answer.body)}`).toBe(202);
            const p: Placed = { ...order, orderId: answer.body.orderId, postAttempts: attempts };
            if (order.expected === 'CANCELLED') {
              const cancel = await withRetries(`cancel ${p.orderId}`, POST_GIVE_UP_MS, () =>
                http('POST', `/orders/${p.orderId}/cancel`, { reason: 'chaos test' }),
              ).catch(async (err: Error) => {
                throw new Error(`${err.message}\n${await workflowState(p.orderId)}`);
              });
              expect([202, 409], `cancel ${p.orderId}: ${JSON.stringify(cancel.answer.body)}`).toContain(cancel.answer.status);
              p.cancelStatus = cancel.answer.status;
            }
            placed.push(p);
            placedCount++;
          });
          placingDoneAt = Date.now();
        } finally {
          if (placingDoneAt === undefined) stopSignal.stop = true;
          await chaos.finished;
          // Placing failed: what the chaos had done by then is the first thing to look at.
          if (placingDoneAt === undefined) {
            console.log(
              [
                `[chaos] placing stopped after ${placedCount} orders; kills: ${chaos.stats.kills.length}, spared: ${chaos.stats.spared}; process exits seen: ${exits.length}`,
                ...chaos.stats.notes.map((n) => `  chaos: ${n}`),
                ...chaos.stats.kills.map((k) => `  killed: ${k}`),
                // wall-clock times, to read beside the workers' and the server's logs
                ...exits.map((e) => `  exit: ${e}`),
              ].join('\n'),
            );
          }
        }
        const placingMs = placingDoneAt - started;
        const chaosEndedMs = Date.now() - started;

        // Wait for every order to end, polling the API like a storefront (errors mean "not yet").
        const lastSeen = new Map<string, string>();
        // Stop waiting early enough that the reconciliation and its summary still run within the test's timeout.
        const deadline = Math.min(Date.now() + TERMINAL_WAIT_MS, started + TEST_TIMEOUT_MS - 60_000);
        while (finals.size < placed.length && Date.now() < deadline) {
          const pending = placed.filter((p) => !finals.has(p.orderId));
          await mapLimit(pending, 8, async (p) => {
            try {
              const res = await http('GET', `/orders/${p.orderId}`);
              if (res.status === 200) {
                lastSeen.set(p.orderId, res.body.status);
                if (TERMINAL.includes(res.body.status)) finals.set(p.orderId, res.body);
              } else lastSeen.set(p.orderId, `HTTP ${res.status}`);
            } catch (err) {
              lastSeen.set(p.orderId, String(err));
            }
          });
          if (finals.size < placed.length) await sleep(2_000);
        }
        const terminalMs = Date.now() - started;
        await sleep(SETTLE_MS);

        // ---- reconciliation --------------------------------------------------------------------
        const problems: string[] = [];
        const duplicates: string[] = [];
        /** How many `things` of `service` each order has; more than one is a duplicate. */
        const perOrder = (orderIds: string[], service: string, things: string) => {
          const seen = new Map<string, number>();
          for (const id of orderIds) seen.set(id, (seen.get(id) ?? 0) + 1);
          for (const [id, n] of seen) if (n > 1) duplicates.push(`${service}: ${n} ${things} for order ${id}`);
          return seen;
        };
        const stuck = placed.filter((p) => !finals.has(p.orderId)).map((p) => `${p.orderId} (${p.expected}) last seen ${lastSeen.get(p.orderId)}`);
        if (stuck.length) {
          const seen = new Map<string, number>();
          for (const p of placed) if (!finals.has(p.orderId)) seen.set(lastSeen.get(p.orderId) ?? '?', (seen.get(lastSeen.get(p.orderId) ?? '?') ?? 0) + 1);
          problems.push(
            `${stuck.length} orders not terminal after waiting ${((Date.now() - placingDoneAt) / 1000).toFixed(0)}s (last seen: ${[...seen].map(([k, n]) => `${k} ×${n}`).join(', ')}): ${stuck.slice(0, 10).join('; ')}${stuck.length > 10 ? '; …' : ''}`,
          );
        }

        const outcomeOf = (o: any) => (o.status === 'FAILED' ? o.failureReason : o.status);
        const byOutcome: Record<string, number> = {};
        /** per expected end state: how many were placed, and how many ended as expected */
        const byExpected: Record<string, { placed: number; asExpected: number }> = {};
        for (const p of placed) {
          const expected = (byExpected[p.expected] ??= { placed: 0, asExpected: 0 });
          expected.placed++;
          const final = finals.get(p.orderId);
          if (!final) continue;
          const outcome = outcomeOf(final);
          byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
          const acceptable =
            p.expected !== 'CANCELLED'
              ? [p.expected]
              : p.cancelStatus === 202
                ? ['CANCELLED'] // accepted by the workflow: it unwinds at the next step boundary
                : ['COMPLETED']; // 409: already completing (a retry of a cancel that took effect answers 202: cancels are idempotent)
          if (acceptable.includes(outcome)) expected.asExpected++;
          else {
            problems.push(`order ${p.orderId} (key ${p.key}) ended ${outcome}, expected ${acceptable.join(' or ')} (cancel: ${p.cancelStatus ?? '-'})`);
          }
        }
        const completedIds = new Set(placed.filter((p) => finals.get(p.orderId)?.status === 'COMPLETED').map((p) => p.orderId));
        const placedIds = new Set(placed.map((p) => p.orderId));
        const sorted = (xs: Iterable<string>) => [...xs].sort();

        // Orders DB: exactly one row per accepted order, nothing else; one terminal event each.
        const orderRows = await query<{ id: string; status: string }>('orders', 'SELECT id, status FROM orders');
        const orderRowIds = orderRows.map((r) => r.id);
        if (orderRowIds.length !== new Set(orderRowIds).size) duplicates.push('orders: duplicate order rows');
        const missingRows = [...placedIds].filter((id) => !orderRowIds.includes(id));
        const extraRows = orderRowIds.filter((id) => !placedIds.has(id));
        if (missingRows.length) problems.push(`orders: no row for accepted orders ${missingRows.join(', ')}`);
        if (extraRows.length) problems.push(`orders: rows for orders never accepted ${extraRows.join(', ')}`);
        const terminalEvents = await query<{ order_id: string; n: string }>(
          'orders',
          `SELECT order_id, count(*) AS n FROM order_events WHERE type IN ('OrderCompleted', 'OrderFailed', 'OrderCancelled') GROUP BY order_id`,
        );
        for (const e of terminalEvents) if (Number(e.n) !== 1) duplicates.push(`orders: ${e.n} terminal events for order ${e.order_id}`);
        for (const r of orderRows) {
          const final = finals.get(r.id);
          if (final && r.status !== final.status) problems.push(`orders: row ${r.id} is ${r.status} but the API said ${final.status}`);
        }

        // Provider and carrier ledger: at most one operation of each kind per payment / shipment.
        const ops = await query<{ idempotency_key: string; system: string; kind: string; subject: string | null; amount: number | null; response: any }>(
          'sandbox',
          'SELECT idempotency_key, system, kind, subject, amount, response FROM sim_operations',
        );
        const opCount = new Map<string, number>();
        for (const op of ops) {
          const subject = op.idempotency_key.slice(0, op.idempotency_key.lastIndexOf(':'));
          const k = `${op.system} ${op.kind} ${subject}`;
          opCount.set(k, (opCount.get(k) ?? 0) + 1);
          const orderId = orderIdOfKey(op.idempotency_key);
          if (!orderId || !placedIds.has(orderId)) problems.push(`sandbox: operation ${op.idempotency_key} for no accepted order`);
        }
        for (const [k, n] of opCount) if (n > 1) duplicates.push(`sandbox: ${n}× ${k}`);
        const opsOfKind = (kind: string) => ops.filter((o) => o.kind === kind);
        const captures = opsOfKind('capture');
        const refunds = opsOfKind('refund');
        const books = opsOfKind('book').filter((o) => o.response?.outcome === 'booked');
        // A capture (and a refund) per order at most, one booking per order at most. (A long wait may
        // re-authorise under a new key, so authorisations are held to one per key, above.)
        const sandboxPerOrder = (list: typeof ops, what: string) =>
          perOrder(
            list.map((o) => orderIdOfKey(o.idempotency_key) ?? '?'),
            'sandbox',
            what,
          );
        const capturedOrders = sandboxPerOrder(captures, 'captures');
        const refundedOrders = sandboxPerOrder(refunds, 'refunds');
        const bookedOrders = sandboxPerOrder(books, 'carrier bookings');
        const netCaptured = [...capturedOrders.keys()].filter((id) => !refundedOrders.has(id));
        if (sorted(netCaptured).join() !== sorted(completedIds).join()) {
          problems.push(
            `sandbox: orders charged and not refunded ${JSON.stringify(sorted(netCaptured).filter((id) => !completedIds.has(id)))}; ` +
              `completed but not charged ${JSON.stringify(sorted(completedIds).filter((id) => !netCaptured.includes(id)))}`,
          );
        }
        const openAuthorisations = await query<{ id: string }>('sandbox', `SELECT id FROM sim_authorisations WHERE status = 'AUTHORISED'`);
        if (openAuthorisations.length)
          problems.push(`sandbox: ${openAuthorisations.length} authorisations left open: ${openAuthorisations.map((a) => a.id).join(', ')}`);
        const [provider] = await query<{ net: string; auths: string }>(
          'sandbox',
          'SELECT coalesce(sum(captured - refunded), 0) AS net, count(*) AS auths FROM sim_authorisations',
        );
        const carrierLive = await query<{ ref: string }>('sandbox', `SELECT ref FROM sim_shipments WHERE status IN ('BOOKED', 'PICKED_UP')`);

        // Payments DB: one payment per order at most, none left open, money reconciles three ways.
        const payments = await query<{ order_id: string; status: string; captured_amount: number; refunded_amount: number }>(
          'payments',
          'SELECT order_id, status, captured_amount, refunded_amount FROM payments',
        );
        const paymentsPerOrder = perOrder(
          payments.map((p) => p.order_id),
          'payments',
          'payments',
        );
        const openPayments = payments.filter((p) => p.status === 'PENDING' || p.status === 'AUTHORISED');
        if (openPayments.length) problems.push(`payments: left open ${JSON.stringify(openPayments)}`);
        const booksNet = payments.reduce((s, p) => s + p.captured_amount - p.refunded_amount, 0);
        const completedTotal = [...completedIds].reduce((s, id) => s + Number(finals.get(id)?.total ?? 0), 0);
        const priceOf = (sku: string) => CATALOGUE.find((c) => c.sku === sku)!.price;
        const expectedTotal = placed
          .filter((p) => completedIds.has(p.orderId))
          .reduce((s, p) => s + p.body.items.reduce((t, i) => t + i.quantity * priceOf(i.sku), 0), 0);
        if (booksNet !== completedTotal || Number(provider!.net) !== completedTotal || expectedTotal !== completedTotal) {
          problems.push(
            `money: our books net ${booksNet}, provider net ${provider!.net}, completed orders' totals ${completedTotal}, catalogue prices say ${expectedTotal}`,
          );
        }

        // Inventory: nothing held, stock conserved.
        const reservations = await query<{ order_id: string; status: string }>('inventory', 'SELECT order_id, status FROM reservations');
        const held = reservations.filter((r) => r.status === 'HELD');
        if (held.length) problems.push(`inventory: reservations left HELD for ${held.map((r) => r.order_id).join(', ')}`);
        const reservationsPerOrder = perOrder(
          reservations.map((r) => r.order_id),
          'inventory',
          'reservations',
        );
        const committed = reservations.filter((r) => r.status === 'COMMITTED').map((r) => r.order_id);
        if (sorted(committed).join() !== sorted(completedIds).join())
          problems.push(`inventory: committed reservations ${committed.length} ≠ completed orders ${completedIds.size}`);
        const stock = await query<{ sku: string; stock: number }>('inventory', 'SELECT sku, stock FROM products');
        const stockReport: string[] = [];
        for (const product of CATALOGUE) {
          const sold = placed
            .filter((p) => completedIds.has(p.orderId))
            .flatMap((p) => p.body.items)
            .filter((i) => i.sku === product.sku)
            .reduce((n, i) => n + i.quantity, 0);
          const have = stock.find((s) => s.sku === product.sku)?.stock;
          if (have !== product.stock - sold)
            problems.push(`inventory: ${product.sku} has ${have}, expected ${product.stock} − ${sold} = ${product.stock - sold}`);
          if (sold > 0) stockReport.push(`${product.sku} −${sold}`);
        }

        // Shipping: one shipment per order at most; the live ones are exactly the completed orders, here and at the carrier.
        const shipments = await query<{ order_id: string; status: string; carrier_ref: string | null }>(
          'shipping',
          'SELECT order_id, status, carrier_ref FROM shipments',
        );
        const shipmentsPerOrder = perOrder(
          shipments.map((s) => s.order_id),
          'shipping',
          'shipments',
        );
        const live = shipments.filter((s) => s.status === 'CREATED' || s.status === 'PICKED_UP');
        if (sorted(live.map((s) => s.order_id)).join() !== sorted(completedIds).join()) {
          problems.push(
            `shipping: live shipments for orders not completed ${JSON.stringify(live.map((s) => s.order_id).filter((id) => !completedIds.has(id)))}; ` +
              `completed orders without one ${JSON.stringify([...completedIds].filter((id) => !live.some((s) => s.order_id === id)))}`,
          );
        }
        const pendingShipments = shipments.filter((s) => s.status === 'PENDING');
        if (pendingShipments.length) problems.push(`shipping: left PENDING for ${pendingShipments.map((s) => s.order_id).join(', ')}`);
        const liveRefs = new Set(live.map((s) => s.carrier_ref));
        const carrierOnly = carrierLive.filter((c) => !liveRefs.has(c.ref));
        if (carrierOnly.length || carrierLive.length !== live.length) {
          problems.push(
            `carrier: ${carrierLive.length} live bookings at the carrier vs ${live.length} here; unknown here: ${carrierOnly.map((c) => c.ref).join(', ')}`,
          );
        }

        /**
         * One effect, order by order, for the summary: the orders that kept it, those completed that
         * did not (lost), those that kept it without completing (stray), those with more than one.
         */
        const effect = (keptBy: Iterable<string>, counts: Array<Map<string, number>>) => {
          const kept = new Set(keptBy);
          const lost = [...completedIds].filter((id) => !kept.has(id)).length;
          const stray = [...kept].filter((id) => !completedIds.has(id)).length;
          const duplicated = new Set(counts.flatMap((m) => [...m].filter(([, n]) => n > 1).map(([id]) => id))).size;
          return `${kept.size} for ${completedIds.size} completed orders: lost ${lost}, duplicated ${duplicated}, stray ${stray}`;
        };

        // Why did a process exit that the harness did not kill? Its last fatal log line says.
        const unplanned: string[] = [];
        for (const e of exits.filter((x) => !x.includes('SIGKILL'))) {
          const name = /Z (\S+) exited/.exec(e)?.[1];
          const log = name ? await readFile(join(logDir, `${name}.log`), 'utf8').catch(() => '') : '';
          const fatal = log
            .split('\n')
            .filter((l) => l.includes('"level":60'))
            .map((l) => {
              try {
                const j = JSON.parse(l);
                const frame = String(j.err?.stack ?? '')
                  .split('\n')
                  .find((f) => f.includes('/workers/') || f.includes('/activities/') || f.includes('/lib/'));
                return `${j.msg}: ${String(j.err?.message ?? '').split('\n')[0]}${frame ? ` (${frame.trim()})` : ''}`;
              } catch {
                return l.slice(0, 200);
              }
            });
          // A crash outside the logger (an unhandled 'error' event) leaves Node's own report on stderr.
          const lines = log.split('\n');
          const crashAt = lines.map((l) => l.includes("Unhandled 'error' event")).lastIndexOf(true);
          const crash = crashAt >= 0 ? lines.slice(crashAt + 1).find((l) => /^\w*[Ee]rror\b/.test(l)) : undefined;
          const why = crash ? `uncaught: ${crash} (an 'error' event with no listener)` : fatal.length ? `last fatal: ${fatal[fatal.length - 1]}` : '';
          unplanned.push(`${e}${why ? ` — ${why}` : ''}`);
        }

        const totalMs = Date.now() - started;
        const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
        console.log(
          [
            '',
            `──────── chaos crash test: ${target.title} ────────`,
            `orders placed           ${placed.length} (POST retries: ${placed.reduce((n, p) => n + p.postAttempts - 1, 0)}; cancels sent: ${placed.filter((p) => p.cancelStatus).length}, 202: ${placed.filter((p) => p.cancelStatus === 202).length}, 409: ${placed.filter((p) => p.cancelStatus === 409).length})`,
            `as expected             ${Object.entries(byExpected)
              .map(([k, v]) => `${k} ${v.asExpected} of ${v.placed}`)
              .join(', ')}`,
            `by outcome              ${Object.entries(byOutcome)
              .sort()
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
            `kills (SIGKILL)         ${chaos.stats.kills.length} (${POOLS.map((pool) => `${pool} ${chaos.stats.kills.filter((k) => k.includes(` ${pool}-worker-`)).length}`).join(', ')}); ticks spared ${chaos.stats.spared} (fewer than two of the pool's processes serving)`,
            `faults injected         ${chaos.stats.faults.length} of ${chaos.planned.length}: ${chaos.stats.faults.join(', ')}`,
            `process exits seen      ${exits.length} (of which SIGKILL ${exits.filter((e) => e.includes('SIGKILL')).length})`,
            `API 5xx answers         ${
              [...serverErrors]
                .sort()
                .map(([k, n]) => `${k} ×${n}`)
                .join(', ') || 'none'
            } (retried, as a storefront does)`,
            `duration                ${s(totalMs)} (placing ${s(placingMs)}, chaos until ${s(chaosEndedMs)}, all terminal at ${s(terminalMs)})`,
            `ledger                  authorisations ${provider!.auths}, captures ${captures.length}, refunds ${refunds.length}, voids ${opsOfKind('void').length}, bookings ${books.length}, carrier cancels ${opsOfKind('cancel').length}`,
            `reservations committed  ${effect(committed, [reservationsPerOrder])}`,
            `charges (net captured)  ${effect(netCaptured, [paymentsPerOrder, capturedOrders])}`,
            `shipments live          ${effect(
              live.map((x) => x.order_id),
              [shipmentsPerOrder, bookedOrders],
            )} (${carrierLive.length} live at the carrier)`,
            `money                   completed total ${completedTotal}, our books net ${booksNet}, provider net ${provider!.net} (catalogue prices: ${expectedTotal})`,
            `stock sold              ${stockReport.join(', ')}`,
            `duplicates found        ${duplicates.length}`,
            `other problems          ${problems.length}`,
            ...chaos.stats.notes.map((n) => `  chaos: ${n}`),
            ...unplanned.map((e) => `  unplanned exit: ${e}`),
            ...duplicates.map((d) => `  DUPLICATE: ${d}`),
            ...problems.map((p) => `  PROBLEM: ${p}`),
            '──────────────────────────────────',
          ].join('\n'),
        );

        expect(chaos.stats.kills.length).toBeGreaterThan(0);
        // every fault once: the target's (e.g. the dev server's one restart) and the PostgreSQL restart
        expect(chaos.stats.faults).toEqual(chaos.planned.map((f) => f.name));
        expect(stuck).toEqual([]);
        expect(duplicates).toEqual([]);
        expect(problems).toEqual([]);
        expect(completedIds.size).toBeGreaterThan(ORDER_COUNT / 2);
        passed = true;
      },
      TEST_TIMEOUT_MS,
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The storefront's side: answers, retries, and a bounded fan-out.

interface Answer {
  status: number;
  body: any;
}

/** Every 5xx the storefront's requests met, by status and `error` code (a 500 is a failure the API did not name). */
const serverErrors = new Map<string, number>();

/** Repeats a request on a network error or a 5xx, with backoff, until `giveUpMs`; any other answer is returned. */
async function withRetries(what: string, giveUpMs: number, send: () => Promise<Answer>): Promise<{ answer: Answer; attempts: number }> {
  const deadline = Date.now() + giveUpMs;
  let delay = 250;
  let last = '';
  for (let attempts = 1; ; attempts++) {
    try {
      const answer = await send();
      if (answer.status < 500) return { answer, attempts };
      last = `${answer.status} ${JSON.stringify(answer.body)}`;
      const kind = `${answer.status} ${(answer.body as { error?: string } | undefined)?.error ?? '-'}`;
      serverErrors.set(kind, (serverErrors.get(kind) ?? 0) + 1);
    } catch (err) {
      last = String((err as Error)?.cause ?? err);
    }
    if (Date.now() + delay > deadline) throw new Error(`${what}: gave up after ${attempts} attempts in ${giveUpMs} ms; last: ${last}`);
    await sleep(delay);
    delay = Math.min(delay * 2, 2_000);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// The orders: outcomes known in advance from the documented test inputs.

type Expected = 'COMPLETED' | 'PAYMENT_DECLINED' | 'SHIPPING_UNAVAILABLE' | 'OUT_OF_STOCK' | 'CANCELLED';
type Body = ReturnType<typeof validOrder> & { items: Array<{ sku: string; quantity: number }> };

interface Planned {
  key: string;
  expected: Expected;
  body: Body;
}

interface Placed extends Planned {
  orderId: string;
  postAttempts: number;
  cancelStatus?: number;
}

const SKUS = ['TSHIRT-BLK-M', 'HOODIE-GRY-L', 'MUG-LOGO', 'CAP-NAVY', 'SOCKS-3PK', 'POSTER-A2'];
const COUNTRIES = ['GB', 'DE', 'FR', 'US', 'NL', 'JP', 'SE', 'IT'];

function orderMix(): Planned[] {
  const runTag = `${pid}-${Date.now().toString(36)}`;
  return Array.from({ length: ORDER_COUNT }, (_, i) => {
    const items = [
      { sku: SKUS[i % SKUS.length]!, quantity: 1 + (i % 3) },
      { sku: SKUS[(i + 2) % SKUS.length]!, quantity: 1 + (i % 2) },
    ];
    const base = validOrder({ customerId: `chaos-customer-${i % 13}`, items, payment: { token: i % 4 === 0 ? 'tok_mastercard' : 'tok_visa' } });
    const body = { ...base, items, shippingAddress: { ...base.shippingAddress, country: COUNTRIES[i % COUNTRIES.length]! } } as Body;
    const key = `chaos-${runTag}-${i}`;
    switch (i % 20) {
      case 3:
      case 13:
        return { key, expected: 'PAYMENT_DECLINED', body: { ...body, payment: { token: 'tok_declined' } } };
      case 5:
      case 15:
        return { key, expected: 'SHIPPING_UNAVAILABLE', body: { ...body, shippingAddress: { ...body.shippingAddress, country: 'AQ' } } };
      case 7:
        return { key, expected: 'OUT_OF_STOCK', body: { ...body, items: [...items, { sku: 'TOUR-TEE-SOLD-OUT', quantity: 1 }] } };
      case 11:
        return { key, expected: 'CANCELLED', body };
      default:
        return { key, expected: 'COMPLETED', body };
    }
  });
}

/** A tiny deterministic generator (LCG, Numerical Recipes constants), so runs are comparable. */
function lcg(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
