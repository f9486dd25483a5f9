// The field rules an operator runs into: what a volume name, an id, a retention, a schedule, a
// consistency mode or a restore target may be.
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  consistency,
  containerId,
  containerName,
  errorCode,
  hostId,
  policyId,
  repositoryId,
  retention,
  schedule,
  snapshotId,
  volumeName,
  workId,
} from './fields.ts';
import { policyScope, policySpec } from './policy.ts';
import { restoreTarget } from './restore-target.ts';

function accepts(schema: z.ZodType, value: unknown): boolean {
  return schema.safeParse(value).success;
}

function firstMessage(schema: z.ZodType, value: unknown): string | undefined {
  return schema.safeParse(value).error?.issues[0]?.message;
}

const HEX64 = '4bd1b3a0f0c2e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4';

describe('volumeName follows Docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+', () => {
  it.each([
    'pg_data',
    'shop_db.data',
    'grafana-storage.v2',
    'a1',
    'Z.',
    'x..y',
    HEX64,
    `v${'a'.repeat(254)}`,
  ])('accepts %s', (name) => {
    expect(accepts(volumeName, name)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['one character (Docker needs two)', 'a'],
    ['a leading dot', '.hidden'],
    ['a leading dash', '-data'],
    ['a leading underscore', '_data'],
    ['a space', 'my volume'],
    ['a slash', 'shop/db'],
    ['a colon', 'shop:db'],
    ['a NATS wildcard', 'db*'],
    ['non-ASCII', 'données'],
    ['more than 255 characters', `v${'a'.repeat(255)}`],
  ])('refuses %s, saying what the rule is', (_label, name) => {
    expect(accepts(volumeName, name)).toBe(false);
  });

  it('explains the rule in its message', () => {
    expect(firstMessage(volumeName, 'my volume')).toBe('a Docker volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+');
  });
});

describe('64-hex ids: containerId and snapshotId', () => {
  it.each([
    ['containerId', containerId],
    ['snapshotId', snapshotId],
  ])('%s takes exactly 64 lower-case hex digits', (_name, schema) => {
    expect(accepts(schema, HEX64)).toBe(true);
    expect(accepts(schema, HEX64.slice(1))).toBe(false);
    expect(accepts(schema, `${HEX64}0`)).toBe(false);
    expect(accepts(schema, HEX64.toUpperCase())).toBe(false);
    expect(accepts(schema, `${HEX64.slice(1)}g`)).toBe(false);
    expect(accepts(schema, HEX64.slice(0, 12))).toBe(false);
    expect(firstMessage(schema, 'abc')).toBe('64 lower-case hex digits');
  });
});

describe('names and ids', () => {
  it('hostId: printable ASCII without spaces, up to 128, never a service name', () => {
    expect(accepts(hostId, 'docker-prod-01.example.com')).toBe(true);
    expect(accepts(hostId, 'WZ7M:ABCD:1234')).toBe(true);
    expect(accepts(hostId, '')).toBe(false);
    expect(accepts(hostId, 'prod 01')).toBe(false);
    expect(accepts(hostId, 'prod-ü')).toBe(false);
    expect(accepts(hostId, 'h'.repeat(129))).toBe(false);
    expect(firstMessage(hostId, 'gateway')).toMatch(/reserved for a service/);
    expect(accepts(hostId, 'scheduler')).toBe(false);
  });

  it('workId: printable ASCII without spaces, up to 200', () => {
    expect(accepts(workId, 'bk-2025-03-14T03:00:00Z-shop_db.data')).toBe(true);
    expect(accepts(workId, 'a b')).toBe(false);
    expect(accepts(workId, 'w'.repeat(201))).toBe(false);
  });

  it('repositoryId: lower-case, digits, - and _, at most 63', () => {
    expect(accepts(repositoryId, 'default')).toBe(true);
    expect(accepts(repositoryId, 'offsite_b2-2')).toBe(true);
    expect(accepts(repositoryId, 'Offsite')).toBe(false);
    expect(accepts(repositoryId, '-x')).toBe(false);
    expect(accepts(repositoryId, 'r'.repeat(64))).toBe(false);
  });

  it('containerName: as docker ps shows it, without the leading slash', () => {
    expect(accepts(containerName, 'shop-db-1')).toBe(true);
    expect(accepts(containerName, '/shop-db-1')).toBe(false);
  });

  it('errorCode: an upper-case code from a code table', () => {
    expect(accepts(errorCode, 'VOLBACK_HOOK_FAILED')).toBe(true);
    expect(accepts(errorCode, 'hook failed')).toBe(false);
  });
});

describe('retention must keep something', () => {
  it.each([
    { keepLast: 1 },
    { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
    { keepHourly: 24 },
    { keepYearly: 3 },
    { keepWithin: '1y2m3d4h' },
    { keepWithin: '30d' },
    { keepTags: ['release'] },
    { keepLast: 0, keepDaily: 7 },
  ])('accepts %j', (policy) => {
    expect(accepts(retention, policy)).toBe(true);
  });

  it.each([
    ['no rule at all', {}],
    ['keepLast 0', { keepLast: 0 }],
    ['only zero counts', { keepDaily: 0, keepWeekly: 0 }],
    ['a zero duration', { keepWithin: '0d0h' }],
    ['no tags', { keepTags: [] }],
  ])('refuses %s, which would let forget delete every snapshot', (_label, policy) => {
    expect(firstMessage(retention, policy)).toBe('a retention policy must keep something');
  });

  it.each([
    ['a negative count', { keepLast: -1 }],
    ['a fractional count', { keepDaily: 1.5 }],
    ['a duration restic cannot read', { keepWithin: 'forever' }],
    ['a duration without unit', { keepWithin: '30' }],
    ['units out of order', { keepWithin: '3d1y' }],
  ])('refuses %s', (_label, policy) => {
    expect(accepts(retention, policy)).toBe(false);
  });
});

describe('schedule: cron of 5 or 6 fields, in a time zone', () => {
  it.each(['0 3 * * *', '*/15 * * * *', '0 30 2 * * *', '0 0 1 1 MON', '30  4 \t* * 1-5'])(
    'accepts %j',
    (cron) => {
      expect(accepts(schedule, { cron })).toBe(true);
    },
  );

  it.each([
    ['4 fields', '0 3 * *'],
    ['7 fields', '0 0 3 * * * 2025'],
    ['one word', '@daily'],
    ['empty', ''],
    ['leading space', ' 0 3 * * *'],
  ])('refuses %s', (_label, cron) => {
    expect(accepts(schedule, { cron })).toBe(false);
  });

  it('says what is expected', () => {
    expect(firstMessage(schedule, { cron: 'every night' })).toMatch(/5 or 6 fields/);
  });

  it('runs in UTC unless a time zone is given', () => {
    expect(schedule.parse({ cron: '0 3 * * *' })).toEqual({ cron: '0 3 * * *', timezone: 'UTC' });
    expect(schedule.parse({ cron: '0 3 * * *', timezone: 'Europe/Berlin' }).timezone).toBe('Europe/Berlin');
  });
});

describe('consistency modes', () => {
  it('none, pause: nothing more to say', () => {
    expect(consistency.parse({ mode: 'none' })).toEqual({ mode: 'none' });
    expect(consistency.parse({ mode: 'pause' })).toEqual({ mode: 'pause' });
  });

  it('stop: containers get 30 seconds to stop unless told otherwise, at most a day', () => {
    expect(consistency.parse({ mode: 'stop' })).toEqual({ mode: 'stop', timeoutSeconds: 30 });
    expect(consistency.parse({ mode: 'stop', timeoutSeconds: 120 })).toEqual({
      mode: 'stop',
      timeoutSeconds: 120,
    });
    expect(accepts(consistency, { mode: 'stop', timeoutSeconds: 0 })).toBe(false);
    expect(accepts(consistency, { mode: 'stop', timeoutSeconds: 86_401 })).toBe(false);
  });

  it('hooks: names the container to exec in, 300 seconds by default', () => {
    expect(
      consistency.parse({ mode: 'hooks', container: 'shop-db-1', pre: ['pg_dumpall -f /dump.sql'] }),
    ).toEqual({
      mode: 'hooks',
      container: 'shop-db-1',
      pre: ['pg_dumpall -f /dump.sql'],
      timeoutSeconds: 300,
    });
    expect(accepts(consistency, { mode: 'hooks' })).toBe(false);
    expect(accepts(consistency, { mode: 'hooks', container: 'db', pre: [''] })).toBe(false);
  });

  it('refuses a mode it does not know', () => {
    expect(accepts(consistency, { mode: 'snapshot' })).toBe(false);
    expect(accepts(consistency, {})).toBe(false);
  });
});

describe('restore targets', () => {
  it('a new volume, named by Docker rules', () => {
    expect(restoreTarget.parse({ kind: 'new-volume', volumeName: 'shop_db.restored' })).toEqual({
      kind: 'new-volume',
      volumeName: 'shop_db.restored',
    });
    expect(accepts(restoreTarget, { kind: 'new-volume', volumeName: '../etc' })).toBe(false);
    expect(accepts(restoreTarget, { kind: 'new-volume' })).toBe(false);
  });

  it('an existing volume, without stopping its containers unless asked', () => {
    expect(restoreTarget.parse({ kind: 'existing-volume', volumeName: 'shop_db.data' })).toEqual({
      kind: 'existing-volume',
      volumeName: 'shop_db.data',
      stopContainers: false,
    });
    expect(
      restoreTarget.parse({ kind: 'existing-volume', volumeName: 'shop_db.data', stopContainers: true }),
    ).toMatchObject({ stopContainers: true });
  });

  it('a tar stream', () => {
    expect(restoreTarget.parse({ kind: 'tar' })).toEqual({ kind: 'tar' });
  });

  it('nothing else (no host paths)', () => {
    expect(accepts(restoreTarget, { kind: 'host-path', path: '/srv' })).toBe(false);
  });
});

describe('policies', () => {
  it('have ids safe in a subject token and a path segment; label policy ids still fit', () => {
    for (const id of ['..', '.', '*', '>', 'a/b', 'a b', '.hidden', '-x', ''])
      expect(accepts(policyId, id), id).toBe(false);
    for (const id of ['default', 'gold', 'labels:6ed4d9d3-8ed4:shop_db.data', 'volume:h.example.com:db.data'])
      expect(accepts(policyId, id), id).toBe(true);
  });

  it('apply to the default or to one volume on one host', () => {
    expect(accepts(policyScope, { kind: 'default' })).toBe(true);
    expect(accepts(policyScope, { kind: 'volume', hostId: 'h.1', volumeName: 'db.data' })).toBe(true);
    expect(accepts(policyScope, { kind: 'volume', hostId: 'h.1' })).toBe(false);
    expect(accepts(policyScope, { kind: 'host', hostId: 'h.1' })).toBe(false);
  });

  it('need a schedule and a retention; everything else has a default', () => {
    expect(policySpec.parse({ schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 } })).toEqual({
      enabled: true,
      schedule: { cron: '0 3 * * *', timezone: 'UTC' },
      retention: { keepDaily: 7 },
      excludes: [],
      consistency: { mode: 'none' },
      repositoryId: 'default',
    });
    expect(accepts(policySpec, { retention: { keepDaily: 7 } })).toBe(false);
    expect(accepts(policySpec, { schedule: { cron: '0 3 * * *' } })).toBe(false);
  });

  it('take an RPO in whole positive seconds', () => {
    const base = { schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 } };
    expect(accepts(policySpec, { ...base, rpoSeconds: 172_800 })).toBe(true);
    expect(accepts(policySpec, { ...base, rpoSeconds: 0 })).toBe(false);
  });
});
