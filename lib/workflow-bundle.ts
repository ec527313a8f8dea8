import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { bundleWorkflowCode, type BundleOptions, type WorkflowBundle } from '@temporalio/worker';
import { PROJECT_ROOT } from './infra/paths';
import { FAILURE_CONVERTER_PATH } from './temporal/connection';
import { WORKFLOW_TRACING_MODULES } from './tracing';

const quiet = () => undefined;

/** The entry point of the orders workers' workflow code: every workflow they run. */
export const ORDER_WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

const bundleOptions = (workflowsPath: string): BundleOptions => ({
  workflowsPath,
  workflowInterceptorModules: WORKFLOW_TRACING_MODULES,
  // Failures leave the workflow with their message and stack in an encoded attribute (the codec seals it).
  failureConverterPath: FAILURE_CONVERTER_PATH,
  logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: console.error },
});

/** The workflow code every orders worker runs (tests and replays too): the workflows and the tracing interceptors. */
export function bundleOrderWorkflows(workflowsPath = ORDER_WORKFLOWS_PATH): Promise<WorkflowBundle> {
  return bundleWorkflowCode(bundleOptions(workflowsPath));
}

/**
 * What a workflow bundle is made of, entry by entry: each of the project's own modules in it
 * (`workflows/orders/index.ts`, the contracts, the failure converter…) with a digest of its source,
 * and each package with its version (`@temporalio/workflow` → `1.24.0`). Machine- and path-independent.
 */
export type WorkflowCodeManifest = Record<string, string>;

export interface FingerprintedBundle {
  bundle: WorkflowBundle;
  /** one digest of the manifest: equal fingerprints, the same workflow code */
  fingerprint: string;
  manifest: WorkflowCodeManifest;
}

const digest = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

/** The package a file of node_modules belongs to, and its version. */
function packageOf(file: string): [string, string] | undefined {
  const parts = file.split(sep);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return undefined;
  const name = parts[at + 1]?.startsWith('@') ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1];
  if (!name) return undefined;
  const manifest = join(parts.slice(0, at + 1).join(sep) || sep, name, 'package.json');
  const version = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version : undefined;
  return [name, version ?? 'unknown'];
}

/** The manifest of the modules webpack put in a bundle (their absolute paths). */
export function workflowCodeManifest(modules: Iterable<string>): WorkflowCodeManifest {
  const entries: Array<[string, string]> = [];
  for (const file of new Set(modules)) {
    const pkg = packageOf(file);
    if (pkg) entries.push(pkg);
    // The SDK's generated entry point exists only in the bundler's memory; the SDK's version stands for it.
    else if (existsSync(file))
      entries.push([relative(PROJECT_ROOT, file).split(sep).join('/'), digest(readFileSync(file, 'utf8').replace(/\r\n/g, '\n')).slice(0, 16)]);
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export const manifestFingerprint = (manifest: WorkflowCodeManifest) => digest(JSON.stringify(manifest));

/**
 * The bundle, with the fingerprint of the code in it: the replay test's guard compares it with the
 * fingerprint its version's histories were recorded with (test/replay/histories/README.md).
 */
export async function bundleOrderWorkflowsWithFingerprint(workflowsPath = ORDER_WORKFLOWS_PATH): Promise<FingerprintedBundle> {
  const modules = new Set<string>();
  const options = bundleOptions(workflowsPath);
  const bundle = await bundleWorkflowCode({
    ...options,
    webpackConfigHook: (config) => ({
      ...config,
      plugins: [
        ...(config.plugins ?? []),
        {
          apply(compiler) {
            compiler.hooks.done.tap('workflow-code-fingerprint', (stats) => {
              for (const module of stats.compilation.modules) {
                const resource = (module as { resource?: string }).resource;
                if (resource) modules.add(resource.split('?')[0]!);
              }
            });
          },
        },
      ],
    }),
  });
  if (modules.size === 0) throw new Error('the workflow bundler reported no modules: cannot fingerprint the workflow code');
  const manifest = workflowCodeManifest(modules);
  return { bundle, fingerprint: manifestFingerprint(manifest), manifest };
}

/** The notifications pool's own workflows (webhook deliveries, customer emails): a bundle of their own, shipped on their own. */
export function bundleNotificationWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode(bundleOptions(join(PROJECT_ROOT, 'workflows', 'notifications', 'index.ts')));
}
