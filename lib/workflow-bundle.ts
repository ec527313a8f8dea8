import { join } from 'node:path';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { PROJECT_ROOT } from './infra/paths';
import { FAILURE_CONVERTER_PATH } from './temporal/connection';
import { WORKFLOW_TRACING_MODULES } from './tracing';

const quiet = () => undefined;

/** The workflow code every orders worker runs (tests and replays too): the workflows and the tracing interceptors. */
export function bundleOrderWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({
    workflowsPath: join(PROJECT_ROOT, 'workflows', 'index.ts'),
    workflowInterceptorModules: WORKFLOW_TRACING_MODULES,
    // Failures leave the workflow with their message and stack in an encoded attribute (the codec seals it).
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: console.error },
  });
}
