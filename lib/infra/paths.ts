import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Everything a run installs or keeps stays under the project: no global state, no root. */
export const TOOLS_DIR = join(PROJECT_ROOT, '.tools');
export const DATA_DIR = join(PROJECT_ROOT, '.data');
export const BUILD_DIR = join(PROJECT_ROOT, '.build');
