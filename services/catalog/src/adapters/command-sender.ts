import { randomUUID } from 'node:crypto';
import {
  CheckRepository,
  createCommand,
  createEvent,
  DefinePolicy,
  ForgetSnapshots,
  ImportSnapshots,
  PruneRepository,
  RemovePolicy,
  RequestBackup,
  RepositoryImportRequested,
  RepositoryMaintenanceRequested,
  RestoreFailed,
  RestoreRequested,
  RestoreSnapshot,
  BackupSet,
  RestoreSet,
  RestoreSetFailed,
  RestoreSetRequested,
  RestoreDrill,
  RestoreDrillRequested,
  GRANT_TTL_MS,
  type OutgoingMessage,
} from '@volback/contracts';
import type { MessagePublisher, RestoreGrants } from '@volback/messaging';
import type { z } from 'zod';
import { CatalogErrorCode, UnavailableError } from '../errors.ts';

/** A forget, prune or check asked for through the API. */
export type MaintenanceRequest = { repositoryId: string; requestedBy: string; now: Date } & (
  | {
      operation: 'forget';
      hostId: string;
      volumeName: string;
      retention: z.input<typeof ForgetSnapshots.schema>['retention'];
      dryRun: boolean;
    }
  | { operation: 'prune'; maxUnusedFraction: number }
  | { operation: 'check'; readDataFraction: number }
);

type RestoreTarget = z.input<typeof RestoreSnapshot.schema>['target'];

/**
 * Turns API requests into commands (and, for work the catalog starts itself, the `…Requested`
 * event that opens its record). `requestedBy` names the caller, never a token.
 */
export class CommandSender {
  readonly #publisher: MessagePublisher;
  readonly #source: string;
  readonly #grants: Pick<RestoreGrants, 'put'>;
  readonly #clock: () => Date;

  /** `clock`: the catalog's (the time of the events it writes itself). */
  constructor(
    publisher: MessagePublisher,
    source: string,
    grants: Pick<RestoreGrants, 'put'>,
    clock: () => Date = () => new Date(),
  ) {
    this.#publisher = publisher;
    this.#source = source;
    this.#grants = grants;
    this.#clock = clock;
  }

