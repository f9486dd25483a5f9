import type { ConsistencyCandidate, ContainerRef } from './consistency.ts';

/** The container labels that ask for a database dump (README, "Database dumps"). */
export const DUMP_LABELS = {
  /** The preset: one of {@link DUMP_PRESETS}. */
  preset: 'volback.dump',
  /** `alongside` (default): the dump next to the volume's files; `instead`: the dump alone. */
  mode: 'volback.dump.mode',
  /** The database to dump (a name; for `sqlite` the absolute path of the database file). */
  database: 'volback.dump.database',
  /** The database user to dump as (a name, never a password). */
  user: 'volback.dump.user',
  /** Name of the container's own env variable that holds the password (the value never leaves the container). */
  passwordEnv: 'volback.dump.password-env',
  /** `command` preset: the shell command whose stdout is the dump. */
  command: 'volback.dump.command',
  /** `command` preset: the dump file's extension (default `dump`). */
  extension: 'volback.dump.extension',
  /** Only the backups of this volume take the dump (default: every volume the container mounts). */
  volume: 'volback.dump.volume',
  /** Whole seconds the dump may run (default 3600). */
  timeout: 'volback.dump.timeout',
} as const;

/** Labels refused outright: a password in a label would be published with the container. */
const FORBIDDEN_LABELS = ['volback.dump.password', 'volback.dump.pass'] as const;

/** The presets: what each runs is {@link dumpScript}, how each restores {@link restoreSteps}. */
export const DUMP_PRESETS = [
  'postgres',
  'postgres-all',
  'mysql',
  'mariadb',
  'mongodb',
  'redis',
  'sqlite',
  'command',
] as const;
/** One of {@link DUMP_PRESETS}. */
export type DumpPreset = (typeof DUMP_PRESETS)[number];

/** Whether the volume's own files go into the snapshot with the dump. */
export type DumpMode = 'alongside' | 'instead';

/** Where dump files sit in a snapshot: `/.volback/dumps/<container>.<extension>`. */
export const DUMPS_DIR = '/.volback/dumps';

export const DUMP_DEFAULTS = { timeoutSeconds: 3600, mode: 'alongside', extension: 'dump' } as const;
const MAX_SECONDS = 86_400;

/** Stable codes of dump failures, as `BackupFailed` carries them. */
export const DumpErrorCode = {
  /** A `volback.dump*` label has a value that cannot be used (or holds a password). */
  LabelInvalid: 'VOLBACK_AGENT_DUMP_LABEL_INVALID',
  /** The dump could not run, exited non-zero, or ran out of time. */
  Failed: 'VOLBACK_AGENT_DUMP_FAILED',
} as const;

/** A dump label that cannot be used; the backup fails with this reason and is not retried. */
export class DumpLabelError extends Error {
  override readonly name = 'DumpLabelError';
  readonly code = DumpErrorCode.LabelInvalid;
  readonly container: string;
  readonly label: string;

  constructor(container: string, label: string, why: string, options?: ErrorOptions) {
    super(`container ${container}: label ${label} ${why}`, options);
    this.container = container;
    this.label = label;
  }
}

/** One dump to take during a backup. */
export interface DumpSpec {
  readonly container: ContainerRef;
  readonly preset: DumpPreset;
  readonly mode: DumpMode;
  /** Run as `sh -c <script>` in the container; its stdout is the dump. Holds no secret: passwords are env references. */
  readonly script: string;
  /** `<container>.<extension>`, under {@link DUMPS_DIR}. */
  readonly fileName: string;
  readonly timeoutSeconds: number;
}

