import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { ApplicationFailure, WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy, type UpdateDefinition } from '@temporalio/common';
import { z } from 'zod';
import { webhookUrlProblem } from '../activities/notifications/targets';
import { SCOPES } from '../contracts/auth';
import {
  NOTIFICATIONS_TASK_QUEUE,
  NotificationErrorType,
  createWebhookEndpointUpdate,
  deleteWebhookEndpointUpdate,
  enableWebhookEndpointUpdate,
  replayWebhookEventUpdate,
  rotateWebhookSecretUpdate,
  webhookWorkflowId,
  type WebhookDelivery,
  type WebhookEndpointView,
} from '../contracts/notifications';
import type { webhookEndpointWorkflow } from '../workflows/notifications';
import { principalOf } from './authentication';
import { HttpError } from './errors';
import { defineRoute, mount, type Guards } from './routes';
import {
  createWebhookSchema,
  createdWebhookSchema,
  deletedWebhookSchema,
  errorSchema,
  replayedWebhookEventSchema,
  rotatedWebhookSecretSchema,
  webhookDeliveriesSchema,
  webhookEventParams,
  webhookListSchema,
  webhookParams,
  webhookSchema,
} from './schemas';

const scopes = { scopes: [SCOPES.webhooks] } as const;
const notFound = { description: 'no such endpoint: unknown, deleted, or another client’s', body: errorSchema };
const unavailable = { description: 'the notifications service did not answer in time (or the request deadline passed): retry', body: errorSchema };
const noWebhook = (id: string) => new HttpError(404, 'not_found', `no webhook endpoint ${id}`);
const byId = (params: Record<string, string>) => noWebhook(String(params.id));
const DESCRIBE_SIGNING =
  'Each event is POSTed as Standard Webhooks describe: `webhook-id` (the event ID, the same on every retry), `webhook-timestamp` and `webhook-signature` ' +
  '(`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret in force), and a body `{ type, timestamp, data: { orderId, … } }` with nothing personal in it.';

export const createWebhookRoute = defineRoute({
  method: 'post',
  path: '/webhooks',
  operationId: 'createWebhook',
  tag: 'webhooks',
  access: scopes,
  summary: 'Register a webhook endpoint for the events of this client’s orders',
  description: `${DESCRIBE_SIGNING} The signing secret is in this answer only. Delivery is at least once, in order per endpoint, retried with backoff; an endpoint failing for too long is disabled and its events wait.`,
  body: createWebhookSchema,
  responses: {
    201: {
      description: 'registered; `secret` is shown this once',
      body: createdWebhookSchema,
      headers: z.object({ Location: z.string() }),
      links: {
        GetWebhook: { operationId: 'getWebhook', parameters: { id: '$response.body#/id' } },
        ListWebhookDeliveries: { operationId: 'listWebhookDeliveries', parameters: { id: '$response.body#/id' } },
        DeleteWebhook: { operationId: 'deleteWebhook', parameters: { id: '$response.body#/id' } },
      },
    },
    400: { description: 'fields at fault (a URL that is not https: to a public address, an unknown topic): `fields` lists each', body: errorSchema },
    413: { description: 'the body is larger than 64 kB', body: errorSchema },
    503: unavailable,
  },
});

export const listWebhooksRoute = defineRoute({
  method: 'get',
  path: '/webhooks',
  operationId: 'listWebhooks',
  tag: 'webhooks',
  access: scopes,
  summary: 'This client’s webhook endpoints',
  responses: { 200: { description: 'its endpoints, oldest first', body: webhookListSchema }, 503: unavailable },
});

export const getWebhookRoute = defineRoute({
  method: 'get',
  path: '/webhooks/{id}',
  operationId: 'getWebhook',
  tag: 'webhooks',
  access: scopes,
  summary: 'One of this client’s webhook endpoints (never its secret)',
  params: webhookParams,
  notFound: byId,
  responses: { 200: { description: 'the endpoint', body: webhookSchema }, 404: notFound, 503: unavailable },
});

export const deleteWebhookRoute = defineRoute({
  method: 'delete',
  path: '/webhooks/{id}',
  operationId: 'deleteWebhook',
  tag: 'webhooks',
  access: scopes,
  summary: 'Delete an endpoint: nothing more is sent to it, what waited for it is dropped',
  params: webhookParams,
  notFound: byId,
  responses: { 200: { description: 'deleted', body: deletedWebhookSchema }, 404: notFound, 503: unavailable },
});

