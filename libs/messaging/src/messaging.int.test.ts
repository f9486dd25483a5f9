import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import {
  BackupRequested,
  BackupVolume,
  commandSubjectFilter,
  createCommand,
  createEvent,
  eventSubject,
  GRANTS_BUCKET,
  MessageRejected,
  parseMessage,
  STREAMS,
  type OutgoingMessage,
} from '@volback/contracts';
import { startNatsServer, waitUntil, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyConflictError,
  connectNats,
  drainNats,
  ensureStreams,
  MessagePublisher,
  RestoreGrants,
  MessagingErrorCode,
  natsHealthChecks,
  startDurableConsumer,
  type ConsumedMessage,
  type NatsConnection,
} from './index.ts';

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: MessagePublisher;
let counter = 0;

// Each file runs its own server: the stream names are fixed, and files run in parallel.
beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats({ servers: server.url, name: 'messaging-test', connectTimeoutMs: 10_000 });
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  publisher = new MessagePublisher(nc);
});
afterAll(async () => {
  await drainNats(nc);
  await server.destroy();
});

function backupRequested(backupId = `bk-${++counter}`, id?: string): OutgoingMessage {
  return createEvent(
    BackupRequested,
    {
      backupId,
      hostId: 'host-1',
      volumeName: 'app.data',
      trigger: 'manual',
      requestedAt: new Date().toISOString(),
    },
    { source: 'volback://test', ...(id ? { id } : {}) },
  );
}

