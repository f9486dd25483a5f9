import { randomUUID } from 'node:crypto';
import {
  BackupFailed,
  BackupRequested,
  BackupVolume,
  CheckRepository,
  createCommand,
  createEvent,
  DefinePolicy,
  ForgetSnapshots,
  ImportSnapshots,
  PruneRepository,
  RemovePolicy,
  RepositoryImportRequested,
  RepositoryMaintenanceRequested,
  RestoreFailed,
  RestoreRequested,
  RestoreSnapshot,
  GRANT_TTL_MS,
  type OutgoingMessage,
  type PolicySpec,
} from '@volback/contracts';
import type { MessagePublisher, RestoreGrants } from '@volback/messaging';
import type { z } from 'zod';
import { CatalogErrorCode, UnavailableError } from '../errors.ts';

/** What a backup needs besides its volume: taken from the policy that applies, when there is one. */
export interface BackupSettings {
  repositoryId?: string;
  consistency?: PolicySpec['consistency'];
  excludes?: string[];
}

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

  constructor(publisher: MessagePublisher, source: string, grants: Pick<RestoreGrants, 'put'>) {
    this.#publisher = publisher;
    this.#source = source;
    this.#grants = grants;
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
   * "Back up now": `BackupRequested`, then `BackupVolume` straight to the host's agent. If the
   * command cannot be sent, `BackupFailed` closes the record (best effort) and the caller gets 503.
   */
  async backupNow(request: {
    hostId: string;
    volumeName: string;
    requestedBy: string;
    settings: BackupSettings;
    now: Date;
  }): Promise<{ backupId: string }> {
    const backupId = `backup-${randomUUID()}`;
    const common = { source: this.#source, correlationid: backupId };
    const repositoryId = request.settings.repositoryId ?? 'default';
    await this.#publish(
      createEvent(
        BackupRequested,
        {
          backupId,
          hostId: request.hostId,
          volumeName: request.volumeName,
          trigger: 'manual',
          repositoryId,
          requestedBy: request.requestedBy,
          requestedAt: request.now.toISOString(),
        },
        common,
      ),
    );
    try {
      await this.#publish(
        createCommand(
          BackupVolume,
          {
            backupId,
            hostId: request.hostId,
            volumeName: request.volumeName,
            trigger: 'manual',
            repositoryId,
            ...(request.settings.consistency ? { consistency: request.settings.consistency } : {}),
            ...(request.settings.excludes ? { excludes: request.settings.excludes } : {}),
          },
          common,
        ),
      );
    } catch (error) {
      await this.#publisher
        .publish(
          createEvent(
            BackupFailed,
            {
              backupId,
              hostId: request.hostId,
              volumeName: request.volumeName,
              code: 'VOLBACK_CATALOG_COMMAND_NOT_SENT',
              reason: 'the backup command could not be sent',
              failedAt: new Date().toISOString(),
            },
            common,
          ),
        )
        .catch(() => undefined);
      throw error;
    }
    return { backupId };
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
    requestedBy: string;
    now: Date;
  }): Promise<{ restoreId: string }> {
    const restoreId = `restore-${randomUUID()}`;
    const common = { source: this.#source, correlationid: restoreId };
    const key = { restoreId, hostId: request.hostId, snapshotId: request.snapshotId };
    try {
      await this.#grants.put(restoreId, {
        hostId: request.hostId,
        snapshotId: request.snapshotId,
        expiresAt: new Date(request.now.getTime() + GRANT_TTL_MS).toISOString(),
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
              failedAt: new Date().toISOString(),
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
