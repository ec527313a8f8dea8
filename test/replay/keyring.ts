import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { parseKeyring } from '../../lib/temporal/codec';

/**
 * The committed histories are encrypted, as every platform process writes them, with this fixture
 * key: it exists only so that the replay test can decode them, seals nothing real, and no process
 * of the platform is ever given it (their keys come from PAYLOAD_KEYRING[_FILE], never from git).
 */
export const REPLAY_KEYRING = parseKeyring(
  readFileSync(join(PROJECT_ROOT, 'test', 'replay', 'histories', 'keyring.json'), 'utf8'),
  'test/replay/histories/keyring.json',
);