async function subjectCount(subject: string): Promise<number> {
  const info = await jsm.streams.info(STREAMS.events.name, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

async function lastSeq(): Promise<number> {
  return (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
}

describe('streams', () => {
  it('creates the events stream (file, limits) and the commands stream (work queue), idempotently', async () => {
    await Promise.all([ensureStreams(jsm), ensureStreams(jsm)]);
    const events = await jsm.streams.info(STREAMS.events.name);
    const commands = await jsm.streams.info(STREAMS.commands.name);
    expect(events.config).toMatchObject({
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      subjects: ['volback.evt.>'],
      allow_atomic: true,
    });
    expect(commands.config).toMatchObject({
      storage: StorageType.File,
      retention: RetentionPolicy.Workqueue,
      subjects: ['volback.cmd.>'],
    });
  });
});

describe('publishing events', () => {
  it('stores a re-published event once (Nats-Msg-Id = event id)', async () => {
    const event = backupRequested();
    const first = await publisher.publish(event);
    const again = await publisher.publish(event);
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ duplicate: true, seq: first.seq });
    expect(await subjectCount(event.subject)).toBe(1);
  });

  it('puts the event on its aggregate subject, host first, with the ids encoded', () => {
    expect(backupRequested('bk.with.dots').subject).toBe('volback.evt.backup.host-1.bk~2Ewith~2Edots');
  });

  it('appends with an expected last subject sequence and reports a conflict as a typed error', async () => {
    const backupId = `bk-occ-${++counter}`;
    const first = await publisher.publish(backupRequested(backupId), { expectedLastSubjectSequence: 0 });
    const second = await publisher.publish(backupRequested(backupId), {
      expectedLastSubjectSequence: first.seq,
    });
    const stale = publisher.publish(backupRequested(backupId), { expectedLastSubjectSequence: first.seq });
    await expect(stale).rejects.toBeInstanceOf(ConcurrencyConflictError);
    await expect(stale).rejects.toMatchObject({ code: MessagingErrorCode.ConcurrencyConflict });
    expect(await subjectCount(eventSubject('backup', 'host-1', backupId))).toBe(2);
    expect(second.seq).toBeGreaterThan(first.seq);
  });

  it('appends the events of one decision atomically, and a retried batch stores nothing', async () => {
    const batch = [backupRequested(), backupRequested(), backupRequested()].map((message) => ({ message }));
    const before = await lastSeq();
    const stored = await publisher.publishAtomic(batch);
    expect(stored).toMatchObject({ duplicate: false, seq: before + 3 });
    const retried = await publisher.publishAtomic(batch);
    expect(retried.duplicate).toBe(true);
    expect(await lastSeq()).toBe(before + 3);
  });

  it('stores nothing of a batch whose expectation fails', async () => {
    const backupId = `bk-batch-${++counter}`;
    await publisher.publish(backupRequested(backupId));
    const before = await lastSeq();
    const batch = [
      { message: backupRequested() },
      { message: backupRequested(backupId), expectedLastSubjectSequence: 1 },
      { message: backupRequested() },
    ];
    await expect(publisher.publishAtomic(batch)).rejects.toBeInstanceOf(ConcurrencyConflictError);
    expect(await lastSeq()).toBe(before);
    await expect(publisher.publishAtomic([])).rejects.toMatchObject({
      code: MessagingErrorCode.InvalidBatch,
    });
  });
});

describe('durable consumers', () => {
  it('rejects and reports a malformed message, acknowledges it, and processes the next good one', async () => {
    const durable = `reject-${++counter}`;
    const subject = eventSubject('backup', 'host-1', `bad-${counter}`);
    const handled: ConsumedMessage[] = [];
    const consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.events.name,
      durable,
      filterSubjects: [subject],
      publisher,
      source: 'volback://test',
      handler: async (m) => void handled.push(m),
    });
    const js = (await import('@nats-io/jetstream')).jetstream(nc);
    await js.publish(subject, new TextEncoder().encode('{not json'));
    const badData = backupRequested(`bad-${counter}`);
    (badData.envelope.data as Record<string, unknown>)['volumeName'] = '../etc';
    await js.publish(subject, new TextEncoder().encode(JSON.stringify(badData.envelope)));
    const good = backupRequested(`bad-${counter}`);
    await js.publish(subject, new TextEncoder().encode(JSON.stringify(good.envelope)));

    await waitUntil('the good message', async () => handled.length === 1);
    expect(handled[0]!.envelope.id).toBe(good.envelope.id);

    const reports = jsm.streams.getMessage.bind(jsm.streams);
    const rejectedSubject = eventSubject('message', durable);
    await waitUntil('two rejection reports', async () => (await subjectCount(rejectedSubject)) === 2);
    const info = await jsm.consumers.info(STREAMS.events.name, durable);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    const last = await reports(STREAMS.events.name, { last_by_subj: rejectedSubject });
    const parsed = parseMessage(last!.data);
    expect(parsed.ok && parsed.message.definition).toBe(MessageRejected);
    if (parsed.ok) {
      expect(parsed.message.envelope.data).toMatchObject({
        consumer: durable,
        code: 'VOLBACK_CONTRACT_INVALID_DATA',
        issues: [expect.objectContaining({ path: 'data.volumeName' })],
      });
    }
    await consumer.stop();
  });

  it('a long-running handler (longer than a pull lives) finishes, is acked once, and keeps the message meanwhile', async () => {
    const durable = `long-${++counter}`;
    const subject = eventSubject('backup', 'host-1', `long-${counter}`);
    const handled: string[] = [];
    const consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.events.name,
      durable,
      filterSubjects: [subject],
      publisher,
      source: 'volback://test',
      longRunning: true,
      ackWaitMs: 3_000,
      async handler(m) {
        // Longer than the ack wait and than an open pull's missed-heartbeat limit.
        for (let i = 0; i < 8; i++) {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          m.working();
        }
        handled.push(m.envelope.id);
      },
    });
    const message = backupRequested(`long-${counter}`);
    await publisher.publish(message);
    await waitUntil('the long handler', async () => handled.length === 1, 30_000);
    // Acknowledged: nothing more can be delivered, and nothing was delivered twice.
    await waitUntil(
      'the ack',
      async () => (await jsm.consumers.info(STREAMS.events.name, durable)).num_ack_pending === 0,
    );
    expect(handled).toEqual([message.envelope.id]);
    const info = await jsm.consumers.info(STREAMS.events.name, durable);
    expect(info.num_redelivered).toBe(0);
    await consumer.stop();
  }, 40_000);

  it('skips an unknown or newer event type when asked to, without a report', async () => {
    const durable = `skip-${++counter}`;
    const subject = eventSubject('backup', 'host-1', `new-${counter}`);
    const handled: string[] = [];
    const consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.events.name,
      durable,
      filterSubjects: [subject],
      publisher,
      source: 'volback://test',
      unknownTypes: 'skip',
      handler: async (m) => void handled.push(m.envelope.id),
    });
    const newer = backupRequested(`new-${counter}`);
    const v2 = { ...newer.envelope, id: `${newer.envelope.id}-v2`, type: 'io.volback.backup.requested.v2' };
    const js = (await import('@nats-io/jetstream')).jetstream(nc);
    await js.publish(subject, new TextEncoder().encode(JSON.stringify(v2)));
    await publisher.publish({ ...newer, subject });
    await waitUntil('the known event', async () => handled.length === 1);
    expect(handled).toEqual([newer.envelope.id]);
    expect(await subjectCount(eventSubject('message', durable))).toBe(0);
    await consumer.stop();
  });

  it('redelivers a message whose handler failed, then acknowledges it', async () => {
    const durable = `retry-${++counter}`;
    const event = backupRequested();
    let attempts = 0;
    const consumer = await startDurableConsumer({
      nc,
      stream: STREAMS.events.name,
      durable,
      filterSubjects: [event.subject],
      publisher,
      source: 'volback://test',
      async handler(m) {
        attempts = m.deliveryCount;
        if (m.deliveryCount < 2) throw new Error('transient');
      },
    });
    await publisher.publish(event);
    await waitUntil('the second delivery', async () => attempts === 2);
    await waitUntil(
      'the ack',
      async () => (await jsm.consumers.info(STREAMS.events.name, durable)).num_ack_pending === 0,
    );
    await consumer.stop();
  });

  it('hands each command of the work queue to exactly one of two competing consumers', async () => {
    const hostId = `host-wq-${++counter}`;
    const seen: string[] = [];
    const options = {
      nc,
      stream: STREAMS.commands.name,
      durable: `agent-${hostId}`,
      filterSubjects: [commandSubjectFilter({ kind: 'host', hostId })],
      publisher,
      source: 'volback://test',
      accepts: (def: { type: string }) => def.type === BackupVolume.type,
      handler: async (m: ConsumedMessage) => void seen.push(m.envelope.id),
    };
    const a = await startDurableConsumer(options);
    const b = await startDurableConsumer(options);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const cmd = createCommand(
        BackupVolume,
        { backupId: `bk-wq-${i}`, hostId, volumeName: 'db', trigger: 'manual' },
        { source: 'volback://test' },
      );
      ids.push(cmd.envelope.id);
      await publisher.publish(cmd);
    }
    await waitUntil('20 commands', async () => seen.length >= 20);
    // The work queue drops a command once it is acknowledged: when none is left, none can come again.
    const left = async () =>
      (await jsm.streams.info(STREAMS.commands.name, { subjects_filter: options.filterSubjects[0] })).state
        .num_subjects ?? 0;
    await waitUntil('every command acknowledged', async () => (await left()) === 0);
    expect([...seen].sort()).toEqual([...ids].sort());
    await a.stop();
    await b.stop();
    expect(await left()).toBe(0);
  });
});

