import { userInfo } from 'node:os';

/** The user name restic records in key, lock and snapshot files; `volback` when the uid has no passwd entry (a container). */
export function currentUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return 'volback';
  }
}
