import { createEmailActivities, type EmailDeps } from './email';
import { createWebhookActivities, type WebhookDeps } from './webhooks';

/** Every activity of the notifications pool: webhook endpoints and deliveries, customer emails. */
export function createNotificationActivities(deps: WebhookDeps & Omit<EmailDeps, 'log' | 'pool' | 'keyring'>) {
  return { ...createWebhookActivities(deps), ...createEmailActivities(deps) };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
