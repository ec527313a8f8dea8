import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The name clients check the frontend's certificate against (TEMPORAL_TLS_SERVER_NAME). */
export const FRONTEND_SERVER_NAME = 'localhost';
/** The name the nodes check each other's certificate against (history, matching, worker). */
export const INTERNODE_SERVER_NAME = 'internode.temporal.local';

export interface CertificatePair {
  cert: string;
  key: string;
}

/** PEM files, one folder per cluster: a CA, the frontend's certificate, the nodes' and a client's. */
export interface ClusterCertificates {
  ca: string;
  /** what the frontend presents to clients (SAN localhost and 127.0.0.1) */
  frontend: CertificatePair;
  /** what history, matching and worker present to each other and to the frontend, as server and as client */
  internode: CertificatePair;
  /** for the platform's processes, the CLI and the tests */
  client: CertificatePair;
}

const LEAVES = {
  frontend: { cn: 'temporal-frontend', san: `DNS:${FRONTEND_SERVER_NAME},IP:127.0.0.1`, eku: 'serverAuth' },
  internode: { cn: 'temporal-internode', san: `DNS:${INTERNODE_SERVER_NAME},IP:127.0.0.1`, eku: 'serverAuth,clientAuth' },
  client: { cn: 'order-platform', san: 'DNS:order-platform.client', eku: 'clientAuth' },
} as const;

// Long enough for a checkout that is used for years, short of anything a TLS library refuses outright.
const CA_DAYS = 3650;
const LEAF_DAYS = 825;
/** A set whose certificates expire within this is made again rather than reused. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

const paths = (dir: string): ClusterCertificates & { caKey: string } => ({
  ca: join(dir, 'ca.pem'),
  caKey: join(dir, 'ca.key'),
  frontend: { cert: join(dir, 'frontend.pem'), key: join(dir, 'frontend.key') },
  internode: { cert: join(dir, 'internode.pem'), key: join(dir, 'internode.key') },
  client: { cert: join(dir, 'client.pem'), key: join(dir, 'client.key') },
});

/**
 * The cluster's certificates in `dir`, made with openssl the first time and kept after that (a
 * client configured once keeps working across restarts). A set with a file missing or a
 * certificate close to expiry is made again as a whole, so the CA always matches its leaves.
 */
export async function ensureClusterCertificates(dir: string, log: (msg: string) => void = () => undefined): Promise<ClusterCertificates> {
  const want = paths(dir);
  if (await usable(want)) return want;
  log(`making the cluster's CA and certificates in ${dir}`);
  // Written next to the final folder and renamed into place: an interrupted run leaves no half set.
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  const made = paths(tmp);
  await makeCa(tmp, made.ca, made.caKey);
  for (const [name, leaf] of Object.entries(LEAVES) as Array<[keyof typeof LEAVES, (typeof LEAVES)[keyof typeof LEAVES]]>) {
    await makeLeaf(tmp, name, leaf, made[name], made.ca, made.caKey);
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return want;
}

async function usable(set: ReturnType<typeof paths>): Promise<boolean> {
  const certs = [set.ca, set.frontend.cert, set.internode.cert, set.client.cert];
  const files = [...certs, set.caKey, set.frontend.key, set.internode.key, set.client.key];
  if (!files.every((f) => existsSync(f))) return false;
  try {
    const ca = new X509Certificate(await readFile(set.ca));
    for (const file of certs) {
      const cert = new X509Certificate(await readFile(file));
      if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
      if (file !== set.ca && !cert.checkIssued(ca)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** openssl reads its settings from a file of ours, never from the system's openssl.cnf. */
async function opensslConfig(dir: string, name: string, cn: string, extensions: string[]): Promise<string> {
  const file = join(dir, `${name}.cnf`);
  await writeFile(file, ['[req]', 'prompt = no', 'distinguished_name = dn', '[dn]', `CN = ${cn}`, '[ext]', ...extensions, ''].join('\n'));
  return file;
}

const openssl = (args: string[]) => run(process.env.OPENSSL ?? 'openssl', args, { maxBuffer: 1024 * 1024 });
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const serial = () => `0x${randomBytes(16).toString('hex')}`;

async function makeCa(dir: string, cert: string, key: string): Promise<void> {
  const config = await opensslConfig(dir, 'ca', 'order-platform local Temporal CA', [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
  ]);
  await openssl([
    'req',
    '-x509',
    '-config',
    config,
    '-extensions',
    'ext',
    ...newKey,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    String(CA_DAYS),
    '-set_serial',
    serial(),
  ]);
  await chmod(key, 0o600);
  await rm(config);
}

async function makeLeaf(
  dir: string,
  name: string,
  leaf: { cn: string; san: string; eku: string },
  out: CertificatePair,
  caCert: string,
  caKey: string,
): Promise<void> {
  // rustls (the TypeScript SDK's TLS) checks the names in subjectAltName only and wants a CA that is marked as one.
  const config = await opensslConfig(dir, name, leaf.cn, [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    `extendedKeyUsage = ${leaf.eku}`,
    `subjectAltName = ${leaf.san}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ]);
  const csr = join(dir, `${name}.csr`);
  await openssl(['req', '-new', '-config', config, ...newKey, '-keyout', out.key, '-out', csr]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caCert,
    '-CAkey',
    caKey,
    '-set_serial',
    serial(),
    '-days',
    String(LEAF_DAYS),
    '-extfile',
    config,
    '-extensions',
    'ext',
    '-out',
    out.cert,
  ]);
  await chmod(out.key, 0o600);
  await rm(csr);
  await rm(config);
}
