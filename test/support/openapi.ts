import { createServer, type Server, type Socket } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { expect } from 'vitest';
import type { TestClient } from './auth';
import { testTemporalSettings } from './temporal';

/**
 * The running API's answers checked against its own OpenAPI document (JSON Schema 2020-12), for the conformance tests
 * (test/api/conformance.test.ts, test/api/webhooks-conformance.test.ts): each request made through a checker's `call`
 * must get a documented status with its required headers, its content type and a body its schema accepts, and is
 * counted, so that a test can check at the end that every documented answer was exercised and nothing undocumented was
 * answered. Also the stalled Temporal that the documented 503 answers are provoked with (test/api/hardening.test.ts too).
 */
export type Method = 'get' | 'post' | 'delete';
interface Operation {
  responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: unknown }> }>;
}
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Partial<Record<Method, Operation>>>;
}

export interface CallOptions {
  params?: Record<string, string>;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  /** sent as is instead of `body` */
  rawBody?: string | Buffer;
  base?: string;
  /** who calls: a test client, a raw token, or `null` for no token at all (default: the checker's caller for the route) */
  as?: TestClient | { token: string } | null;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** What a checker needs of the API under test: its address and its test clients' tokens (a platform of startInProcessApi). */
export interface ApiUnderTest {
  baseUrl: string;
  auth: { as(client: TestClient): Promise<Record<string, string>> };
}

export interface OpenApiChecker {
  /** Fetches the API's document (GET /openapi.json): call it in `beforeAll`, once the API runs. */
  load: (api: ApiUnderTest) => Promise<void>;
  /** The document `load` fetched. */
  readonly doc: OpenApiDocument;
  /** Sends one request and checks the answer against the document: a documented status, its headers, its content type and schema. */
  call: (method: Method, template: string, options?: CallOptions) => Promise<Answer>;
  /** Every documented answer (`GET /orders 200`) of the paths `include` keeps, and every answer `call` got on them; both sorted. */
  coverage: (include?: (path: string) => boolean) => { documented: string[]; exercised: string[] };
}

/**
 * A checker of answers against the API's document. `caller` names the test client a route (`POST /orders`) is called
 * as when a request does not say (`undefined`: no token).
 */
export function openApiChecker({ caller }: { caller: (route: string) => TestClient | undefined }): OpenApiChecker {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
  const validators = new WeakMap<object, ValidateFunction>();
  const exercised = new Set<string>();
  let api: ApiUnderTest | undefined;
  let doc: OpenApiDocument | undefined;

  const loaded = () => {
    if (!api || !doc) throw new Error('the OpenAPI document is not loaded: call load() in beforeAll');
    return { api, doc };
  };

  /** The document's schema, its `#/components/…` references pointed at the document itself. */
  function validator(schema: object): ValidateFunction {
    const anchored = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(anchored)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith('#/') ? `openapi.json${x}` : anchored(x)]),
            )
          : v;
    let validate = validators.get(schema);
    if (!validate) validators.set(schema, (validate = ajv.compile(anchored(schema) as object)));
    return validate;
  }

  return {
    async load(under) {
      api = under;
      doc = (await (await fetch(`${under.baseUrl}/openapi.json`)).json()) as OpenApiDocument;
      ajv.addSchema(doc, 'openapi.json');
    },

    get doc() {
      return loaded().doc;
    },

    async call(method, template, options = {}) {
      const { api, doc } = loaded();
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(options.params?.[name] ?? ''));
      const search = options.query ? `?${new URLSearchParams(options.query).toString()}` : '';
      const who = options.as === undefined ? caller(`${method.toUpperCase()} ${template}`) : options.as;
      const authorization =
        who === null || who === undefined ? {} : typeof who === 'object' ? { Authorization: `Bearer ${who.token}` } : await api.auth.as(who);
      const res = await fetch(`${options.base ?? api.baseUrl}${path}${search}`, {
        method: method.toUpperCase(),
        redirect: 'manual',
        // Header names in one case, so that a test's Content-Type replaces the default instead of joining it.
        headers: Object.fromEntries(
          Object.entries({ 'content-type': 'application/json', ...authorization, ...options.headers }).map(([k, v]) => [k.toLowerCase(), v]),
        ),
        body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
      });
      const text = await res.text();
      const what = `${method.toUpperCase()} ${template} → ${res.status}`;
      const reply = doc.paths[template]?.[method]?.responses[String(res.status)];
      expect(reply, `${what} is not documented: ${text.slice(0, 300)}`).toBeDefined();
      exercised.add(`${method.toUpperCase()} ${template} ${res.status}`);
      for (const [name, header] of Object.entries(reply!.headers ?? {})) {
        if (header.required) expect(res.headers.get(name), `${what}: header ${name}`).not.toBeNull();
      }
      const media = Object.keys(reply!.content ?? {});
      if (media.length === 0) return { status: res.status, headers: res.headers, body: text };
      const contentType = res.headers.get('content-type') ?? '';
      const mediaType = media.find((m) => contentType.startsWith(m));
      expect(mediaType, `${what}: content-type ${contentType}, documented ${media.join(', ')}`).toBeDefined();
      const validate = validator(reply!.content![mediaType!]!.schema as object);
      if (mediaType === 'text/event-stream') {
        // A stream's schema is each event's (as OpenAPI 3.2's itemSchema, and schemathesis, read it).
        for (const event of sseEvents(text)) expect(validate(event), `${what}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(event)}`).toBe(true);
        return { status: res.status, headers: res.headers, body: text };
      }
      const body: unknown = mediaType!.includes('json') ? JSON.parse(text) : text;
      expect(validate(body), `${what}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`).toBe(true);
      return { status: res.status, headers: res.headers, body };
    },

    coverage(include = () => true) {
      const documented = Object.entries(loaded().doc.paths)
        .filter(([path]) => include(path))
        .flatMap(([path, item]) =>
          Object.entries(item).flatMap(([method, operation]) => Object.keys(operation.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
        );
      return { documented: documented.sort(), exercised: [...exercised].filter((e) => include(e.split(' ')[1]!)).sort() };
    },
  };
}

/**
 * A client of `namespace` whose Temporal frontend accepts connections and never says a word: a Temporal that has
 * stalled, for the API's 503 within the request deadline. `close` (once the test is done with it) ends both.
 */
export async function stalledTemporalClient(namespace: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const connection = Connection.lazy({ address: `127.0.0.1:${(server.address() as { port: number }).port}` });
  return {
    client: new Client({ connection, namespace, dataConverter: testTemporalSettings(namespace).dataConverter }),
    close: async () => {
      await connection.close();
      await new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}

/** The events of a Server-Sent Events body, each as its fields (`retry` a number); comment lines skipped. */
function sseEvents(text: string): Array<Record<string, string | number>> {
  return text
    .split(/\n\n/)
    .map((block) => block.split('\n').filter((line) => line && !line.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) =>
      Object.fromEntries(
        lines.map((line) => {
          const at = line.indexOf(':');
          const [field, value] = at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1).replace(/^ /, '')];
          return [field, field === 'retry' ? Number(value) : value];
        }),
      ),
    );
}
