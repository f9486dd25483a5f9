// Every event and command, checked the same way: it has a fixture, it survives the wire, its
// subject and type follow the naming rules, and bad data is refused with the field named.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMessage, type CommandDefinition, type MessageDefinition } from './define.ts';
import { ContractErrorCode, ContractViolationError } from './errors.ts';
import { FIXTURE_IDS, hasSampleData, MESSAGE_FIXTURES, sampleData } from './fixtures.ts';
import { encodeEnvelope, parseMessage, type ParseResult } from './parse.ts';
import { RestoreSnapshot } from './commands/agent.ts';
import { COMMANDS, EVENTS, MESSAGES } from './registry.ts';
import type { Aggregate } from './streams.ts';
import { decodeSubjectToken, encodeSubjectToken } from './subject-token.ts';

const OPTIONS = {
  source: 'volback://test/contracts',
  id: '0b6f3c1e-2d4a-4f5b-8c7d-9e0f1a2b3c4d',
  time: new Date('2025-03-14T03:00:00.000Z'),
  causationid: 'cmd-0001',
  correlationid: 'bk-0001',
};

/** Which data fields name an aggregate instance, in subject order. */
const AGGREGATE_ID_FIELDS: Record<Aggregate, readonly string[]> = {
  host: ['hostId'],
  volume: ['hostId', 'volumeName'],
  container: ['hostId', 'containerId'],
  policy: ['policyId'],
  backup: ['hostId', 'backupId'],
  restore: ['hostId', 'restoreId'],
  snapshot: ['snapshotId'],
  repository: ['repositoryId'],
  message: ['consumer'],
  notification: ['channel', 'eventId'],
  drill: ['hostId', 'drillId'],
};

/** Who consumes each command. */
const COMMAND_TARGETS: Record<string, 'agent' | 'gateway' | 'scheduler'> = {
  'backup-volume': 'agent',
  'restore-snapshot': 'agent',
  'backup-set': 'agent',
  'restore-set': 'agent',
  'restore-drill': 'agent',
  'request-backup': 'scheduler',
  'define-policy': 'scheduler',
  'remove-policy': 'scheduler',
  'send-test-notification': 'scheduler',
  'forget-snapshots': 'gateway',
  'prune-repository': 'gateway',
  'check-repository': 'gateway',
  'import-snapshots': 'gateway',
};

function kebab(pascal: string): string {
  return pascal.replace(/(?<!^)([A-Z])/g, '-$1').toLowerCase();
}

function fields(def: MessageDefinition): Record<string, z.ZodType> {
  if (!(def.schema instanceof z.ZodObject)) throw new Error(`${def.type}: data is not an object schema`);
  return def.schema.shape as Record<string, z.ZodType>;
}

/** Top-level data fields a sender must always set (no default, not optional). */
function requiredFields(def: MessageDefinition): string[] {
  return Object.entries(fields(def))
    .filter(([, schema]) => !schema.safeParse(undefined).success)
    .map(([key]) => key);
}

/** A value of another JSON type than `value`. */
function wrongTypeFor(value: unknown): unknown {
  if (typeof value === 'string') return 42;
  if (typeof value === 'number') return 'forty-two';
  if (typeof value === 'boolean') return 'yes';
  return 'not an object or array';
}

function fixture(def: MessageDefinition): Record<string, unknown> {
  return sampleData(def) as Record<string, unknown>;
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, nothing was thrown');
}

function rejection(result: ParseResult): ContractViolationError {
  if (result.ok) throw new Error(`expected a rejection, ${result.message.envelope.type} was accepted`);
  return result.error;
}

/** A valid message's wire bytes with `data` replaced, as a broken or hostile sender would publish. */
function wireWithData(def: MessageDefinition, data: unknown): Uint8Array {
  const { envelope } = createMessage(def, sampleData(def), OPTIONS);
  return encodeEnvelope({ ...envelope, data });
}

function expectInvalidData(error: unknown, def: MessageDefinition, path: string): void {
  expect(error).toBeInstanceOf(ContractViolationError);
  const violation = error as ContractViolationError;
  expect(violation.code).toBe(ContractErrorCode.InvalidData);
  expect(violation.messageType).toBe(def.type);
  expect(violation.issues.map((i) => i.path)).toContain(path);
  expect(violation.message).toContain(`${def.type}: `);
  expect(violation.message).toContain(`${path}: `);
}

