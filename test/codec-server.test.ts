import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAuthenticator, trustedIssuers } from '../api/authentication';
import { createCodecServerApp, SESSION_COOKIE } from '../codec-server/app';
import { DATA_DIR } from '../lib/infra/paths';
import { startTemporalDevServer, type RunningTemporal } from '../lib/infra/temporal';
import { createLogger } from '../lib/logger';
import { freeFixedPort } from '../lib/net';
import { EncryptionCodec, keyringFromEnv } from '../lib/temporal/codec';
import { startTestAuth, TEST_CLIENTS, type TestAuth } from './support/auth';
import { createTestDatabases } from './support/databases';

/**
 * The codec server the Web UI decodes payloads with: real HTTP, the real auth service's tokens,
 * the platform's payload codec, and a real Temporal Web UI (a dev server's) served through it.
 */
let auth: TestAuth;
let ui: RunningTemporal;
let server: Server;
let base: string;
const codec = new EncryptionCodec(keyringFromEnv());
const UI_ORIGIN = 'http://ui.example.test';

beforeAll(async () => {
  const urls = await createTestDatabases('codec');
  auth = await startTestAuth(urls.auth);
  ui = await startTemporalDevServer({
    cli: inject('temporalCli'),
    port: await freeFixedPort(),
    uiPort: await freeFixedPort(),
    dbFile: join(DATA_DIR, 'test', `codec-ui-${process.pid}.db`),
  });
  const app = createCodecServerApp({
    codec,
    authenticate: createAuthenticator({ issuers: trustedIssuers({ AUTH_ISSUER: auth.issuer, TRUSTED_ISSUERS: [] }), jwksCacheMs: 1_000 }),
    log: createLogger('codec-test', 'silent'),
    corsOrigins: [UI_ORIGIN],
    tokenUrl: `${auth.issuer}/oauth/token`,
    uiUpstream: ui.uiUrl!,
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await ui?.stop();
  await auth?.stop();
});

/** A payload as a workflow input is stored: the customer's address, encrypted, in the protocol's JSON form. */
async function sealedPayload() {
  const [sealed] = await codec.encode([defaultPayloadConverter.toPayload({ shippingAddress: { name: 'Ada Lovelace', line1: '12 St James Sq' } })]);
  const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');
  return { payloads: [{ metadata: Object.fromEntries(Object.entries(sealed!.metadata!).map(([k, v]) => [k, b64(v)])), data: b64(sealed!.data) }] };
}

const decode = (headers: Record<string, string>, body: unknown) =>
  fetch(`${base}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
    body: JSON.stringify(body),
  });

const plainText = (answer: { payloads: Array<{ data: string }> }) => Buffer.from(answer.payloads[0]!.data, 'base64').toString();

describe('the codec server', () => {
  it('decodes for an operator token, and refuses without a token or with a token that is not an operator’s', async () => {
    const body = await sealedPayload();
    expect(Buffer.from(body.payloads[0]!.data, 'base64').toString()).not.toContain('Ada Lovelace');

    const refusedWithout = await decode({}, body);
    expect(refusedWithout.status).toBe(401);
    const refusedStorefront = await decode(await auth.as('storefront'), body);
    expect(refusedStorefront.status).toBe(403);
    const tampered = (await auth.token('operator')).replace(/.(?=\.[^.]*$)/, (c) => (c === 'A' ? 'B' : 'A'));
    expect((await decode({ Authorization: `Bearer ${tampered}` }, body)).status).toBe(401);

    const decoded = await decode(await auth.as('operator'), body);
    expect(decoded.status).toBe(200);
    expect(decoded.headers.get('cache-control')).toBe('no-store');
    expect(plainText((await decoded.json()) as { payloads: Array<{ data: string }> })).toContain('Ada Lovelace');
  });

  it('encodes what it decodes back, for operators only', async () => {
    const plain = { payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hello"').toString('base64') }] };
    expect((await fetch(`${base}/encode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(plain) })).status).toBe(401);
    const encoded = (await (
      await fetch(`${base}/encode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(await auth.as('operator')) },
        body: JSON.stringify(plain),
      })
    ).json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
    expect(plainText((await (await decode(await auth.as('operator'), encoded)).json()) as { payloads: Array<{ data: string }> })).toBe('"hello"');
  });

  it('answers the Web UI’s preflight for its origin only', async () => {
    const preflight = (origin: string) =>
      fetch(`${base}/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-namespace' },
      });
    const allowed = await preflight(UI_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    const other = await preflight('http://evil.example.test');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('signs an operator in with an operator client’s credentials, and serves them the Web UI, whose /decode then works with the session alone', async () => {
    // Not signed in: the UI's pages send the browser to sign in, its API answers 401.
    const page = await fetch(`${base}/namespaces/default/workflows`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fnamespaces%2Fdefault%2Fworkflows');
    expect((await fetch(`${base}/api/v1/namespaces`, { headers: { accept: 'application/json' } })).status).toBe(401);

    // A storefront's credentials do not sign in; an operator's do.
    const operator = await auth.register({ id: 'ops-ui', name: 'Ops', scopes: [...TEST_CLIENTS.operator.scopes] });
    const storefront = await auth.register({ id: 'shop-ui', name: 'Shop', scopes: [...TEST_CLIENTS.storefront.scopes] });
    const signIn = (id: string, secret: string) =>
      fetch(`${base}/login`, {
        method: 'POST',
        redirect: 'manual',
        body: new URLSearchParams({ client_id: id, client_secret: secret, next: '/namespaces/default/workflows' }),
      });
    const refused = await signIn(storefront.id, storefront.secret);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('set-cookie')).toBeNull();
    const signedIn = await signIn(operator.id, operator.secret);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/namespaces/default/workflows');
    const cookie = signedIn.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const session = { cookie: cookie.split(';')[0]! };

    // The real Web UI, through the codec server: its page and its own HTTP API.
    const uiPage = await fetch(`${base}/namespaces/default/workflows`, { headers: { ...session, accept: 'text/html' } });
    expect(uiPage.status).toBe(200);
    expect(await uiPage.text()).toContain('<html');
    const namespaces = await fetch(`${base}/api/v1/namespaces`, { headers: session });
    expect(namespaces.status).toBe(200);
    expect(JSON.stringify(await namespaces.json())).toContain('default');

    // The UI calls /decode on its own origin: the session is enough.
    const decoded = await decode(session, await sealedPayload());
    expect(decoded.status).toBe(200);
    expect(plainText((await decoded.json()) as { payloads: Array<{ data: string }> })).toContain('Ada Lovelace');
  });
});
