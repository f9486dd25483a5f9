import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DUMP_PRESETS,
  DumpErrorCode,
  DumpLabelError,
  dumpScript,
  dumpSpecOf,
  planDumps,
  restoreSteps,
  type DumpCandidate,
  type DumpPreset,
} from './database-dump.ts';

const container = (labels: Record<string, string>, extra: Partial<DumpCandidate> = {}): DumpCandidate => ({
  name: 'db',
  id: 'a'.repeat(64),
  labels,
  state: 'running',
  ...extra,
});

function refusal(labels: Record<string, string>, volume = 'data'): DumpLabelError {
  try {
    dumpSpecOf(container(labels), volume);
  } catch (error) {
    expect(error).toBeInstanceOf(DumpLabelError);
    return error as DumpLabelError;
  }
  throw new Error('expected a refusal');
}

describe('each preset runs its dump tool with secrets from the container env only', () => {
  it.each<[DumpPreset, Record<string, string>, string]>([
    [
      'postgres',
      {},
      'PGPASSWORD="${POSTGRES_PASSWORD-}" exec pg_dump --no-password --username="${POSTGRES_USER:-postgres}" --dbname="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"',
    ],
    [
      'postgres',
      { database: 'shop', user: 'backup', passwordEnv: 'BACKUP_PW' },
      `PGPASSWORD="\${BACKUP_PW-}" exec pg_dump --no-password --username='backup' --dbname='shop'`,
    ],
    [
      'postgres-all',
      {},
      'PGPASSWORD="${POSTGRES_PASSWORD-}" exec pg_dumpall --no-password --username="${POSTGRES_USER:-postgres}"',
    ],
    [
      'mysql',
      {},
      'MYSQL_PWD="${MYSQL_ROOT_PASSWORD-}" exec mysqldump --user=root --single-transaction --routines --events --triggers --all-databases',
    ],
    [
      'mysql',
      { database: 'shop', user: 'shop' },
      `MYSQL_PWD="\${MYSQL_PASSWORD-}" exec mysqldump --user='shop' --single-transaction --routines --events --triggers --databases 'shop'`,
    ],
    [
      'mariadb',
      {},
      'MYSQL_PWD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD-}}" exec mariadb-dump --user=root --single-transaction --routines --events --triggers --all-databases',
    ],
    [
      'mongodb',
      {},
      `u="\${MONGO_INITDB_ROOT_USERNAME-}"; if [ -n "$u" ]; then printf '%s\\n' "\${MONGO_INITDB_ROOT_PASSWORD-}" | ` +
        'exec mongodump --archive --quiet --username="$u" --authenticationDatabase=admin; else exec mongodump --archive --quiet; fi',
    ],
    [
      'mongodb',
      { database: 'shop' },
      `u="\${MONGO_INITDB_ROOT_USERNAME-}"; if [ -n "$u" ]; then printf '%s\\n' "\${MONGO_INITDB_ROOT_PASSWORD-}" | ` +
        `exec mongodump --archive --quiet --username="$u" --authenticationDatabase=admin --db='shop'; else exec mongodump --archive --quiet --db='shop'; fi`,
    ],
    [
      'redis',
      {},
      [
        'REDISCLI_AUTH="${REDIS_PASSWORD-}"; if [ -n "$REDISCLI_AUTH" ]; then export REDISCLI_AUTH; fi',
        'until redis-cli BGSAVE | grep -q started; do sleep 1; done',
        "while redis-cli INFO persistence | grep -q '^rdb_bgsave_in_progress:1'; do sleep 1; done",
        "redis-cli INFO persistence | grep -q '^rdb_last_bgsave_status:ok' || { echo 'redis BGSAVE failed' >&2; exit 1; }",
        'dir=$(redis-cli CONFIG GET dir | sed -n 2p); file=$(redis-cli CONFIG GET dbfilename | sed -n 2p)',
        'exec cat "$dir/$file"',
      ].join('\n'),
    ],
    [
      'sqlite',
      { database: '/data/app.db' },
      `t=$(mktemp) || exit 1; trap 'rm -f "$t"' EXIT; sqlite3 '/data/app.db' ".backup '$t'" && cat "$t"`,
    ],
    ['command', { command: 'tar -C /srv -cf - .' }, 'tar -C /srv -cf - .'],
  ])('%s %j', (preset, options, script) => {
    expect(dumpScript(preset, options)).toBe(script);
  });

  it('given labels, when the spec is built, then the script, file name, mode and timeout follow them', () => {
    const spec = dumpSpecOf(
      container({
        'volback.dump': 'Postgres',
        'volback.dump.mode': 'instead',
        'volback.dump.database': 'shop',
        'volback.dump.timeout': '600',
      }),
      'data',
    );
    expect(spec).toEqual({
      container: { name: 'db', id: 'a'.repeat(64) },
      preset: 'postgres',
      mode: 'instead',
      script: dumpScript('postgres', { database: 'shop' }),
      fileName: 'db.sql',
      timeoutSeconds: 600,
    });
  });

  it.each<[DumpPreset, Record<string, string>, string]>([
    ['postgres', {}, 'db.sql'],
    ['postgres-all', {}, 'db.sql'],
    ['mysql', {}, 'db.sql'],
    ['mariadb', {}, 'db.sql'],
    ['mongodb', {}, 'db.archive'],
    ['redis', {}, 'db.rdb'],
    ['sqlite', { 'volback.dump.database': '/data/app.db' }, 'db.sqlite'],
    ['command', { 'volback.dump.command': 'cat /x' }, 'db.dump'],
    ['command', { 'volback.dump.command': 'cat /x', 'volback.dump.extension': 'sql.gz' }, 'db.sql.gz'],
  ])('%s writes %j as its file', (preset, labels, fileName) => {
    const spec = dumpSpecOf(container({ 'volback.dump': preset, ...labels }), 'data');
    expect(spec?.fileName).toBe(fileName);
    expect(spec?.mode).toBe('alongside');
    expect(spec?.timeoutSeconds).toBe(3600);
  });
});

