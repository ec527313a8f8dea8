import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for the cluster's nodes, all below the kernel's range for outgoing connections (Linux:
 * 32768 and up), for two reasons:
 * - the membership table keeps each node's gossip port in a SMALLINT column (PostgreSQL schema,
 *   cluster_membership.rpc_port): a port above 32767 stops the node at its first heartbeat;
 * - a node restarted on its ports (a killed history node, the frontend) must find them free, and a
 *   port in the outgoing range can meanwhile be taken by any connection this machine opens.
 */
const LOWEST = 20_000;

function highest(): number {
  try {
    const [first] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (first && first > LOWEST + 1000) return Math.min(first - 1, 32_767);
  } catch {
    // not Linux: the SMALLINT bound alone
  }
  return 32_767;
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** A port free on 127.0.0.1 now, in [20000, 32767], not one of `taken`. */
export async function freeClusterPort(taken: Set<number>): Promise<number> {
  const top = highest();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (top - LOWEST + 1));
    if (taken.has(port) || !(await canListen(port))) continue;
    taken.add(port);
    return port;
  }
  throw new Error(`no free port between ${LOWEST} and ${top} on 127.0.0.1`);
}
