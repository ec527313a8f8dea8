import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, trustedIssuers, type TrustedIssuer } from '../../api/authentication';
import { ROUTES } from '../../api/openapi';
import { guardReplies, type Route } from '../../api/routes';
import { ALL_SCOPES, API_AUDIENCE, SCOPES, type Scope } from '../../contracts/auth';
import { TEST_CLIENTS, type TestClient } from '../support/auth';
import { eventually, request, validOrder, type JsonResponse } from '../support/http';
import { startInProcessApi } from '../support/in-process-api';

/**
 * Who may do what, for every route of the API (the list comes from ROUTES, so a new route is in
 * the matrix the day it is added): no token, an expired, tampered or foreign token, and a token
 * with the wrong scope are each refused the way RFC 6750 says; orders are visible only to the
 * client that placed them; reviewers never decide their own orders; an operator reaches every
 * order; a trusted company identity provider works; signing keys rotate with no refused request
 * and a revoked key stops working once the API's key cache refreshes.
 */
let platform: Awaited<ReturnType<typeof startInProcessApi>>;
const servers: Server[] = [];

beforeAll(async () => {
  platform = await startInProcessApi({
    prefix: 'auth_matrix',
    namespace: 'api-auth-matrix',
    // A slow carrier keeps orders in flight for a second or two.
    env: { CARRIER_PICKUP_DELAY_MS: '1500' },
    // Orders above 200.00 EUR wait for a reviewer.
    app: { timings: { reviewAbove: 20_000 } },
  });
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  await platform?.stop();
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const as = (who: TestClient) => platform.auth.as(who);
const call = (method: string, path: string, options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}, base = platform.baseUrl) =>
  request(base, method, path, options);

/** A request that is right in every way but its token, and the answer it gets with a token that may call the route. */
interface Sample {
  params?: { id: string };
  body?: unknown;
  headers?: Record<string, string>;
  allowed: number;
}

/** One sample per route that needs a token, by operationId: a route added without one fails the first test below. */
const SAMPLES: Record<string, () => Sample> = {
  placeOrder: () => ({ body: validOrder(), headers: { 'Idempotency-Key': randomUUID() }, allowed: 202 }),
  listOrders: () => ({ allowed: 200 }),
  getOrder: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  cancelOrder: () => ({ params: { id: randomUUID() }, body: {}, allowed: 404 }),
  reviewOrder: () => ({ params: { id: randomUUID() }, body: { decision: 'approve' }, allowed: 404 }),
  streamOrderEvents: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  metrics: () => ({ allowed: 200 }),
  // .invalid never resolves: whatever the matrix's orders publish is never sent anywhere
  createWebhook: () => ({ body: { url: 'https://webhooks.invalid/hook', events: ['order.placed'] }, allowed: 201 }),
  listWebhooks: () => ({ allowed: 200 }),
  getWebhook: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  deleteWebhook: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  rotateWebhookSecret: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  enableWebhook: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  listWebhookDeliveries: () => ({ params: { id: randomUUID() }, allowed: 404 }),
  replayWebhookDelivery: () => ({ params: { id: randomUUID(), ...{ eventId: 'evt_1' } }, allowed: 404 }),
};

const tokenRoutes = ROUTES.filter((r): r is Route & { access: { scopes: readonly Scope[] } } => r.access !== 'public');
const publicRoutes = ROUTES.filter((r) => r.access === 'public');
const label = (route: Route) => `${route.method.toUpperCase()} ${route.path}`;

async function send(route: Route, authorization: Record<string, string>, base = platform.baseUrl): Promise<JsonResponse & { sample: Sample }> {
  const make = SAMPLES[route.operationId];
  if (!make) throw new Error(`no sample request for ${label(route)}: add one to SAMPLES`);
  const sample = make();
  const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(sample.params?.[name as 'id'] ?? ''));
  const res = await fetch(`${base}${path}`, {
    method: route.method.toUpperCase(),
    headers: { 'content-type': 'application/json', ...sample.headers, ...authorization },
    body: sample.body === undefined ? undefined : JSON.stringify(sample.body),
  });
  const text = await res.text();
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  return { status: res.status, headers: res.headers, body: isJson && text ? JSON.parse(text) : text, sample };
}

