// The entry point of `npm start` and `npm test`. Plain JavaScript with no dependencies, because
// on a fresh clone it runs before anything is installed: it installs what is missing, generates
// the Prisma clients, then hands over to the TypeScript entry point.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, env = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

/** Runs the commands at once, each with its output as it comes; exits with the first failure's code once all have ended. */
async function runTogether(commands) {
  const codes = await Promise.all(
    commands.map(
      ([cmd, args]) =>
        new Promise((resolve) => {
          const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' });
          child.on('error', () => resolve(1));
          child.on('close', (code) => resolve(code ?? 1));
        }),
    ),
  );
  const failed = codes.find((code) => code !== 0);
  if (failed !== undefined) process.exit(failed);
}

const digest = (files) =>
  createHash('sha256')
    .update(files.map((f) => (existsSync(join(root, f)) ? readFileSync(join(root, f)) : '')).join('\0'))
    .digest('hex');

const [command, ...rest] = process.argv.slice(2);

// npm packages: installed when missing or when package.json / the lock file changed. `generate`
// skips this for builds that install the packages their own way (the Dockerfile).
const depsStamp = join(root, 'node_modules', '.order-platform-deps');
const depsDigest = digest(['package.json', 'package-lock.json']);
if (command !== 'generate' && (!existsSync(depsStamp) || readFileSync(depsStamp, 'utf8') !== depsDigest)) {
  console.log('[setup] installing npm packages');
  run(npm, [existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install', '--no-audit', '--no-fund']);
  writeFileSync(depsStamp, depsDigest);
}

// Prisma clients: `prisma generate` reads the schema engine's path but never runs it, so any
// existing file will do; the engine itself is a download this machine may not be able to make.
// One client per service's schema (prisma/<service>/schema.prisma): the services are listed once,
// in contracts/services.ts, which this file runs too early to import.
const services = readdirSync(join(root, 'prisma'), { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(root, 'prisma', e.name, 'schema.prisma')))
  .map((e) => e.name)
  .sort();
for (const service of services) {
  const schema = `prisma/${service}/schema.prisma`;
  const stamp = join(root, 'prisma', service, 'generated', '.schema-digest');
  const want = digest([schema, 'package-lock.json']);
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) continue;
  run(join(root, 'node_modules', '.bin', 'prisma'), ['generate', '--schema', schema], {
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  });
  writeFileSync(stamp, want);
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
if (command === 'start') {
  run(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'start.ts'), ...rest]);
} else if (command === 'test') {
  // The type check is part of the tests: strict TypeScript is a promise the code keeps.
  // So are lint and format, for the whole suite only: `npm test -- <file>` is for iterating on one test.
  if (rest.length === 0) {
    // Side by side: each is one process on one core, and together they take a minute or two.
    await runTogether([
      [bin('tsc'), ['--noEmit']],
      [bin('eslint'), ['.']],
      [bin('prettier'), ['--check', '.', '--log-level', 'warn']],
    ]);
  }
  // `npm test -- test/chaos` asks for the crash test alone; the main suite would find no file
  const named = (r) => r.includes('chaos');
  if (rest.length === 0 || !rest.every(named)) run(bin('vitest'), ['run', ...rest]);
  // then the crash test alone: it SIGKILLs workers and restarts Temporal and PostgreSQL under load
  if (rest.length === 0 || rest.some(named)) run(bin('vitest'), ['run', ...rest], { VITEST_CHAOS: '1' });
} else if (command === 'test:deploy') {
  // the Helm chart rendered and validated (helm and kubeconform are built from the Go module proxy on the first run)
  run(bin('vitest'), ['run', ...rest], { VITEST_SUITE: 'deploy' });
} else if (command === 'test:cluster') {
  // a real multi-node Temporal cluster on PostgreSQL (the server is built from Temporal's Go module on the first run)
  run(bin('vitest'), ['run', '--config', 'vitest.cluster.config.ts', ...rest]);
} else if (command === 'deploy') {
  // Worker Versioning: the deployment's builds, ramp, promote, rollback, drain
  run(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'deployment.ts'), ...rest]);
} else if (command === 'auth') {
  // the auth service's operator commands (clients, keys), against AUTH_DATABASE_URL
  run(process.execPath, ['--import', 'tsx', join(root, 'auth', 'cli.ts'), ...rest]);
} else if (command === 'bench') {
  run(process.execPath, ['--import', 'tsx', join(root, 'bench', 'run.ts'), ...rest]);
} else if (command === 'setup' || command === 'generate') {
  // nothing more: installing and generating is all these mean
} else {
  console.error(`usage: node scripts/run.mjs start|test|test:deploy|test:cluster|bench|auth|deploy|setup|generate`);
  process.exit(2);
}
