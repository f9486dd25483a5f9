import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { startCatalogService, startService, type ServiceProcess } from '../stack.ts';
import { SchedulingMonitor, type SchedulingReport } from './scheduling-monitor.ts';
import { startSimulatedAgent, type SimulatedAgent } from './simulated-agent.ts';

/** The shape of a simulated fleet and of its scheduling. */
export interface FleetRunOptions {
  readonly hosts: number;
  readonly volumesPerHost: number;
  /** Every volume's schedule: a cron with a fixed period (`*\/2 * * * *`, or 6 fields with seconds). */
  readonly cron: string;
  /** The cron's period in ms: the slots the run expects are its multiples. */
  readonly periodMs: number;
  /** The first slot to measure (a slot of `cron`); the first multiple of `periodMs` after the start if absent. */
  readonly firstSlotAt?: number;
  /** How many slots of every volume to wait for (the run ends early once they are all backed up). */
  readonly slots: number;
  readonly maxConcurrent: number;
  readonly maxConcurrentPerHost: number;
  readonly heartbeatSeconds?: number;
  /** Arguments for the scheduler's Node (e.g. `--cpu-prof`). */
  readonly schedulerNodeOptions?: string;
  /** Progress lines (stderr in the bench). */
  readonly progress?: (line: string) => void;
  /** Longest run, from the start of the wait for the slots: the figures then say what got done. */
  readonly maxSeconds?: number;
  /** Longest wait after the last slot's period for its backups to complete (default 60 s). */
  readonly settleMs?: number;
  /** Keep the run's directory (logs, repository). */
  readonly keep?: boolean;
}

/** What a run measured. */
export interface FleetRunReport extends SchedulingReport {
  readonly hosts: number;
  readonly volumes: number;
  /** Slots every volume was expected to be backed up for, and those never requested. */
  readonly slotsExpected: number;
  readonly slotsMissed: number;
  /** Volume slots whose backup completed. */
  readonly slotsCompleted: number;
  /** Fewest completed slots of one volume (0: a volume starved while others were backed up). */
  readonly fewestCompletedOfAVolume: number;
  /** Events the catalog applied while the slots ran, per second; and its largest lag behind the log. */
  readonly catalogEventsPerSecond: number;
  readonly catalogMaxLag: number;
  readonly seconds: number;
  readonly dir: string;
}

const hostIdOf = (n: number) => `fleet-host-${String(n).padStart(3, '0')}`;
const volumeNameOf = (n: number) => `fleet-vol-${String(n).padStart(2, '0')}`;

