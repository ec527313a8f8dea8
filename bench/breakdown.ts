import { readdirSync, readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

/**
 * Where the time goes: CPU seconds by process, and per-step latency read from workflow histories.
 * Both are measurements of the run itself, not of a profiler's model of it.
 */

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

const PAGE_BYTES = 4096;

/**
 * One figure per process group from /proc/<pid>/stat: named pids first, then Temporal and
 * PostgreSQL by command (PostgreSQL's many processes summed). Empty where there is no /proc.
 */
function perProcess(named: Map<number, string>, read: (fields: string[]) => number): Map<string, number> {
  const totals = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return totals;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited while listing
    }
    // comm is in parentheses and may contain spaces; the fields after it are space-separated.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const label = named.get(Number(pid)) ?? (comm.startsWith('temporal') ? 'temporal server' : comm === 'postgres' ? 'postgres' : undefined);
    if (!label) continue;
    totals.set(label, (totals.get(label) ?? 0) + read(stat.slice(close + 2).split(' ')));
  }
  return totals;
}

/** CPU seconds (user + system: fields 14 and 15 of stat) of every process group so far. */
export const cpuSnapshot = (named: Map<number, string>): Map<string, number> => perProcess(named, (f) => (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND);

/** Resident memory in MB (field 24 of stat, in pages) of every process group now. */
export const rssSnapshot = (named: Map<number, string>): Map<string, number> => perProcess(named, (f) => (Number(f[21]) * PAGE_BYTES) / 2 ** 20);

/** CPU seconds spent by each group between two snapshots, largest first. */
export function cpuBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const spent = [...after].map(([label, s]) => [label, Math.round((s - (before.get(label) ?? 0)) * 100) / 100] as const);
  return Object.fromEntries(spent.filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]));
}

const { EventType } = proto.temporal.api.enums.v1;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

const ms = (e: HistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);

export interface StepLatency {
  count: number;
  schedule_to_start_p50_ms: number;
  schedule_to_start_p95_ms: number;
  execution_p50_ms: number;
  execution_p95_ms: number;
}

/**
 * Per activity type (and for workflow tasks), schedule-to-start and execution latency from the
 * histories of the given workflows: the server's own timestamps of scheduled, started, completed.
 */
export async function stepLatencies(client: Client, workflowIds: string[], pct: (v: number[], p: number) => number): Promise<Record<string, StepLatency>> {
  const toStart = new Map<string, number[]>();
  const execution = new Map<string, number[]>();
  const add = (map: Map<string, number[]>, key: string, v: number) => {
    const values = map.get(key);
    if (values) values.push(v);
    else map.set(key, [v]);
  };
  for (const workflowId of workflowIds) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const byId = new Map<number, HistoryEvent>();
    for (const e of events) {
      byId.set(Number(e.eventId), e);
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const scheduled = byId.get(Number(e.activityTaskStartedEventAttributes?.scheduledEventId));
        const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name;
        if (scheduled && type) add(toStart, `activity ${type}`, ms(e) - ms(scheduled));
      }
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const attrs = e.activityTaskCompletedEventAttributes;
        const scheduled = byId.get(Number(attrs?.scheduledEventId));
        const started = byId.get(Number(attrs?.startedEventId));
        const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name;
        if (started && type) add(execution, `activity ${type}`, ms(e) - ms(started));
      }
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
        const scheduled = byId.get(Number(e.workflowTaskStartedEventAttributes?.scheduledEventId));
        if (scheduled) add(toStart, 'workflow task', ms(e) - ms(scheduled));
      }
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
        const started = byId.get(Number(e.workflowTaskCompletedEventAttributes?.startedEventId));
        if (started) add(execution, 'workflow task', ms(e) - ms(started));
      }
    }
  }
  const steps: Record<string, StepLatency> = {};
  for (const [step, values] of [...toStart].sort(([a], [b]) => a.localeCompare(b))) {
    const ran = execution.get(step) ?? [];
    steps[step] = {
      count: values.length,
      schedule_to_start_p50_ms: pct(values, 50),
      schedule_to_start_p95_ms: pct(values, 95),
      execution_p50_ms: pct(ran, 50),
      execution_p95_ms: pct(ran, 95),
    };
  }
  return steps;
}
