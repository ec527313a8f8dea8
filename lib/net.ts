import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The lowest port `freeFixedPort` hands out. */
const FIXED_LOWEST = 20_000;

/** Just below the kernel's range for outgoing connections (Linux: 32768 and up), at most `ceiling`. */
function belowOutgoingRange(ceiling: number): number {
  try {
    const [first] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (first && first > FIXED_LOWEST + 1000) return Math.min(first - 1, ceiling);
  } catch {
    // not Linux: the ceiling alone
  }
  return ceiling;
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** Every port this process has handed out, so that two callers never get the same one. */
const handedOut = new Set<number>();

/**
 * A port free on 127.0.0.1 now for a process that is started again on the same port (a crashed
 * worker, a restarted database): picked below the kernel's range for outgoing connections, where
 * a connection this machine opens cannot take it in between. `freePort`'s ports are in that range.
 */
export async function freeFixedPort(ceiling = 32_767): Promise<number> {
  const top = belowOutgoingRange(ceiling);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIXED_LOWEST + Math.floor(Math.random() * (top - FIXED_LOWEST + 1));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${FIXED_LOWEST} and ${top} on 127.0.0.1`);
}
