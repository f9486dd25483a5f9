import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  startDockerEngine,
  startHttpReceiver,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type HttpReceiver,
  type NatsServer,
} from '@volback/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startCatalogService,
  startService,
  stopTestStack,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { untar } from './tar-fixture.ts';
import { runInVolume } from './volume-fixture.ts';

const PASSWORD = 'e2e-dashboard-password';
const WRITE = 'e2e-dashboard-write-token';
const VOLUME = 'webdata';
const HOOK_SECRET = 'e2e-dashboard-signing-secret';
/** The compose project of the Applications tests: two containers, two volumes. */
const SHOP = {
  project: 'shop',
  volumes: ['shop_db', 'shop_uploads'],
  containers: ['shop-db-1', 'shop-web-1'],
};

/**
 * The dashboard in Debian's Chromium against a whole stack of processes: NATS, a gateway with a
 * repository, the scheduler, an agent on a private Docker Engine and the catalog serving the
 * built dashboard. Snapshots are real backups of a real volume; a restore is checked on the engine.
 */
describe('the dashboard against a running stack (Chromium)', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  const services: ServiceProcess[] = [];
  let catalog: CatalogProcess;
  let browser: Browser;
  let hook: HttpReceiver;
  let hostId: string;
  let hostName: string;
  const snapshots: string[] = [];

  const api = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${catalog.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${WRITE}`, 'content-type': 'application/json' },
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };

  async function backUp(): Promise<string> {
    const { backupId } = await api<{ backupId: string }>(`/v1/hosts/${hostId}/volumes/${VOLUME}/backups`, {
      method: 'POST',
      body: '{}',
    });
    let snapshotId: string | undefined;
    await waitUntil(
      `backup ${backupId} to complete`,
      async () => {
        const res = await fetch(`${catalog.url}/v1/backups/${backupId}`, {
          headers: { authorization: `Bearer ${WRITE}` },
        });
        if (!res.ok) return false;
        const b = (await res.json()) as { phase: string; snapshotId: string | null };
        if (b.phase === 'Failed') throw new Error(`backup ${backupId} failed`);
        snapshotId = b.snapshotId ?? undefined;
        return b.phase === 'Completed' && snapshotId !== undefined;
      },
      60_000,
    );
    return snapshotId!;
  }

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-dashboard-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-dashboard-test' });
    await engine.docker.createVolume({ Name: VOLUME });
    await runInVolume(
      engine.docker,
      engine.image,
      VOLUME,
      'mkdir -p "$1/data" "$1/notes" && dd if=/dev/urandom of="$1/data/blob.bin" bs=1024 count=300 2>/dev/null && echo first > "$1/notes/readme.txt" && echo old > "$1/notes/old.txt"',
    );
    // A running container using the volume: restoring into it names and stops that container.
    const app = await engine.docker.createContainer({
      Image: engine.image,
      name: 'webapp',
      Cmd: ['sleep', '3600'],
      // sleep as PID 1 ignores SIGTERM: stopped at once instead of after Docker's 10 s.
      StopSignal: 'SIGKILL',
      HostConfig: { NetworkMode: 'none', Binds: [`${VOLUME}:/srv`] },
    });
    await app.start();
    // An application as compose labels it: a database and a web container, a volume each.
    for (const volume of SHOP.volumes) {
      await engine.docker.createVolume({
        Name: volume,
        Labels: { 'com.docker.compose.project': SHOP.project },
      });
      await runInVolume(engine.docker, engine.image, volume, `echo "${volume} data" > "$1/${volume}.txt"`);
    }
    for (const [i, name] of SHOP.containers.entries()) {
      const container = await engine.docker.createContainer({
        Image: engine.image,
        name,
        Cmd: ['sleep', '3600'],
        StopSignal: 'SIGKILL',
        Labels: {
          'com.docker.compose.project': SHOP.project,
          'com.docker.compose.service': name.split('-')[1]!,
        },
        HostConfig: { NetworkMode: 'none', Binds: [`${SHOP.volumes[i]}:/data`] },
      });
      await container.start();
    }
    hook = await startHttpReceiver();
    const started = await Promise.all([
      startService(
        'gateway',
        'gateway-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
      startCatalogService(
        'catalog-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: WRITE },
        join(dir, 'catalog'),
        dir,
      ),
      // On demand (labelled volumes only), and a notifier that gives up quickly after 2 attempts.
      startService(
        'scheduler',
        'scheduler-1',
        {
          VOLBACK_NATS_URL: nats.url,
          VOLBACK_SCHEDULER_DEFAULT_POLICY: 'labelled',
          VOLBACK_SCHEDULER_ID: 'scheduler-1',
          VOLBACK_NOTIFY_ATTEMPTS: '2',
          VOLBACK_NOTIFY_RETRY_DELAY_MS: '100',
        },
        dir,
      ),
      startService(
        'agent',
        'agent-1',
        {
          VOLBACK_NATS_URL: nats.url,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: join(dir, 'agent-state'),
          VOLBACK_HELPER_IMAGE: engine.image,
        },
        dir,
      ),
    ]);
    services.push(...started);
    catalog = started[1] as CatalogProcess;
    await waitUntil(
      'the catalog to list the volume and the container using it',
      async () => {
        const res = await fetch(`${catalog.url}/v1/volumes?limit=500`);
        const { items } = (await res.json()) as {
          items: Array<{ hostId: string; volumeName: string; usedBy: Array<{ containerName: string }> }>;
        };
        const v = items.find((i) => i.volumeName === VOLUME);
        hostId = v?.hostId ?? '';
        return v?.usedBy.some((u) => u.containerName === 'webapp') ?? false;
      },
      30_000,
    );
    hostName = (await api<{ name: string }>(`/v1/hosts/${hostId}`)).name;
    snapshots.push(await backUp());
    await runInVolume(
      engine.docker,
      engine.image,
      VOLUME,
      'echo second version > "$1/notes/readme.txt" && rm "$1/notes/old.txt" && echo new > "$1/notes/new.txt"',
    );
    snapshots.push(await backUp());
    browser = await chromium.launch({
      executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await hook?.close();
    await stopTestStack({ services, nc, engine, nats, dir });
  });

  /** A page signed in with the write token (kept where the Access page keeps it). */
  async function open(options: { width?: number; dark?: boolean } = {}) {
    const context = await browser.newContext({
      viewport: { width: options.width ?? 1200, height: 900 },
      colorScheme: options.dark ? 'dark' : 'light',
    });
    await context.addInitScript((token) => localStorage.setItem('volback.token', token), WRITE);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    return { page, problems };
  }

  async function screenshot(page: Page, name: string) {
    const out = process.env['VOLBACK_SCREENSHOTS_DIR'];
    if (out) await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  }

  async function expectAccessible(page: Page) {
    const result = await new AxeBuilder({ page }).analyze();
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
  }

  async function inVolume(volume: string, script: string): Promise<string> {
    return runInVolume(engine.docker, engine.image, volume, script);
  }

  it('browses a snapshot from the volume page and downloads a file whose bytes are the source’s', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/volumes/${hostId}/${VOLUME}`);
    await page.getByRole('link', { name: `Browse snapshot ${snapshots[1]!.slice(0, 8)}` }).click();
    const tree = page.getByTestId('tree');
    await tree.locator('tr[data-path="/data"]').waitFor();
    expect(await tree.locator('tbody th').allTextContents()).toEqual(['data/', 'notes/']);
    await tree.getByRole('link', { name: 'data/' }).click();
    const row = tree.locator('tr[data-path="/data/blob.bin"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('300.0 KiB');
    await expectAccessible(page);
    await screenshot(page, 'snapshot');

    const [file] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('button', { name: 'Download blob.bin' }).click(),
    ]);
    expect(file.suggestedFilename()).toBe('blob.bin');
    const bytes = await readFile((await file.path())!);
    const source = await inVolume(VOLUME, 'sha256sum "$1/data/blob.bin"');
    expect(bytes.length).toBe(300 * 1024);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(source.split(' ')[0]);

    // A directory comes as tar, by keyboard: the breadcrumb back to the root, then its row's button.
    await page.getByRole('navigation', { name: 'Path' }).getByRole('link', { name: VOLUME }).click();
    const notes = tree.getByRole('button', { name: 'Download notes as tar' });
    await notes.waitFor();
    await notes.focus();
    const [tar] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    expect(tar.suggestedFilename()).toMatch(/^notes-[0-9a-f]{8}\.tar$/);
    const files = await untar(await readFile((await tar.path())!));
    expect(files.get('readme.txt')).toBe('second version\n');
    expect(files.get('new.txt')).toBe('new\n');
    expect([...files.keys()]).not.toContain('old.txt');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('finds files by glob across the volume’s snapshots and shows what changed between two', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/volumes/${hostId}/${VOLUME}`);
    await page.getByLabel('Name or glob').fill('notes/*.txt');
    await page.getByLabel('Name or glob').press('Enter');
    await page.getByRole('status').filter({ hasText: 'matches in the newest 2 snapshots' }).waitFor();
    const found = await page.getByTestId('found').locator('tbody th').allTextContents();
    expect(found.sort()).toEqual([
      '/notes/new.txt',
      '/notes/old.txt',
      '/notes/readme.txt',
      '/notes/readme.txt',
    ]);

    // The default comparison: the older snapshot to the newer.
    await page.getByRole('button', { name: 'Compare' }).click();
    const diff = page.getByTestId('diff');
    await diff.getByText('1 added, 1 removed, 1 changed').waitFor();
    expect(await diff.locator('.diff-added').textContent()).toContain('/notes/new.txt');
    expect(await diff.locator('.diff-removed').textContent()).toContain('/notes/old.txt');
    expect(await diff.locator('.diff-changed').textContent()).toContain('/notes/readme.txt (content');
    await expectAccessible(page);
    await screenshot(page, 'find-and-diff');
    expect(problems).toEqual([]);
    await page.context().close();

    // The API itself: the same diff, and a snapshot of another volume refused.
    const answer = await api<{
      added: Array<{ path: string }>;
      changed: Array<{ path: string; kind: string }>;
    }>(`/v1/snapshots/${snapshots[0]}/diff?to=${snapshots[1]}`);
    expect(answer.added.map((e) => e.path)).toEqual(['/notes/new.txt']);
    expect(answer.changed).toMatchObject([{ path: '/notes/readme.txt', kind: 'content' }]);
    const same = await api<{ added: unknown[]; removed: unknown[]; changed: unknown[] }>(
      `/v1/snapshots/${snapshots[1]}/diff?to=${snapshots[1]}`,
    );
    expect([same.added, same.removed, same.changed]).toEqual([[], [], []]);
    // A directory is no file to download; a snapshot of another volume is no diff.
    const directory = await fetch(`${catalog.url}/v1/snapshots/${snapshots[0]}/file?path=/notes`, {
      headers: { authorization: `Bearer ${WRITE}` },
    });
    expect(directory.status).toBe(404);
    expect(((await directory.json()) as { code: string }).code).toBe('VOLBACK_CATALOG_PATH_NOT_FOUND');
  });

  it('restores a sub-path into a new volume through the wizard, with live progress', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/snapshots/${snapshots[0]}/${encodeURIComponent('/notes')}`);
    await page.getByRole('link', { name: 'Restore /notes…' }).click();
    await page.getByLabel('Path in the volume').waitFor();
    expect(await page.getByLabel('Path in the volume').inputValue()).toBe('/notes');
    await page.getByLabel('Name of the new volume').fill('notes-back');
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Review' }).click();
    const confirmation = page.getByTestId('confirmation');
    expect(await confirmation.textContent()).toBe(
      `Restore /notes of snapshot ${snapshots[0]!.slice(0, 8)} into the new volume notes-back on host ${hostName}. The volume is created; nothing else changes.`,
    );
    await screenshot(page, 'restore-confirm');
    await page.getByRole('button', { name: 'Restore now' }).click();
    await page
      .getByTestId('restore-outcome')
      .filter({ hasText: /^Restored 2 files/ })
      .waitFor({ timeout: 60_000 });
    expect(
      await inVolume('notes-back', 'cat "$1/notes/readme.txt" "$1/notes/old.txt"; cd "$1" && find . | sort'),
    ).toBe('first\nold\n.\n./notes\n./notes/old.txt\n./notes/readme.txt\n');
    await screenshot(page, 'restore-done');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('restores into the existing volume, naming and stopping the container that uses it', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/restore/${snapshots[0]}/${encodeURIComponent('/notes/readme.txt')}`);
    await page.getByLabel('Into an existing volume').check();
    expect(await page.getByLabel('Volume on this host').inputValue()).toBe(VOLUME);
    await page
      .getByTestId('containers-stopped')
      .filter({ hasText: 'will be stopped during the restore and started again after: webapp.' })
      .waitFor();
    await page.getByRole('button', { name: 'Review' }).click();
    expect(await page.getByTestId('confirmation').textContent()).toContain(
      `into the existing volume ${VOLUME} on host ${hostName}. Files the snapshot holds replace those of the same name there; other files stay. Stopped during the restore, then started again: webapp.`,
    );
    // A dry run first: the one file it would replace, nothing written.
    await page.getByRole('button', { name: 'Preview the changes (dry run)' }).click();
    const plan = page.getByTestId('dry-run').getByText(/^Replaced: 1/);
    await plan.waitFor({ timeout: 60_000 });
    expect(await plan.textContent()).toContain('/notes/readme.txt');
    expect(await inVolume(VOLUME, 'cat "$1/notes/readme.txt"')).toBe('second version\n');
    await expectAccessible(page);
    await screenshot(page, 'restore-dry-run');
    await page.getByRole('button', { name: 'Restore now' }).click();
    await page
      .getByTestId('restore-outcome')
      .filter({ hasText: /^Restored 1 files/ })
      .waitFor({ timeout: 120_000 })
      .catch(async (e: unknown) => {
        throw new Error(`${String(e)}\n${await page.locator('main').innerText()}`);
      });
    expect(await inVolume(VOLUME, 'cat "$1/notes/readme.txt" "$1/notes/new.txt"')).toBe('first\nnew\n');
    const app = await engine.docker.getContainer('webapp').inspect();
    expect(app.State.Running).toBe(true);
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('downloads a path as tar from the wizard, saying that nothing on the host changes', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/restore/${snapshots[1]}/${encodeURIComponent('/notes')}`);
    await page.getByLabel('Download as a tar file').check();
    await page.getByRole('button', { name: 'Review' }).click();
    expect(await page.getByTestId('confirmation').textContent()).toBe(
      `Download /notes of snapshot ${snapshots[1]!.slice(0, 8)} as a tar file. Nothing on the host changes.`,
    );
    const [tar] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download' }).click(),
    ]);
    const files = await untar(await readFile((await tar.path())!));
    expect([...files.entries()].filter(([, v]) => !v.startsWith('<')).sort()).toEqual([
      ['new.txt', 'new\n'],
      ['readme.txt', 'second version\n'],
    ]);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('hides the restore wizard from a read-only visitor; new pages fit a phone in dark mode', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 800 }, colorScheme: 'dark' });
    const page = await context.newPage();
    // 127.0.0.1 without a token reads (the loopback exemption) but may not write: a write token exists.
    await page.goto(`${catalog.url}/#/snapshots/${snapshots[1]}`);
    await page.getByTestId('tree').waitFor();
    expect(await page.getByRole('link', { name: /^Restore/ }).count()).toBe(0);
    const overflow = () =>
      page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await expectAccessible(page);
    await screenshot(page, 'snapshot-phone-dark');
    await context.addInitScript((token) => localStorage.setItem('volback.token', token), WRITE);
    await page.goto(`${catalog.url}/#/restore/${snapshots[1]}`);
    await page.reload();
    await page.getByRole('button', { name: 'Review' }).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await expectAccessible(page);
    for (const [route, ready] of [
      ['sets', page.locator('tr[data-set="compose:shop"]')],
      ['notifications', page.getByRole('button', { name: 'Add a channel' })],
    ] as const) {
      await page.goto(`${catalog.url}/#/${route}`);
      await ready.waitFor();
      expect(await overflow()).toBeLessThanOrEqual(0);
      await expectAccessible(page);
    }
    await context.close();
  });

  it('shows a new volume on the overview as it appears, then protected once backed up from its page', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/`);
    // The overview follows the event stream before the volume exists.
    await page.getByText('Live: this page follows the event stream.').waitFor();
    await engine.docker.createVolume({ Name: 'arrives-later' });
    const rowOf = (protection?: string) =>
      page.locator(protection ? `tr[data-protection="${protection}"]` : 'tr', {
        has: page.getByRole('link', { name: 'arrives-later', exact: true }),
      });
    await rowOf().waitFor({ timeout: 30_000 });
    expect(await rowOf().getAttribute('data-protection')).toBe('never');
    await rowOf().getByRole('link', { name: 'arrives-later', exact: true }).click();
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByRole('status').waitFor();
    await page.goto(`${catalog.url}/#/`);
    await rowOf('protected').waitFor({ timeout: 60_000 });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows a compose project in Applications, backs it up as a set live, and dry-runs its restore before restoring it', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/sets`);
    const row = page.locator('tr[data-set="compose:shop"]');
    await row.waitFor({ timeout: 30_000 });
    const listed = await row.textContent();
    for (const name of [...SHOP.volumes, ...SHOP.containers]) expect(listed).toContain(name);
    expect(listed).toContain('never');
    await expectAccessible(page);

    await row.getByRole('link', { name: SHOP.project, exact: true }).click();
    await page.getByRole('button', { name: 'Back up this set now' }).click();
    // The live section names each volume while it runs, then the outcome with the member snapshots.
    await page.getByTestId('set-backup-members').or(page.getByTestId('set-backup-outcome')).first().waitFor();
    const outcome = page.getByTestId('set-backup-outcome');
    await outcome
      .filter({ hasText: 'Every volume has a snapshot of the same point in time' })
      .waitFor({ timeout: 60_000 });
    const members = await outcome.getByRole('link', { name: /^Browse snapshot/ }).allTextContents();
    expect(members).toHaveLength(2);
    const { backups } = await api<{
      backups: Array<{ phase: string; members: Array<{ snapshotId: string }> }>;
    }>(`/v1/sets/compose:shop?hostId=${hostId}`);
    expect(backups[0]).toMatchObject({ phase: 'Completed' });
    expect(members.sort()).toEqual(backups[0]!.members.map((m) => m.snapshotId.slice(0, 8)).sort());
    await page.locator('[data-testid="set-backups"] .phase-Completed').first().waitFor();
    await expectAccessible(page);
    await screenshot(page, 'application');

    // The wizard: new names, containers recreated; the dry run lists what would be created.
    await page.getByRole('link', { name: 'Restore this set…' }).click();
    await page.getByLabel('Recreate the containers').check();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Review (dry run first)' }).click();
    const plan = page.getByTestId('set-plan');
    await plan.waitFor({ timeout: 60_000 });
    const planned = await plan.textContent();
    expect(planned).toContain('create the volumes shop_db-restored, shop_uploads-restored');
    for (const name of SHOP.containers) expect(planned).toContain(`create the container ${name}-restored`);
    expect(planned).toContain('mounts shop_db-restored:/data');
    const confirmation = (await page.getByTestId('set-confirmation').textContent()) ?? '';
    expect(confirmation).toMatch(
      new RegExp(
        `^Restore 2 volumes of compose:shop from the set backup of .+ on host ${hostName}, then create the containers .+ and start those that were running\\.$`,
      ),
    );
    for (const name of SHOP.containers) expect(confirmation).toContain(`${name}-restored`);
    // A dry run creates nothing.
    const volumes = async () => ((await engine.docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    expect(await volumes()).not.toContain('shop_db-restored');
    await expectAccessible(page);
    await screenshot(page, 'application-restore-dry-run');

    await page.getByRole('button', { name: 'Restore now' }).click();
    await page
      .getByTestId('set-restore-outcome')
      .filter({ hasText: /^Restored shop_db-restored, shop_uploads-restored; containers: / })
      .waitFor({ timeout: 90_000 });
    expect(await inVolume('shop_uploads-restored', 'cat "$1/shop_uploads.txt"')).toBe('shop_uploads data\n');
    const web = await engine.docker.getContainer('shop-web-1-restored').inspect();
    expect(web.Mounts.map((m) => m.Name)).toEqual(['shop_uploads-restored']);

    await page.goto(`${catalog.url}/#/sets`);
    await page.locator('tr[data-set="compose:shop"] .phase-Completed').waitFor();
    await screenshot(page, 'applications');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('adds a webhook channel, sends tests that fail then reach a real receiver, and lists both deliveries', async () => {
    const { page, problems } = await open();
    await page.goto(`${catalog.url}/#/notifications`);
    await page.getByText('No channel: nobody is notified of failures.').waitFor();
    await page.getByRole('button', { name: 'Add a channel' }).click();
    await page.getByLabel('Name', { exact: true }).fill('ops-hook');
    // A URL of no known service: the API's message next to the field, nothing saved.
    const url = page.getByLabel(/^URL/);
    await url.fill('ftp://files.example.org/drop?token=e2e-bad-token');
    await page.getByRole('button', { name: 'Save channel' }).click();
    await page.locator('#channel-url-error').waitFor();
    // The browser logs the API's answer to that PUT: the one error this test expects.
    expect(problems.splice(0)).toEqual([
      'Failed to load resource: the server responded with a status of 400 (Bad Request)',
    ]);
    expect(await url.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('main').innerText()).not.toContain('e2e-bad-token');
    await url.fill(`generic+${hook.url}/volback?token=e2e-hook-token`);
    await page.getByLabel(/^Signing secret/).fill(HOOK_SECRET);
    await page.getByLabel('success', { exact: true }).check();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Save channel' }).click();
    const row = page.locator('tr[data-channel="ops-hook"]');
    await row.waitFor();
    expect(await row.textContent()).toContain(`generic+${hook.url}/volback?token=***`);
    expect(await row.textContent()).toContain('failure, at-risk, recovery, success');

    // The receiver answers 500 twice: both attempts fail, and the failure says why.
    hook.respondWith(500, 500);
    await row.getByRole('button', { name: 'Send test to ops-hook' }).click();
    const message = page.getByTestId('notify-message');
    await message.filter({ hasText: /^Test to ops-hook failed/ }).waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: 'Send test to ops-hook' }).click();
    await message.filter({ hasText: 'Test delivered to ops-hook (1 attempt, status 204).' }).waitFor({
      timeout: 30_000,
    });
    const posted = await hook.waitForRequests(3, (r) => r.headers['x-volback-notification'] === 'test');
    expect(posted.map((r) => r.status)).toEqual([500, 500, 204]);
    expect(posted[2]!.path).toBe('/volback?token=e2e-hook-token');
    expect(posted[2]!.headers['x-volback-signature']).toBe(
      `sha256=${createHmac('sha256', HOOK_SECRET).update(posted[2]!.body).digest('hex')}`,
    );
    const deliveries = page.getByTestId('deliveries');
    await deliveries.locator('tr[data-delivery="delivered"]').waitFor();
    await deliveries.locator('tr[data-delivery="failed"]').waitFor();
    expect(await deliveries.locator('tr[data-delivery="failed"]').textContent()).toMatch(
      /ops-hook.*test.*500/,
    );
    expect(await page.locator('main').innerText()).not.toContain('e2e-hook-token');
    await expectAccessible(page);
    await screenshot(page, 'notifications');

    // Edited: the URL typed again (never shown back), success no longer notified.
    await row.getByRole('button', { name: 'Edit ops-hook' }).click();
    expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('ops-hook');
    await page.getByLabel(/^URL/).fill(`generic+${hook.url}/volback?token=e2e-hook-token`);
    await page.getByLabel('success', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Save channel' }).click();
    await page.getByTestId('notify-message').filter({ hasText: 'Channel ops-hook saved.' }).waitFor();
    await row.filter({ hasText: 'failure, at-risk, recovery' }).filter({ hasNotText: 'success' }).waitFor();
    expect(await row.textContent()).not.toContain('(signed)');

    // Removed after a second confirmation click.
    await row.getByRole('button', { name: 'Remove ops-hook', exact: true }).click();
    await row.getByRole('button', { name: 'Remove ops-hook now' }).click();
    await page.getByText('No channel: nobody is notified of failures.').waitFor();
    expect(await api<{ items: unknown[] }>('/v1/notifications/channels')).toEqual({ items: [] });
    expect(problems).toEqual([]);
    await page.context().close();
  }, 120_000);
});
