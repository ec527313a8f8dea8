import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../lib/infra/paths';
import { FLOOR_CALLS, FLOOR_NAMESPACE, FLOOR_WORKFLOW_TASK_QUEUE } from './floor-contract';

/**
 * The floor's workers: one process (`bench/floor-worker.ts`) for the floor workflow's task queue
 * and one for each service it calls, in the floor's namespace, with the environment (and so the
 * worker settings) the pools get.
 */
export function startFloorWorkers(env: NodeJS.ProcessEnv): Array<{ name: string; child: ChildProcess }> {
  return [FLOOR_WORKFLOW_TASK_QUEUE, ...Object.keys(FLOOR_CALLS)].map((queue) => ({
    name: `floor-worker-${queue}`,
    child: spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'floor-worker.ts'), queue], {
      cwd: PROJECT_ROOT,
      env: { ...env, TEMPORAL_NAMESPACE: FLOOR_NAMESPACE },
      stdio: 'inherit',
    }),
  }));
}
