import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { decode as utf8Decode, encode as utf8Encode } from '@temporalio/common/lib/encoding';
import proto from '@temporalio/proto';
import { z } from 'zod';

// A CommonJS package: its namespaces come off the default export under Node's ESM loader.
const { Payload: PayloadProto } = proto.temporal.api.common.v1;

/** The metadata an encrypted payload carries: what it is, and which key of the keyring sealed it. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES256GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The payload keys: every key that may have sealed a payload still stored in Temporal, and the one
 * new payloads are sealed with. Rotating is adding a key and making it current; an old key is
 * dropped only once no history sealed with it is kept.
 */
export interface Keyring {
  current: string;
  keys: Map<string, Buffer>;
}

const keyringSchema = z
  .strictObject({
    current: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id: letters, digits, . _ -'),
    keys: z.record(
      z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id: letters, digits, . _ -'),
      z
        .string()
        .transform((b64) => Buffer.from(b64, 'base64'))
        .refine((key) => key.length === 32, 'an AES-256 key: 32 bytes, base64'),
    ),
  })
  .refine((k) => k.current in k.keys, { message: 'the current key is not in keys', path: ['current'] });

/** The keyring as JSON (`{ "current": "k1", "keys": { "k1": "<32 bytes, base64>" } }`), as the files and PAYLOAD_KEYRING hold it. */
export function parseKeyring(json: string, source: string): Keyring {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`${source}: not JSON (${(err as Error).message})`);
  }
  const parsed = keyringSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'keyring'}: ${i.message}`).join('; ')}`);
  return { current: parsed.data.current, keys: new Map(Object.entries(parsed.data.keys)) };
}

/** A keyring's JSON form, for a file. */
export function keyringJson(keyring: Keyring): string {
  return `${JSON.stringify({ current: keyring.current, keys: Object.fromEntries([...keyring.keys].map(([id, key]) => [id, key.toString('base64')])) }, null, 2)}\n`;
}

/** A keyring with one fresh key, or `keyring` with a fresh key added and made current. */
export function withNewKey(keyring?: Keyring, id = `k-${new Date().toISOString().slice(0, 10)}-${randomBytes(3).toString('hex')}`): Keyring {
  const keys = new Map(keyring?.keys ?? []);
  keys.set(id, randomBytes(32));
  return { current: id, keys };
}

/**
 * The keyring of this process, from PAYLOAD_KEYRING (the JSON itself, e.g. from a secret manager)
 * or PAYLOAD_KEYRING_FILE (a mounted secret). Never from the repository: with neither set the
 * process refuses to start, naming both.
 */
export function keyringFromEnv(env: NodeJS.ProcessEnv = process.env): Keyring {
  if (env.PAYLOAD_KEYRING) return parseKeyring(env.PAYLOAD_KEYRING, 'PAYLOAD_KEYRING');
  const file = env.PAYLOAD_KEYRING_FILE;
  if (!file) throw new Error('PAYLOAD_KEYRING_FILE or PAYLOAD_KEYRING must name the payload encryption keys (README, "Encrypted payloads")');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`PAYLOAD_KEYRING_FILE=${file} cannot be read: ${(err as Error).message}`);
  }
  return parseKeyring(text, `PAYLOAD_KEYRING_FILE=${file}`);
}

/**
 * AES-256-GCM over each whole payload (its metadata and data): what Temporal stores shows only
 * that a payload is encrypted and with which key. The key id is also bound into the tag, so a
 * payload relabelled with another key id fails to open rather than decrypting wrongly.
 * Payloads that are not encrypted pass through decode unchanged.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.keyring.current;
    const key = this.keyring.keys.get(keyId)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(keyId));
      const sealed = Buffer.concat([cipher.update(PayloadProto.encode(payload).finish()), cipher.final()]);
      return {
        metadata: { encoding: utf8Encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8Encode(keyId), [CIPHER_METADATA]: utf8Encode(CIPHER) },
        data: Buffer.concat([iv, sealed, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding;
      if (!encoding || utf8Decode(encoding) !== ENCRYPTED_ENCODING) return payload;
      const idBytes = payload.metadata?.[KEY_ID_METADATA];
      const keyId = idBytes ? utf8Decode(idBytes) : '';
      const key = this.keyring.keys.get(keyId);
      if (!key) throw new Error(`payload sealed with key "${keyId}", which is not in this process's keyring`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted payload too short');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const opened = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return PayloadProto.decode(opened);
    });
  }
}
