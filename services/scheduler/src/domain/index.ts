// The scheduler's pure domain: state as a projection of the log, decisions with the clock passed in.
export * from './settings.ts';
export * from './ids.ts';
export * from './schedule.ts';
export * from './labels.ts';
export * from './state.ts';
export * from './intents.ts';
export * from './policy.ts';
export * from './backups.ts';
export * from './drills.ts';
export * from './protection.ts';
export * from './schedule-announcements.ts';
export * from './maintenance.ts';
export * from './commands.ts';
export * from './decide.ts';
export * from './notifications.ts';
export * from './state-snapshot.ts';
