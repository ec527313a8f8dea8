import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One event as the benchmark's storefront first heard it. */
interface Arrival {
  type: string;
  /** when the order's step recorded the event (the payload's `timestamp`) */
  eventAt: number;
  /** when its first delivery reached the receiver */
  receivedAt: number;
}

/** How long events took from the order's step to the storefront's webhook endpoint. */
export interface WebhookLatency {
  events: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  /** deliveries of an event ID already received (at-least-once: a repeat, never a second event) */
  repeats: number;
}

/**
 * The benchmark's storefront endpoint: a loopback receiver that answers 204 at once and notes,
 * for each event ID, when the order's step recorded it and when it first arrived. It measures
 * the whole path a storefront waits on: the order event log, the notifications relay, the
 * endpoint's delivery workflow and the signed POST.
 */
export async function startWebhookProbe() {
  const arrivals = new Map<string, Arrival>();
  let repeats = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const receivedAt = Date.now();
      res.writeHead(204).end();
      const id = String(req.headers['webhook-id'] ?? '');
      if (arrivals.has(id)) {
        repeats++;
        return;
      }
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; timestamp: string };
      arrivals.set(id, { type: event.type, eventAt: Date.parse(event.timestamp), receivedAt });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    /** Latency of the events the platform recorded between `from` and `to` (epoch ms) that have arrived. */
    latency(from: number, to: number, pct: (values: number[], p: number) => number): WebhookLatency {
      const ms = [...arrivals.values()].filter((a) => a.eventAt >= from && a.eventAt < to).map((a) => a.receivedAt - a.eventAt);
      return {
        events: ms.length,
        p50_ms: ms.length ? pct(ms, 50) : null,
        p99_ms: ms.length ? pct(ms, 99) : null,
        max_ms: ms.length ? Math.max(...ms) : null,
        repeats,
      };
    },
    received: () => arrivals.size,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
