import { join } from 'node:path';
import { ensureGoTool, goModuleDir } from '../tools';

/** The Temporal server release the cluster runs; its SQL tool and schemas come from the same module version. */
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
export const TEMPORAL_SERVER_VERSION = 'v1.32.2';
/** v1.32's go.mod asks for a newer Go than the local one; `go` fetches that toolchain from the proxy. */
export const TEMPORAL_SERVER_TOOLCHAIN = 'go1.27.3';

export interface TemporalServerTools {
  server: string;
  sqlTool: string;
  /** the server module's files: schema/postgresql/v12/…, config/… */
  moduleDir: string;
}

const serverModuleTool = (pkg: string, binary: string, as: string, log: (msg: string) => void) =>
  ensureGoTool({ pkg: `${TEMPORAL_SERVER_MODULE}/${pkg}`, version: TEMPORAL_SERVER_VERSION, binary, as, toolchain: TEMPORAL_SERVER_TOOLCHAIN }, log);

/** `temporal-server`, built into .tools/go/bin once (a few minutes cold; nothing after). */
export const ensureTemporalServerBinary = (log: (msg: string) => void = () => undefined) => serverModuleTool('cmd/server', 'server', 'temporal-server', log);

/** `temporal-server` and `temporal-sql-tool` (the schema tool), and where the module's schema files are. */
export async function ensureTemporalServerTools(log: (msg: string) => void = () => undefined): Promise<TemporalServerTools> {
  // One after the other: both link many of the same packages, and the second build reuses Go's build cache.
  const server = await ensureTemporalServerBinary(log);
  const sqlTool = await serverModuleTool('cmd/tools/sql', 'sql', 'temporal-sql-tool', log);
  const moduleDir = await goModuleDir(TEMPORAL_SERVER_MODULE, TEMPORAL_SERVER_VERSION, TEMPORAL_SERVER_TOOLCHAIN);
  return { server, sqlTool, moduleDir };
}

/** The PostgreSQL schema folders shipped in the server module (each with a versioned/ folder of updates). */
export const postgresSchemaDir = (moduleDir: string, store: 'temporal' | 'visibility') => join(moduleDir, 'schema', 'postgresql', 'v12', store);
