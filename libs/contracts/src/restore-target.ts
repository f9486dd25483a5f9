import { z } from 'zod';
import { volumeName } from './fields.ts';

/** Where a restore writes. It never writes outside this target. */
export const restoreTarget = z.discriminatedUnion('kind', [
  /** A volume created for the restore (same driver and options, labels recording its origin). */
  z.object({ kind: z.literal('new-volume'), volumeName }),
  /** An existing volume; refused while a running container uses it unless `stopContainers`. */
  z.object({ kind: z.literal('existing-volume'), volumeName, stopContainers: z.boolean().default(false) }),
  /** A tar stream for download. */
  z.object({ kind: z.literal('tar') }),
]);
