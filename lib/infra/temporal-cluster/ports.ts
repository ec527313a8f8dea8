import { freeFixedPort } from '../../net';

/**
 * Ports for the cluster's nodes, all below the kernel's range for outgoing connections (Linux:
 * 32768 and up), for two reasons:
 * - the membership table keeps each node's gossip port in a SMALLINT column (PostgreSQL schema,
 *   cluster_membership.rpc_port): a port above 32767 stops the node at its first heartbeat;
 * - a node restarted on its ports (a killed history node, the frontend) must find them free, and a
 *   port in the outgoing range can meanwhile be taken by any connection this machine opens.
 */
const SMALLINT_MAX = 32_767;

/** A port free on 127.0.0.1 now, in [20000, 32767], not one of `taken`. */
export async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freeFixedPort(SMALLINT_MAX);
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}
