// Build B of test/versioning.test.ts: today's workflows, the saga with one change anyone can see. It
// lives in the test, so production code carries no switch for it.
import { setWorkflowOptions, upsertMemo } from '@temporalio/workflow';
import type { OrderResult, PlaceOrderInput } from '../../contracts/orders';
import { orderWorkflow as todaysSaga } from '../../workflows/orders';

export { reconciliationWorkflow } from '../../workflows/reconciliation';

/**
 * The saga, after a memo that names the build: a command today's code never makes, in the first
 * workflow task. Had an order of build A reached a worker of build B (or one of B's reached A),
 * its replay would fail with a nondeterminism error, and its history would show the memo or lack it.
 */
export async function orderWorkflow(input: PlaceOrderInput): Promise<OrderResult> {
  upsertMemo({ saga: 'B' });
  return todaysSaga(input);
}
setWorkflowOptions({ versioningBehavior: 'PINNED' }, orderWorkflow);