describe('the registry', () => {
  it('has a fixture for every message, so a new message cannot ship without one', () => {
    // given every registered message
    // when looking each one up in the fixtures
    const missing = MESSAGES.filter((def) => !hasSampleData(def)).map((def) => def.type);
    // then none is missing
    expect(missing, `add data for these to libs/contracts/src/fixtures.ts`).toEqual([]);
  });

  it('has no fixture for a type it does not know', () => {
    const known = new Set(MESSAGES.map((def) => def.type));
    expect(Object.keys(MESSAGE_FIXTURES).filter((type) => !known.has(type))).toEqual([]);
  });

  it('holds every event and command once, each type unique', () => {
    expect(MESSAGES).toHaveLength(EVENTS.length + COMMANDS.length);
    expect(new Set(MESSAGES.map((def) => def.type)).size).toBe(MESSAGES.length);
    expect(new Set(MESSAGES.map((def) => def.name)).size).toBe(MESSAGES.length);
  });

  it('uses fixtures whose volume and host names need the subject encoding', () => {
    expect(FIXTURE_IDS.volumeName).toContain('.');
    expect(FIXTURE_IDS.hostId).toContain('.');
  });

  it('makes sampleData a fresh copy with overrides on top', () => {
    const [def] = COMMANDS;
    const a = sampleData(def, { volumeName: 'other.volume' });
    (a.excludes ??= []).push('mutated');
    expect(a.volumeName).toBe('other.volume');
    expect(sampleData(def).excludes).toBeUndefined();
  });
});

describe.each(EVENTS.map((def) => ({ type: def.type, def })))('event $type', ({ def }) => {
  it('is named io.volback.<aggregate>.<what>.v1, <what> the kebab-case tail of its name', () => {
    const [, , aggregate, what, version] = def.type.split('.');
    expect(def.type).toMatch(/^io\.volback\.[a-z]+\.[a-z][a-z0-9-]*\.v1$/);
    expect(aggregate).toBe(def.aggregate);
    expect(version).toBe('v1');
    expect(def.version).toBe(1);
    expect(kebab(def.name).endsWith(what ?? '?')).toBe(true);
    expect(def.description.length).toBeGreaterThan(10);
  });

  it('goes on volback.evt.<aggregate>.<encoded ids>, ids taken from its data', () => {
    // given
    const data = fixture(def);
    // when
    const { subject, envelope } = createMessage(def, data, OPTIONS);
    // then
    const ids = AGGREGATE_ID_FIELDS[def.aggregate].map((key) => String(data[key]));
    expect(subject).toBe(['volback', 'evt', def.aggregate, ...ids.map(encodeSubjectToken)].join('.'));
    expect(subject.split('.').slice(3).map(decodeSubjectToken)).toEqual(ids);
    expect(envelope.subject).toBe(ids.join('/'));
  });
});

describe.each(COMMANDS.map((def) => ({ type: def.type, def })))('command $type', ({ def }) => {
  it('is named io.volback.cmd.<name>.v<version>, <name> the kebab-case of its imperative name', () => {
    expect(def.type).toBe(`io.volback.cmd.${def.commandName}.v${def.version}`);
    expect(def.commandName).toBe(kebab(def.name));
    // Only a breaking change makes a new version (README, Migrations).
    expect(def.version).toBe(def === RestoreSnapshot ? 2 : 1);
  });

  it('goes on volback.cmd.host.<host>.<name> or volback.cmd.<service>.<name>, to whoever runs it', () => {
    // given
    const data = fixture(def);
    // when
    const { subject, envelope } = createMessage(def, data, OPTIONS);
    // then
    const target = COMMAND_TARGETS[def.commandName];
    const hostId = String(data['hostId']);
    const tokens = target === 'agent' ? `host.${encodeSubjectToken(hostId)}` : target;
    expect(subject).toBe(`volback.cmd.${tokens}.${def.commandName}`);
    expect(envelope.subject).toBe(target === 'agent' ? `host/${hostId}` : target);
  });
});

