import { describe, expect, it } from 'vitest';
import { hostIdTag, snapshotTags, volumeSnapshotPath } from './data-path.ts';

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
