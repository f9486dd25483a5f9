import {
  BackupAbandoned,
  BackupCompleted,
  BackupFailed,
  createEvent,
  RestoreFailed,
  sampleData,
  VolumeAtRisk,
  VolumeProtectionRestored,
  type EventDefinition,
} from '@volback/contracts';
import { describe, expect, it } from 'vitest';
import {
  decideNotification,
  filterAccepts,
  initialNotifierState,
  notificationScope,
} from './notifications.ts';

const event = (def: EventDefinition, overrides: Record<string, unknown> = {}) =>
  createEvent(def, sampleData(def, overrides) as never, { source: 'volback://test' }).envelope;

describe('decideNotification', () => {
  it('given a volume whose backup failed; when a backup completes; then recovery, and the next one is a success', () => {
    const state = initialNotifierState();
    expect(decideNotification(state, event(BackupFailed), 1)).toBe('failure');
    expect(decideNotification(state, event(BackupCompleted), 2)).toBe('recovery');
    expect(decideNotification(state, event(BackupCompleted), 3)).toBe('success');
  });

  it('given an event delivered again; then the same kind as the first time, and nothing for older ones', () => {
    const state = initialNotifierState();
    decideNotification(state, event(BackupFailed), 1);
    const completed = event(BackupCompleted);
    expect(decideNotification(state, completed, 2)).toBe('recovery');
    expect(decideNotification(state, completed, 2)).toBe('recovery');
    expect(decideNotification(state, event(BackupFailed), 1)).toBeUndefined();
  });

  it('given another volume failed; then a completion here is a plain success', () => {
    const state = initialNotifierState();
    decideNotification(state, event(BackupFailed, { volumeName: 'other' }), 1);
    expect(decideNotification(state, event(BackupCompleted), 2)).toBe('success');
  });

  it('given an abandoned backup (its last attempt was notified); then no notification, but the volume counts as failing', () => {
    const state = initialNotifierState();
    expect(decideNotification(state, event(BackupAbandoned), 1)).toBeUndefined();
    expect(decideNotification(state, event(BackupCompleted), 2)).toBe('recovery');
  });

  it('maps restore failures, at-risk and protection restored', () => {
    const state = initialNotifierState();
    expect(decideNotification(state, event(RestoreFailed), 1)).toBe('failure');
    expect(decideNotification(state, event(VolumeAtRisk), 2)).toBe('at-risk');
    expect(decideNotification(state, event(VolumeProtectionRestored), 3)).toBe('recovery');
  });
});

describe('filterAccepts', () => {
  const scope = notificationScope(event(BackupFailed, { hostId: 'h1', volumeName: 'shop_db' }));
  const defaults = ['failure', 'at-risk', 'recovery'] as const;

  it('given no filter; then the default kinds only', () => {
    expect(filterAccepts({}, defaults, 'failure', scope)).toBe(true);
    expect(filterAccepts({}, defaults, 'success', scope)).toBe(false);
  });

  it('given kinds, hosts and volume patterns; then all must match', () => {
    expect(filterAccepts({ kinds: ['success'] }, defaults, 'success', scope)).toBe(true);
    expect(filterAccepts({ hosts: ['h2'] }, defaults, 'failure', scope)).toBe(false);
    expect(filterAccepts({ hosts: ['h1'], volumes: ['shop_*'] }, defaults, 'failure', scope)).toBe(true);
    expect(filterAccepts({ volumes: ['shop'] }, defaults, 'failure', scope)).toBe(false);
    expect(filterAccepts({ volumes: ['shop.*'] }, defaults, 'failure', scope)).toBe(false);
  });

  it('given a test; then any channel takes it, whatever it filters', () => {
    expect(filterAccepts({ kinds: ['success'], hosts: ['h2'] }, defaults, 'test', {})).toBe(true);
  });
});