describe('a durable consumer across process restarts', () => {
  const worker = new URL('./consumer-restart.worker.ts', import.meta.url).pathname;

  function startWorker(durable: string, outFile: string): Promise<ChildProcess> {
    const child = fork(worker, [server.url, durable, outFile, '5'], { stdio: 'inherit' });
    return new Promise((resolve, reject) => {
      child.once('message', () => resolve(child));
      child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)));
    });
  }

  function exited(child: ChildProcess): Promise<void> {
    return new Promise((resolve) =>
      child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
    );
  }

  async function runScenario(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const durable = `restart-${signal.toLowerCase()}-${++counter}`;
    const outFile = join(mkdtempSync(join(tmpdir(), 'volback-worker-')), 'handled.log');
    const published: string[] = [];
    const publishSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const event = backupRequested(`bk-${durable}-${published.length}`);
        published.push(event.envelope.id);
        await publisher.publish(event);
      }
    };
    // The worker sees every backup event of this server; only this scenario's count.
    const handled = () =>
      (existsSync(outFile) ? readFileSync(outFile, 'utf8').trim().split('\n').filter(Boolean) : [])
        .map((line) => line.split(' ')[1]!)
        .filter((id) => published.includes(id));

    await publishSome(50);
    let child = await startWorker(durable, outFile);
    await waitUntil('some messages handled', async () => handled().length >= 10);
    child.kill(signal);
    await exited(child);
    await publishSome(50); // published while no consumer runs
    child = await startWorker(durable, outFile);
    await waitUntil('every message handled', async () => handled().length >= 100, 30_000);
    // Every message delivered and acknowledged: none can be handled again.
    await waitUntil('every message acknowledged', async () => {
      const info = await jsm.consumers.info(STREAMS.events.name, durable);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
    child.kill('SIGTERM');
    await exited(child);

    const ours = handled();
    expect(new Set(ours).size).toBe(100);
    expect(ours).toHaveLength(100);
  }

  it('resumes after a graceful stop without losing or repeating a message', () => runScenario('SIGTERM'));
  it('resumes after kill -9 without losing a message; the checkpoint absorbs the redelivery', () =>
    runScenario('SIGKILL'));
});

