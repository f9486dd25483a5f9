// The end-to-end path of the bench (`"tool":"volback-e2e"`): the dataset in a Docker volume on a
// private engine, an agent and a storage gateway as processes talking over NATS, a filesystem
// repository; backups and restores sent as commands and timed until their outcome event.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BackupVolume, RestoreSnapshot } from '@volback/contracts';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { EventLog, sendCommand, startService, type ServiceProcess } from '../infra/e2e/src/stack.ts';

/** What one end-to-end phase measured. */
export interface E2eMeasure {
  wallSeconds: number;
  /** CPU seconds of the agent, the gateway (worker threads included) and the NATS server together. */
  cpuSeconds: number;
  /** Sum of the agent's and the gateway's peak RSS so far (their lifetime high-water marks). */
  peakRssBytes: number;
  repoBytesAdded: number;
}

const TICKS_PER_SECOND = 100;

/** User and system CPU seconds of a process, its threads included. */
function cpuOf(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
  return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
}

function peakRssOf(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function dirBytes(path: string): number {
  return Number(execFileSync('du', ['-sb', path]).toString().split('\t')[0]);
}

/** A running end-to-end stack with the dataset in the volume `bench`. */
export class E2eBench {
  readonly mountpoint: string;
  readonly #nats: NatsServer;
  readonly #engine: DockerEngine;
  readonly #nc: NatsConnection;
  readonly #events: EventLog;
  readonly #services: ServiceProcess[];
  readonly #repo: string;
  readonly #hostId: string;
  #runs = 0;

  private constructor(fields: {
    nats: NatsServer;
    engine: DockerEngine;
    nc: NatsConnection;
    events: EventLog;
    services: ServiceProcess[];
    repo: string;
    hostId: string;
    mountpoint: string;
  }) {
    this.#nats = fields.nats;
    this.#engine = fields.engine;
    this.#nc = fields.nc;
    this.#events = fields.events;
    this.#services = fields.services;
    this.#repo = fields.repo;
    this.#hostId = fields.hostId;
    this.mountpoint = fields.mountpoint;
  }

  /** Starts NATS, an engine, a gateway and an agent, and copies `data` into a new volume. */
  static async start(work: string, data: string, password: string, nodeOptions?: string): Promise<E2eBench> {
    const profiling: Record<string, string> = nodeOptions ? { NODE_OPTIONS: nodeOptions } : {};
    const [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    // A start that fails (a service that does not come up) leaves nothing running behind it.
    const started: ServiceProcess[] = [];
    let nc: NatsConnection | undefined;
    try {
      nc = await connectNats({ servers: [nats.url], name: 'bench-e2e' });
      const events = new EventLog(nc);
      const repo = join(work, 'repo-volback-e2e');
      await engine.docker.createVolume({ Name: 'bench' });
      const mountpoint = ((await engine.docker.getVolume('bench').inspect()) as { Mountpoint: string })
        .Mountpoint;
      execFileSync('cp', ['-a', `${data}/.`, mountpoint]);
      const gateway = await startService(
        'gateway',
        'bench-gateway',
        {
          VOLBACK_NATS_URL: nats.url,
          VOLBACK_REPOSITORY: repo,
          VOLBACK_PASSWORD: password,
          LOG_LEVEL: 'info',
          ...profiling,
        },
        work,
      );
      started.push(gateway);
      const state = join(work, 'agent-state');
      const agent = await startService(
        'agent',
        'bench-agent',
        {
          VOLBACK_NATS_URL: nats.url,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: state,
          VOLBACK_HELPER_IMAGE: engine.image,
          LOG_LEVEL: 'info',
          ...profiling,
        },
        work,
      );
      started.push(agent);
      const hostId = readFileSync(join(state, 'host-id'), 'utf8').trim();
      return new E2eBench({ nats, engine, nc, events, services: [gateway, agent], repo, hostId, mountpoint });
    } catch (error) {
      await Promise.allSettled(started.map((s) => s.stop(10_000)));
      await nc?.close().catch(() => undefined);
      await Promise.allSettled([engine.stop(), nats.stop()]);
      throw error;
    }
  }

  async #measure(run: () => Promise<void>): Promise<E2eMeasure> {
    const processes = [
      ...this.#services.map((s) => ({ name: s.name, pid: s.pid })),
      { name: 'nats-server', pid: this.#nats.pid },
    ];
    const repoBefore = dirBytes(this.#repo);
    const cpuBefore = processes.map((p) => cpuOf(p.pid));
    const started = process.hrtime.bigint();
    await run();
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = processes.map((p, i) => {
      const after = cpuOf(p.pid);
      return {
        name: p.name,
        user: after.user - cpuBefore[i]!.user,
        system: after.system - cpuBefore[i]!.system,
      };
    });
    process.stderr.write(
      `bench: volback-e2e CPU s (user / sys): ${used.map((u) => `${u.name} ${u.user.toFixed(2)} / ${u.system.toFixed(2)}`).join(', ')}; ` +
        `peak RSS so far: ${this.#services.map((s) => `${s.name} ${(peakRssOf(s.pid) / 2 ** 20).toFixed(0)} MiB`).join(', ')}\n`,
    );
    return {
      wallSeconds,
      cpuSeconds: used.reduce((sum, u) => sum + u.user + u.system, 0),
      peakRssBytes: this.#services.reduce((sum, s) => sum + peakRssOf(s.pid), 0),
      repoBytesAdded: dirBytes(this.#repo) - repoBefore,
    };
  }

  /** Backs up the volume through agent → NATS → gateway; timed from the command to its outcome. */
  backup(): Promise<E2eMeasure> {
    const backupId = `bench-backup-${++this.#runs}`;
    return this.#measure(async () => {
      await sendCommand(this.#nc, BackupVolume, {
        backupId,
        hostId: this.#hostId,
        volumeName: 'bench',
        trigger: 'manual',
      });
      const outcome = await this.#events.outcome(backupId, 3_600_000);
      if (outcome.type !== 'io.volback.backup.completed.v1') {
        throw new Error(`e2e backup did not complete: ${JSON.stringify(outcome.data)}`);
      }
    });
  }

  /**
   * Restores the latest snapshot into a new volume; timed from the command to its outcome.
   * `restoredTo`: the new volume's mountpoint, for the caller to compare with the source.
   */
  async restore(): Promise<E2eMeasure & { restoredTo: string }> {
    const completed = this.#events.events.filter((e) => e.type === 'io.volback.backup.completed.v1').at(-1);
    const snapshotId = (completed?.data as { snapshotId: string } | undefined)?.snapshotId;
    if (!snapshotId) throw new Error('no e2e snapshot to restore');
    const restoreId = `bench-restore-${++this.#runs}`;
    const volumeName = `bench-restored-${this.#runs}`;
    const measured = await this.#measure(async () => {
      await sendCommand(this.#nc, RestoreSnapshot, {
        restoreId,
        hostId: this.#hostId,
        snapshotId,
        target: { kind: 'new-volume', volumeName },
      });
      const outcome = await this.#events.outcome(restoreId, 3_600_000);
      if (outcome.type !== 'io.volback.restore.completed.v1') {
        throw new Error(`e2e restore did not complete: ${JSON.stringify(outcome.data)}`);
      }
    });
    const volume = (await this.#engine.docker.getVolume(volumeName).inspect()) as { Mountpoint: string };
    return { ...measured, restoredTo: volume.Mountpoint };
  }

  /** Removes the volumes the restores made (the bench keeps every restore until all its runs are done). */
  async removeRestores(): Promise<void> {
    for (let run = 1; run <= this.#runs; run++)
      await this.#engine.docker
        .getVolume(`bench-restored-${run}`)
        .remove()
        .catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#events.close();
    await Promise.allSettled(this.#services.map((s) => s.stop(10_000)));
    await drainNats(this.#nc);
    await Promise.allSettled([this.#engine.stop(), this.#nats.stop()]);
  }
}
