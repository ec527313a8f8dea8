import type { BenchResults } from './results';

/** An HTML page with two SVG charts: throughput and latency against orders in flight. */
export function renderChart(results: BenchResults): string {
  const xs = results.sweep.map((r) => r.concurrency);
  const chart = (title: string, unit: string, series: Array<{ name: string; colour: string; values: number[] }>) => {
    const w = 560;
    const h = 300;
    const pad = 50;
    const max = Math.max(1, ...series.flatMap((s) => s.values)) * 1.1;
    const x = (i: number) => pad + (i * (w - 2 * pad)) / Math.max(1, xs.length - 1);
    const y = (v: number) => h - pad - (v / max) * (h - 2 * pad);
    const lines = series
      .map((s) => {
        const pts = s.values.map((v, i) => `${x(i)},${y(v)}`).join(' ');
        const dots = s.values
          .map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="3" fill="${s.colour}"><title>${s.name}: ${v} ${unit}</title></circle>`)
          .join('');
        return `<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${pts}"/>${dots}`;
      })
      .join('');
    const ticks = xs.map((c, i) => `<text x="${x(i)}" y="${h - pad + 18}" text-anchor="middle">${c}</text>`).join('');
    const yTicks = [0, 0.25, 0.5, 0.75, 1]
      .map(
        (f) =>
          `<text x="${pad - 8}" y="${y(f * max) + 4}" text-anchor="end">${Math.round(f * max)}</text><line x1="${pad}" x2="${w - pad}" y1="${y(f * max)}" y2="${y(f * max)}" stroke="#eee"/>`,
      )
      .join('');
    const legend = series.map((s, i) => `<text x="${pad + 10 + i * 150}" y="20" fill="${s.colour}">■ ${s.name}</text>`).join('');
    return `<figure><figcaption>${title}</figcaption><svg width="${w}" height="${h}" font-family="sans-serif" font-size="12">${yTicks}${lines}${ticks}${legend}
<text x="${w / 2}" y="${h - 10}" text-anchor="middle">orders in flight</text><text x="12" y="${h / 2}" transform="rotate(-90 12 ${h / 2})" text-anchor="middle">${unit}</text></svg></figure>`;
  };
  return `<!doctype html><meta charset="utf-8"><title>Order platform benchmark</title>
<body style="font-family:sans-serif"><h1>Order platform benchmark</h1><p>${results.machine.cpus} cores, ${results.machine.cpu_model ?? ''}</p>
${chart('Completed orders per second', 'orders/s', [
  { name: 'platform', colour: '#1f77b4', values: results.sweep.map((r) => r.orders_per_s) },
  { name: 'floor (bare workflow)', colour: '#999', values: results.sweep.map((r) => r.floor_orders_per_s) },
])}
${chart('Latency', 'ms', [
  { name: 'end to end p50', colour: '#2ca02c', values: results.sweep.map((r) => r.e2e_p50_ms) },
  { name: 'end to end p99', colour: '#d62728', values: results.sweep.map((r) => r.e2e_p99_ms) },
  { name: 'accept p99', colour: '#ff7f0e', values: results.sweep.map((r) => r.accept_p99_ms) },
])}
</body>`;
}
