import { describe, expect, it } from 'vitest';
import { HOST, hostRegistered, volumeDiscovered } from '../test-support/events.ts';
import { scenario, testSettings } from '../test-support/scenario.ts';
import {
  restoreState,
  serializeState,
  SnapshotUnusableError,
  STATE_SNAPSHOT_FORMAT,
} from './state-snapshot.ts';

describe('state snapshots', () => {
  it('keep the drills in flight and the label rejections (a string per policy)', () => {
    const s = scenario(testSettings()).given(
      hostRegistered('2025-03-14T00:00:00Z'),
      volumeDiscovered('db', '2025-03-14T00:00:00Z', { 'volback.drill.schedule': 'weekly' }),
      {
        type: 'io.volback.drill.requested.v1',
        data: {
          drillId: 'drill-1',
          hostId: HOST,
          volumeName: 'db',
          trigger: 'schedule',
          repositoryId: 'default',
          requestedAt: '2025-03-16T05:00:00.000Z',
        },
      },
    );
    s.tick('2025-03-14T00:00:01Z'); // the bad label rejected
    expect(s.state.rejections.size).toBe(1);
    const snapshot = {
      format: STATE_SNAPSHOT_FORMAT,
      streamCreated: 'x',
      sequence: 9,
      state: serializeState(s.state),
    };
    const restored = restoreState(JSON.parse(JSON.stringify(snapshot)));
    expect(restored.state.drillsInFlight.get('drill-1')).toMatchObject({ hostId: HOST, trigger: 'schedule' });
    expect([...restored.state.rejections]).toEqual([...s.state.rejections]);
  });

  it('of format 1 are not used (they left the drills in flight out)', () => {
    const snapshot = { format: 1, streamCreated: 'x', sequence: 9, state: serializeState(scenario().state) };
    expect(() => restoreState(snapshot)).toThrow(SnapshotUnusableError);
  });
});
