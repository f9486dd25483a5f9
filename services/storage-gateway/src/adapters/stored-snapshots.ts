import { parseGoTime, type Snapshot } from '@volback/repository';
import type { StoredSnapshot } from '../domain/snapshot-selection.ts';

/**
 * Snapshots as the domain reads them: each with its recorded time parsed here (restic's Go
 * RFC 3339, nanoseconds, any offset), left out when it cannot be read.
 */
export function storedSnapshots(list: ReadonlyArray<{ id: string; snapshot: Snapshot }>): StoredSnapshot[] {
  return list.map(({ id, snapshot }) => {
    try {
      return { id, snapshot, timeNs: parseGoTime(snapshot.time) };
    } catch {
      return { id, snapshot };
    }
  });
}
