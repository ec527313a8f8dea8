import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type BrowserContextOptions } from 'playwright-core';

/** Debian's Chromium: Playwright's own browser download cannot be reached from here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless, and nothing that phones home: without the background-networking flags Chromium keeps
 * opening connections that this machine's closed network refuses.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 15 * 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve();
    });
  });
}

/**
 * Installs Chromium with apt-get when it is missing (we run as root here); anyone else is told
 * how. Resolves with the milliseconds the install took, 0 when Chromium was already there.
 */
export async function ensureChromium(log: (msg: string) => void = (msg) => console.log(`[browser] ${msg}`)): Promise<number> {
  if (existsSync(CHROMIUM)) return 0;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${CHROMIUM} is missing and only root can install it: run \`sudo apt-get update && sudo apt-get install -y chromium\` (Playwright's own browser download is not reachable from this machine)`,
    );
  }
  const started = Date.now();
  log('chromium is missing: apt-get update && apt-get install -y chromium (once per machine)…');
  // Another apt-get may hold the lock for a while (a machine's own updates): wait for it rather than fail.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  await run('apt-get', [...lock, 'update', '-q']);
  await run('apt-get', [...lock, 'install', '-y', '-q', 'chromium'], { DEBIAN_FRONTEND: 'noninteractive' });
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is not there`);
  const ms = Date.now() - started;
  log(`chromium installed in ${(ms / 1000).toFixed(1)}s`);
  return ms;
}

export interface LaunchedBrowser {
  context: BrowserContext;
  close: () => Promise<void>;
}

/** Chromium with a fresh profile (its own --user-data-dir, removed on close). */
export async function launchBrowser(options: BrowserContextOptions = {}): Promise<LaunchedBrowser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    ...options,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
