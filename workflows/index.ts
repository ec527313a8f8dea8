// Every workflow the orders worker runs; this file is the entry point of the workflow bundle.
export { orderWorkflow } from './orders';
export { reconciliationWorkflow } from './reconciliation';
