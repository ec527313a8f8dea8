import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureTemporalTools } from '../lib/infra/tools';
import { ensureSearchAttributes } from '../lib/temporal/search-attributes';
import { packageVersion } from '../lib/temporal/versioning';
import { bundleOrderWorkflowsWithFingerprint } from '../lib/workflow-bundle';
import { ORDER_SEARCH_ATTRIBUTES } from '../contracts/orders';
import { sagaHarness } from '../test/support/saga';
import { SCENARIOS, runScenario } from '../test/support/scenarios';
import { quietRuntime } from '../test/support/workers';
import { REPLAY_KEYRING } from '../test/replay/keyring';
import { HISTORIES_DIR, readHistoriesManifest, versionProblem, writeHistoriesManifest } from '../test/replay/manifest';
import { platformDataConverter } from '../lib/temporal/connection';

/**
 * Records the event history of every saga scenario with the workflow code as it is now, into
 * test/replay/histories/<version>/ (package.json's version), and writes the code they were recorded
 * with to test/replay/histories/manifest.json. test/replay/histories/README.md says when to bump the
 * version first; the replay test keeps each version's code and histories together.
 *
 *   node --import tsx scripts/record-histories.ts               every scenario, replacing the version's histories
 *   node --import tsx scripts/record-histories.ts <scenario …>  just those (a scenario added, the code unchanged)
 */
const only = process.argv.slice(2);
const unknown = only.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(
    `unknown scenario(s): ${unknown.join(', ')} (histories go to test/replay/histories/<package.json version>/; there is no label to give)\n` +
      `usage: node --import tsx scripts/record-histories.ts [scenario …]\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`,
  );
  process.exit(2);
}

const version = packageVersion();
const manifest = readHistoriesManifest();
const recorded = manifest.versions[version];
const { bundle, fingerprint, manifest: code } = await bundleOrderWorkflowsWithFingerprint();
const changed = versionProblem(version, recorded, { fingerprint, code });
if (changed && recorded?.released) {
  console.error(changed);
  process.exit(1);
}
if (changed && only.length > 0) {
  console.error(`${changed}\nThe code changed: record every scenario (no names), so that the version's histories all come from one code.`);
  process.exit(1);
}

quietRuntime();
const tools = await ensureTemporalTools(console.log);
// Recorded encrypted, as every platform process writes them, with the fixture keyring the replay test decodes with.
const dataConverter = platformDataConverter(REPLAY_KEYRING);
const env = await TestWorkflowEnvironment.createTimeSkipping({
  server: { executable: { type: 'existing-path', path: tools.testServer } },
  client: { dataConverter },
});
await ensureSearchAttributes(env.connection, 'default', ORDER_SEARCH_ATTRIBUTES);
const harness = sagaHarness(
  () => env,
  () => bundle,
  dataConverter,
);
const dir = join(HISTORIES_DIR, version);
await mkdir(dir, { recursive: true });
try {
  if (only.length === 0) {
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json'))) await rm(join(dir, file));
  }
  for (const scenario of SCENARIOS.filter((s) => only.length === 0 || only.includes(s.name))) {
    const handle = await runScenario(harness, scenario);
    const history = await handle.fetchHistory();
    await writeFile(join(dir, `${scenario.name}.json`), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 1)}\n`);
    console.log(`recorded ${version}/${scenario.name} (${history.events?.length ?? 0} events)`);
  }
  manifest.versions[version] = { released: recorded?.released ?? false, replayWithLaterCode: recorded?.replayWithLaterCode ?? false, fingerprint, code };
  writeHistoriesManifest(manifest);
  console.log(`test/replay/histories/manifest.json: ${version} recorded with workflow code ${fingerprint.slice(0, 16)}`);
  const older = Object.keys(manifest.versions).filter((v) => v !== version && !manifest.versions[v]!.released);
  if (older.length > 0) console.log(`unreleased older versions (nothing can be pinned to them: delete their folders and entries): ${older.join(', ')}`);
} finally {
  await env.teardown();
}
