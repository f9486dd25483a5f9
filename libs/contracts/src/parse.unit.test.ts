import { describe, expect, it } from 'vitest';
import { BackupVolume } from './commands/agent.ts';
import { DefinePolicy } from './commands/scheduler.ts';
import { createCommand, createEvent } from './define.ts';
import { ContractErrorCode, ContractViolationError } from './errors.ts';
import { BackupCompleted } from './events/backup.ts';
import { ContainerObserved } from './events/container.ts';
import { VolumeDiscovered } from './events/volume.ts';
import { FIXTURE_IDS, sampleData } from './fixtures.ts';
import { parseMessage, type ParseResult } from './parse.ts';

const OPTIONS = { source: 'volback://agent/docker-prod-01.example.com' };

function rejection(result: ParseResult): ContractViolationError {
  if (result.ok) throw new Error(`expected a rejection, ${result.message.envelope.type} was accepted`);
  return result.error;
}

function thrown(action: () => unknown): ContractViolationError {
  try {
    action();
  } catch (error) {
    if (error instanceof ContractViolationError) return error;
    throw error;
  }
  throw new Error('expected a ContractViolationError, nothing was thrown');
}

/** A valid VolumeDiscovered envelope as a plain JSON value, to break on purpose. */
function validWire(): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(createEvent(VolumeDiscovered, sampleData(VolumeDiscovered), OPTIONS).envelope),
  );
}

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('parseMessage accepts', () => {
  it('raw bytes, a JSON string, or an already parsed value', () => {
    const wire = validWire();
    for (const input of [bytes(wire), JSON.stringify(wire), wire]) {
      const result = parseMessage(input);
      expect(result.ok).toBe(true);
    }
  });

  it('an envelope with CloudEvents extension attributes it does not know, dropping them', () => {
    // given
    const wire = { ...validWire(), traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    // when
    const result = parseMessage(bytes(wire));
    // then
    if (!result.ok) throw result.error;
    expect(result.message.envelope).not.toHaveProperty('traceparent');
  });

  it('data with fields a newer producer added, dropping them (adding an optional field is not breaking)', () => {
    const wire = validWire();
    const result = parseMessage(bytes({ ...wire, data: { ...(wire['data'] as object), addedLater: 1 } }));
    if (!result.ok) throw result.error;
    expect(result.message.envelope.data).not.toHaveProperty('addedLater');
  });
});

describe('parseMessage refuses bytes that are not JSON', () => {
  it.each([
    ['truncated JSON', new TextEncoder().encode('{"specversion":"1.0",')],
    ['plain text', new TextEncoder().encode('backup please')],
    ['an empty payload', new Uint8Array()],
    ['bytes that are not UTF-8', Uint8Array.of(0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d)],
  ])('%s → InvalidJson', (_label, payload) => {
    const error = rejection(parseMessage(payload));
    expect(error).toBeInstanceOf(ContractViolationError);
    expect(error.name).toBe('ContractViolationError');
    expect(error.code).toBe(ContractErrorCode.InvalidJson);
    expect(error.message).toMatch(/^not UTF-8 JSON: /);
    expect(error.cause).toBeDefined();
  });

  it('a JSON string that is not JSON → InvalidJson', () => {
    expect(rejection(parseMessage('{nope')).code).toBe(ContractErrorCode.InvalidJson);
  });
});

describe('parseMessage refuses a broken envelope, naming the attribute', () => {
  it.each([
    ['specversion', { specversion: '0.3' }],
    ['specversion', { specversion: undefined }],
    ['id', { id: '' }],
    ['source', { source: undefined }],
    ['type', { type: 'backup.completed' }],
    ['type', { type: 'io.volback.Backup.completed.v1' }],
    ['type', { type: 'io.volback.backup.completed' }],
    ['type', { type: 'io.volback.backup.completed.v0' }],
    ['time', { time: 'yesterday' }],
    ['time', { time: '2025-03-14 03:00:00' }],
    ['subject', { subject: '' }],
    ['datacontenttype', { datacontenttype: 'application/xml' }],
    ['causationid', { causationid: '' }],
    ['data', { data: undefined }],
  ])('%s: %j → InvalidEnvelope', (path, change) => {
    // given
    const wire = { ...validWire(), ...change };
    // when
    const error = rejection(parseMessage(bytes(wire)));
    // then
    expect(error.code).toBe(ContractErrorCode.InvalidEnvelope);
    expect(error.issues.map((i) => i.path)).toContain(path);
    expect(error.message).toContain(`${path}: `);
  });

  it('keeps the claimed type in the error when it could read one', () => {
    const error = rejection(parseMessage(bytes({ ...validWire(), time: 'yesterday' })));
    expect(error.messageType).toBe(VolumeDiscovered.type);
    expect(error.message).toMatch(/^io\.volback\.volume\.discovered\.v1: time: /);
  });

  it.each([
    ['an array', []],
    ['a number', 42],
    ['null', null],
    ['a string', 'io.volback.backup.completed.v1'],
  ])('%s instead of an object → InvalidEnvelope', (_label, value) => {
    const error = rejection(parseMessage(bytes(value)));
    expect(error.code).toBe(ContractErrorCode.InvalidEnvelope);
    expect(error.messageType).toBeUndefined();
  });
});

describe('parseMessage refuses a type it has no schema for', () => {
  it('an unknown type → UnknownType, so a consumer can skip it', () => {
    const error = rejection(parseMessage(bytes({ ...validWire(), type: 'io.volback.volume.exploded.v1' })));
    expect(error.code).toBe(ContractErrorCode.UnknownType);
    expect(error.messageType).toBe('io.volback.volume.exploded.v1');
    expect(error.issues).toEqual([
      { path: 'type', message: expect.stringMatching(/unknown type or newer version/) },
    ]);
  });

  it('a newer version .v2 of a known type → UnknownType, even when its data would fit v1', () => {
    const error = rejection(parseMessage(bytes({ ...validWire(), type: 'io.volback.volume.discovered.v2' })));
    expect(error.code).toBe(ContractErrorCode.UnknownType);
    expect(error.message).toContain('io.volback.volume.discovered.v2');
  });
});

describe('parseMessage refuses bad data, naming nested fields', () => {
  it('inside an object: data.stats.bytesRead', () => {
    // given
    const wire = JSON.parse(
      JSON.stringify(createEvent(BackupCompleted, sampleData(BackupCompleted), OPTIONS).envelope),
    ) as { data: { stats: Record<string, unknown> } };
    wire.data.stats['bytesRead'] = -1;
    // when
    const error = rejection(parseMessage(bytes(wire)));
    // then
    expect(error.code).toBe(ContractErrorCode.InvalidData);
    expect(error.issues.map((i) => i.path)).toEqual(['data.stats.bytesRead']);
  });

  it('inside an array: data.mounts.0.volumeName', () => {
    const data = sampleData(ContainerObserved, {
      mounts: [{ type: 'volume', volumeName: '.hidden', destination: '/data', readOnly: false }],
    });
    const error = thrown(() => createEvent(ContainerObserved, data, OPTIONS));
    expect(error.issues.map((i) => i.path)).toEqual(['data.mounts.0.volumeName']);
    expect(error.message).toContain('data.mounts.0.volumeName: a Docker volume name');
  });

  it('a retention that keeps nothing: data.policy.retention', () => {
    const data = sampleData(DefinePolicy);
    const error = thrown(() =>
      createCommand(
        DefinePolicy,
        { ...data, policy: { ...data.policy, retention: { keepLast: 0 } } },
        OPTIONS,
      ),
    );
    expect(error.message).toBe(
      'io.volback.cmd.define-policy.v1: data.policy.retention: a retention policy must keep something',
    );
  });

  it('every problem at once, not only the first', () => {
    const error = thrown(() =>
      createCommand(
        BackupVolume,
        { backupId: '', hostId: 'h', volumeName: 'x', trigger: 'cron' } as never,
        OPTIONS,
      ),
    );
    expect(new Set(error.issues.map((i) => i.path))).toEqual(
      new Set(['data.backupId', 'data.trigger', 'data.volumeName']),
    );
  });
});

describe('createEvent and createCommand', () => {
  it('throw ContractViolationError on bad data and return nothing', () => {
    // given
    let sent: unknown;
    // when
    const error = thrown(() => {
      sent = createEvent(
        VolumeDiscovered,
        { ...sampleData(VolumeDiscovered), volumeName: 'my volume' },
        OPTIONS,
      );
    });
    // then
    expect(sent).toBeUndefined();
    expect(error.code).toBe(ContractErrorCode.InvalidData);
    expect(error.message).toContain('data.volumeName');
  });

  it('refuse envelope options every receiver would reject', () => {
    const data = sampleData(VolumeDiscovered);
    expect(thrown(() => createEvent(VolumeDiscovered, data, { source: '' })).issues[0]?.path).toBe('source');
    expect(thrown(() => createEvent(VolumeDiscovered, data, { ...OPTIONS, id: '' })).code).toBe(
      ContractErrorCode.InvalidEnvelope,
    );
    expect(
      thrown(() => createEvent(VolumeDiscovered, data, { ...OPTIONS, time: new Date('nope') })).issues,
    ).toEqual([{ path: 'time', message: expect.any(String) }]);
  });

  it('refuse a host id that is a service name, before it could reach that service', () => {
    const error = thrown(() =>
      createCommand(BackupVolume, sampleData(BackupVolume, { hostId: 'gateway' }), OPTIONS),
    );
    expect(error.issues[0]?.path).toBe('data.hostId');
    expect(error.message).toContain('reserved');
  });

  it('give each message a fresh UUID unless an id is passed, which makes republishing idempotent', () => {
    const data = sampleData(BackupVolume);
    const a = createCommand(BackupVolume, data, OPTIONS).envelope.id;
    const b = createCommand(BackupVolume, data, OPTIONS).envelope.id;
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(createCommand(BackupVolume, data, { ...OPTIONS, id: 'bk-1/attempt-1' }).envelope.id).toBe(
      'bk-1/attempt-1',
    );
  });

  it('leave out causation and correlation ids that are not given', () => {
    const { envelope } = createEvent(VolumeDiscovered, sampleData(VolumeDiscovered), OPTIONS);
    expect(envelope).not.toHaveProperty('causationid');
    expect(envelope).not.toHaveProperty('correlationid');
    expect(envelope.source).toBe(OPTIONS.source);
    expect(Date.parse(envelope.time)).not.toBeNaN();
  });

  it('return data as the schema output, typed', () => {
    const { envelope } = createCommand(BackupVolume, sampleData(BackupVolume), OPTIONS);
    const attempt: number = envelope.data.attempt;
    expect(attempt).toBe(1);
    expect(envelope.data.volumeName).toBe(FIXTURE_IDS.volumeName);
  });
});
