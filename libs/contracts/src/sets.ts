import { z } from 'zod';

/**
 * A backup set: the volumes of one application on one host, backed up as one point in time.
 * `compose:<project>` groups the volumes of the containers (and volumes) labelled
 * `com.docker.compose.project=<project>`; `group:<name>` those labelled `volback.group=<name>`,
 * which wins over the compose project. Names: a letter or digit, then letters, digits, `_ . -`.
 */
export const setId = z
  .string()
  .max(140)
  .regex(
    /^(compose|group):[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
    'compose:<project> or group:<name> (a letter or digit, then letters, digits, _ . -)',
  );

/** The labels that make a set (README of the agent, "Backup sets"). */
export const SET_LABELS = {
  group: 'volback.group',
  composeProject: 'com.docker.compose.project',
  /**
   * `true` on any container or volume of a set: the scheduler backs the set's volumes up together
   * (one `BackupSet` per schedule slot) instead of one by one.
   */
  backupAsSet: 'volback.set.backup',
} as const;

/** Longest work id (`workId`). */
const MAX_WORK_ID = 200;

/** FNV-1a, 32 bits, hex: a short stable tag for an id cut to length (not a security hash). */
function shortTag(text: string): string {
  let hash = 0x811c9dc5;
  for (const char of text) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * The backup id of one member volume of a set backup: `<setBackupId>.<volumeName>`, cut to a
 * work id's length with a tag of the whole when longer. The scheduler (which records the member's
 * `BackupRequested`) and the agent (which runs it) derive it alike.
 */
export function memberBackupId(setBackupId: string, volumeName: string): string {
  const id = `${setBackupId}.${volumeName}`;
  return id.length <= MAX_WORK_ID ? id : `${id.slice(0, MAX_WORK_ID - 9)}~${shortTag(id)}`;
}

/**
 * The restic tags every member snapshot of one set backup carries, besides the volume's own:
 * `volback-set:<setBackupId>` (this point in time: `restic snapshots --tag volback-set:<id>`)
 * and `set:<setId>` (the set across time). Commas become `_`, as in `snapshotTags`.
 */
export function setSnapshotTags(input: { setId: string; setBackupId: string }): string[] {
  return [`volback-set:${input.setBackupId}`, `set:${input.setId}`].map((tag) => tag.replaceAll(',', '_'));
}

const SET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The set a container or volume belongs to by its labels: `group:<volback.group>`, else
 * `compose:<com.docker.compose.project>`, else none. A name that is not a valid set name is no
 * set (the volume is backed up on its own).
 */
export function setIdOf(labels: Readonly<Record<string, string>>): string | undefined {
  const group = labels[SET_LABELS.group]?.trim();
  if (group) return SET_NAME.test(group) ? `group:${group}` : undefined;
  const project = labels[SET_LABELS.composeProject]?.trim();
  return project && SET_NAME.test(project) ? `compose:${project}` : undefined;
}
