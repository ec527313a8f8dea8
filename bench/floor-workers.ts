import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { POOLS } from '../lib/infra/platform';
import { PROJECT_ROOT } from '../lib/infra/paths';

export const FLOOR_NAMESPACE = 'floor';

/**
 * The floor's workers: one process per task queue of the platform (`bench/floor-worker.ts`),
 * in their own namespace, with the environment (and so the worker settings) the pools get.
 */
export function startFloorWorkers(env: NodeJS.ProcessEnv): Array<{ name: string; child: ChildProcess }> {
  return POOLS.map((queue) => ({
    name: `floor-worker-${queue}`,
    child: spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'floor-worker.ts'), queue], {
      cwd: PROJECT_ROOT,
      env: { ...env, TEMPORAL_NAMESPACE: FLOOR_NAMESPACE },
      stdio: 'inherit',
    }),
  }));
}