/** A 401 as RFC 6750 has it: the error in WWW-Authenticate, and why. */
function expectUnauthorised(res: JsonResponse, what: string, description?: RegExp) {
  expect(res.status, what).toBe(401);
  expect(res.body.error, what).toBe('unauthorized');
  const challenge = res.headers.get('www-authenticate') ?? '';
  expect(challenge, what).toMatch(/^Bearer realm="order-platform", error="invalid_token"/);
  if (description) expect(challenge, what).toMatch(description);
}

/** A client registered with these scopes only, and a token from the auth service's token endpoint. */
async function clientWith(id: string, scopes: Scope[], extra: { rateLimitPerMinute?: number } = {}): Promise<{ id: string; token: () => Promise<string> }> {
  const { secret } = await platform.auth.register({ id, name: id, scopes, ...extra });
  return { id, token: () => platform.auth.tokenFor(id, secret) };
}

/** An issuer's key pair and its JWKS served over HTTP, as an identity provider publishes it. */
async function identityProvider(alg: 'ES256' | 'RS256', kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/jwks') return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksUrl: `${url}/jwks`,
    fetches: () => fetches,
    sign: (claims: JWTPayload, header: Record<string, unknown> = {}) => signWith(privateKey, { alg, kid, ...header }, { iss: url, ...claims }),
  };
}