export const rotateWebhookSecretRoute = defineRoute({
  method: 'post',
  path: '/webhooks/{id}/rotate-secret',
  operationId: 'rotateWebhookSecret',
  tag: 'webhooks',
  access: scopes,
  summary: 'A new signing secret; the previous one keeps signing beside it for a grace period',
  description:
    'During the grace period every delivery carries two signatures in `webhook-signature`, one per secret: a receiver that checks either keeps working while it switches.',
  params: webhookParams,
  notFound: byId,
  responses: { 200: { description: 'the new secret, shown this once', body: rotatedWebhookSecretSchema }, 404: notFound, 503: unavailable },
});

export const enableWebhookRoute = defineRoute({
  method: 'post',
  path: '/webhooks/{id}/enable',
  operationId: 'enableWebhook',
  tag: 'webhooks',
  access: scopes,
  summary: 'Enable a disabled endpoint: the events that waited for it are delivered, in order',
  params: webhookParams,
  notFound: byId,
  responses: { 200: { description: 'the endpoint, enabled', body: webhookSchema }, 404: notFound, 503: unavailable },
});

export const listWebhookDeliveriesRoute = defineRoute({
  method: 'get',
  path: '/webhooks/{id}/deliveries',
  operationId: 'listWebhookDeliveries',
  tag: 'webhooks',
  access: scopes,
  summary: 'The endpoint’s delivery log: every attempt (event, attempt, status or error, duration, time), its disabling and enabling',
  params: webhookParams,
  notFound: byId,
  responses: { 200: { description: 'the latest lines, newest first', body: webhookDeliveriesSchema }, 404: notFound, 503: unavailable },
});

export const replayWebhookDeliveryRoute = defineRoute({
  method: 'post',
  path: '/webhooks/{id}/deliveries/{eventId}/replay',
  operationId: 'replayWebhookDelivery',
  tag: 'webhooks',
  access: scopes,
  summary: 'Deliver an event to this endpoint again, with the same event ID',
  params: webhookEventParams,
  notFound: byId,
  responses: {
    202: { description: 'queued: it is delivered again shortly (once the endpoint is enabled, if it is disabled)', body: replayedWebhookEventSchema },
    404: { description: 'no such endpoint, or no such event for it', body: errorSchema },
    503: unavailable,
  },
});

export const webhookRoutes = [
  createWebhookRoute,
  listWebhooksRoute,
  getWebhookRoute,
  deleteWebhookRoute,
  rotateWebhookSecretRoute,
  enableWebhookRoute,
  listWebhookDeliveriesRoute,
  replayWebhookDeliveryRoute,
];

