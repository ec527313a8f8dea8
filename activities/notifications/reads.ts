import type { WebhookDelivery, WebhookDeliveryOutcome, WebhookEndpointView } from '../../contracts/notifications';
import type { OrderEventTopic } from '../../contracts/orders';
import type { NotificationsDb } from './db';
import { endpointView } from './webhooks';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Lines of the delivery log one read returns, newest first. */
export const DELIVERY_LOG_PAGE = 100;

/**
 * The notifications pool's HTTP reads, how the API shows a client its endpoints and their delivery
 * log without a workflow or this service's database. Each is asked for by owner (the caller's
 * identity key): someone else's endpoint reads as none. Never a secret.
 */
export function createWebhookReads({ db }: { db: NotificationsDb }) {
  const own = async (query: URLSearchParams) => {
    const id = query.get('id') ?? '';
    const owner = query.get('owner') ?? '';
    if (!UUID.test(id) || !owner) return undefined;
    const row = await db.webhookEndpoint.findFirst({ where: { id, owner, deletedAt: null } });
    return row ?? undefined;
  };
  const view = (row: NonNullable<Awaited<ReturnType<typeof own>>>): WebhookEndpointView =>
    endpointView({
      id: row.id,
      owner: row.owner,
      url: row.url,
      events: row.events as OrderEventTopic[],
      status: row.status as WebhookEndpointView['status'],
      secret: row.secret,
      previous_secret: row.previousSecret,
      previous_secret_expires_at: row.previousSecretExpiresAt,
      disabled_at: row.disabledAt,
      disabled_reason: row.disabledReason,
      deleted_at: row.deletedAt,
      created_at: row.createdAt,
    });

  return {
    /** `?owner=`: the client's endpoints, oldest first */
    '/webhook-endpoints': async (query: URLSearchParams): Promise<{ webhooks: WebhookEndpointView[] }> => {
      const owner = query.get('owner') ?? '';
      const rows = owner ? await db.webhookEndpoint.findMany({ where: { owner, deletedAt: null }, orderBy: { createdAt: 'asc' } }) : [];
      return { webhooks: rows.map(view) };
    },
    /** `?id=&owner=`: one endpoint, or null */
    '/webhook-endpoint': async (query: URLSearchParams): Promise<{ webhook: WebhookEndpointView | null }> => {
      const row = await own(query);
      return { webhook: row ? view(row) : null };
    },
    /** `?id=&owner=`: the endpoint's delivery log, newest first, or null */
    '/webhook-deliveries': async (query: URLSearchParams): Promise<{ deliveries: WebhookDelivery[] | null }> => {
      const row = await own(query);
      if (!row) return { deliveries: null };
      const lines = await db.webhookAttempt.findMany({ where: { endpointId: row.id }, orderBy: { id: 'desc' }, take: DELIVERY_LOG_PAGE });
      return {
        deliveries: lines.map((l) => ({
          ...(l.eventId ? { eventId: l.eventId } : {}),
          ...(l.type ? { type: l.type } : {}),
          ...(l.orderId ? { orderId: l.orderId } : {}),
          outcome: l.outcome as WebhookDeliveryOutcome,
          ...(l.attempt !== null ? { attempt: l.attempt } : {}),
          ...(l.statusCode !== null ? { statusCode: l.statusCode } : {}),
          ...(l.error !== null ? { error: l.error } : {}),
          ...(l.durationMs !== null ? { durationMs: l.durationMs } : {}),
          at: l.createdAt.toISOString(),
        })),
      };
    },
  };
}
