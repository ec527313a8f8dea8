import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Keyring } from './codec';

/**
 * A secret kept at rest (a webhook signing secret in the notifications database) or passed on a
 * plain internal read (a customer's email address), sealed with the payload keyring: AES-256-GCM
 * under the current key, as `v1.<key id>.<base64 of iv | ciphertext | tag>`. The key id and the
 * purpose are bound into the tag, so a value sealed for one purpose never opens as another, and a
 * relabelled key id fails to open. Rotating the keyring rotates these too: old values open with
 * their old key for as long as the keyring keeps it.
 */
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What a sealed value is for; part of what is authenticated. */
export type SealPurpose = 'webhook-secret' | 'customer-email';

const aad = (keyId: string, purpose: SealPurpose) => Buffer.from(`${VERSION}:${keyId}:${purpose}`);

export function seal(keyring: Keyring, plaintext: string, purpose: SealPurpose): string {
  const keyId = keyring.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyring.keys.get(keyId)!, iv);
  cipher.setAAD(aad(keyId, purpose));
  const sealed = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${VERSION}.${keyId}.${sealed.toString('base64')}`;
}

export function unseal(keyring: Keyring, value: string, purpose: SealPurpose): string {
  const [version, keyId, data] = value.split('.');
  if (version !== VERSION || !keyId || !data) throw new Error('not a sealed value');
  const key = keyring.keys.get(keyId);
  if (!key) throw new Error(`sealed with key "${keyId}", which is not in this process's keyring`);
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value too short');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
  decipher.setAAD(aad(keyId, purpose));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
}
