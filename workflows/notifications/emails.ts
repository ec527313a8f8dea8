import { proxyActivities, setWorkflowOptions } from '@temporalio/workflow';
import type { EmailActivities } from '../../activities/notifications/email';
import { NOTIFICATIONS_TASK_QUEUE, NotificationErrorType, type OrderEmailInput, type OrderEmailResult } from '../../contracts/notifications';

/**
 * A mail server that is down is tried again with backoff for three days (the same budget as a
 * webhook's event); a refusal for good (5xx) is not retried. The heartbeat timeout notices a
 * worker that died mid-send within seconds; the retry then finds out from the notifications
 * database whether the message went.
 */
const mail = proxyActivities<EmailActivities>({
  taskQueue: NOTIFICATIONS_TASK_QUEUE,
  startToCloseTimeout: '1m',
  heartbeatTimeout: '10s',
  scheduleToCloseTimeout: '3d',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30m', nonRetryableErrorTypes: [NotificationErrorType.EmailRejected] },
});

/**
 * One customer email for one order event. Its workflow ID is the event's (orderEmailWorkflowId),
 * so the relay reading an event twice starts it once; the activity sends it once. Two billable
 * actions: the start and the activity.
 */
export async function orderEmailWorkflow(input: OrderEmailInput): Promise<OrderEmailResult> {
  return mail.sendOrderEmail(input);
}

// Minutes long, at most the three days of a mail server away: it finishes on the build it started on, as an order does.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, orderEmailWorkflow);
