import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { connectClient, temporalConnectionSettings } from '../lib/temporal/connection';
import {
  DEFAULT_DEPLOYMENT_NAME,
  describeDeployment,
  describeVersion,
  openPinnedCount,
  setCurrentVersion,
  setRampingVersion,
  waitUntilDrained,
  type DeploymentState,
  type DeploymentTarget,
  type RoutingOptions,
} from '../lib/temporal/versioning';

/**
 * The platform's Worker Deployment, for the person shipping a build (README: "Shipping a workflow
 * change"). The same calls as `temporal worker deployment …`, plus what the CLI does not do: wait
 * until a build has no open orders, and name the build to roll back to.
 * Connects like every process of the platform (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key…).
 */
const USAGE = `usage: npm run deploy -- <command> [options]
  status                          the deployment: current build, ramp, each build's state, task queues and open pinned orders
  ramp <build-id> <percent>       send <percent>% of new orders to <build-id> (the rest to the current build)
  ramp off                        end the ramp: every new order to the current build
  promote <build-id>              make <build-id> current: it takes every new order (a ramp ends)
  rollback [<build-id>]           make the build that was current before current again (or <build-id>)
  drain <build-id> [--timeout 48h]  wait until no open order is pinned to <build-id>, then exit 0: its workers may stop
options:
  --deployment-name <name>        default: WORKER_DEPLOYMENT_NAME or ${DEFAULT_DEPLOYMENT_NAME}
  --ignore-missing-task-queues    promote/ramp although the build lacks a task queue the current build polls (a pool removed on purpose)
  --allow-no-pollers              promote/ramp a build none of whose workers has polled yet`;

function parseArgs(argv: string[]) {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) positional.push(arg);
    else if (['--deployment-name', '--timeout'].includes(arg)) flags.set(arg, argv[++i] ?? '');
    else flags.set(arg, true);
  }
  return { positional, flags };
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function printState(state: DeploymentState | undefined, deploymentName: string): void {
  if (!state) {
    console.log(`${deploymentName}: no worker of it has polled yet`);
    return;
  }
  console.log(`${deploymentName}: current ${state.current ?? '(none: unversioned workers)'}`);
  if (state.ramping) console.log(`  ramping ${state.ramping.buildId} at ${state.ramping.percentage}% of new orders`);
  if (state.propagating) console.log('  (the routing is still reaching the task queues)');
}

async function main(): Promise<void> {
  const { positional, flags } = parseArgs(process.argv.slice(2));
  const [command, ...args] = positional;
  if (!command || flags.has('--help')) {
    console.log(USAGE);
    return;
  }
  const deploymentName = (flags.get('--deployment-name') as string | undefined) ?? process.env.WORKER_DEPLOYMENT_NAME ?? DEFAULT_DEPLOYMENT_NAME;
  const routing: RoutingOptions = { ignoreMissingTaskQueues: flags.has('--ignore-missing-task-queues'), allowNoPollers: flags.has('--allow-no-pollers') };
  const settings = temporalConnectionSettings();
  const { connection } = await connectClient(settings);
  const target: DeploymentTarget = { connection, namespace: settings.namespace, deploymentName, identity: `deploy script (${process.env.USER ?? 'unknown'})` };
  try {
    switch (command) {
      case 'status': {
        const state = await describeDeployment(target);
        printState(state, deploymentName);
        for (const v of state?.versions ?? []) {
          const [version, open] = await Promise.all([describeVersion(target, v.buildId), openPinnedCount(target, v.buildId)]);
          const drainage = v.drainage && v.drainage !== v.status ? `, ${v.drainage.toLowerCase()}` : '';
          console.log(`  ${v.buildId}: ${v.status.toLowerCase()}${drainage}, ${open} open pinned, polls ${version?.taskQueues.join(' ') || 'nothing'}`);
        }
        return;
      }
      case 'ramp': {
        const [buildId, percent] = args;
        if (buildId === 'off') {
          printState(await setRampingVersion(target, undefined, 0, routing), deploymentName);
          return;
        }
        const percentage = Number(percent);
        if (!buildId || !Number.isFinite(percentage) || percentage < 0 || percentage > 100) fail(USAGE);
        printState(await setRampingVersion(target, buildId, percentage, routing), deploymentName);
        return;
      }
      case 'promote': {
        const [buildId] = args;
        if (!buildId) fail(USAGE);
        printState(await setCurrentVersion(target, buildId, routing), deploymentName);
        return;
      }
      case 'rollback': {
        const state = await describeDeployment(target);
        const previous = state?.versions
          .filter((v) => v.buildId !== state.current && v.lastCurrentAt)
          .sort((a, b) => b.lastCurrentAt!.getTime() - a.lastCurrentAt!.getTime())[0]?.buildId;
        const buildId = args[0] ?? previous;
        if (!buildId) fail(`${deploymentName} has no build that was current before ${state?.current ?? '(none)'}: name one`);
        console.log(`rolling back from ${state?.current ?? '(none)'} to ${buildId}`);
        printState(await setCurrentVersion(target, buildId, routing), deploymentName);
        return;
      }
      case 'drain': {
        const [buildId] = args;
        if (!buildId) fail(USAGE);
        const timeoutMs = msToNumber(((flags.get('--timeout') as string | undefined) ?? '48h') as Duration);
        let last = '';
        const { openPinned } = await waitUntilDrained(target, buildId, {
          timeoutMs,
          pollMs: 5_000,
          onProgress: ({ version, openPinned }) => {
            const line = `${buildId}: ${version.status.toLowerCase()}, drainage ${version.drainage?.toLowerCase() ?? 'not started'}, ${openPinned} open pinned`;
            if (line !== last) console.log(`${new Date().toISOString()} ${line}`);
            last = line;
          },
        });
        console.log(`${buildId} is drained (${openPinned} open pinned): its workers may stop`);
        return;
      }
      default:
        fail(USAGE);
    }
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
