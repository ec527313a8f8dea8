import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { WebhookActivities } from '../../activities/notifications/webhooks';
import {
  NOTIFICATIONS_TASK_QUEUE,
  NotificationErrorType,
  createWebhookEndpointUpdate,
  deleteWebhookEndpointUpdate,
  enableWebhookEndpointUpdate,
  replayWebhookEventUpdate,
  rotateWebhookSecretUpdate,
  webhookEventsSignal,
  type WebhookChangeRequest,
  type WebhookEndpointWorkflowInput,
} from '../../contracts/notifications';

/** An endpoint's changes: one statement each, asked for by a client waiting on the API; a database away that long is a 503 there. */
const manage = proxyActivities<WebhookActivities>({
  taskQueue: NOTIFICATIONS_TASK_QUEUE,
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '1m',
  retry: { initialInterval: '250ms', maximumInterval: '5s', nonRetryableErrorTypes: Object.values(NotificationErrorType) },
});

/**
 * A round of deliveries sends for up to 20 s, plus one request's deadline (at most 30 s); the
 * heartbeat timeout notices a worker that died mid-round within seconds, and the retry resends
 * the event that was in flight (same webhook-id). Infrastructure failures (the database, the lock
 * still held by a vanished round) retry without end: an endpoint's events must not be dropped
 * because its own service had a bad hour. The endpoint's own failures are not retries of this
 * activity: the round returns them, and this workflow waits.
 */
const delivery = proxyActivities<WebhookActivities>({
  taskQueue: NOTIFICATIONS_TASK_QUEUE,
  startToCloseTimeout: '2m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/** Rounds per run before continuing as new: about eight history events a round keeps a run near 4,000 events. */
const ROUNDS_PER_RUN = 500;

/**
 * One webhook endpoint: it delivers the endpoint's waiting events (kept in order in the
 * notifications database, queued by the relay) one at a time, waits with backoff when the
 * endpoint fails, waits for its client when it has been disabled, and applies its client's
 * changes (create, rotate, enable, replay, delete) as updates, each checked to come from the
 * client that owns it. It runs as long as the endpoint exists, continuing as new now and then.
 *
 * Billable actions per event, when the endpoint answers: the relay's signal and the delivery
 * round's activity (both shared by every event that arrives together). Per failed attempt: the
 * round and the backoff's timer.
 */
export async function webhookEndpointWorkflow(input: WebhookEndpointWorkflowInput): Promise<void> {
  const { endpointId, owner } = input;
  // The queue is looked at on start: events may have been queued while no run was listening.
  let due = true;
  let disabled = input.disabled ?? false;
  let deleted = false;
  /** how many times its client has enabled it or asked for a replay: each cuts a wait short */
  let nudges = 0;

  const ownerOnly = ({ requestedBy }: WebhookChangeRequest) => {
    if (requestedBy !== owner) {
      throw ApplicationFailure.create({
        type: NotificationErrorType.NotEndpointOwner,
        message: `endpoint ${endpointId} belongs to another client`,
        nonRetryable: true,
      });
    }
  };
  const nudge = () => {
    due = true;
    nudges++;
  };
  setHandler(webhookEventsSignal, () => {
    due = true;
  });
  setHandler(createWebhookEndpointUpdate, ({ url, events }) => manage.createWebhookEndpoint({ endpointId, owner, url, events }), { validator: ownerOnly });
  setHandler(rotateWebhookSecretUpdate, () => manage.rotateWebhookSecret({ endpointId, rotationId: uuid4() }), { validator: ownerOnly });
  setHandler(
    enableWebhookEndpointUpdate,
    async () => {
      const view = await manage.enableWebhookEndpoint({ endpointId });
      disabled = false;
      nudge();
      return view;
    },
    { validator: ownerOnly },
  );
  setHandler(
    replayWebhookEventUpdate,
    async ({ eventId }) => {
      const replayed = await manage.replayWebhookEvent({ endpointId, eventId });
      if (replayed) nudge();
      return replayed;
    },
    { validator: ownerOnly },
  );
  setHandler(
    deleteWebhookEndpointUpdate,
    async () => {
      const result = await manage.deleteWebhookEndpoint({ endpointId });
      deleted = true;
      return result;
    },
    { validator: ownerOnly },
  );

  for (let rounds = 1; !deleted; rounds++) {
    await condition(() => deleted || (due && !disabled));
    if (deleted) break;
    due = false;
    const nudgesBefore = nudges;
    const round = await delivery.deliverPendingWebhooks({ endpointId });
    switch (round.state) {
      case 'idle':
        break;
      case 'more':
        due = true;
        break;
      case 'retry':
        // Newer events wait behind the one that failed (they are delivered in order); only its client or a delete cuts the wait short.
        await condition(() => deleted || nudges !== nudgesBefore, round.retryInMs);
        due = true;
        break;
      case 'disabled':
        // Unless it was enabled while the round ran: then the round saw it disabled, and the queue is due again.
        if (nudges === nudgesBefore) disabled = true;
        break;
      case 'gone':
        deleted = true;
        break;
    }
    if (!deleted && (rounds >= (input.roundsPerRun ?? ROUNDS_PER_RUN) || workflowInfo().continueAsNewSuggested)) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof webhookEndpointWorkflow>({ ...input, disabled });
    }
  }
  await condition(allHandlersFinished);
}

// It runs as long as its endpoint exists: pinned, it would hold its build's workers forever. It moves to the
// current build at its next task instead, so a change to it must replay a run in progress (patched()).
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, webhookEndpointWorkflow);
