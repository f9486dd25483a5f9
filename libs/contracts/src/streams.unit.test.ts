import { describe, expect, it } from 'vitest';
import {
  AGGREGATE_ID_PARTS,
  AGGREGATES,
  commandSubject,
  commandSubjectFilter,
  dataSubject,
  dataSubjectFilters,
  eventSubject,
  heartbeatSubject,
  parseHeartbeatSubject,
  eventSubjectFilter,
  HOST_SCOPED_AGGREGATES,
  inboxPrefix,
  isReservedHostId,
  parseDataSubject,
  parseProgressSubject,
  progressSubject,
  progressSubjectFilter,
  STREAMS,
  SUBJECT_ROOTS,
} from './streams.ts';

describe('streams', () => {
  it('keeps events in VOLBACK_EVENTS and commands in VOLBACK_COMMANDS, each over its whole subject tree', () => {
    expect(STREAMS.events).toEqual({ name: 'VOLBACK_EVENTS', subjects: ['volback.evt.>'] });
    expect(STREAMS.commands).toEqual({ name: 'VOLBACK_COMMANDS', subjects: ['volback.cmd.>'] });
    expect(STREAMS.heartbeats).toEqual({ name: 'VOLBACK_HEARTBEATS', subjects: ['volback.hb.>'] });
  });

  it('roots the five traffic classes under volback.*', () => {
    expect(SUBJECT_ROOTS).toEqual({
      events: 'volback.evt',
      commands: 'volback.cmd',
      data: 'volback.data',
      progress: 'volback.progress',
      heartbeats: 'volback.hb',
    });
  });

  it("puts a host's heartbeat on volback.hb.<host>, and reads the host back", () => {
    expect(heartbeatSubject('host.1')).toBe('volback.hb.host~2E1');
    expect(parseHeartbeatSubject('volback.hb.host~2E1')).toBe('host.1');
    expect(parseHeartbeatSubject('volback.hb.gateway')).toBeUndefined();
    expect(parseHeartbeatSubject('volback.hb.a.b')).toBeUndefined();
    expect(parseHeartbeatSubject('volback.evt.host.a')).toBeUndefined();
    expect(() => heartbeatSubject('scheduler')).toThrow(RangeError);
  });
});

describe('eventSubject', () => {
  it('puts a volume on volback.evt.volume.<host>.<name>, each id encoded as one token', () => {
    expect(eventSubject('volume', 'docker-prod-01.example.com', 'shop_db.data')).toBe(
      'volback.evt.volume.docker-prod-01~2Eexample~2Ecom.shop_db~2Edata',
    );
  });

  it('puts backups and restores on volback.evt.<aggregate>.<host>.<id>, the host first', () => {
    expect(eventSubject('backup', 'host.1', 'bk-1')).toBe('volback.evt.backup.host~2E1.bk-1');
    expect(eventSubject('restore', 'host.1', 'rs-1')).toBe('volback.evt.restore.host~2E1.rs-1');
  });

  it('puts single-id aggregates on volback.evt.<aggregate>.<id>', () => {
    expect(eventSubject('host', 'host.1')).toBe('volback.evt.host.host~2E1');
    expect(eventSubject('repository', 'default')).toBe('volback.evt.repository.default');
  });

  it('knows how many id parts each aggregate has, the host-scoped ones starting with the host', () => {
    expect(Object.keys(AGGREGATE_ID_PARTS).sort()).toEqual([...AGGREGATES].sort());
    expect(AGGREGATE_ID_PARTS.volume).toBe(2);
    expect(AGGREGATE_ID_PARTS.container).toBe(2);
    expect(AGGREGATE_ID_PARTS.backup).toBe(2);
    expect(AGGREGATE_ID_PARTS.restore).toBe(2);
    expect(AGGREGATE_ID_PARTS.drill).toBe(2);
    expect([...HOST_SCOPED_AGGREGATES].sort()).toEqual([
      'backup',
      'container',
      'drill',
      'host',
      'restore',
      'volume',
    ]);
  });

  it('refuses a missing id, or the wrong number of id parts', () => {
    expect(() => eventSubject('policy')).toThrow(/needs 1 id part/);
    expect(() => eventSubject('volume', 'host-1')).toThrow(/needs 2 id part/);
    expect(() => eventSubject('backup', 'bk-1')).toThrow(/needs 2 id part/);
    expect(() => eventSubject('policy', 'a', 'b')).toThrow(RangeError);
  });

  it('refuses an empty id part', () => {
    expect(() => eventSubject('volume', 'host-1', '')).toThrow(/empty id/);
  });
});

