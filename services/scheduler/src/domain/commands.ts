import {
  issuesText,
  policyDefinitionIssues,
  policyRemovalIssues,
  PolicyDefined,
  PolicyRejected,
  PolicyRemoved,
  type DefinePolicy,
  type PolicyIssue,
  type RemovePolicy,
  type RequestBackup,
} from '@volback/contracts';
import type { z } from 'zod';
import { backupDecision } from './backups.ts';
import { backupId, shortHash } from './ids.ts';
import { eventIntent, type Decision } from './intents.ts';
import { basePolicy, effectivePolicy } from './policy.ts';
import type { SchedulerSettings } from './settings.ts';
import { hostScopedKey, type SchedulerState } from './state.ts';

/** A command for the scheduler, validated, with the envelope id its events are derived from. */
export type SchedulerCommand =
  | {
      readonly type: typeof RequestBackup.type;
      readonly id: string;
      readonly data: z.output<typeof RequestBackup.schema>;
    }
  | {
      readonly type: typeof DefinePolicy.type;
      readonly id: string;
      readonly data: z.output<typeof DefinePolicy.schema>;
    }
  | {
      readonly type: typeof RemovePolicy.type;
      readonly id: string;
      readonly data: z.output<typeof RemovePolicy.schema>;
    };

/**
 * decide(command, state) → what to publish. Ids derive from the command's envelope id, so a
 * command delivered twice (or handled by two schedulers) publishes the same messages, stored once.
 * Every command ends in an event: `BackupRequested`, `PolicyDefined`, `PolicyRemoved` or `PolicyRejected`.
 */
export function decideCommand(
  command: SchedulerCommand,
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const stamp = (what: string) => ({
    id: `${command.id}.${what}`,
    now,
    source: settings.source,
    causationid: command.id,
  });
  // Every issue at once (the rules in @volback/contracts, the same the catalog checks first).
  const rejected = (
    policyId: string,
    issues: readonly PolicyIssue[],
    extra: { hostId?: string; volumeName?: string } = {},
  ): Decision[] => [
    {
      what: 'policy-rejected',
      intents: [
        eventIntent(
          PolicyRejected,
          {
            policyId,
            ...extra,
            reason: issuesText(issues).slice(0, 4000),
            issues: issues.slice(0, 100).map((i) => ({
              field: i.field.slice(0, 200),
              message: i.message.slice(0, 2000),
            })),
            rejectedAt: new Date(now).toISOString(),
          },
          stamp('rejected'),
        ),
      ],
    },
  ];

  switch (command.type) {
    case 'io.volback.cmd.request-backup.v1': {
      const { hostId, volumeName, requestedBy } = command.data;
      const id = command.data.backupId ?? backupId(hostId, volumeName, `manual-${shortHash(command.id)}`);
      const volume = state.volumes.get(hostScopedKey(hostId, volumeName));
      // "Back up now" is honoured even for a volume no policy covers: it uses the default's settings.
      const policy =
        (volume && effectivePolicy(state, volume, settings)) ??
        effectivePolicy(state, { hostId, volumeName, anonymous: false }, settings) ??
        basePolicy(state, settings);
      return [
        backupDecision(
          {
            hostId,
            volumeName,
            backupId: id,
            trigger: 'manual',
            attempt: 1,
            dueAt: now,
            policy,
          },
          now,
          settings,
          requestedBy,
          command.id,
        ),
      ];
    }
    case 'io.volback.cmd.define-policy.v1': {
      const { policyId, scope, policy, requestedBy } = command.data;
      const target = scope.kind === 'volume' ? { hostId: scope.hostId, volumeName: scope.volumeName } : {};
      const issues = policyDefinitionIssues({
        policyId,
        policy,
        existingOrigin: state.policies.get(policyId)?.origin,
      });
      if (issues.length > 0) return rejected(policyId, issues, target);
      return [
        {
          what: 'policy-defined',
          intents: [
            eventIntent(
              PolicyDefined,
              {
                policyId,
                scope,
                origin: 'api',
                policy,
                definedBy: requestedBy,
                definedAt: new Date(now).toISOString(),
              },
              stamp('defined'),
            ),
          ],
        },
      ];
    }
    case 'io.volback.cmd.remove-policy.v1': {
      const { policyId, requestedBy } = command.data;
      const existing = state.policies.get(policyId);
      const issues = policyRemovalIssues(policyId, existing?.origin);
      if (issues.length > 0) {
        const scope = existing?.scope;
        return rejected(
          policyId,
          issues,
          scope?.kind === 'volume' ? { hostId: scope.hostId, volumeName: scope.volumeName } : {},
        );
      }
      return [
        {
          what: 'policy-removed',
          intents: [
            eventIntent(
              PolicyRemoved,
              { policyId, removedBy: requestedBy, removedAt: new Date(now).toISOString() },
              stamp('removed'),
            ),
          ],
        },
      ];
    }
  }
}
