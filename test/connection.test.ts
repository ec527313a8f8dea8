import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../lib/net';
import { keyringJson, withNewKey } from '../lib/temporal/codec';
import { connectWorker, temporalConnectionSettings, temporalSettings } from '../lib/temporal/connection';

/**
 * The one way every client and worker connects (lib/temporal/connection.ts): the Temporal CLI's own
 * variables and temporal.toml profiles, read with @temporalio/envconfig, and checked at start.
 * The connections themselves are exercised against the dev server (everywhere) and against the
 * cluster's mTLS frontend (test/cluster); here, a worker's wait for a Temporal that is restarting.
 */
let dir: string;
const PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const keyring = keyringJson(withNewKey(undefined, 'connection-test'));
/** Nothing from this machine's own environment or ~/.config/temporalio leaks into a case. */
const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ TEMPORAL_CONFIG_FILE: join(dir, 'none.toml'), PAYLOAD_KEYRING: keyring, ...vars });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'connection-'));
  await writeFile(join(dir, 'client.pem'), PEM_CERT);
  await writeFile(join(dir, 'client.key'), PEM_KEY);
  await writeFile(join(dir, 'ca.pem'), PEM_CERT);
  await writeFile(join(dir, 'not-pem.txt'), 'hello');
  await writeFile(
    join(dir, 'temporal.toml'),
    [
      '[profile.default]',
      'address = "127.0.0.1:7233"',
      '',
      '[profile.cloud]',
      'address = "orders.a1b2c.tmprl.cloud:7233"',
      'namespace = "orders.a1b2c"',
      'api_key = "key-from-profile"',
      '',
      '[profile.mtls]',
      'address = "temporal.internal:7233"',
      'namespace = "orders"',
      '[profile.mtls.tls]',
      `client_cert_path = "${join(dir, 'client.pem')}"`,
      `client_key_path = "${join(dir, 'missing.key')}"`,
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the Temporal connection factory', () => {
  it('defaults to the local dev server, namespace default, no TLS', () => {
    const settings = temporalConnectionSettings(env({}));
    expect(settings.connection.address).toBe('127.0.0.1:7233');
    expect(settings.namespace).toBe('default');
    expect(settings.connection.tls).toBeUndefined();
    expect(settings.summary).toBe('127.0.0.1:7233, namespace default, TLS off, authentication none');
  });

  it('takes an API key (Temporal Cloud): TLS on, the key sent as a bearer token, never shown in the summary', () => {
    const settings = temporalConnectionSettings(
      env({ TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'orders.a1b2c', TEMPORAL_API_KEY: 'secret-api-key' }),
    );
    expect(settings.connection).toMatchObject({ address: 'eu-west-1.aws.api.temporal.io:7233', apiKey: 'secret-api-key', tls: true });
    expect(settings.namespace).toBe('orders.a1b2c');
    expect(settings.summary).toContain('authentication API key');
    expect(settings.summary).not.toContain('secret-api-key');
  });

  it('takes a client certificate (mTLS) with its CA and server name, read from the files named', () => {
    const settings = temporalConnectionSettings(
      env({
        TEMPORAL_ADDRESS: 'temporal.internal:7233',
        TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key'),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'),
        TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
      }),
    );
    const tls = settings.connection.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer; serverNameOverride: string };
    expect(Buffer.from(tls.clientCertPair.crt).toString()).toBe(PEM_CERT);
    expect(Buffer.from(tls.clientCertPair.key).toString()).toBe(PEM_KEY);
    expect(Buffer.from(tls.serverRootCACertificate).toString()).toBe(PEM_CERT);
    expect(tls.serverNameOverride).toBe('frontend.temporal.internal');
    expect(settings.summary).toContain('authentication mTLS');
  });

  it('reads a profile of a temporal.toml, as the CLI does, and the environment overrides it', () => {
    const file = join(dir, 'temporal.toml');
    const cloud = temporalConnectionSettings(env({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' }));
    expect(cloud.connection).toMatchObject({ address: 'orders.a1b2c.tmprl.cloud:7233', apiKey: 'key-from-profile', tls: true });
    expect(cloud.namespace).toBe('orders.a1b2c');
    const overridden = temporalConnectionSettings(env({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud', TEMPORAL_NAMESPACE: 'orders-staging.a1b2c' }));
    expect(overridden.namespace).toBe('orders-staging.a1b2c');
  });

  it('refuses to start when a certificate or key cannot be read, naming the setting', () => {
    const missing = () =>
      temporalConnectionSettings(env({ TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'nope.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key') }));
    expect(missing).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH=.*nope\.pem cannot be read: ENOENT/);
    const notPem = () =>
      temporalConnectionSettings(
        env({
          TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem'),
          TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key'),
          TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'not-pem.txt'),
        }),
      );
    expect(notPem).toThrow(/TEMPORAL_TLS_SERVER_CA_CERT_PATH=.*not-pem\.txt is not a PEM certificate/);
    const halfPair = () => temporalConnectionSettings(env({ TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem') }));
    expect(halfPair).toThrow(/set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/);
    const fromProfile = () => temporalConnectionSettings(env({ TEMPORAL_CONFIG_FILE: join(dir, 'temporal.toml'), TEMPORAL_PROFILE: 'mtls' }));
    expect(fromProfile).toThrow(/client_key_path of profile "mtls" in temporal.toml=.*missing\.key cannot be read/);
  });

  it('refuses to start a platform process without payload keys, naming the settings', () => {
    expect(() => temporalSettings({ TEMPORAL_CONFIG_FILE: join(dir, 'none.toml') })).toThrow(/PAYLOAD_KEYRING_FILE or PAYLOAD_KEYRING/);
    expect(() => temporalSettings(env({ PAYLOAD_KEYRING: '{"current":"k1","keys":{"k1":"dG9vIHNob3J0"}}' }))).toThrow(
      /PAYLOAD_KEYRING: keys\.k1: an AES-256 key/,
    );
    expect(() => temporalSettings(env({ PAYLOAD_KEYRING: '', PAYLOAD_KEYRING_FILE: join(dir, 'nope.json') }))).toThrow(
      /PAYLOAD_KEYRING_FILE=.*nope\.json cannot be read/,
    );
    expect(temporalSettings(env({})).dataConverter.payloadCodecs).toHaveLength(1);
  });
});

describe("a worker's connection while Temporal restarts", () => {
  it('waits for a Temporal that is not listening yet, and connects once it is', async () => {
    // A port that answers only after a second, then forwards to the suite's dev server: Temporal coming back.
    const port = await freePort();
    const [host, upstreamPort] = inject('temporalAddress').split(':') as [string, string];
    const proxy = createServer((socket) => {
      const upstream = connect(Number(upstreamPort), host);
      socket.pipe(upstream).pipe(socket);
      const end = () => (socket.destroy(), upstream.destroy());
      socket.on('error', end);
      upstream.on('error', end);
    });
    const waits: string[] = [];
    const listening = new Promise<void>((resolve) => setTimeout(() => proxy.listen(port, '127.0.0.1', resolve), 1_000));
    try {
      const connection = await connectWorker(temporalConnectionSettings(env({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` })), {
        waitMs: 30_000,
        onWait: (err) => waits.push(err.message),
      });
      await connection.close();
      expect(waits.length).toBeGreaterThan(0);
      expect(waits[0]).toMatch(/Connection refused/);
    } finally {
      await listening;
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('gives up after its wait, and at once on what waiting cannot mend', async () => {
    const closed = await freePort();
    const started = Date.now();
    await expect(connectWorker(temporalConnectionSettings(env({ TEMPORAL_ADDRESS: `127.0.0.1:${closed}` })), { waitMs: 1_500 })).rejects.toThrow(
      /Connection refused/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);

    // Something that is not Temporal at all (a plain HTTP server: no gRPC) is not waited for.
    const notTemporal = createHttpServer((_req, res) => res.end('not gRPC'));
    await new Promise<void>((resolve) => notTemporal.listen(0, '127.0.0.1', resolve));
    const waits: string[] = [];
    try {
      const address = `127.0.0.1:${(notTemporal.address() as AddressInfo).port}`;
      await expect(
        connectWorker(temporalConnectionSettings(env({ TEMPORAL_ADDRESS: address })), { waitMs: 30_000, onWait: (e) => waits.push(e.message) }),
      ).rejects.toThrow();
      expect(waits).toEqual([]);
    } finally {
      await new Promise((resolve) => notTemporal.close(resolve));
    }
  });
});
