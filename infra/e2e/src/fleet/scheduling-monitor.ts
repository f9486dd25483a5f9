import type { Subscription } from '@nats-io/nats-core';
import {
  BackupCompleted,
  BackupFailed,
  BackupPartiallyFailed,
  BackupRequested,
  BackupStarted,
  BackupVolume,
  parseMessage,
  SUBJECT_ROOTS,
} from '@volback/contracts';
import type { NatsConnection } from '@volback/messaging';

/** One scheduled slot of one volume, as the scheduler handled it. */
export interface SlotRecord {
  readonly hostId: string;
  readonly volumeName: string;
  readonly slot: number;
  /** When the scheduler's `BackupVolume` reached the server (seen here), ms. */
  commandAt?: number;
  /**
   * When the command could first have gone out: the slot, or later the last moment before the
   * command that a backup's outcome made room under the host's or the global limit.
   */
  readyAt?: number;
  completedAt?: number;
}

/** p50, p99 and max of some durations, in ms. */
export interface Spread {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** What {@link SchedulingMonitor.report} says. */
export interface SchedulingReport {
  /** Slots (volume and schedule time) whose command was sent, and their delay after the slot. */
  readonly commandDelay: Spread;
  /**
   * The scheduler's own part of that delay: from when the limits let the slot's command go (the
   * slot, or the outcome that made room after it) to the command.
   */
  readonly reactionDelay: Spread;
  /** From `BackupStarted` to the outcome, as the simulated agents took. */
  readonly backupDuration: Spread;
  /** Slots requested but whose command was never seen (should be none). */
  readonly slotsWithoutCommand: number;
  readonly backupsCompleted: number;
  readonly backupsFailed: number;
  /** Most backups of one host started and not ended at once, from the events. */
  readonly maxRunningPerHost: number;
  /** Most backups started and not ended at once, across the fleet. */
  readonly maxRunningInAll: number;
  /** Events seen on the event subjects. */
  readonly events: number;
}

/** Sorted-sample percentiles of `values`. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

/**
 * Watches a fleet's scheduling from the outside, as the messages flow: every scheduled
 * `BackupRequested` (its slot), the `BackupVolume` that follows (when it was sent), and the
 * agents' `BackupStarted` and outcomes (how many ran at once, per host and in all). It trusts no
 * service's own figures.
 */
export class SchedulingMonitor {
  /** By backup id: the scheduled slots seen. */
  readonly slots = new Map<string, SlotRecord>();
  readonly #commandSeenAt = new Map<string, number>();
  readonly #runningPerHost = new Map<string, Set<string>>();
  readonly #ended = new Set<string>();
  readonly #startedAt = new Map<string, number>();
  readonly #durations: number[] = [];
  /** The scheduler's view: backups requested and without an outcome, per host and in all. */
  readonly #requested = new Map<string, Set<string>>();
  #requestedInAll = 0;
  readonly #hostRoomAt = new Map<string, number>();
  #globalRoomAt = -Infinity;
  readonly #limits: { readonly perHost: number; readonly inAll: number };
  #running = 0;
  #maxPerHost = 0;
  #maxInAll = 0;
  #completed = 0;
  #failed = 0;
  #events = 0;
  readonly #subs: Subscription[];

