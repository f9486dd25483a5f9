import { z } from 'zod';
import { count, innerPath, volumeName } from './fields.ts';

/** A volume created for the restore (same driver and options, labels recording its origin). */
const newVolumeTarget = z.object({ kind: z.literal('new-volume'), volumeName });
/** An existing volume; refused while a running container uses it unless `stopContainers`. */
const existingVolumeTarget = z.object({
  kind: z.literal('existing-volume'),
  volumeName,
  stopContainers: z.boolean().default(false),
});

/** Where a restore writes. It never writes outside this target. */
export const restoreTarget = z.discriminatedUnion('kind', [
  newVolumeTarget,
  existingVolumeTarget,
  /** A tar stream for download. */
  z.object({ kind: z.literal('tar') }),
]);

/** A restore target that is a volume (a member of a set restore). */
export const volumeRestoreTarget = z.discriminatedUnion('kind', [newVolumeTarget, existingVolumeTarget]);

/** Entries of one kind in a {@link restorePlan}. */
const restorePlanEntries = z.object({
  /** How many entries; `paths` lists the first of them (`count > paths.length`: more not listed). */
  count,
  /** Bytes of the files among them, as the snapshot records them. */
  bytes: count,
  /** Paths in the volume (`/2024/01/photo-7.jpg`); a directory ends with `/`. */
  paths: z.array(innerPath).max(1000),
});

/**
 * What a restore would do to its target (a dry run): entries it would create, entries there that
 * it would overwrite (an existing directory the snapshot also has is kept, not listed), and
 * entries in the directories it restores that the snapshot lacks, which a restore never removes.
 */
export const restorePlan = z.object({
  written: restorePlanEntries,
  replaced: restorePlanEntries,
  leftAlone: restorePlanEntries,
});

/**
 * What a restore left out of what its snapshot records, for safety: device nodes (never written)
 * and setuid/setgid bits (stripped unless asked for on a snapshot of the host's own backups).
 */
export const restoreSkipped = z.object({
  /** Block and character device nodes not written. */
  devices: restorePlanEntries,
  /** Files and directories written without their setuid or setgid bit. */
  specialModes: restorePlanEntries,
});

/**
 * Where in the volume a restore writes (`targetPath`, a directory inside the target volume that
 * stands for the volume's root; `/` by default) and what (`path`, a sub-path of the volume in the
 * snapshot, kept at its own place below `targetPath` as restic's `--include` does).
 */
export const restoreSelection = {
  /** Sub-path of the volume to restore (`2024/01`); the whole volume when omitted. */
  path: innerPath.optional(),
  /** Directory inside the target volume to restore into (created when missing); `/` when omitted. */
  targetPath: innerPath.optional(),
  /** Only say what would be written, replaced and left alone; write nothing. */
  dryRun: z.boolean().default(false),
};
