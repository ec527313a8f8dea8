import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may be sent. A storefront names a URL and the platform calls it from inside its
 * own network, so a URL is also a way to reach what only the platform can reach (SSRF): only
 * `https:` to public addresses, checked when the endpoint is registered (the URL as written) and
 * again on every delivery (the addresses its host resolves to then, and the socket connects to
 * one of those). Loopback over plain `http:` only where WEBHOOKS_ALLOW_LOOPBACK_HTTP says so
 * (npm start and the tests, whose receivers run on this machine).
 */
export interface TargetPolicy {
  allowLoopbackHttp: boolean;
}

export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

const ranges = (list: Array<[string, number, 'ipv4' | 'ipv6']>) => {
  const block = new BlockList();
  for (const [network, prefix, family] of list) block.addSubnet(network, prefix, family);
  return block;
};
const KINDS: Array<[Exclude<AddressKind, 'public'>, BlockList]> = [
  [
    'loopback',
    ranges([
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ]),
  ],
  [
    'private',
    ranges([
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      // carrier-grade NAT: private in all but name
      ['100.64.0.0', 10, 'ipv4'],
      ['fc00::', 7, 'ipv6'],
    ]),
  ],
  [
    'link-local',
    ranges([
      // cloud metadata services live here (169.254.169.254)
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ]),
  ],
  [
    'reserved',
    ranges([
      ['0.0.0.0', 8, 'ipv4'],
      ['192.0.0.0', 24, 'ipv4'],
      ['192.0.2.0', 24, 'ipv4'],
      ['198.18.0.0', 15, 'ipv4'],
      ['198.51.100.0', 24, 'ipv4'],
      ['203.0.113.0', 24, 'ipv4'],
      ['224.0.0.0', 4, 'ipv4'],
      ['240.0.0.0', 4, 'ipv4'],
      ['::', 128, 'ipv6'],
      // NAT64: an IPv4 address, possibly an internal one, behind an IPv6 prefix
      ['64:ff9b::', 96, 'ipv6'],
      ['2001:db8::', 32, 'ipv6'],
      ['ff00::', 8, 'ipv6'],
    ]),
  ],
];

/** What kind of address an IP literal is. */
export function addressKind(ip: string): AddressKind {
  const bare = ip.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) return 'reserved';
  // BlockList checks an IPv4-mapped IPv6 address (::ffff:10.0.0.1) against the IPv4 ranges too.
  for (const [kind, block] of KINDS) if (block.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return kind;
  return 'public';
}

const permitted = (kind: AddressKind, { allowLoopbackHttp }: TargetPolicy) => kind === 'public' || (kind === 'loopback' && allowLoopbackHttp);

/** Why `text` cannot be a webhook endpoint's URL, or undefined when it can. */
export function webhookUrlProblem(text: string, policy: TargetPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute https: URL';
  }
  if (url.username || url.password) return 'must not carry credentials (user:password@): the signature authenticates the platform';
  if (url.hash) return 'must not have a fragment';
  const loopbackName = LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol === 'http:') {
    if (!policy.allowLoopbackHttp) return 'must be https:';
    if (!loopbackName) return 'must be https: (plain http: only to 127.0.0.1, localhost or [::1])';
  } else if (url.protocol !== 'https:') {
    return 'must be https:';
  }
  const literal = isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0;
  const kind = literal ? addressKind(url.hostname) : loopbackName ? 'loopback' : 'public';
  if (!permitted(kind, policy)) return `must not point at a ${kind} address`;
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type Resolver = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemResolver: Resolver = (hostname, options, callback) => dnsLookup(hostname, options, callback);

/** The error of a delivery the guard refused: named so the delivery log says why. */
export class RefusedTarget extends Error {
  readonly code = 'ERR_REFUSED_TARGET';
}

/**
 * A `lookup` for http(s).request that resolves the host and refuses it when any of its addresses
 * is not one the policy permits; the socket then connects only to an address checked here, so a
 * name that resolves differently a moment later (DNS rebinding) cannot slip through.
 */
export function guardedLookup(policy: TargetPolicy, resolve: Resolver = systemResolver) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = addresses.find((a) => !permitted(addressKind(a.address), policy));
      if (refused || addresses.length === 0) {
        const why = refused ? `a ${addressKind(refused.address)} address` : 'no address';
        return callback(Object.assign(new RefusedTarget(`refused: ${hostname} resolves to ${why}`), { code: 'ERR_REFUSED_TARGET' }), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