describe('eventSubjectFilter', () => {
  it('matches every event without arguments', () => {
    expect(eventSubjectFilter()).toBe('volback.evt.>');
  });

  it('matches every event of one aggregate type', () => {
    expect(eventSubjectFilter('backup')).toBe('volback.evt.backup.>');
  });

  it('matches every volume, backup or restore of one host with an id prefix', () => {
    expect(eventSubjectFilter('volume', 'host.1')).toBe('volback.evt.volume.host~2E1.>');
    expect(eventSubjectFilter('backup', 'host.1')).toBe('volback.evt.backup.host~2E1.>');
    expect(eventSubjectFilter('restore', 'host.1')).toBe('volback.evt.restore.host~2E1.>');
  });

  it('is the exact subject for one whole instance (a trailing > would need one more token)', () => {
    expect(eventSubjectFilter('backup', 'h', 'bk-1')).toBe(eventSubject('backup', 'h', 'bk-1'));
    expect(eventSubjectFilter('policy', 'p-1')).toBe('volback.evt.policy.p-1');
    expect(eventSubjectFilter('volume', 'host.1', 'db.data')).toBe('volback.evt.volume.host~2E1.db~2Edata');
  });

  it('refuses more id parts than the aggregate has', () => {
    expect(() => eventSubjectFilter('backup', 'a', 'b', 'c')).toThrow(RangeError);
  });
});

describe('commandSubject', () => {
  it('sends agent commands to volback.cmd.host.<encoded host id>.<name>', () => {
    expect(commandSubject({ kind: 'host', hostId: 'docker.prod' }, 'backup-volume')).toBe(
      'volback.cmd.host.docker~2Eprod.backup-volume',
    );
  });

  it('sends service commands to volback.cmd.gateway.* and volback.cmd.scheduler.*', () => {
    expect(commandSubject({ kind: 'gateway' }, 'prune-repository')).toBe(
      'volback.cmd.gateway.prune-repository',
    );
    expect(commandSubject({ kind: 'scheduler' }, 'define-policy')).toBe(
      'volback.cmd.scheduler.define-policy',
    );
  });

  it('refuses a command name that is not kebab-case', () => {
    expect(() => commandSubject({ kind: 'gateway' }, 'PruneRepository')).toThrow(/kebab-case/);
    expect(() => commandSubject({ kind: 'gateway' }, 'prune.repository')).toThrow(/kebab-case/);
    expect(() => commandSubject({ kind: 'gateway' }, '>')).toThrow(/kebab-case/);
  });

  it('refuses a host named like a service, so that no subject reads ambiguously', () => {
    expect(isReservedHostId('gateway')).toBe(true);
    expect(isReservedHostId('scheduler')).toBe(true);
    expect(isReservedHostId('gateway-01')).toBe(false);
    expect(() => commandSubject({ kind: 'host', hostId: 'scheduler' }, 'backup-volume')).toThrow(/reserved/);
  });
});

describe('commandSubjectFilter', () => {
  it('selects every command of one target, and only that target', () => {
    expect(commandSubjectFilter({ kind: 'host', hostId: 'docker.prod' })).toBe(
      'volback.cmd.host.docker~2Eprod.*',
    );
    expect(commandSubjectFilter({ kind: 'gateway' })).toBe('volback.cmd.gateway.*');
    expect(commandSubjectFilter({ kind: 'scheduler' })).toBe('volback.cmd.scheduler.*');
  });
});

