// The notifications pool's workflows: the entry point of its own bundle (lib/workflow-bundle.ts), apart from the orders pool's.
export { webhookEndpointWorkflow } from './webhooks';
export { orderEmailWorkflow } from './emails';
