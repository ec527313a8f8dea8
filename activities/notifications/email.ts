import { ApplicationFailure } from '@temporalio/common';
import nodemailer from 'nodemailer';
import type pg from 'pg';
import { NotificationErrorType, type EmailedTopic, type OrderEmailInput, type OrderEmailResult } from '../../contracts/notifications';
import type { Pool } from '../../lib/db';
import type { Logger } from '../../lib/logger';
import { customerEmailsSent } from '../../lib/metrics';
import type { Keyring } from '../../lib/temporal/codec';
import { unseal } from '../../lib/temporal/sealed';
import { keepAlive } from './keep-alive';

/** What sends a message: nodemailer's transport, or a test's stand-in. */
export interface Mailer {
  sendMail(message: { from: string; to: string; subject: string; text: string; messageId: string; headers: Record<string, string> }): Promise<unknown>;
  close(): void;
}

/**
 * A pooled SMTP transport from SMTP_URL: `smtp://host:port` (plain, or STARTTLS when the server
 * offers it), `smtps://user:pass@host:465` (TLS from the start). Short timeouts: a mail server
 * that does not answer is retried later by the activity, not waited on.
 */
export function createMailer(smtpUrl: string): Mailer {
  return nodemailer.createTransport({
    url: smtpUrl,
    pool: true,
    maxConnections: 3,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    // nodemailer's own log would print recipients
    logger: false,
  });
}

/** The mail domain of MAIL_FROM (`Order platform <orders@shop.example>` → shop.example), for Message-IDs. */
export const mailDomain = (from: string): string => /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'order-platform.invalid';

/** The Message-ID of an event's email: the same for every attempt, so a repeat reads as the same message to anything that dedupes on it. */
export const emailMessageId = (eventId: string, domain: string): string => `<${eventId}.order-email@${domain}>`;

const money = (minor: unknown, currency: unknown) =>
  typeof minor === 'number' ? `${(minor / 100).toFixed(2)} ${typeof currency === 'string' ? currency : ''}`.trim() : undefined;
const FAILURE_TEXT: Record<string, string> = {
  OUT_OF_STOCK: 'some of the items are out of stock',
  UNKNOWN_PRODUCT: 'an item is no longer sold',
  PAYMENT_DECLINED: 'the payment was declined',
  SHIPPING_UNAVAILABLE: 'we cannot ship to the address given',
  SHIPPING_TIMEOUT: 'the carrier did not collect the parcel in time',
  REVIEW_REJECTED: 'it did not pass our review',
};

/** The message for one event: the order's reference and what happened, nothing the customer did not give us. */
export function composeOrderEmail({ topic, orderId, data }: Pick<OrderEmailInput, 'topic' | 'orderId' | 'data'>): { subject: string; text: string } {
  const ref = orderId.slice(0, 8).toUpperCase();
  const items = Array.isArray(data.items) ? (data.items as Array<{ sku?: unknown; quantity?: unknown }>) : [];
  const lines = items.map((i) => `  ${String(i.quantity)} × ${String(i.sku)}`);
  const footer = ['', `Order reference: ${orderId}`, 'This message was sent automatically; replies are not read.'];
  const bodies: Record<EmailedTopic, { subject: string; text: string[] }> = {
    'order.placed': { subject: `We have your order ${ref}`, text: ['Thank you: we have your order and are preparing it.', '', ...lines] },
    'order.shipped': {
      subject: `Your order ${ref} is on its way`,
      text: ['The carrier has collected your parcel.', ...(typeof data.carrierRef === 'string' ? [`Carrier reference: ${data.carrierRef}`] : [])],
    },
    'order.completed': {
      subject: `Your order ${ref} is complete`,
      text: [
        'Your order is complete and your payment has been taken.',
        ...(money(data.total, data.currency) ? [`Total: ${money(data.total, data.currency)}`] : []),
      ],
    },
    'order.failed': {
      subject: `We could not complete your order ${ref}`,
      text: [`We are sorry: ${FAILURE_TEXT[String(data.reason)] ?? 'something went wrong on our side'}. You have not been charged.`],
    },
    'order.cancelled': { subject: `Your order ${ref} was cancelled`, text: ['Your order was cancelled. You have not been charged.'] },
  };
  const { subject, text } = bodies[topic];
  return { subject, text: [...text, ...footer].join('\n') };
}

/** A mail error told without what it may quote: the server's answer and nodemailer's message can name the recipient. */
function mailFailure(err: unknown): Error {
  const e = err as { code?: string; responseCode?: number; command?: string };
  const what = `SMTP ${e.command ? `${e.command} ` : ''}${e.code ?? 'failure'}${e.responseCode ? ` ${e.responseCode}` : ''}`;
  // A 5xx answer to the recipient or the message is final: no retry will make the server take it.
  if (e.responseCode !== undefined && e.responseCode >= 500 && e.responseCode < 600 && e.code !== 'EAUTH') {
    return ApplicationFailure.create({ type: NotificationErrorType.EmailRejected, message: what, nonRetryable: true });
  }
  return new Error(what);
}

export interface EmailDeps {
  pool: Pool;
  keyring: Keyring;
  /** none: this process has no SMTP_URL (an email activity that lands here is retried elsewhere) */
  mailer?: Mailer;
  from: string;
  log: Logger;
}

export function createEmailActivities({ pool, keyring, mailer, from, log }: EmailDeps) {
  const domain = mailDomain(from);
  return {
    /**
     * Sends one event's email once. The event's row is locked while the message goes out and marked
     * sent in the same transaction, so a retry, or a second attempt running beside a stuck one,
     * finds it sent and sends nothing. The one window left: the server accepted the message and
     * this process died before the commit; the retry then sends it again, with the same Message-ID.
     */
    async sendOrderEmail(input: OrderEmailInput): Promise<OrderEmailResult> {
      const { eventId, orderId, topic } = input;
      const messageId = emailMessageId(eventId, domain);
      if (!mailer) throw new Error('this process has no SMTP_URL: another notifications process sends customer emails');
      const stop = keepAlive();
      const client: pg.PoolClient = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO sent_emails (event_id, order_id, type, message_id) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING`, [
          eventId,
          orderId,
          topic,
          messageId,
        ]);
        const { rows } = await client.query<{ sent_at: Date | null }>(`SELECT sent_at FROM sent_emails WHERE event_id = $1 FOR UPDATE`, [eventId]);
        if (rows[0]?.sent_at) {
          await client.query('COMMIT');
          return { eventId, sent: false, messageId };
        }
        const { subject, text } = composeOrderEmail(input);
        try {
          await mailer.sendMail({
            from,
            to: unseal(keyring, input.to, 'customer-email'),
            subject,
            text,
            messageId,
            headers: { 'X-Order-Id': orderId, 'X-Order-Event': topic },
          });
        } catch (err) {
          throw mailFailure(err);
        }
        await client.query(`UPDATE sent_emails SET sent_at = now() WHERE event_id = $1`, [eventId]);
        await client.query('COMMIT');
        customerEmailsSent.inc({ topic });
        log.info({ orderId, eventId, topic }, 'customer email sent');
        return { eventId, sent: true, messageId };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        stop();
        client.release();
      }
    },
  };
}

export type EmailActivities = ReturnType<typeof createEmailActivities>;
