// What several catalog commands share: list limits, host names for tables, a volume found by name,
// times for people, the `--keep-*` retention flags.
import type { Command } from 'commander';
import type { Host, Volume } from './api.ts';
import { CatalogRequestError } from './catalog-client.ts';
import type { CatalogContext } from './catalog-context.ts';
import type { Output } from './output.ts';
import { UsageError } from './usage-error.ts';

/** A path segment or query value, encoded. */
export const enc = encodeURIComponent;
/** A time for people, past or future: `2025-03-14 02:10:00Z` (seconds, UTC), `-` when there is none. */
export const displayTime = (iso: string | null | undefined) =>
  iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';

/** `--limit n` / `--all` of a list command: how many items to show. */
export function listLimit(o: { limit?: string; all?: boolean }): number {
  if (o.all) return Number.POSITIVE_INFINITY;
  const n = Number(o.limit ?? 500);
  if (!Number.isInteger(n) || n < 1) throw new UsageError('--limit: a whole number of 1 or more');
  return n;
}

/** Says on stderr that a list was cut, and how to see the rest. */
export function noteTruncated(out: Output, shown: number, noun: string): void {
  out.notice(`showing the first ${shown} ${noun}; more exist: raise --limit or pass --all`);
}

/** Adds `--limit` and `--all` to a list command. */
export const listOptions = (command: Command, noun: string): Command =>
  command
    .option('--limit <n>', `show at most n ${noun}`, '500')
    .option('--all', `show every one of the ${noun} (pages through the API)`);

/** Host names by id, for tables (ids stay in --json). */
export async function hostNames(ctx: CatalogContext): Promise<Map<string, string>> {
  const hosts = await ctx.client.all<Host>('/v1/hosts');
  return new Map(hosts.map((h) => [h.hostId, h.name]));
}

/** The host's name when it is unique among the hosts, else its id. */
export function hostLabel(names: Map<string, string>, hostId: string): string {
  const name = names.get(hostId);
  if (!name) return hostId;
  const same = [...names.values()].filter((n) => n === name).length;
  return same > 1 ? hostId : name;
}

/** A volume by name (and `--host`): a live one before a removed one; several hosts is a usage error. */
export async function resolveVolume(
  ctx: CatalogContext,
  name: string,
  host: string | undefined,
): Promise<Volume> {
  const found = await ctx.client.all<Volume>(
    `/v1/volumes?name=${enc(name)}&includeRemoved=true${host ? `&host=${enc(host)}` : ''}`,
  );
  if (found.length === 0) {
    throw new CatalogRequestError(
      'VOLBACK_CATALOG_VOLUME_NOT_FOUND',
      404,
      `no volume ${JSON.stringify(name)}${host ? ` on host ${host}` : ''}`,
    );
  }
  const live = found.filter((v) => !v.removedAt);
  const candidates = live.length ? live : found;
  if (candidates.length > 1) {
    const names = await hostNames(ctx);
    throw new UsageError(
      `volume ${JSON.stringify(name)} exists on several hosts (${candidates.map((v) => hostLabel(names, v.hostId)).join(', ')}): add --host`,
    );
  }
  return candidates[0]!;
}

/** The `--keep-<n>` options: commander names them as the API's retention fields (`keepLast`). */
const RETENTION_COUNTS = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'];

/** `--keep-*` flags as a retention object (only the given ones). */
export function retentionOf(o: Record<string, unknown>): Record<string, number | string> {
  const retention: Record<string, number | string> = {};
  for (const key of RETENTION_COUNTS) {
    const raw = o[key] as string | undefined;
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw))
      throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: a whole number`);
    retention[key] = Number(raw);
  }
  if (typeof o['keepWithin'] === 'string') retention['keepWithin'] = o['keepWithin'];
  return retention;
}