async function metric(service: ServiceProcess, name: string): Promise<number> {
  const text = await (await fetch(`${service.opsUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

/**
 * Runs a simulated fleet against the real scheduler, catalog and storage gateway (processes, as
 * deployed, on an open NATS server of their own and a local repository): every volume on one
 * cron, no jitter, no first backup before the schedule's; waits until `slots` slots of every
 * volume were due and had their time to run, and reports how late each slot's command went out,
 * whether the limits held, and how fast the catalog followed.
 */
export async function runFleet(options: FleetRunOptions): Promise<FleetRunReport> {
  const say = options.progress ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'volback-fleet-'));
  let nats: NatsServer | undefined;
  let nc: NatsConnection | undefined;
  let monitor: SchedulingMonitor | undefined;
  const services: ServiceProcess[] = [];
  const agentConnections: NatsConnection[] = [];
  const agents: SimulatedAgent[] = [];
  try {
    nats = await startNatsServer({ dataDir: join(dir, 'nats') });
    const env = { VOLBACK_NATS_URL: nats.url, LOG_LEVEL: 'info' };
    nc = await connectNats({ servers: nats.url, name: 'fleet-monitor' });
    monitor = new SchedulingMonitor(nc, {
      perHost: options.maxConcurrentPerHost,
      inAll: options.maxConcurrent,
    });
    services.push(
      await startService(
        'gateway',
        'gateway',
        { ...env, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: 'fleet-simulation' },
        dir,
      ),
    );
    services.push(await startCatalogService('catalog', env, join(dir, 'catalog'), dir));
    const catalog = services[1]!;

    const volumes = Array.from({ length: options.volumesPerHost }, (_, v) => volumeNameOf(v + 1));
    const t0 = Date.now();
    for (let h = 1; h <= options.hosts; h++) {
      const agentNc = await connectNats({ servers: nats.url, name: hostIdOf(h) });
      agentConnections.push(agentNc);
      agents.push(
        await startSimulatedAgent({
          nc: agentNc,
          hostId: hostIdOf(h),
          volumeNames: volumes,
          heartbeatSeconds: options.heartbeatSeconds ?? 30,
        }),
      );
    }
    say(
      `${options.hosts} simulated agents announced ${options.hosts * volumes.length} volumes in ${Date.now() - t0} ms`,
    );

    services.push(
      await startService(
        'scheduler',
        'scheduler',
        {
          ...env,
          VOLBACK_SCHEDULER_ID: 'scheduler',
          VOLBACK_SCHEDULER_DEFAULT_POLICY: 'all',
          VOLBACK_SCHEDULER_DEFAULT_SCHEDULE: options.cron,
          VOLBACK_SCHEDULER_JITTER_SECONDS: '0',
          VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '86400',
          VOLBACK_SCHEDULER_MAX_CONCURRENT: String(options.maxConcurrent),
          VOLBACK_SCHEDULER_MAX_CONCURRENT_PER_HOST: String(options.maxConcurrentPerHost),
          VOLBACK_SCHEDULER_PRUNE_SCHEDULE: 'off',
          VOLBACK_SCHEDULER_CHECK_SCHEDULE: 'off',
          ...(options.schedulerNodeOptions ? { NODE_OPTIONS: options.schedulerNodeOptions } : {}),
        },
        dir,
      ),
    );

    // The first slot the scheduler can see whole: the next one after it started.
    const first = options.firstSlotAt ?? (Math.floor(Date.now() / options.periodMs) + 1) * options.periodMs;
    const end = first + options.slots * options.periodMs;
    const expected = Array.from({ length: options.slots }, (_, i) => first + i * options.periodMs);
    const slotsTotal = options.hosts * volumes.length * options.slots;
    const allDone = () => {
      let done = 0;
      for (const s of monitor!.slots.values()) if (s.slot >= first && s.slot < end && s.completedAt) done++;
      return done === slotsTotal;
    };
    const appliedAtStart = await metric(catalog, 'volback_catalog_events_applied_total');
    let catalogMaxLag = 0;
    const jsm = await jetstreamManager(nc);
    const giveUpAt = options.maxSeconds ? Date.now() + options.maxSeconds * 1000 : Infinity;
    while (Date.now() < end && Date.now() < giveUpAt && !allDone()) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const [info, checkpoint] = await Promise.all([
        jsm.streams.info(STREAMS.events.name),
        metric(catalog, 'volback_catalog_checkpoint_sequence'),
      ]);
      catalogMaxLag = Math.max(catalogMaxLag, info.state.last_seq - checkpoint);
      const r = monitor.report(first, end);
      say(
        `t=${Math.round((Date.now() - first) / 1000)}s slots sent=${r.commandDelay.count} ` +
          `delay p99=${r.commandDelay.p99} ms reaction p99=${r.reactionDelay.p99} ms completed=${r.backupsCompleted} failed=${r.backupsFailed} ` +
          `catalog lag=${info.state.last_seq - checkpoint}`,
      );
    }
    const applied = (await metric(catalog, 'volback_catalog_events_applied_total')) - appliedAtStart;
    const seconds = (Date.now() - first) / 1000;
    // The last slot's backups may still run: give them their time before counting completions.
    const settled = Math.min(giveUpAt, Date.now() + (options.settleMs ?? 60_000));
    const inWindow = () => [...monitor!.slots.values()].filter((s) => s.slot >= first && s.slot < end);
    while (Date.now() < settled && inWindow().some((s) => s.completedAt === undefined))
      await new Promise((resolve) => setTimeout(resolve, 1_000));

    const requested = new Set<string>();
    let slotsCompleted = 0;
    for (const s of monitor.slots.values()) {
      if (s.slot < first || s.slot >= end) continue;
      requested.add(`${s.hostId}\u0000${s.volumeName}\u0000${s.slot}`);
      if (s.completedAt !== undefined) slotsCompleted++;
    }
    const completedOf = new Map<string, number>();
    for (const agent of agents)
      for (const volume of volumes) completedOf.set(`${agent.hostId}\u0000${volume}`, 0);
    for (const s of monitor.slots.values()) {
      const key = `${s.hostId}\u0000${s.volumeName}`;
      if (s.slot >= first && s.slot < end && s.completedAt !== undefined)
        completedOf.set(key, (completedOf.get(key) ?? 0) + 1);
    }
    let missed = 0;
    for (const agent of agents)
      for (const volume of volumes)
        for (const slot of expected)
          if (!requested.has(`${agent.hostId}\u0000${volume}\u0000${slot}`)) missed++;

    return {
      ...monitor.report(first, end),
      hosts: options.hosts,
      volumes: options.hosts * volumes.length,
      slotsExpected: agents.length * volumes.length * expected.length,
      slotsMissed: missed,
      slotsCompleted,
      fewestCompletedOfAVolume: Math.min(...completedOf.values()),
      catalogEventsPerSecond: applied / seconds,
      catalogMaxLag,
      seconds,
      dir,
    };
  } finally {
    monitor?.close();
    // The scheduler first, then the agents (a backup in progress ends), then what they talk to.
    const [gateway, catalog, scheduler] = services;
    // Long enough for a `--cpu-prof` scheduler to write its profile.
    await scheduler?.stop(30_000);
    // A simulated backup waiting on a gateway gives up after its data path timeouts: not waited for.
    await Promise.race([
      Promise.allSettled(agents.map((a) => a.stop())),
      new Promise((resolve) => setTimeout(resolve, 15_000)),
    ]);
    await Promise.allSettled([gateway, catalog].map((s) => s?.stop(10_000)));
    await Promise.allSettled(agentConnections.map((c) => drainNats(c)));
    if (nc) await drainNats(nc);
    await nats?.stop();
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}
