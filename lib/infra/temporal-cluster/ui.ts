import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freeFixedPort } from '../../net';
import { DATA_DIR } from '../paths';
import { ensureGoTool } from '../tools';
import type { ClusterClientTls } from './bootstrap';
import { endLeftoverNodes, nodeProcess, tailLog } from './processes';
import { TEMPORAL_SERVER_TOOLCHAIN } from './tools';

/**
 * Temporal's Web UI server, the same program the CLI's dev server embeds, with the built UI inside
 * its module. v2.56.4, not the newest v2.58.x: `go install` of v2.58.0 and v2.58.1 fails because
 * the module proxy refuses two of their pinned dependencies (403 for github.com/labstack/echo/v4
 * v4.16.1 and go.temporal.io/api v1.64.0); v2.56.4's (echo v4.16.4, api v1.63.5) download.
 */
const UI_SERVER = { pkg: 'github.com/temporalio/ui-server/v2/cmd/server', version: 'v2.56.4', binary: 'server', as: 'temporal-ui-server' };

export async function ensureTemporalUiServer(log: (msg: string) => void = () => undefined): Promise<string> {
  // Its go.mod asks for Go 1.26.10; the toolchain the server is built with serves it too.
  return ensureGoTool({ ...UI_SERVER, toolchain: TEMPORAL_SERVER_TOOLCHAIN }, log);
}

export interface TemporalUiOptions {
  /** the cluster's frontend, host:port */
  address: string;
  /** the cluster's client TLS; none for a plaintext frontend */
  tls?: ClusterClientTls;
  /** default: a free port */
  port?: number;
  /** a remote codec server, for payloads the platform encrypts (the browser calls it) */
  codecEndpoint?: string;
  /** the browser sends its cookies to the codec server */
  codecIncludeCredentials?: boolean;
  /** the browser passes the user's access token to the codec server */
  codecPassAccessToken?: boolean;
  defaultNamespace?: string;
  /** config, log and pid file; default .data/temporal-ui-<port> */
  dataDir?: string;
  log?: (msg: string) => void;
}

export interface RunningTemporalUi {
  url: string;
  pid: number | undefined;
  logFile: string;
  stop: () => Promise<void>;
}

/**
 * Serves the Web UI for a cluster on 127.0.0.1: a config file for the ui-server (its
 * temporalGrpcAddress, tls and codec settings), one process, ready once /healthz answers.
 */
export async function startTemporalUi(options: TemporalUiOptions): Promise<RunningTemporalUi> {
  const { address, tls, codecEndpoint, defaultNamespace = 'default', log = () => undefined } = options;
  const binary = await ensureTemporalUiServer(log);
  const port = options.port ?? (await freeFixedPort());
  const dataDir = resolve(options.dataDir ?? join(DATA_DIR, `temporal-ui-${port}`));
  const configDir = join(dataDir, 'config');
  await mkdir(configDir, { recursive: true });
  await endLeftoverNodes(dataDir, log);
  const config = {
    temporalGrpcAddress: address,
    host: '127.0.0.1',
    port,
    enableUi: true,
    defaultNamespace,
    disableNewsFetch: true,
    notifyOnNewVersion: false,
    // Served over plain HTTP on loopback: its CSRF cookie must not require HTTPS.
    cors: { cookieInsecure: true, allowOrigins: [`http://127.0.0.1:${port}`, `http://localhost:${port}`] },
    ...(tls
      ? {
          tls: { caFile: tls.serverCaPath, certFile: tls.clientCertPath, keyFile: tls.clientKeyPath, serverName: tls.serverName, enableHostVerification: true },
        }
      : {}),
    ...(codecEndpoint
      ? { codec: { endpoint: codecEndpoint, includeCredentials: !!options.codecIncludeCredentials, passAccessToken: !!options.codecPassAccessToken } }
      : {}),
  };
  // The ui-server reads <config dir>/<env>.yaml; JSON is YAML.
  await writeFile(join(configDir, 'cluster.yaml'), `# Temporal Web UI config, written at each start.\n${JSON.stringify(config, null, 2)}\n`);
  const proc = nodeProcess({
    name: 'ui',
    command: binary,
    args: ['--root', dataDir, '--config', 'config', '--env', 'cluster', 'start'],
    logFile: join(dataDir, 'ui.log'),
    runDir: dataDir,
    onUnexpectedExit: (name, how) => log(`temporal ${name} exited (${how}); see ${join(dataDir, 'ui.log')}`),
  });
  proc.start();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!proc.running()) throw new Error(`temporal ui-server exited (${await proc.exited()}); the end of ${proc.logFile}:\n${await tailLog(proc.logFile)}`);
    const ok = await fetch(`${url}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`temporal ui-server on ${url} did not answer /healthz within 30 s; see ${proc.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`Temporal Web UI on ${url} for ${address}`);
  return { url, pid: proc.pid(), logFile: proc.logFile, stop: () => proc.stop(5000) };
}
