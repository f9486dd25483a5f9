// `volback notify list|set|remove|test`: notification channels through the catalog API. A channel's
// URL and secret hold credentials: they are read from files (or stdin), never from arguments.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { paths } from './api-types.ts';
import { collect, type Runner } from './catalog-commands.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import { enc } from './catalog-lookups.ts';
import { table } from './output.ts';
import { UsageError } from './usage-error.ts';

type Channel =
  paths['/v1/notifications/channels']['get']['responses'][200]['content']['application/json']['items'][number];
type TestAnswer = paths['/v1/notifications/test']['post']['responses'][200]['content']['application/json'];

/** The first line of a file, or of stdin for `-`: a URL or a secret, never an argument. */
function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${what}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const line = text.split(/\r?\n/)[0]?.trim() ?? '';
  if (!line) throw new UsageError(`${what}: ${path} is empty`);
  return line;
}

function filterText(c: Channel): string {
  const parts = [
    (c.filter.kinds ?? ['failure', 'at-risk', 'recovery']).join(','),
    ...(c.filter.hosts ? [`hosts ${c.filter.hosts.join(',')}`] : []),
    ...(c.filter.volumes ? [`volumes ${c.filter.volumes.join(',')}`] : []),
  ];
  return parts.join('; ');
}

async function listCommand(ctx: CatalogContext): Promise<number> {
  const { items } = await ctx.client.get<{ items: Channel[] }>('/v1/notifications/channels');
  ctx.out.result(items, () =>
    items.length === 0
      ? 'no notification channel (volback notify set, or VOLBACK_NOTIFY_URLS of the scheduler)'
      : table(
          ['CHANNEL', 'SERVICE', 'URL', 'GETS', 'ORIGIN'],
          items.map((c) => [
            c.name,
            c.signed ? `${c.service} (signed)` : c.service,
            c.url,
            filterText(c),
            c.origin,
          ]),
        ),
  );
  return EXIT.ok;
}

async function setCommand(
  ctx: CatalogContext,
  name: string,
  o: { urlFile: string; secretFile?: string; kind?: string[]; host?: string[]; volume?: string[] },
): Promise<number> {
  if (o.urlFile === '-' && o.secretFile === '-')
    throw new UsageError('only one of --url-file and --secret-file can be stdin');
  const body = {
    url: readSecretFile(o.urlFile, '--url-file'),
    ...(o.secretFile ? { secret: readSecretFile(o.secretFile, '--secret-file') } : {}),
    filter: {
      ...(o.kind?.length ? { kinds: o.kind } : {}),
      ...(o.host?.length ? { hosts: o.host } : {}),
      ...(o.volume?.length ? { volumes: o.volume } : {}),
    },
    requestedBy: 'cli',
  };
  const channel = await ctx.client.send<Channel>('PUT', `/v1/notifications/channels/${enc(name)}`, body);
  ctx.out.result(
    channel,
    () => `channel ${channel.name}: ${channel.service} ${channel.url} (gets ${filterText(channel)})`,
  );
  return EXIT.ok;
}

async function removeCommand(ctx: CatalogContext, name: string): Promise<number> {
  await ctx.client.send('DELETE', `/v1/notifications/channels/${enc(name)}`);
  ctx.out.result({ removed: name }, () => `channel ${name} removed`);
  return EXIT.ok;
}

async function testCommand(
  ctx: CatalogContext,
  channel: string | undefined,
  o: { wait: string },
): Promise<number> {
  const waitSeconds = Number(o.wait);
  if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > 300) {
    throw new UsageError('--wait: whole seconds from 1 to 300');
  }
  ctx.out.progress(`sending a test notification${channel ? ` to ${channel}` : ''}…`);
  const answer = await ctx.client.send<TestAnswer>('POST', '/v1/notifications/test', {
    ...(channel ? { channel } : {}),
    waitSeconds,
    requestedBy: 'cli',
  });
  ctx.out.result(answer, () => {
    const rows = answer.results.map((r) => [
      r.channel,
      r.ok ? 'delivered' : 'FAILED',
      String(r.attempts),
      r.ok
        ? r.status !== undefined
          ? `status ${r.status}`
          : ''
        : `${r.code ?? ''} ${r.reason ?? ''}`.trim(),
    ]);
    const lines = [table(['CHANNEL', 'RESULT', 'ATTEMPTS', 'DETAIL'], rows)];
    if (!answer.complete)
      lines.push(
        `some channels had not answered after ${waitSeconds} s (test ${answer.testId}); see volback events --type io.volback.notification`,
      );
    return lines.join('\n');
  });
  if (answer.results.some((r) => !r.ok)) return EXIT.failed;
  return answer.complete ? EXIT.ok : EXIT.partial;
}

/** Adds `volback notify …` to `program`. */
export function registerNotifyCommands(program: Command, run: Runner): void {
  const notify = program.command('notify').description('notification channels: list, set, remove, test');
  notify
    .command('list', { isDefault: true })
    .description('every channel, without secrets')
    .action((_o, cmd: Command) => run(cmd, (ctx) => listCommand(ctx)));
  notify
    .command('set')
    .description('define or replace a channel (URL and secret from files: never on the command line)')
    .argument('<name>', 'channel name (a-z, 0-9, - and _)')
    .requiredOption('--url-file <file>', "file whose first line is the channel's URL (- for stdin)")
    .option('--secret-file <file>', 'file whose first line is the HMAC secret of a generic webhook')
    .option(
      '--kind <kind>',
      'failure, at-risk, recovery or success (repeatable; default the first three)',
      collect,
    )
    .option('--host <hostId>', 'only events of this host (repeatable)', collect)
    .option('--volume <pattern>', 'only events of matching volumes, * as wildcard (repeatable)', collect)
    .action((name: string, o, cmd: Command) => run(cmd, (ctx) => setCommand(ctx, name, o)));
  notify
    .command('remove')
    .description('remove a channel of the API')
    .argument('<name>', 'channel name')
    .action((name: string, _o, cmd: Command) => run(cmd, (ctx) => removeCommand(ctx, name)));
  notify
    .command('test')
    .description('send a test notification (to every channel, or one) and report the outcome')
    .argument('[channel]', 'channel name')
    .option('--wait <seconds>', 'how long to wait for the outcome', '60')
    .action((channel: string | undefined, o: { wait: string }, cmd: Command) =>
      run(cmd, (ctx) => testCommand(ctx, channel, o)),
    );
}
