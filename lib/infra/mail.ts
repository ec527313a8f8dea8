import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { simpleParser, type AddressObject } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** One message the local mail server received, as its inbox lists it. */
export interface ReceivedMail {
  id: number;
  messageId?: string;
  from?: string;
  /** the envelope's recipients (RCPT TO) */
  to: string[];
  subject?: string;
  text?: string;
  headers: Record<string, string>;
  receivedAt: string;
  size: number;
}

export interface RunningMailServer {
  /** what the notifications pool's SMTP_URL is set to */
  smtpUrl: string;
  /** the inbox: GET /messages lists what was received, as JSON */
  inboxUrl: string;
  messages: () => ReceivedMail[];
  /** a slow server, on purpose: each message is held before the server accepts it, until `release` */
  hold: () => void;
  release: () => void;
  /** messages held now, their sender still waiting for the server's answer */
  held: () => number;
  stop: () => Promise<void>;
}

const listen = (
  server: { listen: (port: number, host: string, done: () => void) => unknown; once: (e: 'error', f: (err: Error) => void) => unknown },
  port: number,
  host: string,
) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });

const addresses = (field: AddressObject | AddressObject[] | undefined) => (Array.isArray(field) ? field : field ? [field] : []).map((a) => a.text).join(', ');

/**
 * A real SMTP server for `npm start` and the tests (smtp-server): it accepts every message, keeps
 * each (in memory and, with `dir`, as an .eml file) and serves a small inbox over HTTP,
 * `GET /messages`, so a person or a test can see what customers were sent. Plain SMTP on loopback,
 * no TLS; any user name and password are accepted, so an `smtp://user:pass@…` URL works too.
 */
export async function startMailServer({
  port = 0,
  inboxPort = 0,
  host = '127.0.0.1',
  dir,
}: { port?: number; inboxPort?: number; host?: string; dir?: string } = {}): Promise<RunningMailServer> {
  if (dir) await mkdir(dir, { recursive: true });
  const received: ReceivedMail[] = [];
  const closed = new Set<string>();
  let holding = false;
  /** held messages: how to release each, and its connection */
  const waiting = new Map<() => void, string>();
  const smtp = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    // Offered STARTTLS with a self-signed certificate, a client would try it and fail: plain it is, on loopback.
    disabledCommands: ['STARTTLS'],
    logger: false,
    banner: 'order-platform local mail server',
    onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'local' }),
    onClose: (session) => void closed.add(session.id),
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const released = holding ? new Promise<void>((resolve) => waiting.set(resolve, session.id)) : Promise.resolve();
        Promise.all([simpleParser(raw), released])
          .then(async ([mail]) => {
            // As a real server: a message is taken when the server answers 250; a sender gone before that never sent it.
            if (closed.has(session.id)) return;
            const id = received.length + 1;
            received.push({
              id,
              ...(mail.messageId ? { messageId: mail.messageId } : {}),
              from: addresses(mail.from),
              to: session.envelope.rcptTo.map((r) => r.address),
              ...(mail.subject ? { subject: mail.subject } : {}),
              ...(mail.text ? { text: mail.text } : {}),
              headers: Object.fromEntries([...mail.headers.entries()].filter(([, v]) => typeof v === 'string') as Array<[string, string]>),
              receivedAt: new Date().toISOString(),
              size: raw.length,
            });
            if (dir) await writeFile(join(dir, `${String(id).padStart(6, '0')}.eml`), raw);
            callback();
          })
          .catch((err: Error) => callback(err));
      });
    },
  });
  await listen(smtp, port, host);
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const inbox: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://inbox').pathname;
    if (req.method === 'GET' && (path === '/messages' || path === '/')) {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(received, null, 2));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
  });
  await listen(inbox, inboxPort, host);
  const { port: httpPort } = inbox.address() as AddressInfo;

  return {
    smtpUrl: `smtp://${host}:${smtpPort}`,
    inboxUrl: `http://${host}:${httpPort}/messages`,
    messages: () => [...received],
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const resolve of waiting.keys()) resolve();
      waiting.clear();
    },
    held: () => [...waiting.values()].filter((id) => !closed.has(id)).length,
    stop: async () => {
      await Promise.all([new Promise<void>((resolve) => smtp.close(() => resolve())), new Promise<void>((resolve) => inbox.close(() => resolve()))]);
    },
  };
}
