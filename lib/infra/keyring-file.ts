import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { keyringJson, withNewKey } from '../temporal/codec';

/**
 * The development payload keyring: made on the first run, in a file only its owner reads, kept
 * under .data/ (never in the repository). Production keys come from PAYLOAD_KEYRING[_FILE].
 */
export async function ensureKeyringFile(path: string): Promise<{ path: string; created: boolean }> {
  if (existsSync(path)) return { path, created: false };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, keyringJson(withNewKey()), { mode: 0o600, flag: 'wx' });
  return { path, created: true };
}
