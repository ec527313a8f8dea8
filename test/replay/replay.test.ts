import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { SCENARIOS } from '../support/scenarios';
import { bundleWorkflows, quietRuntime } from '../support/temporal';

/**
 * Replays committed histories of real runs against today's workflow code. A change that would
 * break a running order's determinism fails here, before it reaches a worker.
 * Regenerate with `node --import tsx scripts/record-histories.ts <label>`.
 */
const HISTORIES = join(PROJECT_ROOT, 'test', 'replay', 'histories');

let bundle: WorkflowBundle;
beforeAll(async () => {
  quietRuntime();
  bundle = await bundleWorkflows();
});

async function committedHistories(): Promise<Array<{ label: string; scenario: string; path: string }>> {
  const out: Array<{ label: string; scenario: string; path: string }> = [];
  const labels = (await readdir(HISTORIES, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const label of labels.sort()) {
    for (const file of (await readdir(join(HISTORIES, label))).filter((f) => f.endsWith('.json')).sort()) {
      out.push({ label, scenario: file.replace(/\.json$/, ''), path: join(HISTORIES, label, file) });
    }
  }
  return out;
}

describe('workflow determinism', () => {
  it('has a history of every scenario recorded with the newest label', async () => {
    const histories = await committedHistories();
    const newest = histories
      .map((h) => h.label)
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .at(-1);
    const recorded = histories.filter((h) => h.label === newest).map((h) => h.scenario);
    expect(recorded.sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
  });

  it('replays every committed history without a nondeterminism error', async () => {
    const histories = await committedHistories();
    const loaded = await Promise.all(
      histories.map(async (h) => ({ workflowId: `${h.label}/${h.scenario}`, history: historyFromJSON(JSON.parse(await readFile(h.path, 'utf8'))) })),
    );
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories(
      // the workers' span sink, exporting nowhere: a replay runs the same workflow interceptors
      { workflowBundle: bundle, sinks: { exporter: makeWorkflowExporter(new NoopSpanProcessor(), new Resource({})) } },
      loaded,
    )) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(histories.length);
  });
});
