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

out.push('### Closed loop (each virtual customer places an order and waits for its end)\n');
out.push(
  table(
    ['orders in flight', 'platform orders/s', 'floor workflows/s', 'floor_ratio', 'accept p50 / p99 ms', 'end-to-end p50 / p99 ms', 'floor p50 ms', 'errors'],
    r.sweep.map((s) => [s.concurrency, s.orders_per_s, s.floor_orders_per_s, s.floor_ratio, `${s.accept_p50_ms} / ${s.accept_p99_ms}`, `${s.e2e_p50_ms} / ${s.e2e_p99_ms}`, s.floor_p50_ms, s.errors]),
  ),
);
if (r.open_loop.length > 0) {
  out.push('\n### Open loop (fixed arrival rate, autocannon)\n');
  out.push(
    table(
      ['offered/s', 'accepted/s', 'completed/s', 'accept p50 / p99 ms', 'end-to-end p50 / p99 ms', 'errors'],
      r.open_loop.map((o) => [o.offered_per_s, o.accepted_per_s, o.orders_per_s, `${o.accept_p50_ms} / ${o.accept_p99_ms}`, `${o.e2e_p50_ms} / ${o.e2e_p99_ms}`, o.errors]),
    ),
  );
}
out.push('\n### Summary\n');
out.push(
  table(
    ['field', 'value'],
    (['orders_per_s', 'saturation_concurrency', 'accept_p99_ms', 'e2e_p50_ms', 'e2e_p99_ms', 'floor_orders_per_s', 'floor_ratio', 'burst_drain_s', 'burst_lost', 'burst_refused', 'pg_max_connections', 'pg_pool_budget'] as const).map((k) => [
      `\`${k}\``,
      String(r[k]),
    ]).concat([['`rss_mb` (peak)', Object.entries(r.rss_mb).map(([k, v]) => `${k} ${v}`).join(', ')]]),
  ),
);

// Where the time goes, at the level with the most orders per second.
const sat = r.sweep.reduce((a, b) => (b.orders_per_s > a.orders_per_s ? b : a), r.sweep[0]!);
if (sat?.cpu_s && sat.floor_cpu_s) {
  const floorDone = sat.floor_completed ?? Math.round(sat.floor_orders_per_s * r.settings.seconds_per_level);
  const perUnit = (cpu: Record<string, number>, n: number) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round((v / n) * 1000)]));
  const platform = perUnit(sat.cpu_s, sat.completed);
  const floor = perUnit(sat.floor_cpu_s, floorDone);
  const names = [...new Set([...Object.keys(platform), ...Object.keys(floor)])].filter((k) => (platform[k] ?? 0) + (floor[k] ?? 0) >= 2);
  names.sort((a, b) => (platform[b] ?? 0) + (floor[b] ?? 0) - (platform[a] ?? 0) - (floor[a] ?? 0));
  const sum = (o: Record<string, number>) => Object.values(o).reduce((s, v) => s + v, 0);
  out.push(`\n### CPU per completed order (platform) and per floor workflow, at ${sat.concurrency} in flight\n`);
  out.push(table(['process', 'platform ms / order', 'floor ms / workflow'], [...names.map((k) => [k, platform[k] ?? 0, floor[k] ?? 0]), ['**total**', sum(platform), sum(floor)]]));
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
