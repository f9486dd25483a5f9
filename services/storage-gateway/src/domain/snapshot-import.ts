import {
  hostId as hostIdField,
  volumeName as volumeNameField,
  type ImportSnapshots,
  type RepositoryImportCompleted,
  type SnapshotImported,
} from '@volback/contracts';
import type { Snapshot } from '@volback/repository';
import type { z } from 'zod';
import type { StoredSnapshot } from './snapshot-selection.ts';

/** A parsed `ImportSnapshots` command. */
export type ImportCommand = z.output<typeof ImportSnapshots.schema>;

/** Who a volback snapshot belongs to, as its tags (or, for older ones, hostname and path) say. */
export interface VolbackSnapshotOwner {
  readonly hostId: string;
  readonly hostName: string;
  readonly volumeName: string;
}

const VOLUME_PATH = /^\/volumes\/([^/]+)$/;

function tagValue(tags: readonly string[], prefix: string): string | undefined {
  const tag = tags.find((t) => t.startsWith(prefix));
  return tag === undefined ? undefined : tag.slice(prefix.length);
}

/**
 * Decodes the owner of a snapshot an agent wrote (`snapshotTags` in @volback/contracts): the
 * volume from `volume:<name>` (else the path `/volumes/<name>`), the host id from `host-id:<id>`
 * (snapshots written before that tag carry the host id as hostname), the host's name from
 * `host:<name>` (else the hostname). Undefined for a snapshot that is not volback's (neither the
 * `volback` tag nor a `/volumes/<name>` path) or whose host id or volume name would be refused.
 */
export function decodeVolbackSnapshot(snapshot: Snapshot): VolbackSnapshotOwner | undefined {
  const tags = snapshot.tags ?? [];
  const fromPath = snapshot.paths.length === 1 ? VOLUME_PATH.exec(snapshot.paths[0]!)?.[1] : undefined;
  if (!tags.includes('volback') && fromPath === undefined) return undefined;
  const volumeName = tagValue(tags, 'volume:') ?? fromPath;
  const hostId = tagValue(tags, 'host-id:') ?? snapshot.hostname;
  if (!volumeNameField.safeParse(volumeName).success || !hostIdField.safeParse(hostId).success) {
    return undefined;
  }
  const hostName = tagValue(tags, 'host:') || snapshot.hostname || hostId!;
  return { hostId: hostId!, hostName: hostName.slice(0, 253), volumeName: volumeName! };
}

/** What an import found: the events to publish and the counts for its outcome. */
export interface ImportPlan {
  /** One per volback snapshot the log does not know, oldest first. */
  readonly imports: Array<z.input<typeof SnapshotImported.schema>>;
  readonly snapshots: number;
  readonly alreadyKnown: number;
  readonly skipped: number;
}

/** A snapshot's recorded time as RFC 3339 UTC; undefined when it could not be read. */
function snapshotTime(timeNs: bigint | undefined): string | undefined {
  if (timeNs === undefined) return undefined;
  const date = new Date(Number(timeNs / 1_000_000n));
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/**
 * Decides an import: every volback snapshot of the repository whose id the log does not know
 * (`known`: the snapshot ids of backup outcomes and earlier imports) becomes a `SnapshotImported`;
 * the others are counted as already known, or skipped when they are not volback's.
 */
export function planImport(
  command: ImportCommand,
  repositorySnapshots: readonly StoredSnapshot[],
  known: ReadonlySet<string>,
  now: Date,
): ImportPlan {
  const imports: Array<z.input<typeof SnapshotImported.schema>> = [];
  let alreadyKnown = 0;
  let skipped = 0;
  for (const { id, snapshot, timeNs } of repositorySnapshots) {
    const owner = decodeVolbackSnapshot(snapshot);
    const time = snapshotTime(timeNs);
    if (!owner || time === undefined) {
      skipped++;
      continue;
    }
    if (known.has(id)) {
      alreadyKnown++;
      continue;
    }
    imports.push({
      snapshotId: id,
      repositoryId: command.repositoryId,
      operationId: command.operationId,
      ...owner,
      time,
      paths: snapshot.paths,
      tags: (snapshot.tags ?? []).filter((t) => t.length <= 300).slice(0, 100),
      importedAt: now.toISOString(),
    });
  }
  imports.sort((a, b) => a.time.localeCompare(b.time) || a.snapshotId.localeCompare(b.snapshotId));
  return { imports, snapshots: repositorySnapshots.length, alreadyKnown, skipped };
}

/** `RepositoryImportCompleted` for a plan; `imported` counts the events the log took as new. */
export function importCompleted(
  command: ImportCommand,
  plan: ImportPlan,
  imported: number,
  durationMs: number,
  now: Date,
): z.input<typeof RepositoryImportCompleted.schema> {
  return {
    operationId: command.operationId,
    repositoryId: command.repositoryId,
    snapshots: plan.snapshots,
    imported,
    // An event the log refused as a duplicate was imported by a concurrent or earlier run.
    alreadyKnown: plan.alreadyKnown + (plan.imports.length - imported),
    skipped: plan.skipped,
    durationMs: Math.max(0, Math.round(durationMs)),
    completedAt: now.toISOString(),
  };
}