describe('readiness checks', () => {
  it('report NATS connected and the streams present, and say what is missing', async () => {
    const checks = natsHealthChecks(nc);
    expect(await Promise.all(checks.map((c) => c.check()))).toEqual([
      expect.objectContaining({ ok: true }),
      { ok: true },
    ]);

    const bare = await startNatsServer();
    const other = await connectNats({ servers: bare.url, name: 'bare', connectTimeoutMs: 5_000 });
    const [connected, streams] = await Promise.all(natsHealthChecks(other).map((c) => c.check()));
    expect(connected!.ok).toBe(true);
    expect(streams).toEqual({
      ok: false,
      detail: 'missing stream(s): VOLBACK_EVENTS, VOLBACK_COMMANDS, VOLBACK_HEARTBEATS',
    });
    await other.close();
    expect((await natsHealthChecks(other)[0]!.check()).ok).toBe(false);
    await bare.destroy();
  });

  it('gives up connecting after the timeout with a typed error', async () => {
    await expect(
      connectNats({ servers: 'nats://127.0.0.1:1', name: 'nowhere', connectTimeoutMs: 1_000 }),
    ).rejects.toMatchObject({ code: MessagingErrorCode.ConnectFailed });
  });
});

describe('restore grants (KV VOLBACK_GRANTS)', () => {
  it('reads no grant before the bucket exists, then what the catalog put, and nothing malformed', async () => {
    const reader = new RestoreGrants(nc);
    expect(await reader.get('restore-before')).toBeUndefined();
    const grant = { hostId: 'host-1', snapshotId: 'a'.repeat(64), expiresAt: new Date().toISOString() };
    await new RestoreGrants(nc).put('restore.2025-03-14T03:00:00Z', grant);
    expect(await reader.get('restore.2025-03-14T03:00:00Z')).toEqual(grant);
    expect(await reader.get('restore-other')).toBeUndefined();
    await expect(new RestoreGrants(nc).put('restore-bad', { ...grant, hostId: '' })).rejects.toThrow();
    // The bucket deleted under a writer: the next grant creates it again.
    const writer = new RestoreGrants(nc);
    await writer.put('restore-1', grant);
    await jsm.streams.delete(`KV_${GRANTS_BUCKET}`);
    await writer.put('restore-2', grant);
    expect(await new RestoreGrants(nc).get('restore-2')).toEqual(grant);
  });
});
