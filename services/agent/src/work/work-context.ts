import { createEvent, progressSubject, type EventDefinition, type WorkProgress } from '@volback/contracts';
import type { DataPathError } from '@volback/data-path';
import type { MessagePublisher, NatsConnection } from '@volback/messaging';
import type { Logger } from '@volback/observability';
import type { z } from 'zod';
import type { ApplicationEngine } from '../adapters/applications.ts';
import type { DatabaseDumper } from '../adapters/database-dump.ts';
import type { Quiescer } from '../adapters/quiesce.ts';
import type { VolumeAccess } from '../adapters/volume-access.ts';
import type { ContainersJsonEnv } from '../domain/container-record.ts';

/** Live progress of one piece of work, published a few times a second at most. */
export interface ProgressReporter {
  update(values: Partial<Omit<WorkProgress, 'workId' | 'kind' | 'at'>>): void;
  /** Publishes the last values and stops. */
  end(): void;
}

/** The agent's own rules for what commands may do on its host (README, "Security"). */
export interface WorkSecurity {
  /** Containers (names or id prefixes) where hooks sent with a command may run: `VOLBACK_AGENT_HOOK_CONTAINERS`. */
  readonly hookContainers: readonly string[];
  /** What `.volback/containers.json` keeps of a container's env when its label does not say. */
  readonly containersJsonEnv: ContainersJsonEnv;
}

/** The rules when the agent's configuration sets none: no allow-list, env values kept. */
export const DEFAULT_WORK_SECURITY: WorkSecurity = { hookContainers: [], containersJsonEnv: 'include' };

/** What a backup or restore run needs from the agent around it. */
export interface WorkContext {
  readonly hostId: string;
  /** The host's display name now (what snapshots record as their `hostname`). */
  hostName(): Promise<string>;
  readonly nc: NatsConnection;
  readonly volumes: VolumeAccess;
  readonly quiescer: Quiescer;
  /** Containers and volumes with their labels, for backup sets; recreating containers. */
  readonly applications: ApplicationEngine;
  /** Takes the database dumps containers' labels ask for. */
  readonly dumper: DatabaseDumper;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** Aborted when the agent stops. */
  readonly signal: AbortSignal;
  /** 1 on the command's first delivery; more after a crash or a stop mid-run. */
  readonly deliveryCount: number;
  readonly dataPath?: {
    readonly timeoutMs?: number;
    readonly retries?: number;
    readonly onNotPermitted?: (error: DataPathError) => void;
  };
  /** Where chunk caches go, one per volume (see @volback/repository's ChunkCache); none without. */
  readonly chunkCacheRoot?: string;
  readonly security: WorkSecurity;
  /** Publishes an outcome event; the id makes a repeat after a crash a no-op. */
  publish<Schema extends z.ZodType>(
    definition: EventDefinition<string, string, Schema>,
    data: z.input<Schema>,
    idSuffix: string,
  ): Promise<void>;
  progress(workId: string, kind: WorkProgress['kind']): ProgressReporter;
}

/** Builds the publishing parts of a {@link WorkContext}. */
export function workPublishing(options: {
  nc: NatsConnection;
  hostId: string;
  publisher: MessagePublisher;
  source: string;
  clock: () => Date;
  causationid: string;
  correlationid: string;
  progressIntervalMs?: number;
}): Pick<WorkContext, 'publish' | 'progress'> {
  const { nc, publisher, source, clock } = options;
  return {
    async publish(definition, data, idSuffix) {
      await publisher.publish(
        createEvent(definition, data, {
          source,
          id: `${options.correlationid}.${idSuffix}`.slice(0, 200),
          time: clock(),
          causationid: options.causationid,
          correlationid: options.correlationid,
        }),
      );
    },
    progress(workId, kind) {
      const state: WorkProgress = {
        workId,
        kind,
        phase: kind === 'backup' ? 'reading' : 'writing',
        files: 0,
        dirs: 0,
        bytes: 0,
        bytesAdded: 0,
        at: clock().toISOString(),
      };
      let last = 0;
      const send = () => {
        state.at = clock().toISOString();
        last = Date.now();
        if (!nc.isClosed()) nc.publish(progressSubject(options.hostId, workId), JSON.stringify(state));
      };
      return {
        update(values) {
          Object.assign(state, values);
          if (Date.now() - last >= (options.progressIntervalMs ?? 500)) send();
        },
        end: send,
      };
    },
  };
}
