import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * JSON schemas for kubeconform, written locally: kubeconform must never reach for its default
 * remote schemas (there is no internet here, and a test should not depend on one anyway).
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** kubeconform's `{{ .KindSuffix }}`: `-apps-v1` for apps/v1, `-v1` for v1, `-rbac-v1` for rbac.authorization.k8s.io/v1. */
export function kindSuffix(apiVersion: string): string {
  const [groupOrVersion = '', version] = apiVersion.split('/');
  const group = groupOrVersion.split('.')[0] ?? '';
  return `-${group.toLowerCase()}${version ? `-${version.toLowerCase()}` : ''}`;
}

const DEFINITIONS_REF = '/api/_definitions.json#/$defs/';

/**
 * kubernetes-validate's schemas each refer to one shared `_definitions.json` by an absolute URI
 * (`https://kubernetes.io/api/_definitions.json`), which kubeconform would try to download. Each
 * schema is rewritten as one self-contained file: its references point at its own `$defs`, which
 * hold the definitions it reaches (and no others, so a file stays small). Written on every run:
 * a few files, and a change to this conversion shows at once.
 */
export async function writeKubernetesSchemas(sourceDir: string, outDir: string, resources: { kind: string; apiVersion: string }[]): Promise<void> {
  await mkdir(outDir, { recursive: true });
  let definitions: JsonObject | undefined;
  for (const { kind, apiVersion } of resources) {
    const name = `${kind.toLowerCase()}${kindSuffix(apiVersion)}.json`;
    const target = join(outDir, name);
    const source = join(sourceDir, name);
    // A kind the package has no schema for stays missing: kubeconform then fails on it, as it should.
    if (!existsSync(source)) continue;
    definitions ??= ((JSON.parse(await readFile(join(sourceDir, '_definitions.json'), 'utf8')) as JsonObject).$defs ?? {}) as JsonObject;
    const schema = JSON.parse(await readFile(source, 'utf8')) as JsonObject;
    const reached: JsonObject = {};
    const pending: string[] = [];
    const rewrite = (node: Json): Json => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!isObject(node)) return node;
      const out: JsonObject = {};
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') {
          const def = value.startsWith(DEFINITIONS_REF)
            ? value.slice(DEFINITIONS_REF.length)
            : value.startsWith('#/$defs/')
              ? value.slice('#/$defs/'.length)
              : undefined;
          if (def === undefined) throw new Error(`${name}: unexpected $ref ${value}`);
          if (!(def in reached)) {
            reached[def] = null;
            pending.push(def);
          }
          out[key] = `#/$defs/${def}`;
        } else {
          out[key] = rewrite(value);
        }
      }
      return out;
    };
    const { $id: _id, ...rest } = schema;
    const selfContained = rewrite(rest) as JsonObject;
    for (let def = pending.pop(); def !== undefined; def = pending.pop()) {
      const body = definitions[def];
      if (body === undefined) throw new Error(`${name}: no definition ${def}`);
      reached[def] = rewrite(body);
    }
    selfContained.$defs = reached;
    await writeFile(target, JSON.stringify(selfContained));
  }
}

/**
 * A CustomResourceDefinition's versions as kubeconform schemas, one file per version named by the
 * `{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json` template, in the spirit of kubeconform's
 * openapi2jsonschema.py: openAPIV3Schema as JSON Schema, `nullable` and `x-kubernetes-int-or-string`
 * spelled in JSON Schema terms, and every object that lists its properties closed to others (what
 * the API server's field validation refuses), so a misspelt field fails as it would on apply.
 * apiVersion and kind are pinned, since the file name carries neither the group nor the case.
 */
export async function writeCrdSchemas(crdFiles: string[], outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const file of crdFiles) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      const crd = doc.toJS() as JsonObject | null;
      if (!crd || crd.kind !== 'CustomResourceDefinition' || !isObject(crd.spec)) continue;
      const { group, names, versions } = crd.spec;
      if (typeof group !== 'string' || !isObject(names) || typeof names.kind !== 'string' || !Array.isArray(versions)) continue;
      for (const version of versions) {
        if (!isObject(version) || typeof version.name !== 'string' || !isObject(version.schema) || !isObject(version.schema.openAPIV3Schema)) continue;
        const schema = toJsonSchema(version.schema.openAPIV3Schema) as JsonObject;
        const properties = isObject(schema.properties) ? schema.properties : {};
        schema.properties = {
          ...properties,
          apiVersion: { type: 'string', enum: [`${group}/${version.name}`] },
          kind: { type: 'string', enum: [names.kind] },
        };
        schema.required = [...new Set([...(Array.isArray(schema.required) ? schema.required : []), 'apiVersion', 'kind'])];
        const target = join(outDir, `${names.kind.toLowerCase()}_${version.name}.json`);
        await writeFile(target, JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }));
        written.push(target);
      }
    }
  }
  return written;
}

function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    // Under `properties` the keys are field names, not keywords.
    out[key] = key === 'properties' && isObject(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSchema(v)])) : toJsonSchema(value);
  }
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  delete out.nullable;
  if (isObject(out.properties) && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/** The CRD files of a directory (KEDA's config/crd/bases). */
export async function crdFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f));
}
