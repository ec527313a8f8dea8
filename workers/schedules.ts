import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { ORDERS_TASK_QUEUE, RECONCILIATION_SCHEDULE_ID, type ReconciliationInput } from '../contracts/orders';
import type { Logger } from '../lib/logger';

/**
 * Makes sure the reconciliation sweep is scheduled. Every orders process calls this at start;
 * the first creates the schedule and the others find it there, so the sweep runs once per
 * interval however many processes there are (and skips a run while the previous one is going).
 */
export async function ensureReconciliationSchedule(client: Client, every: string, olderThan: string, log: Logger): Promise<void> {
  const input: ReconciliationInput = { olderThanMs: msToNumber(olderThan as Duration) };
  try {
    await client.schedule.create({
      scheduleId: RECONCILIATION_SCHEDULE_ID,
      spec: { intervals: [{ every: msToNumber(every as Duration) }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconciliationWorkflow',
        taskQueue: ORDERS_TASK_QUEUE,
        workflowId: RECONCILIATION_SCHEDULE_ID,
        args: [input],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
    log.info({ scheduleId: RECONCILIATION_SCHEDULE_ID, every }, 'reconciliation schedule created');
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
