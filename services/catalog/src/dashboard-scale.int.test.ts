import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackupCompleted,
  HostRegistered,
  HostSeen,
  VolumeAtRisk,
  VolumeDiscovered,
} from '@volback/contracts';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { DEFAULT_WEB_ROOT } from './http/dashboard-routes.ts';
import { applyEventRows } from './projection/project-event.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { TEST_NOW } from './test-support/history.ts';

const HOSTS = 10;
const VOLUMES_PER_HOST = 100;
const SNAPSHOTS_PER_VOLUME = 100;

/**
 * The overview's first render with 1,000 volumes and 100,000 snapshots in the catalog: the rows
 * are written by the projection's own handlers (`applyEventRows`, as for events from the log), then
 * Chromium opens the overview and the time from navigation to the last volume row is measured.
 */
describe('dashboard at scale (1,000 volumes, 100,000 snapshots)', () => {
  let stack: CatalogTestStack;
  let catalog: Catalog;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(join(DEFAULT_WEB_ROOT, 'index.html')))
      throw new Error('the dashboard is not built: run `sh scripts/env.sh sh scripts/build-web.sh` first');
    stack = await CatalogTestStack.start('scale');
    catalog = await stack.catalog('scale');
    const apply = <S extends { parse: (d: unknown) => unknown }>(name: string, schema: S, data: unknown) =>
      applyEventRows(catalog.database, name, schema.parse(data));
    const day = 86_400_000;
    const started = Date.now();
    // One commit per event, as the projection does; not waiting for the disk on each saves minutes here.
    catalog.database.db.exec('PRAGMA synchronous = OFF');
    for (let h = 0; h < HOSTS; h++) {
      const hostId = `scale-host-${h}`;
      apply('HostRegistered', HostRegistered.schema, {
        hostId,
        name: `node-${h}`,
        engine: { id: `engine-${h}`, version: '28.0.1', apiVersion: '1.48', os: 'Debian', arch: 'x86_64' },
        agentVersion: '0.1.0',
        registeredAt: new Date(TEST_NOW.getTime() - 200 * day).toISOString(),
      });
      apply('HostSeen', HostSeen.schema, {
        hostId,
        seenAt: TEST_NOW.toISOString(),
        intervalSeconds: 30,
        containers: 0,
        volumes: VOLUMES_PER_HOST,
        backupsRunning: 0,
      });
      for (let v = 0; v < VOLUMES_PER_HOST; v++) {
        const volumeName = `vol-${h}-${v}`;
        apply('VolumeDiscovered', VolumeDiscovered.schema, {
          hostId,
          volumeName,
          driver: 'local',
          anonymous: false,
          labels: {},
          discoveredAt: new Date(TEST_NOW.getTime() - 200 * day).toISOString(),
        });
        for (let s = 0; s < SNAPSHOTS_PER_VOLUME; s++) {
          const n = (h * VOLUMES_PER_HOST + v) * SNAPSHOTS_PER_VOLUME + s;
          apply('BackupCompleted', BackupCompleted.schema, {
            backupId: `scale-backup-${n}`,
            hostId,
            volumeName,
            snapshotId: n.toString(16).padStart(64, '0'),
            stats: {
              filesNew: 1,
              filesChanged: 0,
              filesUnmodified: 100,
              dirsNew: 0,
              dirsChanged: 0,
              dirsUnmodified: 10,
              bytesRead: 1024,
              totalBytes: 1_048_576,
              bytesAdded: 1024,
              bytesStored: 512,
              durationMs: 1000,
            },
            completedAt: new Date(TEST_NOW.getTime() - (SNAPSHOTS_PER_VOLUME - s) * day).toISOString(),
          });
        }
      }
    }
    apply('VolumeAtRisk', VolumeAtRisk.schema, {
      hostId: 'scale-host-7',
      volumeName: 'vol-7-42',
      rpoSeconds: 86_400,
      reason: 'no successful backup within 24 hours',
      detectedAt: TEST_NOW.toISOString(),
    });
    catalog.database.db.exec('PRAGMA synchronous = NORMAL');
    console.info(`scale: catalog filled in ${Date.now() - started} ms`);
    await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(catalog.app.server.address() as { port: number }).port}`;
    browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('renders every volume, the at-risk one first, within a few seconds', async () => {
    const status = (await (await fetch(`${base}/v1/status`)).json()) as {
      volumes: { total: number };
      snapshots: number;
    };
    // The test history's few volumes and snapshots besides.
    expect(status.volumes.total).toBeGreaterThanOrEqual(HOSTS * VOLUMES_PER_HOST);
    expect(status.snapshots).toBeGreaterThanOrEqual(HOSTS * VOLUMES_PER_HOST * SNAPSHOTS_PER_VOLUME);
    const timings: number[] = [];
    for (let run = 0; run < 3; run++) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${base}/#/`);
      const rows = page.locator('tbody tr[data-protection]');
      await page.waitForFunction(
        (n) => document.querySelectorAll('tbody tr[data-protection]').length === n,
        status.volumes.total,
        {
          timeout: 60_000,
          polling: 'raf',
        },
      );
      // From the navigation's start to the frame that holds all 1,000 rows.
      timings.push(await page.evaluate(() => Math.round(performance.now())));
      expect(await rows.first().getAttribute('data-protection')).toBe('at-risk');
      await context.close();
    }
    console.info(
      `scale: overview rendered ${status.volumes.total} volumes in ${timings.join(', ')} ms (3 cold page loads)`,
    );
    expect(Math.min(...timings)).toBeLessThan(10_000);
  });
});
