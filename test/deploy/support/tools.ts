import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { TOOLS_DIR } from '../../../lib/infra/paths';
import { ensureGoTool, ensurePipPackages, goModuleDir } from '../../../lib/infra/tools';
import { crdFilesIn, writeCrdSchemas, writeKubernetesSchemas } from './schemas';

/**
 * helm, kubeconform and the schemas they check against, pinned and installed once into .tools/
 * (the first run builds helm and kubeconform from the Go module proxy: minutes; later runs find them).
 */
export const HELM = { pkg: 'helm.sh/helm/v3/cmd/helm', version: 'v3.22.0', binary: 'helm' };
export const KUBECONFORM = { pkg: 'github.com/yannh/kubeconform/cmd/kubeconform', version: 'v0.8.0', binary: 'kubeconform' };
/** PyPI's kubernetes-validate ships the API server's schemas, in strict and loose form, for Kubernetes 1.25 to 1.37. */
export const KUBERNETES_VALIDATE = 'kubernetes-validate==1.37.0';
/** The chart's floor (Chart.yaml kubeVersion) and the newest the package has. */
export const KUBERNETES_VERSIONS = ['1.29.0', '1.37.0'] as const;
export const KEDA = { module: 'github.com/kedacore/keda/v2', version: 'v2.21.0' };

export interface ChartTools {
  helm: string;
  kubeconform: string;
  /** kubernetes-validate's schemas of one version, strict (no field a version does not know) */
  kubernetesSchemaSource: (version: string) => string;
  /** where the self-contained schemas for kubeconform go, per version */
  kubernetesSchemaDir: (version: string) => string;
  /** KEDA's CRDs as kubeconform schemas */
  kedaSchemaDir: string;
}

export async function ensureChartTools(log: (msg: string) => void): Promise<ChartTools> {
  const [helm, kubeconform, validate, keda] = await Promise.all([
    ensureGoTool(HELM, log),
    ensureGoTool(KUBECONFORM, log),
    ensurePipPackages('kubernetes-validate', [KUBERNETES_VALIDATE], log),
    goModuleDir(KEDA.module, KEDA.version),
  ]);
  const schemaRoot = join(TOOLS_DIR, 'kubeconform-schemas');
  const kedaSchemaDir = join(schemaRoot, `keda-${KEDA.version}`);
  // Cheap (two CRDs' worth of JSON), so written on every run: a change to the conversion shows at once.
  await writeCrdSchemas(await crdFilesIn(join(keda, 'config', 'crd', 'bases')), kedaSchemaDir);
  return {
    helm,
    kubeconform,
    kubernetesSchemaSource: (version) => join(validate, 'kubernetes_validate', 'kubernetes-json-schema', `v${version}-local-strict`),
    kubernetesSchemaDir: (version) => join(schemaRoot, `kubernetes-validate-${KUBERNETES_VALIDATE.split('==')[1]}`, `v${version}-strict`),
    kedaSchemaDir,
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      // not started, or killed at the timeout: no exit code to report
      if (err && typeof err.code !== 'number') return reject(new Error(`${command}: ${err.message}`, { cause: err }));
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

export interface KubeconformResult {
  code: number;
  resources: { filename: string; kind: string; name: string; version: string; status: string; msg: string }[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
  output: string;
}

/**
 * kubeconform over rendered manifests, against local schemas only: Kubernetes' own (self-contained
 * copies of kubernetes-validate's) first, then KEDA's. -strict refuses unknown fields and duplicate keys.
 */
export async function kubeconform(tools: ChartTools, manifests: string, kubernetesVersion: string): Promise<KubeconformResult> {
  const docs = parseManifests(manifests).map(({ kind, apiVersion }) => ({ kind, apiVersion }));
  await writeKubernetesSchemas(tools.kubernetesSchemaSource(kubernetesVersion), tools.kubernetesSchemaDir(kubernetesVersion), docs);
  const result = await run(
    tools.kubeconform,
    [
      '-strict',
      '-summary',
      // every resource in the output, the valid ones too: the test checks none was skipped
      '-verbose',
      '-output',
      'json',
      '-kubernetes-version',
      kubernetesVersion,
      '-schema-location',
      join(tools.kubernetesSchemaDir(kubernetesVersion), '{{ .ResourceKind }}{{ .KindSuffix }}.json'),
      '-schema-location',
      join(tools.kedaSchemaDir, '{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'),
      '-',
    ],
    manifests,
  );
  const parsed = JSON.parse(result.stdout) as Omit<KubeconformResult, 'code' | 'output'>;
  return { code: result.code, resources: parsed.resources ?? [], summary: parsed.summary, output: result.stdout + result.stderr };
}