  constructor(nc: NatsConnection, limits: { readonly perHost: number; readonly inAll: number }) {
    this.#limits = limits;
    const events = nc.subscribe(`${SUBJECT_ROOTS.events}.>`);
    const commands = nc.subscribe(`${SUBJECT_ROOTS.commands}.host.>`);
    this.#subs = [events, commands];
    void (async () => {
      for await (const msg of events) this.#onEvent(msg.data);
    })();
    void (async () => {
      for await (const msg of commands) {
        const parsed = parseMessage(msg.data);
        if (!parsed.ok || parsed.message.definition !== BackupVolume) continue;
        const backupId = (parsed.message.envelope.data as { backupId: string }).backupId;
        const at = Date.now();
        const slot = this.slots.get(backupId);
        if (slot && slot.commandAt === undefined) {
          slot.commandAt = at;
          slot.readyAt = Math.max(
            slot.slot,
            this.#hostRoomAt.get(slot.hostId) ?? -Infinity,
            this.#globalRoomAt,
          );
        } else if (!this.#commandSeenAt.has(backupId)) this.#commandSeenAt.set(backupId, at);
      }
    })();
  }

  #onEvent(bytes: Uint8Array): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) return;
    this.#events++;
    const { definition, envelope } = parsed.message;
    const data = envelope.data as { backupId: string; hostId: string; volumeName: string; slot?: string };
    if (definition === BackupRequested) {
      let requested = this.#requested.get(data.hostId);
      if (!requested) this.#requested.set(data.hostId, (requested = new Set()));
      if (!this.#ended.has(data.backupId) && !requested.has(data.backupId)) {
        requested.add(data.backupId);
        this.#requestedInAll++;
      }
      if (data.slot === undefined || this.slots.has(data.backupId)) return;
      const record: SlotRecord = {
        hostId: data.hostId,
        volumeName: data.volumeName,
        slot: Date.parse(data.slot),
      };
      const seen = this.#commandSeenAt.get(data.backupId);
      if (seen !== undefined) {
        record.commandAt = seen;
        record.readyAt = Math.max(
          record.slot,
          this.#hostRoomAt.get(data.hostId) ?? -Infinity,
          this.#globalRoomAt,
        );
      }
      this.#commandSeenAt.delete(data.backupId);
      this.slots.set(data.backupId, record);
    } else if (definition === BackupStarted) {
      if (this.#ended.has(data.backupId)) return;
      let running = this.#runningPerHost.get(data.hostId);
      if (!running) this.#runningPerHost.set(data.hostId, (running = new Set()));
      if (running.has(data.backupId)) return;
      running.add(data.backupId);
      this.#startedAt.set(data.backupId, Date.now());
      this.#running++;
      this.#maxPerHost = Math.max(this.#maxPerHost, running.size);
      this.#maxInAll = Math.max(this.#maxInAll, this.#running);
    } else if (
      definition === BackupCompleted ||
      definition === BackupPartiallyFailed ||
      definition === BackupFailed
    ) {
      if (this.#ended.has(data.backupId)) return;
      this.#ended.add(data.backupId);
      const now = Date.now();
      if (this.#runningPerHost.get(data.hostId)?.delete(data.backupId)) this.#running--;
      const started = this.#startedAt.get(data.backupId);
      if (started !== undefined) this.#durations.push(now - started);
      this.#startedAt.delete(data.backupId);
      const requested = this.#requested.get(data.hostId);
      if (requested?.has(data.backupId)) {
        if (requested.size === this.#limits.perHost) this.#hostRoomAt.set(data.hostId, now);
        if (this.#requestedInAll === this.#limits.inAll) this.#globalRoomAt = now;
        requested.delete(data.backupId);
        this.#requestedInAll--;
      }
      if (definition === BackupFailed) this.#failed++;
      else {
        this.#completed++;
        const slot = this.slots.get(data.backupId);
        if (slot) slot.completedAt = now;
      }
    }
  }

  /** Scheduled slots of `volume` on `host` whose backup completed. */
  completedSlots(hostId: string, volumeName: string): number {
    let n = 0;
    for (const s of this.slots.values())
      if (s.hostId === hostId && s.volumeName === volumeName && s.completedAt !== undefined) n++;
    return n;
  }

  /** Figures of the slots due at or after `from` and before `to` (ms). */
  report(from = -Infinity, to = Infinity): SchedulingReport {
    const delays: number[] = [];
    const reactions: number[] = [];
    let withoutCommand = 0;
    for (const s of this.slots.values()) {
      if (s.slot < from || s.slot >= to) continue;
      if (s.commandAt === undefined) withoutCommand++;
      else {
        delays.push(s.commandAt - s.slot);
        reactions.push(s.commandAt - (s.readyAt ?? s.slot));
      }
    }
    return {
      commandDelay: spread(delays),
      reactionDelay: spread(reactions),
      backupDuration: spread(this.#durations),
      slotsWithoutCommand: withoutCommand,
      backupsCompleted: this.#completed,
      backupsFailed: this.#failed,
      maxRunningPerHost: this.#maxPerHost,
      maxRunningInAll: this.#maxInAll,
      events: this.#events,
    };
  }

  close(): void {
    for (const sub of this.#subs) sub.unsubscribe();
  }
}
