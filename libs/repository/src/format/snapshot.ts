import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

const id = z.string().regex(/^[0-9a-f]{64}$/);

/** A snapshot file's JSON (design.rst, "Snapshots"). */
export const snapshotSchema = z.object({
  time: z.string(),
  parent: id.nullish(),
  tree: id,
  paths: z.array(z.string()),
  hostname: z.string().optional(),
  username: z.string().optional(),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  excludes: z.array(z.string()).nullish(),
  tags: z.array(z.string()).nullish(),
  original: id.nullish(),
  program_version: z.string().optional(),
});
/** A parsed snapshot. */
export type Snapshot = z.infer<typeof snapshotSchema>;

/** Validates a decoded snapshot file. */
export function parseSnapshot(value: unknown, snapshotId: string): Snapshot {
  const parsed = snapshotSchema.safeParse(value);
  if (!parsed.success) {
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `snapshot ${snapshotId}: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** A lock file's JSON (design.rst, "Locks"). */
export const lockSchema = z.object({
  time: z.string(),
  exclusive: z.boolean(),
  hostname: z.string(),
  username: z.string().optional(),
  pid: z.number().int(),
  uid: z.number().int().optional(),
  gid: z.number().int().optional(),
});
/** A parsed lock. */
export type LockFile = z.infer<typeof lockSchema>;