describe('bad labels are refused with the container, the label and why', () => {
  it.each<[Record<string, string>, string, RegExp]>([
    [{ 'volback.dump': 'oracle' }, 'volback.dump', /expected postgres, postgres-all, mysql/],
    [
      { 'volback.dump': 'postgres', 'volback.dump.mode': 'both' },
      'volback.dump.mode',
      /alongside or instead/,
    ],
    [{ 'volback.dump': 'postgres', 'volback.dump.timeout': '10m' }, 'volback.dump.timeout', /1 to 86400/],
    [{ 'volback.dump': 'postgres', 'volback.dump.timeout': '0' }, 'volback.dump.timeout', /1 to 86400/],
    [
      { 'volback.dump': 'postgres', 'volback.dump.database': "x'; rm -rf /" },
      'volback.dump.database',
      /a name/,
    ],
    [{ 'volback.dump': 'mysql', 'volback.dump.user': 'a b' }, 'volback.dump.user', /a name/],
    [
      { 'volback.dump': 'mysql', 'volback.dump.password-env': 's3cret!' },
      'volback.dump.password-env',
      /never holds/,
    ],
    [{ 'volback.dump': 'sqlite' }, 'volback.dump.database', /needed by the sqlite preset/],
    [
      { 'volback.dump': 'sqlite', 'volback.dump.database': 'app.db' },
      'volback.dump.database',
      /absolute path/,
    ],
    [
      { 'volback.dump': 'sqlite', 'volback.dump.database': '/data/../etc/x' },
      'volback.dump.database',
      /no \.\./,
    ],
    [{ 'volback.dump': 'command' }, 'volback.dump.command', /needed by the command preset/],
    [
      { 'volback.dump': 'command', 'volback.dump.command': 'x', 'volback.dump.extension': '../x' },
      'volback.dump.extension',
      /like sql/,
    ],
    [
      { 'volback.dump': 'postgres', 'volback.dump.command': 'x' },
      'volback.dump.command',
      /only for the command preset/,
    ],
    [{ 'volback.dump': 'postgres', 'volback.dump.databse': 'x' }, 'volback.dump.databse', /not a dump label/],
    [{ 'volback.dump.mode': 'instead' }, 'volback.dump.mode', /needs volback.dump/],
  ])('%j', (labels, label, why) => {
    const error = refusal(labels);
    expect(error.code).toBe(DumpErrorCode.LabelInvalid);
    expect(error.label).toBe(label);
    expect(error.message).toMatch(new RegExp(`^container db: label ${label.replaceAll('.', '\\.')} `));
    expect(error.message).toMatch(why);
  });

  it('a password in a label is refused without repeating it', () => {
    const error = refusal({ 'volback.dump': 'postgres', 'volback.dump.password': 'hunter2' });
    expect(error.label).toBe('volback.dump.password');
    expect(error.message).toContain('volback.dump.password-env');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('planDumps', () => {
  it('given containers of a volume, then only running ones with a dump label dump, and instead leaves the files out', () => {
    const plan = planDumps(
      [
        container({ 'volback.dump': 'postgres', 'volback.dump.mode': 'instead' }, { name: 'pg' }),
        container({ 'volback.dump': 'redis' }, { name: 'cache', state: 'exited' }),
        container({ 'volback.consistency': 'stop' }, { name: 'web' }),
      ],
      'data',
    );
    expect(plan.dumps.map((d) => [d.container.name, d.preset, d.mode])).toEqual([
      ['pg', 'postgres', 'instead'],
    ]);
    expect(plan.skipVolumeFiles).toBe(true);
    expect(plan.warnings).toEqual(['cache: redis dump not taken, it is exited']);
  });

  it('given a container not running whose dump says instead, then the volume files are read (they are at rest)', () => {
    const plan = planDumps(
      [container({ 'volback.dump': 'postgres', 'volback.dump.mode': 'instead' }, { state: 'exited' })],
      'data',
    );
    expect(plan).toEqual({
      dumps: [],
      skipVolumeFiles: false,
      warnings: ['db: postgres dump not taken, it is exited'],
    });
  });

  it('given volback.dump.volume, then only the backup of that volume takes the dump', () => {
    const labels = { 'volback.dump': 'mysql', 'volback.dump.volume': 'mysql-data' };
    expect(planDumps([container(labels)], 'mysql-data').dumps).toHaveLength(1);
    expect(planDumps([container(labels)], 'mysql-config').dumps).toHaveLength(0);
  });

  it('given no dump labels, then no dumps and the files are read', () => {
    expect(planDumps([container({})], 'data')).toEqual({ dumps: [], skipVolumeFiles: false, warnings: [] });
  });
});

describe('restore steps', () => {
  const examples: Record<DumpPreset, { volume: string; container: string; database?: string }> = {
    postgres: { volume: 'pgdata', container: 'db' },
    'postgres-all': { volume: 'pgdata', container: 'db' },
    mysql: { volume: 'mysql-data', container: 'db' },
    mariadb: { volume: 'mariadb-data', container: 'db' },
    mongodb: { volume: 'mongo-data', container: 'mongo' },
    redis: { volume: 'redis-data', container: 'cache' },
    sqlite: { volume: 'app-data', container: 'app', database: '/data/app.db' },
    command: { volume: 'files', container: 'app' },
  };
  const stepsOf = (preset: DumpPreset) => {
    const at = examples[preset];
    const spec = dumpSpecOf(
      container(
        {
          'volback.dump': preset,
          ...(at.database ? { 'volback.dump.database': at.database } : {}),
          ...(preset === 'command' ? { 'volback.dump.command': 'cat /x' } : {}),
        },
        { name: at.container },
      ),
      at.volume,
    )!;
    return restoreSteps(preset, { ...at, fileName: spec.fileName });
  };

  it.each<[DumpPreset, RegExp]>([
    ['postgres', /\| docker exec -i db sh -c 'exec psql /],
    ['postgres-all', /\| docker exec -i db sh -c 'exec psql .*--dbname=postgres'$/],
    ['mysql', /\| docker exec -i db sh -c 'MYSQL_PWD=.* exec mysql --user=root'$/],
    ['mariadb', /\| docker exec -i db sh -c 'MYSQL_PWD=.* exec mariadb --user=root'$/],
    ['mongodb', /mongorestore --archive=\/tmp\/mongo\.archive --drop/],
    ['redis', /^docker cp cache\.rdb cache:\/data\/dump\.rdb$/],
    ['sqlite', /^docker cp app\.sqlite app:\/data\/app\.db$/],
    ['command', /^restic dump --tag volume:files latest \/\.volback\/dumps\/app\.dump > app\.dump$/],
  ])('%s reads its file out of the repository and feeds the database its own client', (preset, step) => {
    const steps = stepsOf(preset);
    expect(steps.some((s) => step.test(s))).toBe(true);
    expect(steps[0]).toMatch(
      /^(docker stop \S+|restic dump --tag volume:\S+ latest \/\.volback\/dumps\/\S+)/,
    );
    expect(steps.join('\n')).toContain(`/.volback/dumps/${examples[preset].container}.`);
  });

  it('the agent README documents every preset with exactly these steps', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const preset of DUMP_PRESETS) {
      for (const step of stepsOf(preset)) expect(readme, `${preset}: ${step}`).toContain(step);
      expect(readme).toContain(`\`${preset}\``);
    }
  });
});
