import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Client, Connection, type ClientInterceptors } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { NativeConnection, NativeConnectionOptions } from '@temporalio/worker';
import { LOCAL_TEMPORAL_ADDRESS } from '../config';
import { EncryptionCodec, keyringFromEnv, type Keyring } from './codec';

/** The module every client and worker loads its failure converter from (and the workflow bundle includes). */
export const FAILURE_CONVERTER_PATH = createRequire(import.meta.url).resolve('./failure-converter.ts');

/**
 * How this process reaches Temporal, read once at start the way the Temporal CLI reads it:
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* and TEMPORAL_GRPC_META_*,
 * over a profile (TEMPORAL_PROFILE) of a temporal.toml (TEMPORAL_CONFIG_FILE, or the CLI's own
 * file). With nothing set: the local dev server, namespace `default`, no TLS.
 */
export interface TemporalConnectionSettings {
  namespace: string;
  connection: NativeConnectionOptions & { address: string };
  /** for a start-up log line: where, which namespace, how authenticated; never a secret */
  summary: string;
}

/** The connection and the platform's data converter: what every client and worker of the platform uses. */
export interface TemporalSettings extends TemporalConnectionSettings {
  /** the payload codec (AES-256-GCM, PAYLOAD_KEYRING[_FILE]) and the failure converter that hands failures to it */
  dataConverter: DataConverter;
}

const TLS_SETTINGS = [
  { field: 'clientCert', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', toml: 'client_cert_path', pem: 'CERTIFICATE' },
  { field: 'clientKey', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', toml: 'client_key_path', pem: 'PRIVATE KEY' },
  { field: 'serverCACert', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', toml: 'server_ca_cert_path', pem: 'CERTIFICATE' },
] as const;

/**
 * A certificate or key named by a path must be there and be PEM, checked at start with the
 * setting named: otherwise the first connection fails much later, with a TLS error naming nothing.
 */
function checkTlsFiles(profile: ClientConfigProfile, env: NodeJS.ProcessEnv, profileName: string): void {
  const tls = profile.tls;
  if (!tls || tls.disabled) return;
  const problems: string[] = [];
  for (const setting of TLS_SETTINGS) {
    const source: ConfigDataSource | undefined = tls[setting.field];
    if (!source || !('path' in source)) continue;
    const name = env[setting.env] === source.path ? setting.env : `${setting.toml} of profile "${profileName}" in temporal.toml`;
    let text: string;
    try {
      text = readFileSync(source.path, 'utf8');
    } catch (err) {
      problems.push(`${name}=${source.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    if (!text.includes(`-----BEGIN `) || !text.includes(setting.pem)) problems.push(`${name}=${source.path} is not a PEM ${setting.pem.toLowerCase()}`);
  }
  if (!!tls.clientCert !== !!tls.clientKey) {
    problems.push('a client certificate needs its key and a key its certificate: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH');
  }
  if (problems.length > 0) throw new Error(`invalid Temporal connection settings:\n  ${problems.join('\n  ')}`);
}

/** The data converter of every client and worker: the payload codec over the keyring, and encoded failures. */
export function platformDataConverter(keyring: Keyring): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** Where Temporal is and how to authenticate: for a process that needs no payload keys (the benchmark's floor, infrastructure checks). */
export function temporalConnectionSettings(env: NodeJS.ProcessEnv = process.env): TemporalConnectionSettings {
  const profileName = env.TEMPORAL_PROFILE ?? 'default';
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: env as Record<string, string> });
  } catch (err) {
    throw new Error(`invalid Temporal connection settings: ${(err as Error).message}`);
  }
  checkTlsFiles(profile, env, profileName);
  const { connectionOptions, namespace } = toClientOptions(profile);
  const address = connectionOptions.address ?? LOCAL_TEMPORAL_ADDRESS;
  const tls = connectionOptions.tls;
  const auth = connectionOptions.apiKey ? 'API key' : tls && typeof tls === 'object' && tls.clientCertPair ? 'mTLS' : 'none';
  return {
    namespace: namespace ?? 'default',
    connection: { ...connectionOptions, address },
    summary: `${address}, namespace ${namespace ?? 'default'}, TLS ${tls ? 'on' : 'off'}, authentication ${auth}`,
  };
}

/** The settings of a platform process: the connection, and the payload keys (the process refuses to start without them). */
export function temporalSettings(env: NodeJS.ProcessEnv = process.env, { keyring }: { keyring?: Keyring } = {}): TemporalSettings {
  return { ...temporalConnectionSettings(env), dataConverter: platformDataConverter(keyring ?? keyringFromEnv(env)) };
}

/** A client of this process's namespace, with the platform's data converter. */
export async function connectClient(
  settings: TemporalConnectionSettings & { dataConverter?: DataConverter },
  options: { interceptors?: ClientInterceptors; connectTimeout?: number } = {},
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ ...settings.connection, ...(options.connectTimeout ? { connectTimeout: options.connectTimeout } : {}) });
  const client = new Client({
    connection,
    namespace: settings.namespace,
    ...(settings.dataConverter ? { dataConverter: settings.dataConverter } : {}),
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  return { client, connection };
}

/** Temporal restarting: nothing listens on its port yet, or its frontend is up but not serving yet. */
const TEMPORAL_STARTING = /Connection refused|service is currently unavailable/i;

/**
 * A worker's connection: the same settings, for the SDK core. A worker that starts while Temporal
 * restarts (a frontend deploy, a dev server coming back) waits for it for up to `waitMs`, instead
 * of exiting and paying its whole start-up again; any other failure (TLS, a server that is not
 * Temporal) is at once.
 */
export async function connectWorker(
  settings: TemporalConnectionSettings,
  { waitMs = 60_000, onWait }: { waitMs?: number; onWait?: (err: Error) => void } = {},
): Promise<NativeConnection> {
  const { NativeConnection } = await import('@temporalio/worker');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await NativeConnection.connect(settings.connection);
    } catch (err) {
      if (!(err instanceof Error) || !TEMPORAL_STARTING.test(err.message) || Date.now() >= deadline) throw err;
      onWait?.(err);
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, deadline - Date.now()))));
    }
  }
}
