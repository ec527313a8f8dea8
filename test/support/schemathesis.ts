import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { ensurePipPackages } from '../../lib/infra/tools';

/**
 * Schemathesis (property-based fuzzing from an OpenAPI document), from PyPI into .tools/schemathesis,
 * run as its CLI against a live API; what it sent and got back is read from its HAR report.
 */
export const SCHEMATHESIS_PIN = 'schemathesis==4.32.5';

/**
 * Hypothesis names each filter in its reprs by parsing the lambda's module with `ast`. Under CPython
 * 3.11.7 that parse can fail its AST constructor's recursion check ("SystemError: AST constructor
 * recursion depth mismatch"), which aborts schemathesis's coverage phase for an operation (GET /orders's
 * query, here): a crash of the fuzzer's interpreter that says nothing of the API. The name is only
 * ever used in reprs, so where the parse fails the lambda is named plainly instead; nothing generated
 * or checked changes.
 */
const SITECUSTOMIZE = `try:
    from hypothesis.internal import lambda_sources as _sources

    _describe = _sources.lambda_description

    def _lambda_description(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda"

    _sources.lambda_description = _lambda_description
except ImportError:
    pass
`;

export async function ensureSchemathesis(log: (msg: string) => void = () => undefined): Promise<{ st: string; env: NodeJS.ProcessEnv }> {
  const dir = await ensurePipPackages('schemathesis', [SCHEMATHESIS_PIN], log);
  const site = join(dir, '..', 'schemathesis-site');
  await mkdir(site, { recursive: true });
  await writeFile(join(site, 'sitecustomize.py'), SITECUSTOMIZE);
  // pip --target puts the packages beside bin/, not where the script's interpreter looks.
  return { st: join(dir, 'bin', 'st'), env: { PYTHONPATH: `${site}${delimiter}${dir}`, PYTHONDONTWRITEBYTECODE: '1', NO_COLOR: '1' } };
}

/** An operation of the document: `POST /orders/{id}/cancel`, its operationId and the statuses it documents. */
export interface Operation {
  label: string;
  operationId: string;
  method: string;
  template: string;
  statuses: Set<number>;
  pattern: RegExp;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
}

export function operationsOf(document: unknown): Operation[] {
  const { paths } = document as OpenApiDocument;
  return Object.entries(paths).flatMap(([template, item]) =>
    Object.entries(item).map(([method, op]) => ({
      label: `${method.toUpperCase()} ${template}`,
      operationId: op.operationId ?? `${method} ${template}`,
      method: method.toUpperCase(),
      template,
      statuses: new Set(Object.keys(op.responses ?? {}).map(Number)),
      pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]*')}$`),
    })),
  );
}

/** One request schemathesis sent and the answer it got. */
export interface Exchange {
  method: string;
  /** the path as sent, without the query */
  path: string;
  /** header names in lower case */
  requestHeaders: Record<string, string>;
  requestBody?: string;
  status: number;
  responseBody: string;
  /** the documented operation it was sent to; undefined for a method the document does not list (the coverage phase probes those) */
  operation?: Operation;
}

interface Har {
  log: {
    entries: Array<{
      request: { method: string; url: string; headers: Array<{ name: string; value: string }>; postData?: { text?: string } };
      response: { status: number; content?: { text?: string; encoding?: string } };
    }>;
  };
}

/** The run report (`--report json`): how it ended and what it found. */
export interface RunReport {
  schemathesis_version: string;
  seed: number;
  running_time: number;
  stop_reason: string;
  complete: boolean;
  exit_code: number;
  test_cases: { generated: number; with_failures: number; unique_failures: number; errored: number };
  failures: unknown[];
  errors: unknown[];
  warnings: Record<string, unknown>;
}

export interface FuzzOptions {
  st: string;
  env: NodeJS.ProcessEnv;
  /** where the document, the config, the reports and schemathesis's own state go (it is the working directory) */
  dir: string;
  baseUrl: string;
  /**
   * The document as the API serves it. Schemathesis skips the operation its schema was loaded from,
   * so the test hands it a copy on disk and the API's base URL: GET /openapi.json is fuzzed too.
   */
  document: unknown;
  /** the contents of schemathesis.toml; `${VAR}` in it is read from `secrets` */
  config: string;
  /** environment variables for the config (tokens), so that no secret is on a command line */
  secrets: Record<string, string>;
  seed: number;
  maxExamples: number;
  workers: number;
  requestTimeoutSeconds: number;
  /** checks that are not run, with the reason given by the caller */
  excludeChecks: string[];
  /** schemathesis is stopped past this, whatever it is doing */
  killAfterMs: number;
}

