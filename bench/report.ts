import { readFileSync } from 'node:fs';
import type { BenchResults } from './results';

/**
 * The tables of BENCHMARKS.md from one results file:
 *
 *   node --import tsx bench/report.ts bench/results/<timestamp>.json
 */
const file = process.argv[2];
if (!file) {
  console.error('usage: node --import tsx bench/report.ts <results.json>');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
const table = (head: string[], rows: Array<Array<string | number>>) =>
  [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
const out: string[] = [];
/** a figure this results file may predate */
const maybe = (v: number | null | undefined) => (v === undefined || v === null ? '—' : v);
/** CPU ms per unit of all processes together, from the seconds of files that predate the per-order figure */
const cpuMs = (given: number | undefined, seconds: Record<string, number> | undefined, units: number | undefined) =>
  given ?? (seconds && units ? Math.round((Object.values(seconds).reduce((sum, v) => sum + v, 0) * 1000) / units) : undefined);

// Results written before the cluster runs were all measured on the dev server.
const temporal = r.temporal ?? { kind: 'dev-server', history_nodes: 1, shards: 1, mtls: false, persistence: 'sqlite' };
out.push(
  `Temporal: ${temporal.kind === 'cluster' ? `multi-node cluster, ${temporal.history_nodes} history nodes, ${temporal.shards} shards` : 'dev server'}, ${temporal.persistence}${temporal.mtls ? ', mTLS' : ''}\n`,
);
out.push('### Closed loop (each virtual customer places an order and waits for its end)\n');
out.push(
  table(
    [
      'orders in flight',
      'platform orders/s',
      'floor workflows/s',
      'floor_ratio',
      'accept p50 / p99 ms',
      'end-to-end p50 / p99 ms',
      'floor p50 / p99 ms',
      'actions / order (floor)',
      'CPU ms / order (floor)',
      'errors',
    ],
    r.sweep.map((s) => [
      s.concurrency,
      s.orders_per_s,
      s.floor_orders_per_s,
      s.floor_ratio,
      `${s.accept_p50_ms} / ${s.accept_p99_ms}`,
      `${s.e2e_p50_ms} / ${s.e2e_p99_ms}`,
      `${s.floor_p50_ms} / ${s.floor_p99_ms}`,
      `${maybe(s.actions_per_order)} (${maybe(s.floor_actions_per_order)})`,
      `${maybe(cpuMs(s.cpu_ms_per_order, s.cpu_s, s.completed))} (${maybe(cpuMs(s.floor_cpu_ms_per_order, s.floor_cpu_s, s.floor_completed))})`,
      s.errors,
    ]),
  ),
);
if (r.open_loop.length > 0) {
  out.push('\n### Open loop (fixed arrival rate, autocannon)\n');
  out.push(
    table(
      ['offered/s', 'accepted/s', 'completed/s', 'accept p50 / p99 ms', 'end-to-end p50 / p99 ms', 'errors'],
      r.open_loop.map((o) => [
        o.offered_per_s,
        o.accepted_per_s,
        o.orders_per_s,
        `${o.accept_p50_ms} / ${o.accept_p99_ms}`,
        `${o.e2e_p50_ms} / ${o.e2e_p99_ms}`,
        o.errors,
      ]),
    ),
  );
}
out.push('\n### Summary\n');
out.push(
  table(
    ['field', 'value'],
    (
      [
        'orders_per_s',
        'saturation_concurrency',
        'accept_p99_ms',
        'e2e_p50_ms',
        'e2e_p99_ms',
        'floor_orders_per_s',
        'floor_ratio',
        'actions_per_order',
        'floor_actions_per_order',
        'cpu_ms_per_order',
        'floor_cpu_ms_per_order',
        'burst_drain_s',
        'burst_lost',
        'burst_refused',
        'pg_max_connections',
        'pg_pool_budget',
      ] as const
    )
      .map((k) => [`\`${k}\``, String(maybe(r[k]))])
      .concat([
        [
          '`rss_mb` (peak)',
          Object.entries(r.rss_mb)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ],
      ]),
  ),
);

// Where the time goes, at the level with the most orders per second.
const sat = r.sweep.reduce((a, b) => (b.orders_per_s > a.orders_per_s ? b : a), r.sweep[0]!);
if (sat?.cpu_s && sat.floor_cpu_s) {
  const floorDone = sat.floor_completed ?? Math.round(sat.floor_orders_per_s * r.settings.seconds_per_level);
  const perUnit = (cpu: Record<string, number>, n: number) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round((v / n) * 1000)]));
  const rounded = (ms: Record<string, number>) => Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)]));
  const platform = sat.cpu_ms_per_order_by_process ? rounded(sat.cpu_ms_per_order_by_process) : perUnit(sat.cpu_s, sat.completed);
  const floor = sat.floor_cpu_ms_per_order_by_process ? rounded(sat.floor_cpu_ms_per_order_by_process) : perUnit(sat.floor_cpu_s, floorDone);
  const names = [...new Set([...Object.keys(platform), ...Object.keys(floor)])].filter((k) => (platform[k] ?? 0) + (floor[k] ?? 0) >= 2);
  names.sort((a, b) => (platform[b] ?? 0) + (floor[b] ?? 0) - (platform[a] ?? 0) - (floor[a] ?? 0));
  const sum = (o: Record<string, number>) => Object.values(o).reduce((s, v) => s + v, 0);
  out.push(`\n### CPU per completed order (platform) and per floor workflow, at ${sat.concurrency} in flight\n`);
  out.push(
    table(
      ['process', 'platform ms / order', 'floor ms / workflow'],
      [...names.map((k) => [k, platform[k] ?? 0, floor[k] ?? 0]), ['**total**', sum(platform), sum(floor)]],
    ),
  );
}
if (sat?.actions_per_order_by_type && sat.floor_actions_per_order_by_type) {
  const platform = sat.actions_per_order_by_type;
  const floor = sat.floor_actions_per_order_by_type;
  const types = [...new Set([...Object.keys(platform), ...Object.keys(floor)])];
  types.sort((a, b) => (platform[b] ?? 0) + (floor[b] ?? 0) - (platform[a] ?? 0) - (floor[a] ?? 0) || a.localeCompare(b));
  out.push(`\n### Temporal actions per completed order (platform) and per floor workflow, at ${sat.concurrency} in flight\n`);
  out.push(
    table(
      ['action_type', 'platform / order', 'floor / workflow'],
      [...types.map((t) => [`\`${t}\``, platform[t] ?? 0, floor[t] ?? 0]), ['**total**', maybe(sat.actions_per_order), maybe(sat.floor_actions_per_order)]],
    ),
  );
}
if (sat?.steps && sat.floor_steps) {
  out.push(`\n### Per step, at ${sat.concurrency} in flight (from the last 40 histories of the level)\n`);
  const rows = [...Object.entries(sat.steps).map(([k, v]) => [k, v] as const), ...Object.entries(sat.floor_steps).map(([k, v]) => [`floor: ${k}`, v] as const)];
  out.push(
    table(
      ['step', 'count', 'schedule-to-start p50 / p95 ms', 'execution p50 / p95 ms'],
      rows.map(([k, v]) => [k, v.count, `${v.schedule_to_start_p50_ms} / ${v.schedule_to_start_p95_ms}`, `${v.execution_p50_ms} / ${v.execution_p95_ms}`]),
    ),
  );
}
console.log(out.join('\n'));
