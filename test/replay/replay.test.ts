import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import { EncryptionCodec, ENCRYPTED_ENCODING } from '../../lib/temporal/codec';
import { platformDataConverter } from '../../lib/temporal/connection';
import { SCENARIOS } from '../support/scenarios';
import { bundleWorkflows, quietRuntime } from '../support/workers';
import { REPLAY_KEYRING } from './keyring';

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
      {
        workflowBundle: bundle,
        // The histories are encrypted, as production writes them: replay decodes them with the payload codec.
        dataConverter: platformDataConverter(REPLAY_KEYRING),
        sinks: { exporter: makeWorkflowExporter(new NoopSpanProcessor(), new Resource({})) },
      },
      loaded,
    )) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(histories.length);
  });

  it('holds only encrypted payloads: no customer name, address or payment token is readable without the key', async () => {
    const histories = await committedHistories();
    const secrets = ['Ada Lovelace', 'St James', 'SW1Y', 'tok_visa', 'tok_declined'];
    const codec = new EncryptionCodec(REPLAY_KEYRING);
    let payloads = 0;
    let decodedWithSecrets = 0;
    const plain: string[] = [];
    for (const h of histories) {
      const stack: Array<{ node: unknown; path: string }> = [{ node: JSON.parse(await readFile(h.path, 'utf8')), path: '' }];
      while (stack.length > 0) {
        const { node, path } = stack.pop()!;
        if (!node || typeof node !== 'object') continue;
        const { metadata, data } = node as { metadata?: Record<string, string>; data?: string };
        if (metadata && typeof metadata.encoding === 'string') {
          payloads++;
          const encoding = Buffer.from(metadata.encoding, 'base64').toString();
          const raw = Buffer.from(data ?? '', 'base64');
          if (secrets.some((s) => raw.includes(s))) plain.push(`${h.label}/${h.scenario}${path}: readable`);
          // Left unencrypted by Temporal's design, and carrying nothing of the customer: search attributes (the
          // Web UI filters on them), headers (the trace context) and a local activity marker's own bookkeeping.
          const byDesign = /searchAttributes|\/header\/|markerRecordedEventAttributes\/details\/data\//.test(path);
          if (encoding !== ENCRYPTED_ENCODING && !byDesign) plain.push(`${h.label}/${h.scenario}${path}: ${encoding}`);
          if (encoding !== ENCRYPTED_ENCODING) continue;
          // The check can see plaintext: decoded with the key, the inputs do show the customer.
          const [opened] = await codec.decode([
            { metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: raw },
          ]);
          if (secrets.some((s) => Buffer.from(opened!.data ?? []).includes(s))) decodedWithSecrets++;
          continue;
        }
        for (const [key, value] of Object.entries(node)) stack.push({ node: value, path: `${path}/${key}` });
      }
    }
    expect(plain).toEqual([]);
    expect(payloads).toBeGreaterThan(histories.length * 5);
    expect(decodedWithSecrets).toBeGreaterThanOrEqual(histories.length);
  });
});
