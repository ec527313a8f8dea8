import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageVersion } from '../../lib/temporal/versioning';
import { EncryptionCodec, ENCRYPTED_ENCODING } from '../../lib/temporal/codec';
import { platformDataConverter } from '../../lib/temporal/connection';
import { bundleOrderWorkflowsWithFingerprint, type FingerprintedBundle } from '../../lib/workflow-bundle';
import { SCENARIOS } from '../support/scenarios';
import { quietRuntime } from '../support/workers';
import { REPLAY_KEYRING } from './keyring';
import { HISTORIES_DIR, readHistoriesManifest, versionProblem } from './manifest';

/**
 * The committed histories of each version of the platform (histories/<version>/, README.md there),
 * and the guard over them: today's workflow code must be the code today's version (package.json)
 * recorded its histories with, and must replay them, and those of any older version whose orders
 * are to move to later builds. A change that would alter a pinned build's histories without a new
 * build ID fails here. Record with `node --import tsx scripts/record-histories.ts`.
 */
let today: FingerprintedBundle;
let bundle: WorkflowBundle;
const version = packageVersion();
const manifest = readHistoriesManifest();

beforeAll(async () => {
  quietRuntime();
  today = await bundleOrderWorkflowsWithFingerprint();
  bundle = today.bundle;
});

async function committedHistories(): Promise<Array<{ label: string; scenario: string; path: string }>> {
  const out: Array<{ label: string; scenario: string; path: string }> = [];
  const labels = (await readdir(HISTORIES_DIR, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const label of labels.sort()) {
    for (const file of (await readdir(join(HISTORIES_DIR, label))).filter((f) => f.endsWith('.json')).sort()) {
      out.push({ label, scenario: file.replace(/\.json$/, ''), path: join(HISTORIES_DIR, label, file) });
    }
  }
  return out;
}

/** The histories today's code must replay: today's version's, and those of versions whose orders move to later builds. */
const mustReplay = (label: string) => label === version || manifest.versions[label]?.replayWithLaterCode === true;

describe('workflow determinism', () => {
  it(`runs the workflow code version ${version} recorded its histories with (a changed saga needs a new version)`, () => {
    const problem = versionProblem(version, manifest.versions[version], { fingerprint: today.fingerprint, code: today.manifest });
    if (problem) throw new Error(problem);
  });

  it('has a folder of histories for each version in the manifest, and a manifest entry for each folder', async () => {
    const folders = [...new Set((await committedHistories()).map((h) => h.label))].sort();
    expect(folders).toEqual(Object.keys(manifest.versions).sort());
  });

  it(`has a history of every scenario recorded for version ${version}`, async () => {
    const recorded = (await committedHistories()).filter((h) => h.label === version).map((h) => h.scenario);
    expect(recorded.sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
  });

  it('replays the histories of its own version (and of versions whose orders move on) without a nondeterminism error', async () => {
    const histories = (await committedHistories()).filter((h) => mustReplay(h.label));
    expect(histories.length).toBeGreaterThanOrEqual(SCENARIOS.length);
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
