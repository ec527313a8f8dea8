import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterNodeInfo, RunningTemporalCluster } from '../../lib/infra/temporal-cluster';

/**
 * The cluster's nodes belong to the process that ran the global setup, and test files run in
 * other processes: they kill and start nodes through this small HTTP endpoint on 127.0.0.1 (with a
 * per-run token, so nothing else on the machine can). The crash and e2e suites use it too.
 */
export async function serveClusterControl(cluster: RunningTemporalCluster): Promise<{ url: string; close: () => Promise<void> }> {
  const token = randomBytes(16).toString('hex');
  const actions: Record<string, (arg: number) => Promise<unknown>> = {
    'GET /nodes': async () => cluster.nodes,
    'POST /history/kill': (i) => cluster.killHistoryNode(i),
    'POST /history/start': (i) => cluster.startHistoryNode(i),
    'POST /frontend/restart': () => cluster.restartFrontend(),
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const action = actions[`${req.method} ${url.pathname}`];
    if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end();
    if (!action) return void res.writeHead(404).end();
    action(Number(url.searchParams.get('i') ?? 0)).then(
      (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result ?? null)),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://:${token}@127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface ClusterControl {
  nodes: () => Promise<ClusterNodeInfo[]>;
  /** SIGKILL history node i (from 0) */
  killHistoryNode: (i: number) => Promise<void>;
  /** start it again; resolves once it is back in the history ring */
  startHistoryNode: (i: number) => Promise<void>;
  /** SIGTERM the frontend and start it again on the same port */
  restartFrontend: () => Promise<void>;
}

/** The test side: `controlUrl` is the provided `clusterControlUrl` (its password part is the token). */
export function clusterControl(controlUrl: string): ClusterControl {
  const { origin, password } = new URL(controlUrl);
  const call = async <T>(method: string, path: string): Promise<T> => {
    const res = await fetch(`${origin}${path}`, { method, headers: { authorization: `Bearer ${password}` } });
    if (!res.ok) throw new Error(`cluster control ${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  return {
    nodes: () => call('GET', '/nodes'),
    killHistoryNode: (i) => call('POST', `/history/kill?i=${i}`),
    startHistoryNode: (i) => call('POST', `/history/start?i=${i}`),
    restartFrontend: () => call('POST', '/frontend/restart'),
  };
}
