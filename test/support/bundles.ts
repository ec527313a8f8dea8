import { readFile } from 'node:fs/promises';
import type { WorkflowBundle } from '@temporalio/worker';
import { buildNotificationsWorkflowBundle, buildWorkflowBundle } from '../../lib/infra/platform';

/**
 * The workflow bundles the tests run, built once for the whole run by the global set-up (bundling is
 * seconds of CPU each time, and most files need both): their files, for processes
 * (WORKFLOW_BUNDLE_PATH, NOTIFICATIONS_WORKFLOW_BUNDLE_PATH), and their code, for in-process workers.
 * A suite whose set-up built none (the cluster's) builds them here.
 */
export const orderBundlePath = async (): Promise<string> => (await builtByGlobalSetup())?.orders ?? buildWorkflowBundle();
export const notificationsBundlePath = async (): Promise<string> => (await builtByGlobalSetup())?.notifications ?? buildNotificationsWorkflowBundle();

/** What the global set-up provided; nothing outside vitest (scripts/record-histories.ts shares these helpers). */
async function builtByGlobalSetup() {
  if (!process.env.VITEST) return undefined;
  const { inject } = await import('vitest');
  return inject('workflowBundles');
}

export const orderWorkflowBundle = async (): Promise<WorkflowBundle> => ({ code: await readFile(await orderBundlePath(), 'utf8') });
export const notificationsWorkflowBundle = async (): Promise<WorkflowBundle> => ({ code: await readFile(await notificationsBundlePath(), 'utf8') });
