/**
 * Temporal's own count of billable actions, from the server's Prometheus endpoint (the dev server's,
 * or each node's of a cluster, where the frontend counts them): the
 * counter `action`, labelled `action_type` (`grpc_StartWorkflowExecution`,
 * `command_ScheduleActivityTask`, `grpc_SignalWorkflowExecution`, …) and `namespace`. The server
 * publishes it about once a second, so a count read less than a second after the work it counts
 * may still miss some of it.
 */
export type ActionCounts = Map<string, Map<string, number>>;

/** The namespace as the metric spells it: the reporter turns every other character into `_` (`temporal-system` → `temporal_system`). */
const metricNamespace = (namespace: string) => namespace.replace(/[^a-zA-Z0-9_]/g, '_');

/** Every `action` series now: namespace → action type → count. */
export async function scrapeActions(metricsUrl: string): Promise<ActionCounts> {
  const res = await fetch(metricsUrl);
  if (!res.ok) throw new Error(`${metricsUrl}: ${res.status}`);
  const counts: ActionCounts = new Map();
  for (const line of (await res.text()).split('\n')) {
    const series = /^action\{(.*)\} (\S+)$/.exec(line);
    if (!series) continue;
    const labels = Object.fromEntries([...series[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    const namespace = labels.namespace ?? '';
    const type = labels.action_type ?? '';
    const byType = counts.get(namespace) ?? new Map<string, number>();
    byType.set(type, (byType.get(type) ?? 0) + Number(series[2]));
    counts.set(namespace, byType);
  }
  return counts;
}

/** Actions of one namespace between two scrapes, by action type (those that did not move are left out). */
export function actionsBetween(before: ActionCounts, after: ActionCounts, namespace: string): Record<string, number> {
  const ns = metricNamespace(namespace);
  const was = before.get(ns) ?? new Map<string, number>();
  const spent: Record<string, number> = {};
  for (const [type, n] of after.get(ns) ?? []) {
    const delta = n - (was.get(type) ?? 0);
    if (delta > 0) spent[type] = delta;
  }
  return spent;
}

/** Several servers' counts as one (a cluster's nodes): each series added up across them. */
export function sumActions(counts: ActionCounts[]): ActionCounts {
  const total: ActionCounts = new Map();
  for (const count of counts) {
    for (const [namespace, byType] of count) {
      const into = total.get(namespace) ?? new Map<string, number>();
      for (const [type, n] of byType) into.set(type, (into.get(type) ?? 0) + n);
      total.set(namespace, into);
    }
  }
  return total;
}
