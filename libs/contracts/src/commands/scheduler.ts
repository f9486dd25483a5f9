import { z } from 'zod';
import { defineCommand } from '../define.ts';
import { hostId, policyId, reason, volumeName, workId } from '../fields.ts';
import { notificationChannelName } from '../notification.ts';
import { policyScope, policySpec } from '../policy.ts';

export const RequestBackup = defineCommand({
  name: 'RequestBackup',
  commandName: 'request-backup',
  description:
    '"Back up now" for one volume (the catalog\'s API, or a CI/CD pipeline after a deployment); the scheduler applies its policy.',
  schema: z.object({
    hostId,
    volumeName,
    /**
     * The backup's id, when the sender needs it before the scheduler answers (the catalog returns
     * it at once); a new one, never used before. Absent: the scheduler derives one from the command.
     */
    backupId: workId.optional(),
    requestedBy: z.string().min(1).max(200),
    note: reason.optional(),
  }),
  target: () => ({ kind: 'scheduler' }),
});

export const DefinePolicy = defineCommand({
  name: 'DefinePolicy',
  commandName: 'define-policy',
  description: 'Define or replace a backup policy; wins over labels for the same scope.',
  schema: z.object({
    policyId,
    scope: policyScope,
    policy: policySpec,
    requestedBy: z.string().min(1).max(200),
  }),
  target: () => ({ kind: 'scheduler' }),
});

export const RemovePolicy = defineCommand({
  name: 'RemovePolicy',
  commandName: 'remove-policy',
  description: 'Remove a policy defined through the API.',
  schema: z.object({ policyId: workId, requestedBy: z.string().min(1).max(200) }),
  target: () => ({ kind: 'scheduler' }),
});

export const SendTestNotification = defineCommand({
  name: 'SendTestNotification',
  commandName: 'send-test-notification',
  description:
    'Send a test notification to one channel, or to every channel; the outcome is a `NotificationDelivered` or `NotificationFailed` per channel with `eventId` = `testId`.',
  schema: z.object({
    testId: workId,
    channel: notificationChannelName.optional(),
    requestedBy: z.string().min(1).max(200),
  }),
  target: () => ({ kind: 'scheduler' }),
});
