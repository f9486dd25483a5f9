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
} as const;

/**
 * The restic tags every member snapshot of one set backup carries, besides the volume's own:
 * `volback-set:<setBackupId>` (this point in time: `restic snapshots --tag volback-set:<id>`)
 * and `set:<setId>` (the set across time). Commas become `_`, as in `snapshotTags`.
 */
export function setSnapshotTags(input: { setId: string; setBackupId: string }): string[] {
  return [`volback-set:${input.setBackupId}`, `set:${input.setId}`].map((tag) => tag.replaceAll(',', '_'));
}
