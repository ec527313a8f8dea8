import { chmod, chown, readFile } from 'node:fs/promises';
import { ensureKeyringFile } from '../lib/infra/keyring-file';
import { parseKeyring } from '../lib/temporal/codec';

/**
 * The one-shot `payload-keyring` service of docker-compose.yml: makes the payload keyring once, in
 * the volume every process that encrypts or decrypts payloads mounts read-only, and hands the file
 * to the user those processes run as (readable by it alone). It runs as root because a new volume
 * belongs to root. A keyring already there is kept, and checked, so a damaged one stops the platform
 * here, by name, rather than in each service.
 *
 *   node --import tsx scripts/ensure-keyring.ts <file> <uid>:<gid>
 */
const [file, owner = ''] = process.argv.slice(2);
const [uid, gid] = owner.split(':').map((n) => (/^\d+$/.test(n) ? Number(n) : NaN));
if (!file || uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) {
  console.error('usage: node --import tsx scripts/ensure-keyring.ts <file> <uid>:<gid>');
  process.exit(2);
}

try {
  const { created } = await ensureKeyringFile(file);
  const keyring = parseKeyring(await readFile(file, 'utf8'), file);
  await chown(file, uid, gid);
  await chmod(file, 0o400);
  console.log(`[payload-keyring] ${file}: ${created ? 'made' : 'kept'} (current key ${keyring.current}, ${keyring.keys.size} key(s)), owner ${uid}:${gid}`);
} catch (err) {
  console.error(`[payload-keyring] failed: ${(err as Error).message}`);
  process.exit(1);
}
