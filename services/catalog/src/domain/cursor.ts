/**
 * Keyset pagination: a cursor is the sort key of the last item of a page, tagged with the list it
 * belongs to, as base64url JSON. Opaque to clients; stable while rows are added (unlike offsets).
 */
export type CursorKey = readonly (string | number | null)[];

/** Encodes the sort key of a page's last item. */
export function encodeCursor(list: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify({ l: list, k: key })).toString('base64url');
}

/** The sort key a cursor holds, or undefined when it is not one of `list`'s cursors with `size` parts. */
export function decodeCursor(list: string, cursor: string, size: number): CursorKey | undefined {
  if (!/^[A-Za-z0-9_-]{1,2000}$/.test(cursor)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
      l?: unknown;
      k?: unknown;
    };
    if (value.l !== list || !Array.isArray(value.k) || value.k.length !== size) return undefined;
    const key = value.k as unknown[];
    if (!key.every((v) => v === null || typeof v === 'string' || typeof v === 'number')) return undefined;
    return key as CursorKey;
  } catch {
    return undefined;
  }
}
