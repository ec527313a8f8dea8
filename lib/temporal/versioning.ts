import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import proto from '@temporalio/proto';
import { z } from 'zod';
import { BUILD_DIR, PROJECT_ROOT } from '../infra/paths';

/**
 * Worker Versioning: every worker of the platform is a version (deployment name + build ID) of
 * one Worker Deployment. An order is pinned to the build it started on and finishes there; new
 * orders go to the deployment's current version (or, while one ramps, a share of them to it).
 * The operator moves the routing (scripts/deployment.ts or `temporal worker deployment …`).
 */
export const DEFAULT_DEPLOYMENT_NAME = 'order-platform';

/**
 * What a pool does about the deployment's current version when it starts:
 * - `if-none`: makes its build current only when the deployment has none yet (its first build);
 *   every later build waits for an operator to ramp or promote it. For builds that are named (WORKER_BUILD_ID).
 * - `if-new`: also when its build is new (never current nor ramping): the newest build takes the new
 *   orders as soon as all its pools poll, as on one machine (`npm start`, Docker Compose, tests), where
 *   one build runs at a time. A build that was current once is never made current again this way, so a
 *   restarted old process cannot undo a promotion or a rollback.
 * - `never`: an operator promotes every build, the first one included.
 */
export const SET_CURRENT_POLICIES = ['if-new', 'if-none', 'never'] as const;
export type SetCurrentPolicy = (typeof SET_CURRENT_POLICIES)[number];

/** The pools' versioning settings (workers/run.ts's env). */
export const versioningEnv = {
  WORKER_DEPLOYMENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, - and _')
    .default(DEFAULT_DEPLOYMENT_NAME),
  // unset: <package.json version>+<commit>, see defaultBuildId
  WORKER_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9._+-]{1,200}$/, 'letters, digits, . _ + and -')
    .optional(),
  // unset: if-none for a named build (WORKER_BUILD_ID), if-new for one named after its commit
  WORKER_SET_CURRENT: z.enum(SET_CURRENT_POLICIES).optional(),
};

/** The version in package.json: the part of a build ID a person chooses (test/replay/histories/README.md says when to bump it). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The commit the code comes from: GIT_COMMIT, or the checkout's HEAD, or what the image build
 * wrote to .build/commit (the Dockerfile: its GIT_COMMIT build argument, or a digest of the sources).
 */