export interface FuzzRun {
  command: string;
  exitCode: number | null;
  /** the CLI's own output: progress, failures with their curl reproductions, the summary */
  output: string;
  report: RunReport;
  /** the document's operations, which `exchanges` point to */
  operations: Operation[];
  exchanges: Exchange[];
  elapsedMs: number;
}

/** Runs `st run` once, bounded by `maxExamples` per operation and phase and by `killAfterMs`, and reads its reports back. */
export async function runSchemathesis(options: FuzzOptions): Promise<FuzzRun> {
  const file = (name: string) => join(options.dir, name);
  await writeFile(file('openapi.json'), JSON.stringify(options.document));
  await writeFile(file('schemathesis.toml'), options.config);
  const args = [
    '--config-file',
    file('schemathesis.toml'),
    'run',
    file('openapi.json'),
    '--url',
    options.baseUrl,
    '--phases',
    'examples,coverage,fuzzing,stateful',
    '--checks',
    'all',
    '--exclude-checks',
    options.excludeChecks.join(','),
    '--max-examples',
    String(options.maxExamples),
    '--seed',
    String(options.seed),
    '--workers',
    String(options.workers),
    '--request-timeout',
    String(options.requestTimeoutSeconds),
    // Examples that failed before are not replayed first: the same seed makes the same run.
    '--generation-database',
    'none',
    // The reports must keep what was sent (Idempotency-Key above all) to be checked against the databases.
    '--output-sanitize',
    'false',
    '--report',
    'har,json',
    '--report-har-path',
    file('exchanges.har'),
    '--report-json-path',
    file('report.json'),
    '--no-color',
  ];
  const started = Date.now();
  const { exitCode, output } = await new Promise<{ exitCode: number | null; output: string }>((resolve, reject) => {
    const child = spawn(options.st, args, {
      cwd: options.dir,
      env: { ...process.env, ...options.env, ...options.secrets },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => {
      chunks.push(Buffer.from(`\n[killed after ${options.killAfterMs} ms]\n`));
      child.kill('SIGKILL');
    }, options.killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
  const elapsedMs = Date.now() - started;
  await writeFile(file('schemathesis.log'), output);
  const command = `st ${args.map((a) => a.replace(options.dir, '$DIR')).join(' ')}`;
  const read = async <T>(name: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(file(name), 'utf8')) as T;
    } catch (err) {
      throw new Error(`schemathesis wrote no ${name} (exit ${exitCode}): ${(err as Error).message}\n${output.slice(-4000)}`);
    }
  };
  const report = await read<RunReport>('report.json');
  const har = await read<Har>('exchanges.har');
  const operations = operationsOf(options.document);
  const exchanges = har.log.entries.map((entry): Exchange => {
    // As sent: no URL parser here, it would resolve the `..` and `%2F` a fuzzed path parameter may hold.
    const path = entry.request.url.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/[?#].*$/, '');
    const content = entry.response.content;
    return {
      method: entry.request.method,
      path,
      requestHeaders: Object.fromEntries(entry.request.headers.map((h) => [h.name.toLowerCase(), h.value])),
      requestBody: entry.request.postData?.text,
      status: entry.response.status,
      responseBody: content?.encoding === 'base64' ? Buffer.from(content.text ?? '', 'base64').toString('utf8') : (content?.text ?? ''),
      operation: operations.find((op) => op.method === entry.request.method && op.pattern.test(path)),
    };
  });
  return { command, exitCode, output, report, operations, exchanges, elapsedMs };
}

/** A TOML string (a JSON string literal is a valid TOML basic string). */
export const tomlString = (value: string) => JSON.stringify(value);
export const tomlArray = (values: readonly string[]) => `[${values.map(tomlString).join(', ')}]`;
