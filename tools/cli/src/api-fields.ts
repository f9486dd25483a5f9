import { CatalogRequestError } from './catalog-client.ts';

/**
 * How the catalog API names request fields, and the flag or argument of the CLI that fills each.
 * A bad-input answer names API fields (`body.target.volumeName`); people typed flags.
 */
const FIELD_FLAGS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^body\.target\.volumeName$/, '--to-volume'],
  [/^body\.target\.stopContainers$/, '--stop-containers'],
  [/^body\.target(\.kind)?$/, '--existing'],
  [/^body\.snapshotId$|^params\.snapshotId$/, '<snapshot>'],
  [/^body\.hostId$|^query\.host$|^params\.hostId$/, '--host'],
  [/^body\.path$/, '--path'],
  [/^body\.targetPath$/, '--target-dir'],
  [/^body\.dryRun$/, '--dry-run'],
  [/^query\.path$/, '[path]'],
  [/^query\.glob$/, '<glob>'],
  [/^query\.snapshots$/, '--snapshots'],
  [/^query\.limit$/, '--limit'],
  [/^query\.volume$/, '--volume'],
  [/^query\.type$/, '--type'],
  [/^query\.since$/, '--since'],
  [/^params\.volumeName$/, '<volume>'],
  [/^params\.policyId$/, '<id>'],
  [/^body\.policy\.schedule\.cron$/, '--cron'],
  [/^body\.policy\.schedule\.timezone$/, '--timezone'],
  [/^body\.policy\.schedule$/, '--cron'],
  [/^body\.policy\.retention\.keepLast$/, '--keep-last'],
  [/^body\.policy\.retention\.keepHourly$/, '--keep-hourly'],
  [/^body\.policy\.retention\.keepDaily$/, '--keep-daily'],
  [/^body\.policy\.retention\.keepWeekly$/, '--keep-weekly'],
  [/^body\.policy\.retention\.keepMonthly$/, '--keep-monthly'],
  [/^body\.policy\.retention\.keepYearly$/, '--keep-yearly'],
  [/^body\.policy\.retention\.keepWithin$/, '--keep-within'],
  [/^body\.(policy\.)?retention\.keepLast$/, '--keep-last'],
  [/^body\.(policy\.)?retention.*$/, '--keep-*'],
  [/^body\.policy\.excludes/, '--exclude'],
  [/^body\.policy\.consistency/, '--consistency'],
  [/^body\.scope/, '--default or --volume'],
  [/^body\.readDataFraction$/, '--read-data-subset'],
  [/^body\.maxUnusedFraction$/, '--max-unused'],
];

/** API words in messages, and what the CLI calls them. */
const WORDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bexisting-volume\b/g, '--existing'],
  [/\bnew-volume\b/g, '--to-volume without --existing'],
  [/\bstopContainers\b/g, '--stop-containers'],
  [/\bvolumeName\b/g, 'volume name'],
  [/\bsnapshotId\b/g, 'snapshot'],
  [/\bhostId\b/g, 'host'],
];

/** The CLI's name for an API field (`body.target.volumeName` → `--to-volume`); the field itself when none fits. */
export function flagOf(field: string): string {
  return FIELD_FLAGS.find(([pattern]) => pattern.test(field))?.[1] ?? field;
}

/** A catalog message with API words put as the CLI's flags. */
export function inCliWords(message: string): string {
  return WORDS.reduce((text, [pattern, word]) => text.replace(pattern, word), message);
}

/**
 * The same error, told in the CLI's words: each field at fault named by its flag, with every
 * message (not only the first).
 */
export function withCliNames(error: CatalogRequestError): CatalogRequestError {
  const message = error.fields.length
    ? error.fields.map((f) => `${flagOf(f.field)}: ${inCliWords(f.message)}`).join('; ')
    : inCliWords(error.message);
  return new CatalogRequestError(error.code, error.status, message, {
    cause: error,
    fields: error.fields.map((f) => ({ field: flagOf(f.field), message: inCliWords(f.message) })),
  });
}
