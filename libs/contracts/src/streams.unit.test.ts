import { describe, expect, it } from 'vitest';
import {
  AGGREGATE_ID_PARTS,
  AGGREGATES,
  commandSubject,
  commandSubjectFilter,
  dataSubject,
  eventSubject,
  eventSubjectFilter,
  isReservedHostId,
  progressSubject,
  STREAMS,
  SUBJECT_ROOTS,
} from './streams.ts';

describe('streams', () => {
  it('keeps events in VOLBACK_EVENTS and commands in VOLBACK_COMMANDS, each over its whole subject tree', () => {
    expect(STREAMS.events).toEqual({ name: 'VOLBACK_EVENTS', subjects: ['volback.evt.>'] });
    expect(STREAMS.commands).toEqual({ name: 'VOLBACK_COMMANDS', subjects: ['volback.cmd.>'] });
  });

  it('roots the four traffic classes under volback.*', () => {
    expect(SUBJECT_ROOTS).toEqual({
      events: 'volback.evt',
      commands: 'volback.cmd',
      data: 'volback.data',
      progress: 'volback.progress',
    });
  });
});

describe('eventSubject', () => {
  it('puts a volume on volback.evt.volume.<host>.<name>, each id encoded as one token', () => {
    expect(eventSubject('volume', 'docker-prod-01.example.com', 'shop_db.data')).toBe(
      'volback.evt.volume.docker-prod-01~2Eexample~2Ecom.shop_db~2Edata',
    );
  });

  it('puts single-id aggregates on volback.evt.<aggregate>.<id>', () => {
    expect(eventSubject('backup', 'bk-1')).toBe('volback.evt.backup.bk-1');
    expect(eventSubject('repository', 'default')).toBe('volback.evt.repository.default');
  });

  it('knows how many id parts each aggregate has', () => {
    expect(Object.keys(AGGREGATE_ID_PARTS).sort()).toEqual([...AGGREGATES].sort());
    expect(AGGREGATE_ID_PARTS.volume).toBe(2);
    expect(AGGREGATE_ID_PARTS.container).toBe(2);
    expect(AGGREGATE_ID_PARTS.backup).toBe(1);
  });

  it('refuses a missing id, or the wrong number of id parts', () => {
    expect(() => eventSubject('backup')).toThrow(/needs 1 id part/);
    expect(() => eventSubject('volume', 'host-1')).toThrow(/needs 2 id part/);
    expect(() => eventSubject('backup', 'a', 'b')).toThrow(RangeError);
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

  it('matches every volume of one host with an id prefix', () => {
    expect(eventSubjectFilter('volume', 'host.1')).toBe('volback.evt.volume.host~2E1.>');
  });

  it('is the exact subject for one whole instance (a trailing > would need one more token)', () => {
    expect(eventSubjectFilter('backup', 'bk-1')).toBe(eventSubject('backup', 'bk-1'));
    expect(eventSubjectFilter('volume', 'host.1', 'db.data')).toBe('volback.evt.volume.host~2E1.db~2Edata');
  });

  it('refuses more id parts than the aggregate has', () => {
    expect(() => eventSubjectFilter('backup', 'a', 'b')).toThrow(RangeError);
  });
});

describe('commandSubject', () => {
  it('sends agent commands to volback.cmd.<encoded host id>.<name>', () => {
    expect(commandSubject({ kind: 'host', hostId: 'docker.prod' }, 'backup-volume')).toBe(
      'volback.cmd.docker~2Eprod.backup-volume',
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

  it("refuses a host named like a service, whose commands would land in that service's queue", () => {
    expect(isReservedHostId('gateway')).toBe(true);
    expect(isReservedHostId('scheduler')).toBe(true);
    expect(isReservedHostId('gateway-01')).toBe(false);
    expect(() => commandSubject({ kind: 'host', hostId: 'scheduler' }, 'backup-volume')).toThrow(/reserved/);
  });
});

describe('commandSubjectFilter', () => {
  it('selects every command of one target, and only that target', () => {
    expect(commandSubjectFilter({ kind: 'host', hostId: 'docker.prod' })).toBe('volback.cmd.docker~2Eprod.*');
    expect(commandSubjectFilter({ kind: 'gateway' })).toBe('volback.cmd.gateway.*');
    expect(commandSubjectFilter({ kind: 'scheduler' })).toBe('volback.cmd.scheduler.*');
  });
});

describe('progressSubject and dataSubject', () => {
  it('puts live progress on volback.progress.<encoded work id>', () => {
    expect(progressSubject('bk-2025-03-14T03:00:00Z-shop_db.data')).toBe(
      'volback.progress.bk-2025-03-14T03~3A00~3A00Z-shop_db~2Edata',
    );
  });

  it('puts data-path requests on volback.data.<operation>', () => {
    expect(dataSubject('save-blob')).toBe('volback.data.save-blob');
    expect(() => dataSubject('save.blob')).toThrow(/kebab-case/);
  });
});
