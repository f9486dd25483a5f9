/** `1.2 MiB`; an em dash for unknown. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** `2025-03-14 03:01` in the browser's zone; an em dash for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The hash route of a volume's page. */
export function volumeHref(hostId: string, volumeName: string): string {
  return `#/volumes/${encodeURIComponent(hostId)}/${encodeURIComponent(volumeName)}`;
}

/** The hash route of a directory (or file) in a snapshot. */
export function snapshotHref(snapshotId: string, path = '/'): string {
  return `#/snapshots/${snapshotId}${path === '/' ? '' : `/${encodeURIComponent(path)}`}`;
}

/** The hash route of a backup set (an application) on a host. */
export function setHref(hostId: string, setId: string): string {
  return `#/sets/${encodeURIComponent(hostId)}/${encodeURIComponent(setId)}`;
}

/** The hash route of the restore wizard of a set. */
export function setRestoreHref(hostId: string, setId: string): string {
  return `#/restore-set/${encodeURIComponent(hostId)}/${encodeURIComponent(setId)}`;
}