/** Passes the auth service's JWKS through, noting when each fetch was answered. */
async function jwksRelay(target: string) {
  const fetchedAt: number[] = [];
  const waiting: Array<() => void> = [];
  const server = createServer((_req, res) => {
    void fetch(target).then(async (upstream) => {
      res.writeHead(upstream.status, { 'Content-Type': 'application/json' }).end(await upstream.text());
      fetchedAt.push(Date.now());
      for (const resolve of waiting.splice(0)) resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    fetchedAt: () => [...fetchedAt],
    /** resolves just after the next fetch has been answered */
    nextFetch: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
}

/** A JWT signed with `key`: five minutes of life unless the claims say otherwise. */
function signWith(key: CryptoKey, header: { alg: string; kid: string } & Record<string, unknown>, claims: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: API_AUDIENCE, iat: now, exp: now + 300, jti: randomUUID(), ...claims }).setProtectedHeader(header).sign(key);
}

/**
 * A token as the auth service signs one (auth/tokens.ts: RFC 9068 header and claims), signed with
 * its current key, but with the times and claims a test chooses. The same call with the defaults
 * is accepted (checked below), so a refusal is down to what the test changed.
 */
async function platformToken(subject: string, scopes: readonly Scope[], claims: JWTPayload = {}): Promise<string> {
  const { kid, key } = await platform.auth.keys.signingKey();
  return signWith(
    key as CryptoKey,
    { alg: 'ES256', kid, typ: 'at+jwt' },
    { iss: platform.auth.issuer, sub: subject, client_id: subject, scope: scopes.join(' '), ...claims },
  );
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as JWTPayload;

describe('every route that needs a token', () => {
  let everything: string;
  const only = new Map<Scope, string>();

  beforeAll(async () => {
    everything = await (await clientWith('matrix-all', [...ALL_SCOPES])).token();
    for (const scope of ALL_SCOPES) only.set(scope, await (await clientWith(`matrix-only-${scope.replace(':', '-')}`, [scope])).token());
  });

  it('is in the matrix: every route of ROUTES that needs a token has a sample request, and documents 401 and 403', () => {
    expect(tokenRoutes.length).toBeGreaterThan(0);
    expect(tokenRoutes.filter((r) => !SAMPLES[r.operationId]).map(label)).toEqual([]);
    for (const route of tokenRoutes) expect(Object.keys(guardReplies(route)), label(route)).toEqual(expect.arrayContaining(['401', '403']));
  });

  for (const route of tokenRoutes) {
    describe(label(route), () => {
      it('answers with a token that holds any one of its scopes, and 403 insufficient_scope with any other', async () => {
        for (const scope of ALL_SCOPES) {
          const res = await send(route, bearer(only.get(scope)!));
          if (route.access.scopes.includes(scope)) {
            expect(res.status, `${scope} may call it`).toBe(res.sample.allowed);
          } else {
            expect(res.status, `${scope} may not call it`).toBe(403);
            expect(res.body.error).toBe('forbidden');
            expect(res.headers.get('www-authenticate')).toBe(
              `Bearer realm="order-platform", error="insufficient_scope", scope="${route.access.scopes.join(' ')}"`,
            );
          }
        }
      });

      it('401 without a token, or with one that is not a bearer JWT', async () => {
        const none = await send(route, {});
        expect(none.status).toBe(401);
        // No error code when no credentials were sent at all (RFC 6750 §3.1).
        expect(none.headers.get('www-authenticate')).toBe('Bearer realm="order-platform"');
        for (const header of [`Basic ${Buffer.from('matrix-all:secret').toString('base64')}`, 'Bearer', `Bearer ${everything}.extra`, `Token ${everything}`]) {
          const res = await send(route, { Authorization: header });
          expect(res.status, header.slice(0, 12)).toBe(401);
          expect(res.headers.get('www-authenticate')).toContain('error="invalid_request"');
        }
      });

      it('401 for an expired token; the same token unexpired is accepted', async () => {
        const now = Math.floor(Date.now() / 1000);
        const fresh = await platformToken('matrix-all', ALL_SCOPES);
        expect((await send(route, bearer(fresh))).status).toBe(SAMPLES[route.operationId]!().allowed);
        // Issued twenty minutes ago with the auth service's 15 minutes of life: past the API's 30 s of clock skew.
        const expired = await platformToken('matrix-all', ALL_SCOPES, { iat: now - 1200, exp: now - 300 });
        expectUnauthorised(await send(route, bearer(expired)), 'expired', /error_description="the token has expired"/);
      });

      it('401 for a tampered token: a flipped character, a raised scope, a changed subject, alg "none"', async () => {
        const [header, payload, signature] = everything.split('.') as [string, string, string];
        const at = Math.floor(payload.length / 2);
        const flipped = `${header}.${payload.slice(0, at)}${payload[at] === 'A' ? 'B' : 'A'}${payload.slice(at + 1)}.${signature}`;
        expect(flipped).not.toBe(everything);
        expectUnauthorised(await send(route, bearer(flipped)), 'flipped character');

        const readOnly = only.get(SCOPES.read)!;
        const [h, p, s] = readOnly.split('.') as [string, string, string];
        const raised = `${h}.${base64url({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: ALL_SCOPES.join(' ') })}.${s}`;
        expectUnauthorised(await send(route, bearer(raised)), 'raised scope', /signature/);
        const someoneElse = `${h}.${base64url({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: TEST_CLIENTS.operator.id })}.${s}`;
        expectUnauthorised(await send(route, bearer(someoneElse)), 'changed subject', /signature/);

        const unsigned = `${base64url({ alg: 'none', typ: 'at+jwt' })}.${base64url(payloadOf(everything))}.AAAA`;
        expectUnauthorised(await send(route, bearer(unsigned)), 'alg none');
      });

      it('401 for a token from an issuer the API does not trust, or signed by a key its issuer never published', async () => {
        const rogue = await identityProvider('ES256', 'rogue-1');
        const claims = { sub: 'matrix-all', client_id: 'matrix-all', scope: ALL_SCOPES.join(' ') };
        // A well-formed token from an issuer with a JWKS of its own: never fetched, never trusted.
        expectUnauthorised(await send(route, bearer(await rogue.sign(claims, { typ: 'at+jwt' }))), 'untrusted issuer', /does not trust/);
        // The platform's issuer claimed, the signature made with another key (even one the token says where to find).
        const forged = await rogue.sign({ ...claims, iss: platform.auth.issuer }, { typ: 'at+jwt', jku: rogue.jwksUrl });
        expectUnauthorised(await send(route, bearer(forged)), 'forged issuer', /signature/);
        expect(rogue.fetches()).toBe(0);
        // Signed by the platform's own key for another audience.
        expectUnauthorised(await send(route, bearer(await platformToken('matrix-all', ALL_SCOPES, { aud: 'some-other-api' }))), 'audience', /audience/);
      });
    });
  }
});

describe('the public routes', () => {
  it('answer without a token', async () => {
    expect(publicRoutes.map(label)).toEqual(expect.arrayContaining(['GET /products', 'GET /healthz', 'GET /livez', 'GET /openapi.json']));
    for (const route of publicRoutes) {
      const res = await fetch(`${platform.baseUrl}${route.path}`, { method: route.method.toUpperCase(), redirect: 'manual' });
      await res.arrayBuffer();
      expect(res.status, label(route)).toBe(Number(Object.keys(route.responses).find((s) => Number(s) < 400)));
    }
  });
});

const waitFor = (orderId: string, statuses: string[], who: TestClient = 'storefront') =>
  eventually(
    async () => {
      const res = await call('GET', `/orders/${orderId}`, { headers: await as(who) });
      return statuses.includes(res.body?.status) ? res.body : undefined;
    },
    `order ${orderId} to be ${statuses.join(' or ')}`,
  );
const ENDED = ['COMPLETED', 'FAILED', 'CANCELLED'];

describe('whose orders a client sees', () => {
  it("another client's order answers 404 exactly as an unknown ID does, on GET and cancel, in flight and once ended", async () => {
    const placed = await call('POST', '/orders', { body: validOrder(), headers: { ...(await as('storefront')), 'Idempotency-Key': randomUUID() } });
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId as string;
    const unknownId = randomUUID();
    const other = await as('otherStorefront');

    /** The answer for the other client's order, with its id where the unknown one's had the unknown id. */
    const expectSameAsUnknown = async (method: string, suffix: string, body?: unknown) => {
      const unknown = await call(method, `/orders/${unknownId}${suffix}`, { headers: other, ...(body ? { body } : {}) });
      const theirs = await call(method, `/orders/${orderId}${suffix}`, { headers: other, ...(body ? { body } : {}) });
      expect(unknown.status).toBe(404);
      expect(theirs.status).toBe(404);
      expect(theirs.body).toEqual(JSON.parse(JSON.stringify(unknown.body).replaceAll(unknownId, orderId)));
      const names = (h: Headers) => [...h.keys()].filter((k) => k !== 'x-request-id').sort();
      expect(names(theirs.headers)).toEqual(names(unknown.headers));
      return theirs;
    };

    const live = await call('GET', `/orders/${orderId}`, { headers: await as('storefront') });
    expect(live.status).toBe(200);
    expect(ENDED).not.toContain(live.body.status);
    await expectSameAsUnknown('GET', '');
    await expectSameAsUnknown('POST', '/cancel', { reason: 'not mine' });

    // The other client's cancel did nothing: the order runs to its end.
    const done = await waitFor(orderId, ENDED);
    expect(done.status).toBe('COMPLETED');
    expect(done.placedBy).toBe(TEST_CLIENTS.storefront.id);
    await expectSameAsUnknown('GET', '');
    await expectSameAsUnknown('POST', '/cancel', {});
  });

  it("an operator reads and cancels anyone's order", async () => {
    const placed = await call('POST', '/orders', { body: validOrder(), headers: { ...(await as('storefront')), 'Idempotency-Key': randomUUID() } });
    const orderId = placed.body.orderId as string;
    const operator = await as('operator');
    const read = await call('GET', `/orders/${orderId}`, { headers: operator });
    expect(read.status).toBe(200);
    expect(read.body.placedBy).toBe(TEST_CLIENTS.storefront.id);
    const cancelled = await call('POST', `/orders/${orderId}/cancel`, { headers: operator, body: {} });
    expect(cancelled.status).toBe(202);
    const done = await waitFor(orderId, ENDED, 'operator');
    expect(done.status).toBe('CANCELLED');
    expect(done.events.at(-1).data.reason).toBe(`cancelled by operator ${TEST_CLIENTS.operator.id}`);
    // And once it has ended, from the database.
    expect((await call('GET', `/orders/${orderId}`, { headers: operator })).body.status).toBe('CANCELLED');
  });

  it('a reviewer whose client placed the order gets 403 and the order still waits; another reviewer decides it', async () => {
    const both = await clientWith('matrix-places-and-reviews', [SCOPES.write, SCOPES.read, SCOPES.review]);
    const own = bearer(await both.token());
    const placed = await call('POST', '/orders', {
      body: validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }),
      headers: { ...own, 'Idempotency-Key': randomUUID() },
    });
    expect(placed.status).toBe(202);
    const orderId = placed.body.orderId as string;
    await eventually(async () => ((await call('GET', `/orders/${orderId}`, { headers: own })).body.status === 'AWAITING_REVIEW' ? true : undefined), 'review');

    const self = await call('POST', `/orders/${orderId}/review`, { headers: own, body: { decision: 'approve' } });
    expect(self.status).toBe(403);
    expect(self.body).toEqual({ error: 'forbidden', message: 'you placed this order: another reviewer must decide' });
    // Not a scope refusal: the token holds orders:review.
    expect(self.headers.get('www-authenticate')).toBeNull();
    const after = await call('GET', `/orders/${orderId}`, { headers: own });
    expect(after.body.status).toBe('AWAITING_REVIEW');
    expect(after.body.review).toBeUndefined();

    const decided = await call('POST', `/orders/${orderId}/review`, { headers: await as('reviewer'), body: { decision: 'reject', reason: 'four eyes' } });
    expect(decided.status).toBe(200);
    const done = await waitFor(orderId, ENDED, 'reviewer');
    expect(done).toMatchObject({ status: 'FAILED', failureReason: 'REVIEW_REJECTED' });
    expect(done.events.find((e: { type: string }) => e.type === 'OrderReviewed').data).toMatchObject({
      decision: 'reject',
      reviewer: TEST_CLIENTS.reviewer.id,
    });
  });
});

describe('a company identity provider the API is configured to trust', () => {
  it('its reviewer (scopes in `scp`) reviews and is recorded as its subject; the platform’s own tokens still work beside it', async () => {
    const idp = await identityProvider('RS256', 'idp-2026');
    const external: TrustedIssuer[] = trustedIssuers({
      AUTH_ISSUER: platform.auth.issuer,
      TRUSTED_ISSUERS: [{ issuer: idp.url, jwksUrl: idp.jwksUrl, audience: API_AUDIENCE, scopeClaim: 'scp' }],
    });
    const base = await platform.serve({ authenticate: createAuthenticator({ issuers: external, jwksCacheMs: 1_000 }) });
    const alice = 'alice@risk.example.com';
    const reviewerToken = await idp.sign({ sub: alice, scp: [SCOPES.review], rate_limit_per_minute: 1 });

    const placed = await call('POST', '/orders', {
      body: validOrder({ items: [{ sku: 'HOODIE-GRY-L', quantity: 5 }] }),
      headers: { ...(await as('storefront')), 'Idempotency-Key': randomUUID() },
    });
    const orderId = placed.body.orderId as string;
    await waitFor(orderId, ['AWAITING_REVIEW']);

    // The platform's API without the issuer configured refuses the very same token.
    expectUnauthorised(
      await call('POST', `/orders/${orderId}/review`, { headers: bearer(reviewerToken), body: { decision: 'approve' } }),
      'not configured',
      /does not trust/,
    );
    // Scopes come from `scp`: a token of the same issuer without orders:review is refused.
    const readerToken = await idp.sign({ sub: 'bob@risk.example.com', scp: [SCOPES.read], scope: SCOPES.review });
    expect((await call('POST', `/orders/${orderId}/review`, { headers: bearer(readerToken), body: { decision: 'approve' } }, base)).status).toBe(403);

    // Its rate-limit claim is not the platform's to honour (one a minute would refuse the second request).
    const first = await call('GET', `/orders/${orderId}`, { headers: bearer(reviewerToken) }, base);
    expect(first.status).toBe(200);
    const approved = await call('POST', `/orders/${orderId}/review`, { headers: bearer(reviewerToken), body: { decision: 'approve' } }, base);
    expect(approved.status).toBe(200);
    expect(approved.body).toEqual({ orderId, decision: 'approve' });
    const seen = await call('GET', `/orders/${orderId}`, { headers: bearer(reviewerToken) }, base);
    expect(seen.status).toBe(200);
    // The reviewer with the issuer that vouched for them: a subject alone could be anyone's at another issuer.
    expect(seen.body.review).toEqual({ decision: 'approve', reviewer: alice, reviewerIssuer: idp.url });
    expect((await call('GET', `/orders/${orderId}`, { headers: await as('storefront') }, base)).status).toBe(200);

    const done = await waitFor(orderId, ENDED);
    expect(done.status).toBe('COMPLETED');
    expect(done.events.find((e: { type: string }) => e.type === 'OrderReviewed').data).toMatchObject({ decision: 'approve', reviewer: alice });
    expect(idp.fetches()).toBeGreaterThan(0);
  });
});

describe('signing keys', () => {
  const ROTATION_RATE_LIMIT = 1_000_000;
  const kidOf = (token: string) => decodeProtectedHeader(token).kid;
  let client: { id: string; token: () => Promise<string> };
  let oldToken: string;
  let newToken: string;
  let newKid: string;
  let orderId: string;

  beforeAll(async () => {
    // Its own limit, well above the loops' pace: the default (600 a minute) would answer 429 within seconds.
    client = await clientWith('matrix-rotation', [SCOPES.write, SCOPES.read], { rateLimitPerMinute: ROTATION_RATE_LIMIT });
    oldToken = await client.token();
    const placed = await call('POST', '/orders', { body: validOrder(), headers: { ...bearer(oldToken), 'Idempotency-Key': randomUUID() } });
    expect(placed.status).toBe(202);
    orderId = placed.body.orderId;
  });

  it('rotate with no request refused: tokens of the new key verify as they arrive, tokens of the old one still do', async () => {
    // The API reads the auth service's JWKS through a relay that says when it fetched, with a key
    // cache a little shorter than the 1 s the auth service publishes a key ahead in tests (as in
    // production: 10 min against 15). The rotation starts just after a fetch, the worst moment:
    // the API then holds a key set without the new key for as long as its cache lets it.
    const relay = await jwksRelay(`${platform.auth.issuer}/.well-known/jwks.json`);
    const issuers = trustedIssuers({ AUTH_ISSUER: platform.auth.issuer, AUTH_JWKS_URL: relay.url, TRUSTED_ISSUERS: [] });
    const base = await platform.serve({ authenticate: createAuthenticator({ issuers, jwksCacheMs: 900 }) });
    const answers: Array<{ kid: string; status: number }> = [];
    const tokens = [oldToken];
    let running = true;
    const loop = async () => {
      while (running) {
        for (const token of [...tokens]) {
          const res = await call('GET', `/orders/${orderId}`, { headers: bearer(token) }, base);
          answers.push({ kid: kidOf(token)!, status: res.status });
        }
      }
    };
    const loops = [loop(), loop()];
    let rotatedAt = 0;
    try {
      await eventually(async () => (answers.length >= 10 ? true : undefined), 'the loop to run');
      await relay.nextFetch();
      rotatedAt = Date.now();
      newKid = await platform.auth.keys.rotateNow();
      expect(newKid).not.toBe(kidOf(oldToken));
      // The first token of the new key, the moment it signs (the token endpoint's own hashing of the
      // client secret would add a margin of its own), straight to the API.
      await eventually(async () => ((await platform.auth.keys.signingKey()).kid === newKid ? true : undefined), 'the new key to sign', 1_000, 5);
      const first = await platformToken(client.id, [SCOPES.write, SCOPES.read], { rate_limit_per_minute: ROTATION_RATE_LIMIT });
      expect(kidOf(first)).toBe(newKid);
      tokens.push(first);
      const firstAnswer = await call('GET', `/orders/${orderId}`, { headers: bearer(first) }, base);
      answers.push({ kid: newKid, status: firstAnswer.status });
      // Then tokens from the token endpoint, signed with the new key from now on.
      newToken = await client.token();
      expect(kidOf(newToken)).toBe(newKid);
      tokens.push(newToken);
      const signedNew = () => answers.filter((a) => a.kid === newKid).length;
      await eventually(async () => (signedNew() >= 20 ? true : undefined), 'requests with the new key');
    } finally {
      running = false;
      await Promise.all(loops);
    }
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.filter((a) => a.kid === kidOf(oldToken)).length).toBeGreaterThan(20);
    // The API did learn the new key from the relay, after the rotation.
    expect(relay.fetchedAt().filter((at) => at > rotatedAt).length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.kid === newKid).length).toBeGreaterThanOrEqual(20);
    // Both keys are published: the old one until its tokens have expired.
    const jwks = (await (await fetch(`${platform.auth.issuer}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kidOf(oldToken), newKid]));
    expect((await call('GET', `/orders/${orderId}`, { headers: bearer(oldToken) })).status).toBe(200);
  });

  it('a revoked key: its tokens are refused once the API’s key cache (1 s) refreshes; other keys’ tokens are not', async () => {
    expect(newToken, 'the rotation test ran first').toBeDefined();
    const get = (token: string) => call('GET', `/orders/${orderId}`, { headers: bearer(token) });
    expect((await get(newToken)).status).toBe(200);
    await platform.auth.keys.revoke(newKid);
    const revokedAt = Date.now();
    await eventually(async () => ((await get(newToken)).status === 401 ? true : undefined), 'the revoked key to be refused', 100, 50);
    expect(Date.now() - revokedAt).toBeLessThan(3_000);
    for (let i = 0; i < 5; i++) expectUnauthorised(await get(newToken), 'revoked key');
    expect((await platform.auth.keys.jwks()).keys.map((k) => k.kid)).not.toContain(newKid);

    expect((await get(oldToken)).status).toBe(200);
    const next = await client.token();
    expect(kidOf(next)).not.toBe(newKid);
    expect((await get(next)).status).toBe(200);
  });
});
