import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Client secrets are kept only as scrypt hashes (node:crypto's, a memory-hard KDF). The
 * parameters are stored with each hash, so raising them later only needs new hashes.
 * N = 2^15 (32 MiB, ~0.35 s on this machine's cores): the secrets are 256 random bits, so the hash
 * guards a leaked table rather than a guessable password, and a token endpoint on two cores must
 * still answer; OWASP's 2^17 took 1.5 s here.
 */
const PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

const derive = (secret: string, salt: Buffer, params: { N: number; r: number; p: number }) =>
  new Promise<Buffer>((resolve, reject) => {
    const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
    scrypt(secret, salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });

/** `scrypt$N$r$p$salt$hash`, base64url. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(secret, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `secret` matches `hash`, in constant time for the comparison. */
export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = hash.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await derive(secret, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A fresh secret: 256 random bits, base64url. Shown once, when made. */
export const newSecret = (): string => randomBytes(32).toString('base64url');

/**
 * A hash of nothing anyone knows: checked against when the client does not exist, so an unknown
 * client ID costs the same time as a wrong secret and the endpoint does not tell them apart.
 */
export const DECOY_HASH = hashSecret(newSecret());