/** Reads of the notifications pool (`/webhook-endpoints`, …), from the first of its processes that answers. */
export function notificationsReads(urls: string[], timeoutMs: number) {
  let next = 0;
  return async function read<T>(path: string, query: Record<string, string>): Promise<T> {
    const search = new URLSearchParams(query).toString();
    for (let i = 0; i < urls.length; i++) {
      const url = urls[(next + i) % urls.length]!;
      try {
        const res = await fetch(`${url}${path}?${search}`, { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) continue;
        next = (next + i) % urls.length;
        return (await res.json()) as T;
      } catch {
        // the next process, if there is one
      }
    }
    throw new HttpError(503, 'unavailable', 'the notifications service cannot be read right now; retry', undefined, { 'Retry-After': '5' });
  };
}

export interface WebhooksDeps {
  guards: Guards;
  client: Client;
  /** the notifications pool's processes (their reads) */
  urls: string[];
  /** plain http: to this machine (npm start, tests) */
  allowLoopbackHttp: boolean;
  /** each read of the notifications pool answers within this */
  readTimeoutMs: number;
}

/**
 * The storefront's webhook endpoints. Reads go to the notifications pool's HTTP reads; changes are
 * updates of the endpoint's workflow (started with the update when it is not running), whose
 * validators check again that the caller owns the endpoint. Someone else's endpoint answers 404,
 * exactly as an unknown one.
 */
export function webhooksRouter({ guards, client, urls, allowLoopbackHttp, readTimeoutMs }: WebhooksDeps): Router {
  const router = Router();
  const read = notificationsReads(urls, readTimeoutMs);

  /** The caller's endpoint, or 404. */
  async function ownEndpoint(id: string, owner: string): Promise<WebhookEndpointView> {
    const { webhook } = await read<{ webhook: WebhookEndpointView | null }>('/webhook-endpoint', { id, owner });
    if (!webhook) throw noWebhook(id);
    return webhook;
  }

  /** An update of the endpoint's workflow; a refusal because it is gone or someone else's is the same 404. */
  async function change<Ret, Arg>(endpointId: string, owner: string, update: UpdateDefinition<Ret, [Arg]>, arg: Arg): Promise<Ret> {
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof webhookEndpointWorkflow>('webhookEndpointWorkflow', {
      workflowId: webhookWorkflowId(endpointId),
      taskQueue: NOTIFICATIONS_TASK_QUEUE,
      args: [{ endpointId, owner }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
    try {
      return await client.workflow.executeUpdateWithStart(update, { args: [arg], startWorkflowOperation });
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      const type = cause instanceof ApplicationFailure ? cause.type : undefined;
      if (type === NotificationErrorType.EndpointNotFound || type === NotificationErrorType.NotEndpointOwner) throw noWebhook(endpointId);
      throw err;
    }
  }

  // The URL's rules depend on the deployment (loopback http: or not): they refine the documented schema here.
  const createBody = createWebhookSchema.superRefine(({ url }, ctx) => {
    const problem = webhookUrlProblem(url, { allowLoopbackHttp });
    if (problem) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
  });

  mount(
    router,
    guards,
    createWebhookRoute,
    async function createWebhook({ body }, req, res) {
      const { key: owner } = principalOf(res.locals);
      const id = randomUUID();
      const created = await change(id, owner, createWebhookEndpointUpdate, { requestedBy: owner, url: body.url, events: body.events });
      req.log.info({ webhookId: id, events: body.events }, 'webhook endpoint registered');
      return { status: 201, body: created, headers: { Location: `/webhooks/${id}` } };
    },
    { body: createBody },
  );

  mount(router, guards, listWebhooksRoute, async function listWebhooks(_input, _req, res) {
    const { key: owner } = principalOf(res.locals);
    return { status: 200, body: await read<{ webhooks: WebhookEndpointView[] }>('/webhook-endpoints', { owner }) };
  });

  mount(router, guards, getWebhookRoute, async function getWebhook({ params: { id } }, _req, res) {
    return { status: 200, body: await ownEndpoint(id, principalOf(res.locals).key) };
  });

  mount(router, guards, deleteWebhookRoute, async function deleteWebhook({ params: { id } }, req, res) {
    const { key: owner } = principalOf(res.locals);
    await ownEndpoint(id, owner);
    const deleted = await change(id, owner, deleteWebhookEndpointUpdate, { requestedBy: owner });
    req.log.info({ webhookId: id }, 'webhook endpoint deleted');
    return { status: 200, body: deleted };
  });

  mount(router, guards, rotateWebhookSecretRoute, async function rotateWebhookSecret({ params: { id } }, req, res) {
    const { key: owner } = principalOf(res.locals);
    await ownEndpoint(id, owner);
    const rotated = await change(id, owner, rotateWebhookSecretUpdate, { requestedBy: owner });
    req.log.info({ webhookId: id, previousSecretExpiresAt: rotated.previousSecretExpiresAt }, 'webhook secret rotated');
    return { status: 200, body: rotated };
  });

  mount(router, guards, enableWebhookRoute, async function enableWebhook({ params: { id } }, req, res) {
    const { key: owner } = principalOf(res.locals);
    await ownEndpoint(id, owner);
    const enabled = await change(id, owner, enableWebhookEndpointUpdate, { requestedBy: owner });
    req.log.info({ webhookId: id }, 'webhook endpoint enabled');
    return { status: 200, body: enabled };
  });

  mount(router, guards, listWebhookDeliveriesRoute, async function listWebhookDeliveries({ params: { id } }, _req, res) {
    const { deliveries } = await read<{ deliveries: WebhookDelivery[] | null }>('/webhook-deliveries', { id, owner: principalOf(res.locals).key });
    if (!deliveries) throw noWebhook(id);
    return { status: 200, body: { deliveries: deliveries as z.input<typeof webhookDeliveriesSchema>['deliveries'] } };
  });

  mount(router, guards, replayWebhookDeliveryRoute, async function replayWebhookDelivery({ params: { id, eventId } }, req, res) {
    const { key: owner } = principalOf(res.locals);
    await ownEndpoint(id, owner);
    const replayed = await change(id, owner, replayWebhookEventUpdate, { requestedBy: owner, eventId });
    if (!replayed) throw new HttpError(404, 'not_found', `webhook endpoint ${id} never had event ${eventId}`);
    req.log.info({ webhookId: id, eventId }, 'webhook event replay requested');
    return { status: 202, body: replayed };
  });

  return router;
}
