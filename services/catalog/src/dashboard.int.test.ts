import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { AxeBuilder } from '@axe-core/playwright';
import {
  BackupRequested,
  BackupStarted,
  commandSubject,
  createEvent,
  PolicyDefined,
  progressSubject,
  STREAMS,
  VolumeAtRisk,
} from '@volback/contracts';
import { MessagePublisher } from '@volback/messaging';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { DEFAULT_WEB_ROOT } from './http/dashboard-routes.ts';
import { accessToken } from './http/tokens.ts';
import { CatalogTestStack } from './test-support/catalog-test-stack.ts';
import { bytes as formatBytes } from '../web/src/format.ts';
import { HISTORY_IDS } from './test-support/history.ts';

const READ = 'dashboard-read-token-0123';
const WRITE = 'dashboard-write-token-0123';
const host = HISTORY_IDS.secondHost;
const source = 'volback://dashboard-test';

/**
 * The dashboard in Debian's Chromium (playwright-core, `executablePath`) against a catalog fed by
 * a real NATS server, with tokens required (`trustLoopback: false`, as behind a proxy).
 * scripts/test.sh builds the dashboard and installs chromium first.
 */
describe('dashboard (Chromium against a catalog on real NATS)', () => {
  let stack: CatalogTestStack;
  let catalog: Catalog;
  let browser: Browser;
  let base: string;
  let commandsSent: (subject: string) => Promise<number>;

  beforeAll(async () => {
    if (!existsSync(join(DEFAULT_WEB_ROOT, 'index.html')))
      throw new Error('the dashboard is not built: run `sh scripts/env.sh sh scripts/build-web.sh` first');
    stack = await CatalogTestStack.start('dashboard');
    const publisher = new MessagePublisher(stack.nc);
    await publisher.publish(
      createEvent(
        VolumeAtRisk,
        {
          hostId: host,
          volumeName: 'gamma',
          rpoSeconds: 86_400,
          reason: 'no successful backup within 24 hours',
          detectedAt: '2025-03-14T02:00:00.000Z',
        },
        { source },
      ),
    );
    catalog = await stack.catalog('dashboard', {
      access: {
        tokens: [accessToken('read', 'read', READ), accessToken('write', 'write', WRITE)],
        trustLoopback: false,
      },
    });
    await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(catalog.app.server.address() as { port: number }).port}`;
    const jsm = await jetstreamManager(stack.nc);
    commandsSent = async (subject) => {
      const info = await jsm.streams.info(STREAMS.commands.name, { subjects_filter: subject });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    };
    browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium',
      // root in a container: Chromium's sandbox needs user namespaces it may not have.
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** A page in a fresh context; collects what the console reports (CSP violations among it). */
  async function open(options: { width?: number; dark?: boolean } = {}) {
    const context = await browser.newContext({
      viewport: { width: options.width ?? 1200, height: 900 },
      colorScheme: options.dark ? 'dark' : 'light',
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${base}/`);
    return { page, problems };
  }

  async function signIn(page: Page, token: string) {
    await page.goto(`${base}/#/access`);
    await page.getByLabel('Token').fill(token);
    await page.getByLabel('Token').press('Enter'); // keyboard only
    await page
      .getByRole('status')
      .filter({ hasText: 'Signed in' })
      .waitFor({ timeout: 5000 })
      .catch(async (e) => {
        throw new Error(`${e}\n${await page.locator('body').innerText()}`);
      });
  }

  /** With `VOLBACK_SCREENSHOTS_DIR` set, keeps a screenshot of the page there (the README's come from it). */
  async function screenshot(page: Page, name: string) {
    const dir = process.env['VOLBACK_SCREENSHOTS_DIR'];
    if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
  }

  async function expectAccessible(page: Page) {
    const result = await new AxeBuilder({ page }).analyze();
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
  }

  it('serves the dashboard without a token under the API’s CSP; data needs one', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${base}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${base}/v1/volumes`)).status).toBe(401);
    // A rebinding page's Host is refused for the dashboard too.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) =>
      request(`${base}/`, { headers: { host: 'evil.example' } }, (r) => resolve(r.statusCode!))
        .on('error', reject)
        .end(),
    );
    expect(status).toBe(421);
  });

  it('GET /v1/access tells the scope of the token sent', async () => {
    const access = async (token: string) =>
      fetch(`${base}/v1/access`, { headers: { authorization: `Bearer ${token}` } });
    expect(await (await access(READ)).json()).toEqual({ scope: 'read', via: 'token', tokenValid: true });
    expect(await (await access(WRITE)).json()).toEqual({ scope: 'write', via: 'token', tokenValid: true });
    expect((await access('not-a-token-at-all-0000')).status).toBe(401);
    // No token: "no access", not a 401, and never counted as a guess (20 > the limit of 10).
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${base}/v1/access`);
      expect(await res.json()).toEqual({ scope: null, via: null, tokenValid: null });
    }
    expect((await access(READ)).status).toBe(200);
  });

  it('asks for a token, then shows the at-risk volume first and impossible to miss', async () => {
    const { page, problems } = await open();
    await page.getByRole('heading', { name: 'Access' }).waitFor();
    await signIn(page, READ);
    await page.goto(`${base}/#/`);
    const banner = page.getByTestId('at-risk-banner');
    await banner.waitFor();
    await expect(banner.textContent()).resolves.toContain('gamma');
    // Above the fold, before the tables, and the first row of the volumes is the at-risk one.
    const box = (await banner.boundingBox())!;
    expect(box.y).toBeLessThan(300);
    const first = page.locator('tbody tr[data-protection]').first();
    expect(await first.getAttribute('data-protection')).toBe('at-risk');
    expect(await first.textContent()).toContain('gamma');
    await expectAccessible(page);
    // The totals are the API's: repository size and what the last 24 h added.
    const status = (await (
      await fetch(`${base}/v1/status`, { headers: { authorization: `Bearer ${READ}` } })
    ).json()) as { repository: { sizeBytes: number; addedLast24hBytes: number } };
    const shown = async (id: string) => (await page.getByTestId(id).textContent())!;
    expect(await shown('repository-size')).toBe(formatBytes(status.repository.sizeBytes));
    expect(await shown('added-24h')).toBe(formatBytes(status.repository.addedLast24hBytes));
    expect(await shown('added-24h')).not.toBe('0 B');
    // Volumes: those not removed, one per row of the table.
    expect(await shown('volumes-total')).toBe(
      String(await page.locator('tbody tr[data-protection]').count()),
    );

    // Live: a volume that falls at risk while the page is open joins the banner.
    await page.getByText('Live: this page follows the event stream.').waitFor();
    await new MessagePublisher(stack.nc).publish(
      createEvent(
        VolumeAtRisk,
        {
          hostId: host,
          volumeName: 'beta.data',
          rpoSeconds: 86_400,
          reason: 'the last backup is 30 hours old',
          detectedAt: '2025-03-14T02:30:00.000Z',
        },
        { source },
      ),
    );
    await banner.getByText('2 volumes are at risk').waitFor();
    await expect(banner.textContent()).resolves.toContain('beta.data');
    await screenshot(page, 'overview');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('hides "back up now" from a read token; a write token shows it and it sends RequestBackup', async () => {
    const { page, problems } = await open();
    await signIn(page, READ);
    await page.goto(`${base}/#/volumes/${host}/alpha`);
    await page.getByRole('heading', { name: /alpha/ }).waitFor();
    await page.getByRole('heading', { name: /Snapshots/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Back up now' }).count()).toBe(0);

    await signIn(page, WRITE);
    await page.goto(`${base}/#/volumes/${host}/alpha`);
    const button = page.getByRole('button', { name: 'Back up now' });
    await button.waitFor();
    await expectAccessible(page);
    // "Back up now" goes through the scheduler, which applies the volume's policy.
    const subject = commandSubject({ kind: 'scheduler' }, 'request-backup');
    const before = await commandsSent(subject);
    await button.focus();
    await page.keyboard.press('Enter');
    const status = page.getByRole('status').filter({ hasText: /Backup .* requested/ });
    await status.waitFor();
    const backupId = /Backup (\S+) requested/.exec((await status.textContent())!)![1]!;
    await screenshot(page, 'volume');
    expect(await commandsSent(subject)).toBe(before + 1);
    const jsm = await jetstreamManager(stack.nc);
    const sent = await jsm.streams.getMessage(STREAMS.commands.name, { last_by_subj: subject });
    expect((sent!.json() as { data: Record<string, unknown> }).data).toMatchObject({
      backupId,
      hostId: host,
      volumeName: 'alpha',
    });
    // Live: the backup's next phase shows on the page without a reload.
    await new MessagePublisher(stack.nc).publish(
      createEvent(
        BackupStarted,
        {
          backupId,
          hostId: host,
          volumeName: 'alpha',
          method: 'direct',
          startedAt: new Date().toISOString(),
        },
        { source },
      ),
    );
    await page.locator(`tr[data-backup="${backupId}"] .phase-Running`).waitFor();
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('fits a phone’s width without horizontal scrolling, and follows dark mode', async () => {
    const { page, problems } = await open({ width: 360, dark: true });
    await signIn(page, READ);
    const pages: Array<[string, string]> = [
      ['#/', 'Hosts'],
      [`#/volumes/${host}/alpha`, 'Restores'],
      ['#/live', 'Latest events'],
      ['#/policies', 'API policies'],
      ['#/events', 'Event log'],
      ['#/access', 'Access'],
    ];
    for (const [route, heading] of pages) {
      await page.goto(`${base}/${route}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow, route).toBeLessThanOrEqual(0);
    }
    await page.goto(`${base}/#/`);
    await page.getByTestId('at-risk-banner').waitFor();
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(13, 17, 23)');
    await screenshot(page, 'overview-phone-dark');
    await expectAccessible(page);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows running work with live progress from the event stream', async () => {
    const { page, problems } = await open();
    await signIn(page, READ);
    await page.goto(`${base}/#/live`);
    await page.getByText('Following the live event stream.').waitFor();
    const backupId = 'dashboard-live-backup-1';
    const publisher = new MessagePublisher(stack.nc);
    await publisher.publish(
      createEvent(
        BackupRequested,
        {
          backupId,
          hostId: host,
          volumeName: 'beta.data',
          repositoryId: 'default',
          trigger: 'manual',
          requestedBy: 'dashboard-test',
          requestedAt: new Date().toISOString(),
        },
        { source },
      ),
    );
    await publisher.publish(
      createEvent(
        BackupStarted,
        {
          backupId,
          hostId: host,
          volumeName: 'beta.data',
          method: 'direct',
          quiescedContainers: [],
          startedAt: new Date().toISOString(),
        },
        { source },
      ),
    );
    const item = page.locator(`[data-work="${backupId}"]`);
    await item.waitFor();
    await item.locator('.phase-Running').waitFor();
    stack.nc.publish(
      progressSubject(host, backupId),
      JSON.stringify({
        workId: backupId,
        kind: 'backup',
        phase: 'reading',
        files: 12,
        dirs: 2,
        bytes: 2048,
        bytesAdded: 1024,
        at: new Date().toISOString(),
      }),
    );
    await item.getByTestId('progress-text').filter({ hasText: '12 files, 2.0 KiB' }).waitFor();
    await screenshot(page, 'live');
    await expectAccessible(page);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('lists API and label policies; a write token edits API policies with the API’s messages and a cron preview', async () => {
    const publisher = new MessagePublisher(stack.nc);
    await publisher.publish(
      createEvent(
        PolicyDefined,
        {
          policyId: `labels:${host}:beta.data`,
          scope: { kind: 'volume', hostId: host, volumeName: 'beta.data' },
          origin: 'labels',
          policy: { schedule: { cron: '30 1 * * *' }, retention: { keepDaily: 7 } },
          definedAt: '2025-03-14T01:00:04.000Z',
        },
        { source },
      ),
    );
    await catalog.caughtUp();
    const { page, problems } = await open();
    await signIn(page, READ);
    await page.goto(`${base}/#/policies`);
    const apiRow = page.locator('tr[data-policy="catalog-test-policy"]');
    await apiRow.waitFor();
    expect(await apiRow.textContent()).toContain('last 3');
    const labelRow = page.locator(`tr[data-policy="labels:${host}:beta.data"]`);
    expect(await labelRow.textContent()).toContain('30 1 * * *');
    // A read token: nothing to press.
    expect(await page.getByRole('button', { name: /Edit|New policy/ }).count()).toBe(0);

    await signIn(page, WRITE);
    await page.goto(`${base}/#/policies`);
    await apiRow.getByRole('button', { name: 'Edit catalog-test-policy' }).waitFor();
    expect(await labelRow.getByRole('button').count()).toBe(0); // label policies stay read-only
    await page.getByRole('button', { name: 'New policy' }).click();
    await page.getByLabel('Policy id').fill('dashboard-policy');
    await page.getByLabel('Host (id or name)').fill(host);
    await page.getByLabel('Volume', { exact: true }).fill('gamma');
    await page.getByLabel('Cron expression').fill('0 3 * * *');
    // The preview is the API's, at the catalog's clock (TEST_NOW, 03:01 UTC): from tomorrow on.
    const runs = page.getByTestId('cron-preview').locator('time');
    await runs.first().waitFor();
    expect(await runs.evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')))).toEqual(
      [15, 16, 17, 18, 19].map((d) => `2025-03-${d}T03:00:00.000Z`),
    );
    await expectAccessible(page);
    await screenshot(page, 'policies');

    // A schedule the scheduler would refuse: the API's message, next to the field; nothing sent.
    const subject = commandSubject({ kind: 'scheduler' }, 'define-policy');
    const before = await commandsSent(subject);
    await page.getByLabel('Cron expression').fill('0 3 * * *');
    await page.getByLabel('Time zone').fill('Mars/Olympus');
    await page.getByTestId('cron-preview').getByText('unknown time zone').waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    // The body's schema first: a policy that keeps nothing.
    await page.getByTestId('issue-retention').getByText('a retention policy must keep something').waitFor();
    await page.getByLabel('daily').fill('14');
    await page.getByRole('button', { name: 'Save' }).click();
    const issue = page.getByTestId('issue-timezone');
    await issue.waitFor();
    expect(await page.getByTestId('issue-retention').count()).toBe(0);
    expect(await issue.textContent()).toContain(
      'body.policy.schedule.timezone: unknown time zone "Mars/Olympus"',
    );
    expect(await page.getByLabel('Time zone').getAttribute('aria-invalid')).toBe('true');
    expect(await commandsSent(subject)).toBe(before);

    await page.getByLabel('Time zone').fill('Europe/Berlin');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Sent policy dashboard-policy' }).waitFor();
    expect(await commandsSent(subject)).toBe(before + 1);
    const jsm = await jetstreamManager(stack.nc);
    const sent = await jsm.streams.getMessage(STREAMS.commands.name, { last_by_subj: subject });
    const data = (
      sent!.json() as { data: { policyId: string; scope: unknown; policy: Record<string, unknown> } }
    ).data;
    expect(data).toMatchObject({
      policyId: 'dashboard-policy',
      scope: { kind: 'volume', hostId: host, volumeName: 'gamma' },
      policy: {
        enabled: true,
        schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
        retention: { keepDaily: 14 },
      },
    });
    // Once the scheduler records it, it shows without a reload.
    await publisher.publish(
      createEvent(
        PolicyDefined,
        {
          policyId: 'dashboard-policy',
          scope: { kind: 'volume', hostId: host, volumeName: 'gamma' },
          origin: 'api',
          policy: data.policy as never,
          definedAt: new Date().toISOString(),
        },
        { source },
      ),
    );
    await page.locator('tr[data-policy="dashboard-policy"]').getByText('daily 14').waitFor();
    expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
    await page.context().close();
  });

  it('shows the event log filtered by host, volume and type', async () => {
    const { page, problems } = await open();
    await signIn(page, READ);
    await page.goto(`${base}/#/events`);
    await page.getByLabel('Host').selectOption({ label: 'second' });
    await page.getByLabel('Volume').fill('alpha');
    await page.getByLabel('Type').selectOption('backup');
    await page.getByLabel('Volume').press('Enter');
    const rows = page.getByTestId('event-log').locator('tbody tr');
    await rows.first().waitFor();
    const seen = await rows.evaluateAll((trs) =>
      trs.map((tr) => [
        tr.getAttribute('data-type'),
        tr.children[2]!.textContent,
        tr.children[3]!.textContent,
      ]),
    );
    // The history's seven backups of alpha (requested, then completed or failed, each) and the
    // "back up now" test's start; every one of alpha's backup events since the period's start.
    expect(seen.length).toBeGreaterThanOrEqual(14);
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const answer = (await (
      await fetch(
        `${base}/v1/events?since=${since}&host=${host}&volume=alpha&type=io.volback.backup.&limit=1000`,
        {
          headers: { authorization: `Bearer ${READ}` },
        },
      )
    ).json()) as { items: unknown[] };
    expect(seen).toHaveLength(answer.items.length);
    for (const [type, hostName, volume] of seen) {
      expect(type).toMatch(/^io\.volback\.backup\./);
      expect([hostName, volume]).toEqual(['second', 'alpha']);
    }
    // Another type: only that type.
    await page.getByLabel('Type').selectOption('volume');
    await page.getByRole('button', { name: 'Show' }).click();
    await page
      .getByTestId('event-log')
      .locator('tbody tr[data-type^="io.volback.volume."]')
      .first()
      .waitFor();
    expect(
      await rows.evaluateAll((trs) =>
        trs.every((tr) => tr.getAttribute('data-type')!.startsWith('io.volback.volume.')),
      ),
    ).toBe(true);
    await expectAccessible(page);
    await screenshot(page, 'events');
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
