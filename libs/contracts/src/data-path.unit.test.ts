import { describe, expect, it } from 'vitest';
import { hostIdTag, snapshotTags, volumeSnapshotPath } from './data-path.ts';
import { grantKey, restoreGrant } from './restore-grant.ts';

describe('what a volume snapshot records for restic users', () => {
  it('given a host and a volume, then the tags name both, and the host id for volback', () => {
    expect(snapshotTags({ hostId: 'h-1', hostName: 'db.example', volumeName: 'shop_db.data' })).toEqual([
      'volback',
      'volume:shop_db.data',
      'host:db.example',
      'host-id:h-1',
    ]);
    expect(hostIdTag('h-1')).toBe('host-id:h-1');
    expect(volumeSnapshotPath('shop_db.data')).toBe('/volumes/shop_db.data');
  });

  it('given extra tags, a comma or a repeat, then restic --tag can still select each one', () => {
    expect(
      snapshotTags({
        hostId: 'h-1',
        hostName: 'rack 1, row 2',
        volumeName: 'db',
        extra: ['nightly', 'volback'],
      }),
    ).toEqual(['volback', 'volume:db', 'host:rack 1_ row 2', 'host-id:h-1', 'nightly']);
  });
});

describe('restore grants', () => {
  it('given restore ids, then each has one KV key of the characters KV allows, and no two share one', () => {
    const ids = ['restore-1', 'rs.2025-03-14T03:00:00Z', 'a~b', 'a=7Eb'];
    const keys = ids.map(grantKey);
    expect(keys[0]).toBe('restore-1');
    expect(keys[1]).toBe('rs=2E2025-03-14T03=3A00=3A00Z');
    for (const key of keys) expect(key).toMatch(/^[-/_=.A-Za-z0-9]+$/);
    expect(new Set(keys).size).toBe(ids.length);
  });

  it('given a grant, then it names a valid host, a snapshot id and an expiry time', () => {
    const grant = { hostId: 'h-1', snapshotId: 'a'.repeat(64), expiresAt: '2025-03-15T03:00:00.000Z' };
    expect(restoreGrant.parse(grant)).toEqual(grant);
    expect(restoreGrant.safeParse({ ...grant, hostId: 'gateway' }).success).toBe(false);
    expect(restoreGrant.safeParse({ ...grant, snapshotId: 'latest' }).success).toBe(false);
  });
});
