import { volumeSnapshotPath } from '@volback/contracts';

/**
 * A path inside a volume as people give it (`/`, `app/config`, `/app/`), checked and made
 * canonical: absolute, no empty, `.` or `..` segments, no trailing slash (`/` for the root).
 */
export function canonicalVolumePath(path: string): string | { error: string } {
  if (path.length > 4096) return { error: 'at most 4096 characters' };
  if (path.includes('\0')) return { error: 'holds a NUL character' };
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { error: '".." is not allowed' };
  return `/${parts.join('/')}`;
}

/** The path of `volumePath` (canonical, volume-relative) inside the snapshot's tree. */
export function snapshotTreePath(volumeName: string, volumePath: string): string {
  return volumePath === '/'
    ? volumeSnapshotPath(volumeName)
    : `${volumeSnapshotPath(volumeName)}${volumePath}`;
}
