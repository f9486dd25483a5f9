import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, loadConfig } from './config.ts';
import { DEFAULT_SETTINGS } from './domain/index.ts';
import { ConfigError } from './errors.ts';

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({ VOLBACK_SCHEDULER_ID: 'one' });
    expect(config).toMatchObject({
      natsServers: ['nats://127.0.0.1:4222'],
      opsHost: '127.0.0.1',
      opsPort: 9403,
      tickMs: CONFIG_DEFAULTS.tickMs,
      leaseMs: 10_000,
      settings: {
        defaultMode: 'all',
        defaultPolicy: DEFAULT_SETTINGS.defaultPolicy,
        jitterWindowMs: 30 * 60_000,
        maxConcurrentBackups: 10,
        maxConcurrentBackupsPerHost: 1,
        firstBackupDelayMs: 60_000,
        backupOnContainerStop: false,
        prune: { schedule: { cron: '0 4 * * 0', timezone: 'UTC' } },
        check: { schedule: { cron: '0 5 * * *', timezone: 'UTC' }, readDataFraction: 0.05 },
        source: 'volback://scheduler/one',
      },
    });
  });

  it('reads the default policy in the words of the labels, and maintenance schedules or "off"', () => {
    const config = loadConfig({
      VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled',
      VOLBACK_SCHEDULER_DEFAULT_SCHEDULE: '30 1 * * *',
      VOLBACK_SCHEDULER_DEFAULT_TIMEZONE: 'Europe/Berlin',
      VOLBACK_SCHEDULER_DEFAULT_RETENTION: 'keep-daily=14, keep-within=1y',
      VOLBACK_SCHEDULER_PRUNE_SCHEDULE: 'off',
      VOLBACK_SCHEDULER_BACKUP_ON_CONTAINER_STOP: 'yes',
    });
    expect(config.settings.defaultMode).toBe('labelled');
    expect(config.settings.defaultPolicy).toMatchObject({
      schedule: { cron: '30 1 * * *', timezone: 'Europe/Berlin' },
      retention: { keepDaily: 14, keepWithin: '1y' },
    });
    expect(config.settings.prune.schedule).toBeUndefined();
    expect(config.settings.backupOnContainerStop).toBe(true);
  });

  it.each([
    ['VOLBACK_SCHEDULER_DEFAULT_POLICY', 'some'],
    ['VOLBACK_SCHEDULER_DEFAULT_SCHEDULE', '0 25 * * *'],
    ['VOLBACK_SCHEDULER_DEFAULT_TIMEZONE', 'Atlantis/Capital'],
    ['VOLBACK_SCHEDULER_DEFAULT_RETENTION', 'keep-forever=1'],
    ['VOLBACK_SCHEDULER_CHECK_READ_DATA', '1.5'],
    ['VOLBACK_SCHEDULER_PRUNE_SCHEDULE', 'weekly'],
    ['VOLBACK_SCHEDULER_LEASE_SECONDS', '1'],
    ['VOLBACK_NATS_URL', 'localhost:4222'],
  ])('%s=%j stops the start with an error naming it', (variable, value) => {
    const load = () => loadConfig({ [variable]: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(new RegExp(`^${variable}: `));
  });
});
