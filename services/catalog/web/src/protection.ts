import type { Volume } from './api.ts';

/** What the overview shows for a volume, worst first. */
export type Protection = 'at-risk' | 'failing' | 'never' | 'protected' | 'removed';

export const PROTECTION_ORDER: readonly Protection[] = [
  'at-risk',
  'failing',
  'never',
  'protected',
  'removed',
];

export const PROTECTION_LABEL: Record<Protection, string> = {
  'at-risk': 'At risk',
  failing: 'Failing',
  never: 'Never backed up',
  protected: 'Protected',
  removed: 'Removed',
};

/**
 * The catalog's protection status, with "failing" (the last backup failed, the volume not yet at
 * risk) told apart from "protected": the dashboard's only rule of its own, and one it reads off
 * the volume's last backup.
 */
export function protectionOf(v: Volume): Protection {
  const status = v.protection.status;
  if (status === 'removed') return 'removed';
  if (status === 'at-risk') return 'at-risk';
  if (v.protection.lastBackup?.phase === 'Failed') return 'failing';
  if (status === 'unprotected') return 'never';
  return 'protected';
}