describe('progressSubject', () => {
  it('puts live progress on volback.progress.<encoded host id>.<encoded work id>', () => {
    expect(progressSubject('docker.prod', 'bk-2025-03-14T03:00:00Z-shop_db.data')).toBe(
      'volback.progress.docker~2Eprod.bk-2025-03-14T03~3A00~3A00Z-shop_db~2Edata',
    );
    expect(progressSubjectFilter()).toBe('volback.progress.>');
    expect(progressSubjectFilter('docker.prod')).toBe('volback.progress.docker~2Eprod.>');
  });

  it('reads host and work back from the subject, and nothing from what is not one', () => {
    expect(parseProgressSubject(progressSubject('docker.prod', 'bk.1'))).toEqual({
      hostId: 'docker.prod',
      workId: 'bk.1',
    });
    expect(parseProgressSubject('volback.progress.bk-1')).toBeUndefined();
    expect(parseProgressSubject('volback.progress.h.a~2e')).toBeUndefined();
    expect(parseProgressSubject('volback.data.h.bk-1')).toBeUndefined();
  });
});

describe('dataSubject', () => {
  it('names the requester: volback.data.host.<host>.<operation> or volback.data.catalog.<operation>', () => {
    expect(dataSubject({ kind: 'host', hostId: 'docker.prod' }, 'load-blob')).toBe(
      'volback.data.host.docker~2Eprod.load-blob',
    );
    expect(dataSubject({ kind: 'catalog' }, 'find-snapshot')).toBe('volback.data.catalog.find-snapshot');
    expect(() => dataSubject({ kind: 'catalog' }, 'load.blob')).toThrow(/kebab-case/);
    expect(() => dataSubject({ kind: 'host', hostId: 'gateway' }, 'load-blob')).toThrow(/reserved/);
  });

  it('gives the gateways one filter per requester kind, or the whole data path', () => {
    expect(dataSubjectFilters('flush')).toEqual(['volback.data.host.*.flush', 'volback.data.catalog.flush']);
    expect(dataSubjectFilters()).toEqual(['volback.data.>']);
  });

  it('reads the requester back from the subject, the host id decoded', () => {
    const subject = dataSubject({ kind: 'host', hostId: 'docker.prod' }, 'store-blob');
    expect(parseDataSubject(subject)).toEqual({
      requester: { kind: 'host', hostId: 'docker.prod' },
      operation: 'store-blob',
    });
    expect(parseDataSubject('volback.data.catalog.load-blobs')).toEqual({
      requester: { kind: 'catalog' },
      operation: 'load-blobs',
    });
  });

  it('refuses what no requester could have sent', () => {
    for (const subject of [
      'volback.data.load-blob',
      'volback.data.host.load-blob',
      'volback.data.host.a~2e.load-blob',
      'volback.data.host.gateway.load-blob',
      'volback.data.host.h.x.load-blob',
      'volback.data.catalog.Load',
      'volback.data.scheduler.load-blob',
      'volback.evt.host.h',
    ]) {
      expect(parseDataSubject(subject), subject).toBeUndefined();
    }
  });
});

describe('inboxPrefix', () => {
  it('gives every identity its own reply inboxes', () => {
    expect(inboxPrefix({ kind: 'agent', hostId: 'docker.prod' })).toBe('_INBOX.host.docker~2Eprod');
    expect(inboxPrefix({ kind: 'service', service: 'scheduler' })).toBe('_INBOX.scheduler');
    expect(inboxPrefix({ kind: 'service', service: 'catalog' })).toBe('_INBOX.catalog');
    expect(inboxPrefix({ kind: 'service', service: 'gateway' })).toBe('_INBOX.gateway');
    expect(inboxPrefix({ kind: 'service', service: 'cli' })).toBe('_INBOX.cli');
    expect(inboxPrefix({ kind: 'subscriber', name: 'audit.log' })).toBe('_INBOX.subscriber.audit~2Elog');
    expect(inboxPrefix({ kind: 'admin' })).toBe('_INBOX.admin');
  });

  it('keeps one host out of another host’s inboxes', () => {
    const a = inboxPrefix({ kind: 'agent', hostId: 'a' });
    expect(`${inboxPrefix({ kind: 'agent', hostId: 'ab' })}.x`.startsWith(`${a}.`)).toBe(false);
  });
});