export function sourceCommit(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.GIT_COMMIT) return env.GIT_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim();
  } catch {
    // not a checkout (an image), or no git: the image build's record
  }
  try {
    return readFileSync(join(BUILD_DIR, 'commit'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `<package.json version>+<commit>`, e.g. 0.1.0+668e986: the build ID of a process that was not given WORKER_BUILD_ID. */
export function defaultBuildId(env: NodeJS.ProcessEnv = process.env): string {
  const commit = sourceCommit(env);
  if (!commit) {
    throw new Error('WORKER_BUILD_ID is not set and the commit is unknown (no GIT_COMMIT, no git checkout, no .build/commit): set WORKER_BUILD_ID');
  }
  return `${packageVersion()}+${commit}`;
}

/** This process's version of the deployment, from its parsed env. */
export function workerVersion(config: { WORKER_DEPLOYMENT_NAME: string; WORKER_BUILD_ID?: string | undefined }): WorkerDeploymentVersion {
  return { deploymentName: config.WORKER_DEPLOYMENT_NAME, buildId: config.WORKER_BUILD_ID ?? defaultBuildId() };
}

/** The policy a pool follows when WORKER_SET_CURRENT is unset: a named build waits for an operator. */
export const setCurrentPolicy = (config: { WORKER_BUILD_ID?: string | undefined; WORKER_SET_CURRENT?: SetCurrentPolicy | undefined }): SetCurrentPolicy =>
  config.WORKER_SET_CURRENT ?? (config.WORKER_BUILD_ID ? 'if-none' : 'if-new');

/** How visibility names a version (TemporalWorkerDeploymentVersion, TemporalUsedWorkerDeploymentVersions). */
export const versionKey = ({ deploymentName, buildId }: WorkerDeploymentVersion) => `${deploymentName}:${buildId}`;

/** The open workflows pinned to a version: what must finish before its workers may stop. */
export const openPinnedQuery = (version: WorkerDeploymentVersion) =>
  `TemporalWorkerDeploymentVersion="${versionKey(version)}" AND TemporalWorkflowVersioningBehavior="Pinned" AND ExecutionStatus="Running"`;

type WorkflowService = proto.temporal.api.workflowservice.v1.WorkflowService;
const { WorkerDeploymentVersionStatus: VersionStatusEnum, VersionDrainageStatus, RoutingConfigUpdateState } = proto.temporal.api.enums.v1;

export type VersionStatus = 'INACTIVE' | 'CURRENT' | 'RAMPING' | 'DRAINING' | 'DRAINED' | 'UNSPECIFIED';
const statusName = (status: number | null | undefined): VersionStatus =>
  (
    ({
      [VersionStatusEnum.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE]: 'INACTIVE',
      [VersionStatusEnum.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT]: 'CURRENT',
      [VersionStatusEnum.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING]: 'RAMPING',
      [VersionStatusEnum.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING]: 'DRAINING',
      [VersionStatusEnum.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED]: 'DRAINED',
    }) as Record<number, VersionStatus>
  )[status ?? 0] ?? 'UNSPECIFIED';
const drainageName = (status: number | null | undefined): 'DRAINING' | 'DRAINED' | undefined =>
  status === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING
    ? 'DRAINING'
    : status === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED
      ? 'DRAINED'
      : undefined;
const toDate = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | undefined =>
  t?.seconds == null ? undefined : new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));

/** One Worker Deployment of one namespace, through any connection (a client's or a worker's). */
export interface DeploymentTarget {
  connection: { workflowService: WorkflowService };
  namespace: string;
  deploymentName: string;
  /** who changes the routing, as the deployment records it (lastModifierIdentity) */
  identity?: string;
}

export interface VersionSummary {
  buildId: string;
  status: VersionStatus;
  drainage?: 'DRAINING' | 'DRAINED';
  /** when it last stopped being current or ramping */
  deactivatedAt?: Date;
  /** when it was last the current version (a rollback's target is the latest before today's) */
  lastCurrentAt?: Date;
}

export interface DeploymentState {
  current?: string;
  ramping?: { buildId: string; percentage: number };
  /** the routing has changed and is still reaching the task queues */
  propagating: boolean;
  versions: VersionSummary[];
  conflictToken: Uint8Array;
}

export interface VersionState extends VersionSummary {
  taskQueues: string[];
  /** when the server last counted the version's open pinned workflows */
  drainageCheckedAt?: Date;
}

const grpcCode = (err: unknown): number | undefined => (err as { code?: number }).code;
const NOT_FOUND = 5;

/** The deployment's routing and versions; undefined while no worker of it has polled yet. */
export async function describeDeployment(t: DeploymentTarget): Promise<DeploymentState | undefined> {
  let res: proto.temporal.api.workflowservice.v1.DescribeWorkerDeploymentResponse;
  try {
    res = await t.connection.workflowService.describeWorkerDeployment({ namespace: t.namespace, deploymentName: t.deploymentName });
  } catch (err) {
    if (grpcCode(err) === NOT_FOUND) return undefined;
    throw err;
  }
  const info = res.workerDeploymentInfo;
  const routing = info?.routingConfig;
  return {
    ...(routing?.currentDeploymentVersion?.buildId ? { current: routing.currentDeploymentVersion.buildId } : {}),
    ...(routing?.rampingDeploymentVersion?.buildId
      ? { ramping: { buildId: routing.rampingDeploymentVersion.buildId, percentage: routing.rampingVersionPercentage ?? 0 } }
      : {}),
    propagating: info?.routingConfigUpdateState === RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS,
    versions: (info?.versionSummaries ?? []).map((v) => ({
      buildId: v.deploymentVersion?.buildId ?? '',
      status: statusName(v.status),
      ...(drainageName(v.drainageInfo?.status) ? { drainage: drainageName(v.drainageInfo?.status) } : {}),
      ...(toDate(v.lastDeactivationTime) ? { deactivatedAt: toDate(v.lastDeactivationTime) } : {}),
      ...(toDate(v.lastCurrentTime) ? { lastCurrentAt: toDate(v.lastCurrentTime) } : {}),
    })),
    conflictToken: res.conflictToken,
  };
}

/** One version: its status, drainage and the task queues its workers poll; undefined until one of them has polled. */
export async function describeVersion(t: DeploymentTarget, buildId: string): Promise<VersionState | undefined> {
  let info: proto.temporal.api.deployment.v1.IWorkerDeploymentVersionInfo | null | undefined;
  try {
    ({ workerDeploymentVersionInfo: info } = await t.connection.workflowService.describeWorkerDeploymentVersion({
      namespace: t.namespace,
      deploymentVersion: { deploymentName: t.deploymentName, buildId },
    }));
  } catch (err) {
    if (grpcCode(err) === NOT_FOUND) return undefined;
    throw err;
  }
  if (!info) return undefined;
  const drainage = drainageName(info.drainageInfo?.status);
  const checkedAt = toDate(info.drainageInfo?.lastCheckedTime);
  const deactivatedAt = toDate(info.lastDeactivationTime);
  return {
    buildId,
    status: statusName(info.status),
    taskQueues: [...new Set((info.taskQueueInfos ?? []).map((q) => q.name ?? ''))].sort(),
    ...(drainage ? { drainage } : {}),
    ...(checkedAt ? { drainageCheckedAt: checkedAt } : {}),
    ...(deactivatedAt ? { deactivatedAt } : {}),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until a routing change has reached every task queue of the deployment, so the next start follows it. */
async function routingSettled(t: DeploymentTarget, timeoutMs = 30_000): Promise<DeploymentState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await describeDeployment(t);
    if (state && !state.propagating) return state;
    if (Date.now() > deadline) throw new Error(`the routing of ${t.deploymentName} is still reaching its task queues after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export interface RoutingOptions {
  /** set it although a task queue the current version polls is not polled by this one (a pool removed on purpose) */
  ignoreMissingTaskQueues?: boolean;
  /** set it although no worker of it has polled (its workers are about to start) */
  allowNoPollers?: boolean;
}

/** Makes a build current: it takes every new order (and any ramp ends). Resolves once the routing has reached the task queues. */
export async function setCurrentVersion(t: DeploymentTarget, buildId: string, options: RoutingOptions = {}): Promise<DeploymentState> {
  await t.connection.workflowService.setWorkerDeploymentCurrentVersion({
    namespace: t.namespace,
    deploymentName: t.deploymentName,
    buildId,
    identity: t.identity ?? 'order-platform',
    ignoreMissingTaskQueues: options.ignoreMissingTaskQueues ?? false,
    allowNoPollers: options.allowNoPollers ?? false,
  });
  return routingSettled(t);
}

/** Sends `percentage` % of new orders to `buildId` (the rest to the current version); no build ends the ramp. */
export async function setRampingVersion(
  t: DeploymentTarget,
  buildId: string | undefined,
  percentage = 0,
  options: RoutingOptions = {},
): Promise<DeploymentState> {
  await t.connection.workflowService.setWorkerDeploymentRampingVersion({
    namespace: t.namespace,
    deploymentName: t.deploymentName,
    buildId: buildId ?? '',
    percentage: buildId ? percentage : 0,
    identity: t.identity ?? 'order-platform',
    ignoreMissingTaskQueues: options.ignoreMissingTaskQueues ?? false,
    allowNoPollers: options.allowNoPollers ?? false,
  });
  return routingSettled(t);
}

/** The workflows still open on a version and pinned to it, counted by visibility. */
export async function openPinnedCount(t: DeploymentTarget, buildId: string): Promise<number> {
  const { count } = await t.connection.workflowService.countWorkflowExecutions({
    namespace: t.namespace,
    query: openPinnedQuery({ deploymentName: t.deploymentName, buildId }),
  });
  return Number(count ?? 0);
}

export interface Drainage {
  version: VersionState;
  openPinned: number;
}

/**
 * Waits until a version that no longer takes new orders has none open: the server's drainage says
 * DRAINED (it recounts every matching.wv.VersionDrainageStatusRefreshInterval) and visibility counts
 * no open workflow pinned to it. Only then may its workers stop. Refuses a version that is still
 * current or ramping: it would never drain.
 */
export async function waitUntilDrained(
  t: DeploymentTarget,
  buildId: string,
  { timeoutMs = 60 * 60_000, pollMs = 1_000, onProgress }: { timeoutMs?: number; pollMs?: number; onProgress?: (d: Drainage) => void } = {},
): Promise<Drainage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const version = await describeVersion(t, buildId);
    if (!version) throw new Error(`${t.deploymentName} has no version ${buildId}`);
    if (version.status === 'CURRENT' || version.status === 'RAMPING') {
      throw new Error(`${buildId} is ${version.status.toLowerCase()}: it takes new orders and cannot drain; promote another build first`);
    }
    const openPinned = await openPinnedCount(t, buildId);
    const drainage = { version, openPinned };
    onProgress?.(drainage);
    // A version never made current or ramping has only the orders pinned to it by hand (a versioning override): visibility alone says.
    if (openPinned === 0 && (version.drainage === 'DRAINED' || version.status === 'INACTIVE')) return drainage;
    if (Date.now() > deadline)
      throw new Error(`${buildId} still has ${openPinned} open pinned workflow(s) (drainage ${version.drainage ?? 'unknown'}) after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

export type TakeOver = 'already-current' | 'made-current' | 'left-to-operator';

/**
 * A pool's start: make its build current when the policy says so. Every pool of a build calls
 * this, and the build is promoted once its workers poll every task queue of the platform
 * (`taskQueues`), so that no order of it meets a queue without its workers; after `waitForAllMs`
 * it is promoted with the pools it has (a platform run without one of its pools), though never
 * without a queue the current build polls: the server refuses that, and this retries until `timeoutMs`.
 */
export async function takeOverIfDue(
  t: DeploymentTarget,
  buildId: string,
  policy: SetCurrentPolicy,
  taskQueues: readonly string[],
  {
    waitForAllMs = 15_000,
    timeoutMs = 120_000,
    stopped = () => false,
    onMissing,
  }: { waitForAllMs?: number; timeoutMs?: number; stopped?: () => boolean; onMissing?: (taskQueues: string[]) => void } = {},
): Promise<TakeOver> {
  if (policy === 'never') return 'left-to-operator';
  const started = Date.now();
  let missing: string[] = [...taskQueues];
  for (;;) {
    try {
      const deployment = await describeDeployment(t);
      if (deployment?.current === buildId) return 'already-current';
      // Someone has routed orders already (a current build, or a ramp under way): theirs to change.
      if (deployment && policy === 'if-none' && (deployment.current || deployment.ramping)) return 'left-to-operator';
      const version = await describeVersion(t, buildId);
      if (version && policy === 'if-new' && version.status !== 'INACTIVE') return 'left-to-operator';
      missing = taskQueues.filter((q) => !version?.taskQueues.includes(q));
      if (version && (missing.length === 0 || Date.now() - started > waitForAllMs)) {
        await setCurrentVersion(t, buildId);
        if (missing.length > 0) onMissing?.(missing);
        return 'made-current';
      }
    } catch (err) {
      // FAILED_PRECONDITION: the current build polls a queue this one does not yet; ABORTED: a concurrent change;
      // UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED: Temporal restarting or busy. All pass; anything else is a fault.
      if (![9, 10, 14, 4, 8].includes(grpcCode(err) ?? 0)) throw err;
    }
    if (stopped()) return 'left-to-operator';
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${buildId} did not become current within ${timeoutMs} ms${missing.length ? `: no pool of it polls ${missing.join(', ')}` : ''}`);
    }
    await sleep(250);
  }
}
