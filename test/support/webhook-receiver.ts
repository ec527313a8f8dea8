import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a test receiver got. */
export interface ReceivedWebhook {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** the parsed body */
  event: { type: string; timestamp: string; data: { orderId: string } & Record<string, unknown> };
  /** this request's number among those with the same webhook-id (1 for the first) */
  attempt: number;
  /** what the receiver answered (0: not yet, or the platform hung up before it did) */
  status: number;
  /** when it arrived */
  receivedAt: number;
  headers: IncomingHttpHeaders;
}

/** What the receiver does with one request: answer `status` after `delayMs`. */
export interface Behaviour {
  status: number;
  delayMs?: number;
}

/**
 * A webhook receiver on a loopback port, as a storefront runs one: it logs every request (headers,
 * body, what it answered) and answers as `behave` says, so a test can make it fail, hang past the
 * platform's timeout or answer slowly on purpose.
 */
export async function startWebhookReceiver(behave: (request: Omit<ReceivedWebhook, 'status' | 'receivedAt'>) => Behaviour = () => ({ status: 204 })) {
  const log: ReceivedWebhook[] = [];
  const attempts = new Map<string, number>();
  let behaviour = behave;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const request = {
        id,
        timestamp: String(req.headers['webhook-timestamp'] ?? ''),
        signature: String(req.headers['webhook-signature'] ?? ''),
        body,
        event: JSON.parse(body) as ReceivedWebhook['event'],
        attempt,
        headers: req.headers,
      };
      const { status, delayMs = 0 } = behaviour(request);
      const entry: ReceivedWebhook = { ...request, status: 0, receivedAt: Date.now() };
      log.push(entry);
      const answer = () => {
        if (res.destroyed) return;
        entry.status = status;
        res.writeHead(status).end();
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    /** every request so far, in the order they arrived */
    log: () => [...log],
    /** the requests answered 2xx */
    accepted: () => log.filter((r) => r.status >= 200 && r.status < 300),
    behave: (next: typeof behave) => {
      behaviour = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
