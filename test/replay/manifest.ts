import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../lib/infra/paths';
import type { WorkflowCodeManifest } from '../../lib/workflow-bundle';

/**
 * test/replay/histories/manifest.json: for each version of the platform (package.json's `version`,
 * the part of the build ID `<version>+<commit>` a person chooses), the workflow code its histories
 * were recorded with. Every build of a version runs that code, so the histories in
 * histories/<version>/ are those of every build of it (README.md there).
 */
export const HISTORIES_DIR = join(PROJECT_ROOT, 'test', 'replay', 'histories');
const MANIFEST_PATH = join(HISTORIES_DIR, 'manifest.json');

export interface RecordedVersion {
  /** a build of it has run somewhere real: its orders may be in flight, so its code is frozen and a change needs a new version */
  released: boolean;
  /**
   * its orders are to keep running on later builds (a `patched()` change, or orders moved off its
   * builds with `temporal workflow update-options`), so every later version's code must replay its histories too
   */
  replayWithLaterCode: boolean;
  /** manifestFingerprint(code) */
  fingerprint: string;
  /** what the fingerprint is made of: each module of the bundle with a digest of its source, each package with its version */
  code: WorkflowCodeManifest;
}

export interface HistoriesManifest {
  versions: Record<string, RecordedVersion>;
}

export function readHistoriesManifest(): HistoriesManifest {
  if (!existsSync(MANIFEST_PATH)) return { versions: {} };
  return JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as HistoriesManifest;
}

export function writeHistoriesManifest(manifest: HistoriesManifest): void {
  const versions = Object.fromEntries(Object.entries(manifest.versions).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
  writeFileSync(MANIFEST_PATH, `${JSON.stringify({ versions }, null, 2)}\n`);
}

/** What changed between the code a version was recorded with and today's, module by module. */
export function codeChanges(recorded: WorkflowCodeManifest, today: WorkflowCodeManifest): string[] {
  const names = [...new Set([...Object.keys(recorded), ...Object.keys(today)])].sort();
  return names.flatMap((name) => {
    if (recorded[name] === today[name]) return [];
    if (recorded[name] === undefined) return [`+ ${name}`];
    if (today[name] === undefined) return [`- ${name}`];
    // a package: its versions; a module of ours: just its name
    return [`~ ${name}${/\.[cm]?[jt]sx?$/.test(name) ? '' : ` ${recorded[name]} → ${today[name]}`}`];
  });
}

/**
 * Why the workflow code cannot run as `version`, or undefined when it can: the message the replay
 * test fails with and the recording script refuses with.
 */
export function versionProblem(
  version: string,
  recorded: RecordedVersion | undefined,
  today: { fingerprint: string; code: WorkflowCodeManifest },
): string | undefined {
  const record = 'node --import tsx scripts/record-histories.ts';
  if (!recorded) {
    return `version ${version} (package.json) has no recorded histories: record them with \`${record}\` and commit test/replay/histories/${version}/ and manifest.json`;
  }
  if (recorded.fingerprint === today.fingerprint) return undefined;
  const changes = codeChanges(recorded.code, today.code)
    .map((c) => `    ${c}`)
    .join('\n');
  const fix = recorded.released
    ? `${version} is released: builds ${version}+<commit> may have orders in flight, pinned to that code. Bump the version in package.json ` +
      `(a new build ID) and record its histories with \`${record}\`.`
    : `Bump the version in package.json (a new build ID) and record its histories, or, as ${version} has not been released, ` +
      `re-record its histories with today's code: \`${record}\`.`;
  return `the workflow code changed since version ${version}'s histories were recorded:\n${changes}\n  ${fix}`;
}