/** The dumps of one backup. */
export interface DumpPlan {
  readonly dumps: readonly DumpSpec[];
  /** True when a dump asked for `instead`: the volume's own files are not read. */
  readonly skipVolumeFiles: boolean;
  /** Dumps left out and why (a container not running). */
  readonly warnings: readonly string[];
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const ABSOLUTE_PATH = /^\/[A-Za-z0-9_.\-/]{1,1000}$/;
const EXTENSION = /^[A-Za-z0-9]{1,16}(\.[A-Za-z0-9]{1,16}){0,2}$/;

const EXTENSIONS: Record<Exclude<DumpPreset, 'command'>, string> = {
  postgres: 'sql',
  'postgres-all': 'sql',
  mysql: 'sql',
  mariadb: 'sql',
  mongodb: 'archive',
  redis: 'rdb',
  sqlite: 'sqlite',
};

/** The options a preset's script is built from, each checked to hold no shell syntax. */
export interface DumpOptions {
  readonly database?: string;
  readonly user?: string;
  readonly passwordEnv?: string;
  readonly command?: string;
}

/** `"${A:-${B-}}"`: the first of the env variables that is set, inside the container. */
function envValue(names: readonly string[]): string {
  const [first, ...rest] = names;
  return rest.length ? `\${${first}:-${envValue(rest)}}` : `\${${first}-}`;
}

const quoted = (value: string) => `'${value}'`;

/**
 * The shell script a preset runs in the container (`sh -c`). Passwords are never in it: it names
 * the container's own env variable, expanded inside the container and handed to the dump tool
 * through its environment (`PGPASSWORD`, `MYSQL_PWD`, `REDISCLI_AUTH`) or its stdin (mongodump),
 * never as an argument.
 */
export function dumpScript(preset: DumpPreset, options: DumpOptions = {}): string {
  const pw = (defaults: readonly string[]) =>
    `"${options.passwordEnv ? envValue([options.passwordEnv]) : envValue(defaults)}"`;
  switch (preset) {
    case 'postgres':
    case 'postgres-all': {
      const user = options.user ? quoted(options.user) : '"${POSTGRES_USER:-postgres}"';
      const target =
        preset === 'postgres'
          ? ` --dbname=${options.database ? quoted(options.database) : '"${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"'}`
          : '';
      const tool = preset === 'postgres' ? 'pg_dump' : 'pg_dumpall';
      return `PGPASSWORD=${pw(['POSTGRES_PASSWORD'])} exec ${tool} --no-password --username=${user}${target}`;
    }
    case 'mysql':
    case 'mariadb': {
      const prefix = preset === 'mysql' ? ['MYSQL'] : ['MARIADB', 'MYSQL'];
      const passwords = prefix.map((p) => (options.user ? `${p}_PASSWORD` : `${p}_ROOT_PASSWORD`));
      const tool = preset === 'mysql' ? 'mysqldump' : 'mariadb-dump';
      const what = options.database ? `--databases ${quoted(options.database)}` : '--all-databases';
      return (
        `MYSQL_PWD=${pw(passwords)} exec ${tool} --user=${options.user ? quoted(options.user) : 'root'} ` +
        `--single-transaction --routines --events --triggers ${what}`
      );
    }
    case 'mongodb': {
      const user = options.user ? quoted(options.user) : '"${MONGO_INITDB_ROOT_USERNAME-}"';
      const db = options.database ? ` --db=${quoted(options.database)}` : '';
      return (
        `u=${user}; if [ -n "$u" ]; then printf '%s\\n' ${pw(['MONGO_INITDB_ROOT_PASSWORD'])} | ` +
        `exec mongodump --archive --quiet --username="$u" --authenticationDatabase=admin${db}; ` +
        `else exec mongodump --archive --quiet${db}; fi`
      );
    }
    case 'redis':
      return [
        `REDISCLI_AUTH=${pw(['REDIS_PASSWORD'])}; if [ -n "$REDISCLI_AUTH" ]; then export REDISCLI_AUTH; fi`,
        `until redis-cli BGSAVE | grep -q started; do sleep 1; done`,
        `while redis-cli INFO persistence | grep -q '^rdb_bgsave_in_progress:1'; do sleep 1; done`,
        `redis-cli INFO persistence | grep -q '^rdb_last_bgsave_status:ok' || { echo 'redis BGSAVE failed' >&2; exit 1; }`,
        `dir=$(redis-cli CONFIG GET dir | sed -n 2p); file=$(redis-cli CONFIG GET dbfilename | sed -n 2p)`,
        `exec cat "$dir/$file"`,
      ].join('\n');
    case 'sqlite':
      // `.backup` needs a seekable file: a scratch copy inside the container, removed on exit.
      return (
        `t=$(mktemp) || exit 1; trap 'rm -f "$t"' EXIT; ` +
        `sqlite3 ${quoted(options.database ?? '')} ".backup '$t'" && cat "$t"`
      );
    case 'command':
      return options.command ?? '';
  }
}

/** Example values that stand in the documented restore steps. */
export interface RestoreContext {
  /** The volume the snapshot is of (restic's `--tag volume:<name>`). */
  readonly volume: string;
  readonly container: string;
  readonly fileName: string;
  readonly database?: string;
}

/**
 * How to put a dump back, as shell steps on the Docker host: `restic dump` streams the file out
 * of the repository (any restic given the password; `volback repo restore --path` works too)
 * into the database's own client in the (new) container. The agent README lists these.
 */
export function restoreSteps(preset: DumpPreset, at: RestoreContext): string[] {
  const path = `${DUMPS_DIR}/${at.fileName}`;
  const dump = `restic dump --tag volume:${at.volume} latest ${path}`;
  const into = (script: string) => `${dump} | docker exec -i ${at.container} sh -c '${script}'`;
  const copyIn = (target: string) => [
    `docker stop ${at.container}`,
    `${dump} > ${at.fileName}`,
    `docker cp ${at.fileName} ${at.container}:${target}`,
    `docker start ${at.container}`,
  ];
  switch (preset) {
    case 'postgres':
      return [
        into(
          `exec psql --username="\${POSTGRES_USER:-postgres}" --dbname="${at.database ?? '${POSTGRES_DB:-${POSTGRES_USER:-postgres}}'}"`,
        ),
      ];
    case 'postgres-all':
      return [into('exec psql --username="${POSTGRES_USER:-postgres}" --dbname=postgres')];
    case 'mysql':
      return [into('MYSQL_PWD="${MYSQL_ROOT_PASSWORD-}" exec mysql --user=root')];
    case 'mariadb':
      return [into('MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD-}}" exec mariadb --user=root')];
    case 'mongodb':
      return [
        `${dump} > ${at.fileName}`,
        `docker cp ${at.fileName} ${at.container}:/tmp/${at.fileName}`,
        `docker exec ${at.container} sh -c 'printf "%s\\n" "$MONGO_INITDB_ROOT_PASSWORD" | mongorestore --archive=/tmp/${at.fileName} --drop --username="$MONGO_INITDB_ROOT_USERNAME" --authenticationDatabase=admin'`,
      ];
    case 'redis':
      return copyIn('/data/dump.rdb');
    case 'sqlite':
      return copyIn(at.database ?? '/data/app.db');
    case 'command':
      return [`${dump} > ${at.fileName}`];
  }
}

/** A container that mounts the volume, as far as dumps need it. */
export type DumpCandidate = ConsistencyCandidate;

const isRunning = (c: DumpCandidate) => c.state === undefined || c.state === 'running';

/** The dump a container's labels ask for during a backup of `volumeName`; undefined when none. A bad value throws. */
export function dumpSpecOf(container: DumpCandidate, volumeName: string): DumpSpec | undefined {
  const labels = container.labels;
  const name = container.name;
  for (const label of FORBIDDEN_LABELS) {
    if (labels[label] !== undefined) {
      throw new DumpLabelError(
        name,
        label,
        `is not allowed: a label is published with the container; name the container's env variable in ${DUMP_LABELS.passwordEnv}`,
      );
    }
  }
  const raw = labels[DUMP_LABELS.preset];
  const others = Object.keys(labels).filter((l) => l.startsWith(`${DUMP_LABELS.preset}.`));
  if (raw === undefined) {
    if (others.length)
      throw new DumpLabelError(name, others[0]!, `needs ${DUMP_LABELS.preset} (the preset) on the container`);
    return undefined;
  }
  const bad = (label: string, why: string) =>
    new DumpLabelError(name, label, `is ${JSON.stringify(labels[label])}: ${why}`);
  const preset = raw.trim().toLowerCase() as DumpPreset;
  if (!DUMP_PRESETS.includes(preset)) throw bad(DUMP_LABELS.preset, `expected ${DUMP_PRESETS.join(', ')}`);
  const known = new Set<string>(Object.values(DUMP_LABELS));
  const unknown = others.find((l) => !known.has(l));
  if (unknown) throw new DumpLabelError(name, unknown, 'is not a dump label');

  const only = labels[DUMP_LABELS.volume];
  if (only !== undefined && only !== volumeName) return undefined;

  const modeRaw = labels[DUMP_LABELS.mode]?.trim().toLowerCase() ?? DUMP_DEFAULTS.mode;
  if (modeRaw !== 'alongside' && modeRaw !== 'instead')
    throw bad(DUMP_LABELS.mode, 'expected alongside or instead');

  let timeoutSeconds: number = DUMP_DEFAULTS.timeoutSeconds;
  const timeoutRaw = labels[DUMP_LABELS.timeout];
  if (timeoutRaw !== undefined) {
    timeoutSeconds = /^\d{1,5}$/.test(timeoutRaw.trim()) ? Number(timeoutRaw.trim()) : 0;
    if (timeoutSeconds < 1 || timeoutSeconds > MAX_SECONDS)
      throw bad(DUMP_LABELS.timeout, `not a whole number of seconds from 1 to ${MAX_SECONDS}`);
  }

  const options: { -readonly [K in keyof DumpOptions]: DumpOptions[K] } = {};
  const database = labels[DUMP_LABELS.database];
  if (database !== undefined) {
    const ok =
      preset === 'sqlite'
        ? ABSOLUTE_PATH.test(database) && !/(^|\/)\.\.?(\/|$)/.test(database)
        : NAME.test(database);
    if (!ok)
      throw bad(
        DUMP_LABELS.database,
        preset === 'sqlite'
          ? 'expected the absolute path of the database file (letters, digits, _ . - /, no ..)'
          : 'expected a name of letters, digits and _ . @ - (at most 63)',
      );
    options.database = database;
  } else if (preset === 'sqlite') {
    throw new DumpLabelError(
      name,
      DUMP_LABELS.database,
      'is needed by the sqlite preset: the database file’s path',
    );
  }
  const user = labels[DUMP_LABELS.user];
  if (user !== undefined) {
    if (!NAME.test(user))
      throw bad(DUMP_LABELS.user, 'expected a name of letters, digits and _ . @ - (at most 63)');
    options.user = user;
  }
  const passwordEnv = labels[DUMP_LABELS.passwordEnv];
  if (passwordEnv !== undefined) {
    if (!ENV_NAME.test(passwordEnv))
      throw new DumpLabelError(
        name,
        DUMP_LABELS.passwordEnv,
        'is not an env variable name (letters, digits, _): it names the variable, it never holds the password',
      );
    options.passwordEnv = passwordEnv;
  }
  let extension: string = preset === 'command' ? DUMP_DEFAULTS.extension : EXTENSIONS[preset];
  if (preset === 'command') {
    const command = labels[DUMP_LABELS.command];
    if (!command?.trim())
      throw new DumpLabelError(name, DUMP_LABELS.command, 'is needed by the command preset');
    options.command = command;
    const ext = labels[DUMP_LABELS.extension];
    if (ext !== undefined) {
      if (!EXTENSION.test(ext))
        throw bad(DUMP_LABELS.extension, 'expected letters and digits, like sql or sql.gz');
      extension = ext;
    }
  } else {
    for (const label of [DUMP_LABELS.command, DUMP_LABELS.extension]) {
      if (labels[label] !== undefined)
        throw new DumpLabelError(name, label, 'is only for the command preset');
    }
  }
  return {
    container: { name, ...(container.id ? { id: container.id } : {}) },
    preset,
    mode: modeRaw,
    script: dumpScript(preset, options),
    fileName: `${name}.${extension}`,
    timeoutSeconds,
  };
}

/**
 * The dumps a backup of `volumeName` takes: one per running container that mounts the volume and
 * whose labels ask for one (a container's own labels are its opt-in, like its hook labels). A
 * container that is not running is left out (its files are at rest) and its `instead` does not
 * apply, so the volume's files are read. A bad label value throws {@link DumpLabelError}.
 */
export function planDumps(containers: readonly DumpCandidate[], volumeName: string): DumpPlan {
  const dumps: DumpSpec[] = [];
  const warnings: string[] = [];
  for (const container of containers) {
    const spec = dumpSpecOf(container, volumeName);
    if (!spec) continue;
    if (!isRunning(container)) {
      warnings.push(`${container.name}: ${spec.preset} dump not taken, it is ${container.state}`);
      continue;
    }
    dumps.push(spec);
  }
  return { dumps, skipVolumeFiles: dumps.some((d) => d.mode === 'instead'), warnings };
}
