// `volback init …`: a deployment's secrets (SECURITY-PLAN §5). Prints where it wrote what, never
// a secret itself.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.ts';
import { DEFAULT_SECRETS_DIR } from './init-error.ts';

/**
 * What the commands do, loaded when one runs: with the contracts' schemas, nkeys and X.509 it
 * costs every other command (`volback repo backup`) about 30 ms of its start.
 */
const secretsDir = () => import('./secrets-dir.ts');

/** Runs one init command; its result is the exit code. */
export type InitRunner = (command: Command, body: () => Promise<void>) => Promise<void>;

interface DirFlags {
  dir?: string;
  reloadPid?: string[];
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function withDir(command: Command): Command {
  return command
    .option('--dir <dir>', `the secrets directory (default ${DEFAULT_SECRETS_DIR})`)
    .option(
      '--reload-pid <pid>',
      'a NATS server to reload (repeatable; default: the pid file of each server in <dir>/nats)',
      collect,
    );
}

function dirOf(flags: DirFlags): string {
  return resolve(flags.dir ?? DEFAULT_SECRETS_DIR);
}

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function reload(flags: DirFlags): Promise<void> {
  const pids = (flags.reloadPid ?? []).map((given) => {
    const pid = Number(given);
    if (!Number.isInteger(pid) || pid <= 0) throw new UsageError(`--reload-pid ${given} is not a process id`);
    return pid;
  });
  const outcome = await (await secretsDir()).reloadNats(dirOf(flags), pids);
  for (const { node, pid } of outcome.reloaded)
    write(node ? `reloaded NATS node ${node} (pid ${pid})` : `reloaded NATS (pid ${pid})`);
  if (outcome.how) write(outcome.how);
}

/** Registers `volback init` and its subcommands. */
export function registerInitCommands(program: Command, run: InitRunner): void {
  const init = withDir(
    program
      .command('init')
      .description(
        "write a deployment's secrets: CA and TLS certificates, NATS config and identities, passwords, tokens",
      ),
  )
    .option(
      '--nats-host <name>',
      'a further name or address of NATS in its certificate (repeatable)',
      collect,
    )
    .option(
      '--minio-host <name>',
      'a further name or address of MinIO in its certificate (repeatable)',
      collect,
    )
    .option(
      '--nats-listen <[node=]host:port>',
      'where NATS listens for clients (default 0.0.0.0:4222); in a cluster for every node, or node=host:port for one (repeatable); a node listens for routes on the same host',
      collect,
    )
    .option(
      '--nats-cluster <node=host:port,...>',
      'a NATS cluster instead of one server: each node with the address the others dial for routes (mutual TLS); one config per node (repeatable)',
      collect,
    )
    .option('--nats-cluster-name <name>', 'the name of the NATS cluster (default volback)')
    .option('--nats-store-dir <dir>', 'the JetStream store of NATS (default <dir>/nats/jetstream)')
    .option('--nats-server-name <name>', 'the server_name of NATS (default volback-nats)')
    .option(
      '--nats-secrets-path <path>',
      'where NATS sees <dir> (a container mount, e.g. /etc/volback): the paths its config names',
    )
    .option('--force', 'replace an existing set-up (every secret but the repository password changes)')
    .addHelpText(
      'after',
      '\nThe repository password is VOLBACK_PASSWORD when set, else random. Files are 0600 in 0700 folders.',
    )
    .action(
      async (
        flags: DirFlags & {
          natsHost?: string[];
          minioHost?: string[];
          natsListen?: string[];
          natsCluster?: string[];
          natsClusterName?: string;
          natsStoreDir?: string;
          natsServerName?: string;
          natsSecretsPath?: string;
          force?: boolean;
        },
        command: Command,
      ) =>
        run(command, async () => {
          const dir = dirOf(flags);
          const listens = (flags.natsListen ?? []).flatMap((value) => value.split(','));
          const everyServer = listens.filter((value) => !value.includes('='));
          for (const value of everyServer) {
            if (!/^[^\s]+:\d{1,5}$/.test(value))
              throw new UsageError(`--nats-listen ${value} is not host:port`);
          }
          if (everyServer.length > 1) {
            throw new UsageError(
              `--nats-listen ${everyServer.join(' and ')}: one address for every server, or node=host:port per node`,
            );
          }
          const perNode = listens.filter((value) => value.includes('='));
          const password = process.env['VOLBACK_PASSWORD'];
          const files = await (
            await secretsDir()
          ).initSecrets({
            dir,
            natsHosts: flags.natsHost ?? [],
            minioHosts: flags.minioHost ?? [],
            ...(everyServer[0] ? { natsListen: everyServer[0] } : {}),
            ...(perNode.length ? { natsNodeListen: perNode } : {}),
            ...(flags.natsCluster ? { natsCluster: flags.natsCluster } : {}),
            ...(flags.natsClusterName ? { natsClusterName: flags.natsClusterName } : {}),
            ...(flags.natsStoreDir ? { natsStoreDir: flags.natsStoreDir } : {}),
            ...(flags.natsServerName ? { natsServerName: flags.natsServerName } : {}),
            ...(flags.natsSecretsPath ? { natsSecretsPath: flags.natsSecretsPath } : {}),
            ...(password ? { password } : {}),
            ...(flags.force ? { force: true } : {}),
          });
          write(`wrote ${files.length} files into ${dir}:`);
          for (const file of files) write(`  ${file}`);
          for (const config of files.filter((file) => file.endsWith('.conf')))
            write(`start NATS with: nats-server -c ${config}`);
          write('add a Docker host with: volback init agent <name>');
        }),
    );

  init
    .command('agent')
    .description('add a Docker host: its host id, nkey and identity file')
    .argument('<name>', 'the host, as people call it')
    .option('--host-id <id>', 'the host id (default: a new one; give the id an agent already has to keep it)')
    .action(async (name: string, _flags: { hostId?: string }, command: Command) =>
      run(command, async () => {
        const flags = command.optsWithGlobals<DirFlags & { hostId?: string }>();
        const files = await (await secretsDir()).addAgent(dirOf(flags), name, flags.hostId);
        write(`agent ${name}: host id ${files.hostId}`);
        write(
          `copy to the host: ${files.seedFile} (VOLBACK_NATS_NKEY_FILE), ${files.identityFile} (VOLBACK_HOST_ID_FILE), ${files.caFile} (VOLBACK_NATS_CA_FILE)`,
        );
        await reload(flags);
      }),
    );

  init
    .command('subscriber')
    .description('add a read-only identity for an external system that reads the events')
    .argument('<name>', 'letters, digits, _ and -')
    .action(async (name: string, _flags: object, command: Command) =>
      run(command, async () => {
        const flags = command.optsWithGlobals<DirFlags>();
        const { addSubscriber, secretPaths } = await secretsDir();
        const file = await addSubscriber(dirOf(flags), name);
        write(`subscriber ${name}: nkey seed ${file}, CA ${secretPaths(dirOf(flags)).caCert}`);
        await reload(flags);
      }),
    );

  init
    .command('nats-config')
    .description(
      'rewrite the NATS configuration from the identities, as this version writes it (after an upgrade: permissions for new operations), and reload NATS when it changed',
    )
    .option('--no-reload', 'only rewrite (NATS starts after this, or is reloaded by other means)')
    .action(async (_flags: object, command: Command) =>
      run(command, async () => {
        const flags = command.optsWithGlobals<DirFlags & { reload: boolean }>();
        const changed = await (await secretsDir()).refreshNatsConfig(dirOf(flags));
        if (changed.length === 0) {
          write('the NATS configuration is up to date');
          return;
        }
        for (const file of changed) write(`rewrote ${file}`);
        if (flags.reload) await reload(flags);
      }),
    );

  const rotate = init.command('rotate').description("replace an identity's key");
  rotate
    .command('agent')
    .description('a new nkey for an agent; the old one is refused once NATS reloads')
    .argument('<name>', 'the agent name or host id')
    .action(async (name: string, _flags: object, command: Command) =>
      run(command, async () => {
        const flags = command.optsWithGlobals<DirFlags>();
        const files = await (await secretsDir()).rotateAgent(dirOf(flags), name);
        write(
          `agent ${name}: new nkey seed ${files.seedFile}; copy it to the host (the agent reads it when it reconnects)`,
        );
        await reload(flags);
      }),
    );

  const revoke = init.command('revoke').description('remove an identity');
  revoke
    .command('agent')
    .description('remove an agent: NATS drops its connection on reload and refuses it')
    .argument('<name>', 'the agent name or host id')
    .action(async (name: string, _flags: object, command: Command) =>
      run(command, async () => {
        const flags = command.optsWithGlobals<DirFlags>();
        const agent = await (await secretsDir()).revokeAgent(dirOf(flags), name);
        write(`agent ${agent.name} (host id ${agent.hostId}) revoked`);
        await reload(flags);
      }),
    );
}
