import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import { PROJECT_ROOT } from '../lib/infra/paths';
import { ensureTemporalTools } from '../lib/infra/tools';
import { ensureSearchAttributes } from '../lib/temporal/search-attributes';
import { ORDER_SEARCH_ATTRIBUTES } from '../contracts/orders';
import { sagaHarness } from '../test/support/saga';
import { SCENARIOS, runScenario } from '../test/support/scenarios';
import { bundleWorkflows, quietRuntime } from '../test/support/workers';
import { REPLAY_KEYRING } from '../test/replay/keyring';
import { platformDataConverter } from '../lib/temporal/connection';

/**
 * Records the event history of every saga scenario with the workflow code as it is now, into
 * test/replay/histories/<label>/ (test/replay/histories/README.md says when to record which label).
 * The replay test keeps every committed label replaying.
 *
 *   node --import tsx scripts/record-histories.ts baseline [scenario …]
 *
 * Naming scenarios records just those (a scenario added without a change to existing paths).
 */
const [label, ...only] = process.argv.slice(2);
if (!label || !/^[a-z0-9-]+$/.test(label)) {
  console.error('usage: node --import tsx scripts/record-histories.ts <label>');
  process.exit(2);
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
const bundle: WorkflowBundle = await bundleWorkflows();
const harness = sagaHarness(
  () => env,
  () => bundle,
  dataConverter,
);
const dir = join(PROJECT_ROOT, 'test', 'replay', 'histories', label);
await mkdir(dir, { recursive: true });
try {
  for (const scenario of SCENARIOS.filter((s) => only.length === 0 || only.includes(s.name))) {
    const handle = await runScenario(harness, scenario);
    const history = await handle.fetchHistory();
    await writeFile(join(dir, `${scenario.name}.json`), `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 1)}\n`);
    console.log(`recorded ${label}/${scenario.name} (${history.events?.length ?? 0} events)`);
  }
} finally {
  await env.teardown();
}
