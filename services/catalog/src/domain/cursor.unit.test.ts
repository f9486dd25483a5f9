import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { canonicalVolumePath, snapshotTreePath } from './snapshot-path.ts';
import { offlineAfter, protectionStatus } from './status.ts';

describe('cursors', () => {
  it('given the key of a page, then the cursor gives it back for the same list only', () => {
    const cursor = encodeCursor('backups', ['2025-03-14T02:10:00.000Z', 'b-1']);
    expect(decodeCursor('backups', cursor, 2)).toEqual(['2025-03-14T02:10:00.000Z', 'b-1']);
    expect(decodeCursor('hosts', cursor, 2)).toBeUndefined();
    expect(decodeCursor('backups', cursor, 1)).toBeUndefined();
  });

  it('given garbage, then no key', () => {
    for (const bad of ['', '!!', 'bm90LWpzb24', Buffer.from('{"l":"x","k":[{}]}').toString('base64url')]) {
      expect(decodeCursor('x', bad, 1)).toBeUndefined();
    }
  });
});

describe('volume paths', () => {
  it('given what people type, then one canonical path, and `..` refused', () => {
    expect(canonicalVolumePath('')).toBe('/');
    expect(canonicalVolumePath('/app/')).toBe('/app');
    expect(canonicalVolumePath('app//./conf')).toBe('/app/conf');
    expect(canonicalVolumePath('/a/../b')).toEqual({ error: '".." is not allowed' });
    expect(snapshotTreePath('data.v1', '/')).toBe('/volumes/data.v1');
    expect(snapshotTreePath('data.v1', '/app')).toBe('/volumes/data.v1/app');
  });
});

describe('protection and liveness', () => {
  it('given a volume, then its status: removed, at risk, never backed up, or protected', () => {
    expect(protectionStatus({ removedAt: 'x', atRisk: true, lastSuccessAt: 'y' })).toBe('removed');
    expect(protectionStatus({ removedAt: null, atRisk: true, lastSuccessAt: 'y' })).toBe('at-risk');
    expect(protectionStatus({ removedAt: null, atRisk: false, lastSuccessAt: null })).toBe('unprotected');
    expect(protectionStatus({ removedAt: null, atRisk: false, lastSuccessAt: 'y' })).toBe('protected');
  });

  it('given a heartbeat, then the host is offline after two intervals', () => {
    expect(offlineAfter(new Date('2025-03-14T03:00:00Z'), 30).toISOString()).toBe('2025-03-14T03:01:00.000Z');
  });
});
