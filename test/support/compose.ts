import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/infra/paths';

/**
 * docker-compose.yml as the tests read it: parsed with YAML merge keys (`<<: *anchor`, which Compose
 * honours and the yaml package only with `merge: true`), and the few things Compose does to it
 * before it runs anything that these tests need to do the same way (interpolation, volume syntax).
 */

export type EnvValue = string | number | boolean | null;
export interface Healthcheck {
  test?: string | string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}
export interface Service {
  image?: string;
  build?: unknown;
  user?: string;
  profiles?: string[];
  entrypoint?: string | string[];
  command?: string | string[];
  restart?: string;
  environment?: Record<string, EnvValue>;
  ports?: (string | number | { target?: number; published?: number | string; host_ip?: string })[];
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: Healthcheck;
  deploy?: { replicas?: number };
}
export interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

export const COMPOSE_FILE = join(PROJECT_ROOT, 'docker-compose.yml');
export const composeText = readFileSync(COMPOSE_FILE, 'utf8');
export const compose = parse(composeText, { merge: true }) as ComposeFile;

export function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

export const servicesWhere = (pick: (s: Service, name: string) => boolean): string[] =>
  Object.entries(compose.services)
    .filter(([name, s]) => pick(s, name))
    .map(([name]) => name);

export const replicas = (s: Service): number => s.deploy?.replicas ?? 1;

export const command = (s: Service): string[] | undefined => (Array.isArray(s.command) ? s.command : s.command?.split(' '));

/**
 * A value as the container sees it. Compose replaces `$VAR` and `${VAR}` with this machine's
 * environment in every string of the file, and `$$` with `$`. Nothing in this file is meant to come
 * from the environment that way (a value taken from it is written as a key with no value), so a
 * lone `$` is an error here rather than a silent substitution.
 */
export function interpolated(text: string, where: string): string {
  const lone = /\$(?!\$)/.exec(text.replace(/\$\$/g, ''));
  if (lone) throw new Error(`${where}: "${text.slice(0, 80)}…" has a $ that Compose would substitute from the environment; write $$ for a literal $`);
  return text.replace(/\$\$/g, '$');
}

/** The shell script of a one-shot service run as `entrypoint: [/bin/sh, -ec]` + `command: [script]`, as the shell gets it. */
export function shellScript(name: string): string {
  const s = service(name);
  const entrypoint = Array.isArray(s.entrypoint) ? s.entrypoint : s.entrypoint?.split(' ');
  if (entrypoint?.join(' ') !== '/bin/sh -ec') throw new Error(`${name}: entrypoint is not /bin/sh -ec`);
  const script = Array.isArray(s.command) ? s.command : [s.command ?? ''];
  if (script.length !== 1) throw new Error(`${name}: command is not one script`);
  return interpolated(script[0]!, `${name}.command`);
}

/**
 * The environment a service's container gets from this file: every value a string, as Compose
 * passes it; a key with no value is taken from this machine's environment when set there, so it is
 * left out (it has no value here).
 */
export function environment(s: Service, name = '?'): Record<string, string> {
  return Object.fromEntries(
    Object.entries(s.environment ?? {})
      .filter((entry): entry is [string, string | number | boolean] => entry[1] !== null)
      .map(([key, value]) => [key, interpolated(String(value), `${name}.environment.${key}`)]),
  );
}

/** [source, target, read-only] of each of a service's volumes (short or long syntax). */
export function mounts(s: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source ?? '', target: v.target ?? '', readOnly: !!v.read_only };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

const isProjectPath = (source: string) => source.startsWith('.') || source.startsWith('/');

/** Where a service mounts a file or directory of this project. */
export function mountTarget(s: Service, projectPath: string): string | undefined {
  return mounts(s).find((m) => isProjectPath(m.source) && resolve(PROJECT_ROOT, m.source) === resolve(PROJECT_ROOT, projectPath))?.target;
}

/** The file of this project that a service mounts at `target`. */
export function mountedProjectFile(s: Service, target: string): string | undefined {
  const m = mounts(s).find((mount) => mount.target === target && isProjectPath(mount.source));
  return m ? resolve(PROJECT_ROOT, m.source) : undefined;
}

/** The mount (of a named volume or a project path) that holds `path` inside the container. */
export const mountHolding = (s: Service, path: string) => mounts(s).find((m) => path.startsWith(`${m.target.replace(/\/+$/, '')}/`));

/** [published, target] of each port a service publishes, and the host address it is bound to ('' for all). */
export function publishedPorts(s: Service): Array<[number, number, string]> {
  return (s.ports ?? []).flatMap((p): Array<[number, number, string]> => {
    if (typeof p === 'object') return p.published && p.target ? [[Number(p.published), p.target, p.host_ip ?? '']] : [];
    const parts = String(p).split('/')[0]!.split(':');
    if (parts.length < 2) return [];
    return [[Number(parts.at(-2)), Number(parts.at(-1)), parts.length > 2 ? parts.slice(0, -2).join(':') : '']];
  });
}

export const dependsOn = (s: Service): Record<string, { condition: string }> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, { condition: 'service_started' }])) : (s.depends_on ?? {});

/** The Temporal server nodes: every service running the temporalio/server image. */
export const temporalNodes = (): string[] => servicesWhere((s) => /^temporalio\/server:/.test(s.image ?? ''));

/** The version of an image tag (`temporalio/admin-tools:1.32.1` → `1.32.1`), or undefined. */
export const imageVersion = (s: Service): string | undefined => /:(\d+\.\d+\.\d+)(?:$|[-@])/.exec(s.image ?? '')?.[1];