  async #publish(message: OutgoingMessage): Promise<void> {
    try {
      await this.#publisher.publish(message);
    } catch (cause) {
      throw new UnavailableError(CatalogErrorCode.MessagingUnavailable, 'NATS did not take the message', {
        cause,
      });
    }
  }

  /**
   * "Back up now": `RequestBackup` to the scheduler, which applies the volume's policy and records
   * `BackupRequested` under the id returned here (a new one, so the caller can follow it at once).
   */
  async backupNow(request: {
    hostId: string;
    volumeName: string;
    requestedBy: string;
  }): Promise<{ backupId: string }> {
    const backupId = `backup-${randomUUID()}`;
    await this.#publish(
      createCommand(
        RequestBackup,
        {
          hostId: request.hostId,
          volumeName: request.volumeName,
          backupId,
          requestedBy: request.requestedBy,
        },
        { source: this.#source, correlationid: backupId },
      ),
    );
    return { backupId };
  }

  /**
   * A restore drill of one volume: `RestoreDrillRequested`, then `RestoreDrill` to the agent of
   * the volume's host, which restores the volume's latest snapshot of that host (its own
   * snapshots: no grant is needed) into a scratch volume and removes it again.
   */
  async drill(request: {
    hostId: string;
    volumeName: string;
    repositoryId: string;
    containers: boolean;
    health?: string | undefined;
    healthTimeoutSeconds: number;
    requestedBy: string;
    now: Date;
  }): Promise<{ drillId: string }> {
    const drillId = `drill-${randomUUID()}`;
    const common = { source: this.#source, correlationid: drillId };
    const key = { drillId, hostId: request.hostId, volumeName: request.volumeName };
    await this.#publish(
      createEvent(
        RestoreDrillRequested,
        {
          ...key,
          trigger: 'manual',
          repositoryId: request.repositoryId,
          requestedBy: request.requestedBy,
          requestedAt: request.now.toISOString(),
        },
        common,
      ),
    );
    await this.#publish(
      createCommand(
        RestoreDrill,
        {
          ...key,
          trigger: 'manual',
          repositoryId: request.repositoryId,
          containers: request.containers,
          ...(request.health !== undefined ? { health: request.health } : {}),
          healthTimeoutSeconds: request.healthTimeoutSeconds,
        },
        common,
      ),
    );
    return { drillId };
  }

  /**
   * A restore: the grant that lets `hostId`'s agent read the snapshot through the gateways (KV
   * `VOLBACK_GRANTS`, for a day), `RestoreRequested`, then `RestoreSnapshot` to the agent of
   * `hostId`. Without the grant nothing is sent (503).
   */
  async restore(request: {
    hostId: string;
    snapshotId: string;
    repositoryId: string;
    target: RestoreTarget;
    path?: string | undefined;
    targetPath?: string | undefined;
    dryRun?: boolean | undefined;
    /** Keep setuid/setgid bits (the agent keeps them only for its own host's snapshots). */
    preserveSpecialModes?: boolean | undefined;
    requestedBy: string;
    now: Date;
  }): Promise<{ restoreId: string }> {
    const restoreId = `restore-${randomUUID()}`;
    const common = { source: this.#source, correlationid: restoreId };
    const key = { restoreId, hostId: request.hostId, snapshotId: request.snapshotId };
    await this.#grant(restoreId, request.hostId, request.snapshotId, request.now);
    await this.#publish(
      createEvent(
        RestoreRequested,
        {
          ...key,
          repositoryId: request.repositoryId,
          target: request.target,
          ...(request.path !== undefined ? { path: request.path } : {}),
          ...(request.targetPath !== undefined ? { targetPath: request.targetPath } : {}),
          dryRun: request.dryRun ?? false,
          requestedBy: request.requestedBy,
          requestedAt: request.now.toISOString(),
        },
        common,
      ),
    );
    try {
      await this.#publish(
        createCommand(
          RestoreSnapshot,
          {
            ...key,
            repositoryId: request.repositoryId,
            target: request.target,
            ...(request.path !== undefined ? { path: request.path } : {}),
            ...(request.targetPath !== undefined ? { targetPath: request.targetPath } : {}),
            dryRun: request.dryRun ?? false,
            preserveSpecialModes: request.preserveSpecialModes ?? false,
          },
          common,
        ),
      );
    } catch (error) {
      await this.#publisher
        .publish(
          createEvent(
            RestoreFailed,
            {
              ...key,
              code: 'VOLBACK_CATALOG_COMMAND_NOT_SENT',
              reason: 'the restore command could not be sent',
              failedAt: this.#clock().toISOString(),
            },
            common,
          ),
        )
        .catch(() => undefined);
      throw error;
    }
    return { restoreId };
  }

  async #grant(restoreId: string, hostId: string, snapshotId: string, now: Date): Promise<void> {
    try {
      await this.#grants.put(restoreId, {
        hostId,
        snapshotId,
        expiresAt: new Date(now.getTime() + GRANT_TTL_MS).toISOString(),
      });
    } catch (cause) {
      throw new UnavailableError(
        CatalogErrorCode.MessagingUnavailable,
        'NATS did not take the restore grant',
        {
          cause,
        },
      );
    }
  }

  /** "Back up this set now": `BackupSet` to the agent of the set's host; follow it under the returned id. */
  async backupSet(request: {
    hostId: string;
    setId: string;
    requestedBy: string;
  }): Promise<{ backupId: string }> {
    const backupId = `set-${randomUUID()}`;
    await this.#publish(
      createCommand(
        BackupSet,
        {
          backupId,
          hostId: request.hostId,
          setId: request.setId,
          trigger: 'manual',
          requestedBy: request.requestedBy,
        },
        { source: this.#source, correlationid: backupId },
      ),
    );
    return { backupId };
  }

  /**
   * Restores the members of a set backup on `hostId`: a grant per member (each may be another
   * host's snapshot), `RestoreSetRequested`, then `RestoreSet` to that host's agent.
   */
  async restoreSet(request: {
    hostId: string;
    setId: string;
    setBackupId: string;
    repositoryId: string;
    members: {
      snapshotId: string;
      volumeName: string;
      target: z.input<typeof RestoreSet.schema>['members'][number]['target'];
    }[];
    recreateContainers: boolean;
    containerSuffix: string;
    startContainers: boolean;
    dryRun: boolean;
    requestedBy: string;
    now: Date;
  }): Promise<{ restoreId: string }> {
    const restoreId = `restore-set-${randomUUID()}`;
    const common = { source: this.#source, correlationid: restoreId };
    const members = request.members.map((m, i) => ({ ...m, restoreId: `${restoreId}.${i}` }));
    for (const m of members) await this.#grant(m.restoreId, request.hostId, m.snapshotId, request.now);
    const key = {
      restoreId,
      hostId: request.hostId,
      setId: request.setId,
      setBackupId: request.setBackupId,
    };
    await this.#publish(
      createEvent(
        RestoreSetRequested,
        {
          ...key,
          repositoryId: request.repositoryId,
          members,
          recreateContainers: request.recreateContainers,
          dryRun: request.dryRun,
          requestedBy: request.requestedBy,
          requestedAt: request.now.toISOString(),
        },
        common,
      ),
    );
    try {
      await this.#publish(
        createCommand(
          RestoreSet,
          {
            ...key,
            repositoryId: request.repositoryId,
            members,
            recreateContainers: request.recreateContainers,
            containerSuffix: request.containerSuffix,
            startContainers: request.startContainers,
            dryRun: request.dryRun,
          },
          common,
        ),
      );
    } catch (error) {
      await this.#publisher
        .publish(
          createEvent(
            RestoreSetFailed,
            {
              ...key,
              code: 'VOLBACK_CATALOG_COMMAND_NOT_SENT',
              reason: 'the restore command could not be sent',
              failedAt: this.#clock().toISOString(),
            },
            common,
          ),
        )
        .catch(() => undefined);
      throw error;
    }
    return { restoreId };
  }

  /** `DefinePolicy` to the scheduler, which validates it and records `PolicyDefined` or `PolicyRejected`. */
  async definePolicy(data: z.input<typeof DefinePolicy.schema>): Promise<{ commandId: string }> {
    const message = createCommand(DefinePolicy, data, { source: this.#source });
    await this.#publish(message);
    return { commandId: message.envelope.id };
  }

  /** `RemovePolicy` to the scheduler. */
  async removePolicy(data: z.input<typeof RemovePolicy.schema>): Promise<{ commandId: string }> {
    const message = createCommand(RemovePolicy, data, { source: this.#source });
    await this.#publish(message);
    return { commandId: message.envelope.id };
  }

  /**
   * Forget, prune or check on request: `RepositoryMaintenanceRequested` opens the operation's
   * record, then the gateways' command (same `operationId`), whose outcome event closes it.
   */
  async maintenance(request: MaintenanceRequest): Promise<{ operationId: string }> {
    const operationId = `${request.operation}-${randomUUID()}`;
    const common = { source: this.#source, correlationid: operationId };
    const key = { operationId, repositoryId: request.repositoryId };
    await this.#publish(
      createEvent(
        RepositoryMaintenanceRequested,
        {
          ...key,
          operation: request.operation,
          ...(request.operation === 'forget'
            ? { hostId: request.hostId, volumeName: request.volumeName }
            : {}),
          requestedBy: request.requestedBy,
          requestedAt: request.now.toISOString(),
        },
        common,
      ),
    );
    const command =
      request.operation === 'forget'
        ? createCommand(
            ForgetSnapshots,
            {
              ...key,
              hostId: request.hostId,
              volumeName: request.volumeName,
              retention: request.retention,
              dryRun: request.dryRun,
            },
            common,
          )
        : request.operation === 'prune'
          ? createCommand(PruneRepository, { ...key, maxUnusedFraction: request.maxUnusedFraction }, common)
          : createCommand(CheckRepository, { ...key, readDataFraction: request.readDataFraction }, common);
    await this.#publish(command);
    return { operationId };
  }

  /**
   * Re-import of the repository's snapshots the log lacks: `RepositoryImportRequested` opens the
   * operation's record (operation `import`), then `ImportSnapshots` to the gateways, whose
   * `RepositoryImportCompleted` or `RepositoryImportFailed` closes it.
   */
  async importSnapshots(request: {
    repositoryId: string;
    requestedBy: string;
    now: Date;
  }): Promise<{ operationId: string }> {
    const operationId = `import-${randomUUID()}`;
    const common = { source: this.#source, correlationid: operationId };
    const key = { operationId, repositoryId: request.repositoryId };
    await this.#publish(
      createEvent(
        RepositoryImportRequested,
        { ...key, requestedBy: request.requestedBy, requestedAt: request.now.toISOString() },
        common,
      ),
    );
    await this.#publish(createCommand(ImportSnapshots, key, common));
    return { operationId };
  }
}