describe.each(MESSAGES.map((def) => ({ type: def.type, def })))('$type on the wire', ({ def }) => {
  it('round-trips: create, encode to JSON bytes, parse gives the same envelope with defaults applied', () => {
    // given
    const data = fixture(def);
    const sent = createMessage(def, data, OPTIONS);
    // when
    const result = parseMessage(encodeEnvelope(sent.envelope));
    // then
    if (!result.ok) throw result.error;
    expect(result.message.definition).toBe(def);
    expect(result.message.envelope).toEqual(sent.envelope);
    expect(result.message.envelope.data).toEqual(def.schema.parse(data));
    expect(result.message.envelope.data).toMatchObject(data);
    expect(result.message.envelope).toMatchObject({
      specversion: '1.0',
      type: def.type,
      datacontenttype: 'application/json',
      ...OPTIONS,
      time: '2025-03-14T03:00:00.000Z',
    });
  });

  it('refuses data without each required field, naming it (sending and receiving)', () => {
    const required = requiredFields(def);
    expect(required.length).toBeGreaterThan(0);
    for (const key of required) {
      // given
      const { [key]: _removed, ...data } = fixture(def);
      // when / then
      expectInvalidData(
        thrown(() => createMessage(def, data, OPTIONS)),
        def,
        `data.${key}`,
      );
      expectInvalidData(rejection(parseMessage(wireWithData(def, data))), def, `data.${key}`);
    }
  });

  it('refuses a field of the wrong type, naming it (sending and receiving)', () => {
    for (const [key, value] of Object.entries(fixture(def))) {
      // given
      const data = { ...fixture(def), [key]: wrongTypeFor(value) };
      // when / then
      expectInvalidData(
        thrown(() => createMessage(def, data, OPTIONS)),
        def,
        `data.${key}`,
      );
      expectInvalidData(rejection(parseMessage(wireWithData(def, data))), def, `data.${key}`);
    }
  });

  it('refuses data that is not an object', () => {
    for (const data of [null, 'text', 7, []]) {
      const error = rejection(parseMessage(wireWithData(def, data)));
      expect(error.code).toBe(ContractErrorCode.InvalidData);
      expect(error.issues[0]?.path).toBe('data');
    }
  });
});

describe('defaults a receiver can rely on', () => {
  function received(def: MessageDefinition, data: unknown): Record<string, unknown> {
    const result = parseMessage(encodeEnvelope(createMessage(def, data, OPTIONS).envelope));
    if (!result.ok) throw result.error;
    return result.message.envelope.data as Record<string, unknown>;
  }
  const command = (name: string): CommandDefinition => {
    const def = COMMANDS.find((c) => c.name === name);
    if (!def) throw new Error(name);
    return def;
  };

  it('BackupVolume: first attempt, default repository, no quiescing, nothing excluded, method auto', () => {
    const def = command('BackupVolume');
    expect(
      received(def, { backupId: 'bk-1', hostId: 'h.1', volumeName: 'db.data', trigger: 'manual' }),
    ).toEqual({
      backupId: 'bk-1',
      hostId: 'h.1',
      volumeName: 'db.data',
      trigger: 'manual',
      attempt: 1,
      repositoryId: 'default',
      consistency: { mode: 'none' },
      excludes: [],
      tags: [],
      method: 'auto',
    });
  });

  it('DefinePolicy: enabled, UTC, default repository, and the mode defaults of its consistency', () => {
    const def = command('DefinePolicy');
    const data = received(def, {
      policyId: 'p1',
      scope: { kind: 'default' },
      policy: { schedule: { cron: '0 3 * * *' }, retention: { keepDaily: 7 }, consistency: { mode: 'stop' } },
      requestedBy: 'ops',
    });
    expect(data['policy']).toEqual({
      enabled: true,
      schedule: { cron: '0 3 * * *', timezone: 'UTC' },
      retention: { keepDaily: 7 },
      excludes: [],
      consistency: { mode: 'stop', timeoutSeconds: 30 },
      repositoryId: 'default',
    });
  });

  it('RestoreSnapshot into an existing volume does not stop containers unless asked', () => {
    const data = received(command('RestoreSnapshot'), sampleData(command('RestoreSnapshot')));
    expect(data['target']).toEqual({
      kind: 'existing-volume',
      volumeName: FIXTURE_IDS.volumeName,
      stopContainers: false,
    });
  });
});
