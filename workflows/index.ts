// Every workflow the orders worker runs; this file is the entry point of the workflow bundle.
export { orderWorkflow } from './orders';
export { listProductsWorkflow } from './catalogue';
export { platformHealthWorkflow } from './health';
export { reconciliationWorkflow } from './reconciliation';
